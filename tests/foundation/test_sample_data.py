"""The committed sample is what the generator makes, and it has the shape later features rely on."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from sample_data.generate import write

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def test_committed_sample_matches_generator(tmp_path: Path) -> None:
    out = write(tmp_path)
    assert out.read_bytes() == (SAMPLE / "production_logs.jsonl.gz").read_bytes()


def test_sample_shape() -> None:
    rows = [json.loads(x) for x in gzip.open(SAMPLE / "production_logs.jsonl.gz")]
    truth = json.loads((SAMPLE / "ground_truth.json").read_text())
    assert len(rows) == 5000
    shares = {s: n / 5000 for s, n in truth["slices"].items()}
    assert max(shares.values()) > 0.28 and shares["security"] <= 0.02
    for r in rows[:200]:
        choice = r["response"]["choices"][0]
        assert "".join(t["token"] for t in choice["logprobs"]["content"]) == choice["message"]["content"]
    by_id = {r["metadata"]["ticket_id"]: r for r in rows}

    def mean_lp(r: dict) -> float:
        lps = [t["logprob"] for t in r["response"]["choices"][0]["logprobs"]["content"]]
        return min(lps)

    bad = [mean_lp(by_id[t]) for t in truth["teacher_errors"]]
    good = [mean_lp(r) for t, r in by_id.items() if t not in truth["teacher_errors"]]
    assert sum(bad) / len(bad) < sum(good) / len(good) - 1.0
    assert 0.15 < sum("reference" in r["metadata"] for r in rows) / 5000 < 0.35
