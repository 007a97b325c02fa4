"""Distributions before decisions: similarity (dedupe) and confidence (filters), plain functions on a real DuckDB."""

from __future__ import annotations

import json
import math

import pytest

from curation import review
from curation.confidence_dist import band_records, confidence_distribution, queue_review_sample, sample_source
from curation.dedupe import find_duplicates
from curation.errors import UserError
from curation.filters import run_filter
from curation.intervals import wilson
from curation.records import insert_records, new_batch
from curation.similarity_dist import band_page, similarity_distribution, write_pairs
from tests.curation.conftest import build_workspace


def _add(ws, prompts, slc="shipping"):
    rows = [{"messages": [{"role": "user", "content": p}], "response": '{"intent":"x"}', "slice": slc} for p in prompts]
    with ws.transaction() as cur:
        return insert_records(cur, new_batch(cur, "later.jsonl", "log"), rows)


# -- similarity ------------------------------------------------------------------------------------------------


def test_removal_per_threshold_is_what_dedupe_removes(ws, minilm):
    ids = _add(ws, ["Where is my order #48213? It is late", "Where is my order #99120? It is late"])
    dist = similarity_distribution(ws)
    for t in (0.75, 0.85, 0.88, 0.95):
        res = find_duplicates(ws, threshold=t)
        assert dist.removed_at(t) == {s: x.removed for s in dist.slices for x in res.per_slice if x.slice == s}, t
    # Answers that must agree: a cluster whose answers differ keeps one record per answer, in both.
    for field in (None, "intent"):
        agree = similarity_distribution(ws, answers="agree", label_field=field)
        for t in (0.75, 0.85):
            res = find_duplicates(ws, threshold=t, answers="agree", label_field=field)
            got = {s: x.removed for s in agree.slices for x in res.per_slice if x.slice == s}
            assert agree.removed_at(t) == got, (field, t)
    assert sum(agree.removed_at(0.75).values()) > sum(
        similarity_distribution(ws, answers="agree").removed_at(0.75).values()
    )
    assert sum(dist.removed_at(0.85).values()) > sum(dist.removed_at(0.95).values())
    # The two orders differ in a number: a candidate pair, kept apart at any threshold.
    pair = next(p for b in dist.bands() for p in band_page(ws, dist, b, 0, 1000) if {p.a, p.b} == set(ids))
    assert pair.apart == "number" and pair.similarity > 0.8 and not pair.exact


def test_histogram_bands_and_pages_cover_every_record(ws, minilm):
    dist = similarity_distribution(ws)
    assert sum(n for _, _, n in dist.histogram()) == dist.n_records == 26
    assert sum(sum(n for _, _, n in dist.histogram(s)) for s in dist.slices) == dist.n_records
    bands = dist.bands()
    assert [b.label for b in bands][:2] == ["0.95-1.00", "0.90-0.95"] and bands[-1].lo == pytest.approx(0.70)
    assert sum(b.n_pairs for b in bands) == len(dist.pair_sim)
    # The paraphrase "charged twice" / "billed two times" is browsable in its band, with both prompts.
    found = [p for b in bands for p in band_page(ws, dist, b, 0, 1000) if {p.a, p.b} == {1, 2}]
    assert len(found) == 1 and "billed two times" in found[0].prompt_b and found[0].slice_a == "billing"
    b = next(b for b in bands if b.lo <= found[0].similarity < b.hi)
    assert len(band_page(ws, dist, b, 0, 1)) == 1 and b.n_pairs >= 1


def test_every_candidate_pair_exported_as_jsonl(ws, minilm, tmp_path):
    dist = similarity_distribution(ws)
    out = tmp_path / "pairs.jsonl"
    n = write_pairs(ws, dist, out, threshold=0.88)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert n == len(rows) == len(dist.pair_sim) > 0
    assert [r["similarity"] for r in rows] == sorted((r["similarity"] for r in rows), reverse=True)
    para = next(r for r in rows if {r["a"], r["b"]} == {1, 2})
    assert "charged twice" in para["prompt_a"] + para["prompt_b"] and para["merged"] == (para["similarity"] >= 0.88)
    assert not (tmp_path / "pairs.jsonl.partial").exists()


def test_similarity_needs_two_records(tmp_path):
    w = build_workspace(tmp_path / "one.duckdb", rows=[{"messages": [{"role": "user", "content": "hi"}]}])
    with pytest.raises(UserError, match="at least two"):
        similarity_distribution(w)
    w.close()


# -- confidence ------------------------------------------------------------------------------------------------


def _conf_rows(n: int = 60) -> list[dict]:
    """Answers whose token probability rises with k: 0.30 .. 0.99; slices a (2 of 3) and b."""
    rows = []
    for k in range(n):
        p = 0.30 + 0.69 * k / (n - 1)
        resp = json.dumps({"intent": "refund" if k % 2 else "late"})
        lps = [
            {"token": resp[:10], "logprob": math.log(p)},
            {"token": resp[10:], "logprob": math.log(min(0.999, p + 0.01))},
        ]
        rows.append({"messages": [{"role": "user", "content": f"ticket {k}"}], "response": resp,
                     "response_logprobs": lps, "slice": "a" if k % 3 else "b"})  # fmt: skip
    return rows


@pytest.fixture
def cws(tmp_path):
    w = build_workspace(tmp_path / "c.duckdb", rows=_conf_rows())
    yield w
    w.close()


@pytest.mark.parametrize("metric", ["mean_logprob", "min_logprob", "answer_prob"])
def test_cutoffs_fail_what_the_filter_fails(cws, metric):
    review.reject(cws, 1, "junk")  # rejected and edited answers are not judged, as in the filter
    review.edit(cws, 2, '{"intent": "other"}')
    dist = confidence_distribution(cws, metric, field="intent")
    assert dist.n_scored == 58 and sum(n for _, _, n in dist.histogram()) == 58
    assert [len(dist.bands), sum(b.n for b in dist.bands)] == [5, 58]
    extra = dist.bin_edges[3]
    rows = dist.cutoffs([extra])
    assert [r.cutoff for r in rows] == sorted({b.lo for b in dist.bands[1:]} | {extra})
    for row in rows:
        rep = run_filter(
            cws, "f", {"kind": "confidence", "metric": metric, "min": row.cutoff, "field": "intent"}, "keep"
        )
        assert row.dropped == rep.n_failed, row.cutoff
        assert row.per_slice == {s: f for s, _, f in rep.per_slice}, row.cutoff
    # band edges are typeable numbers (two significant digits) and rise
    edges = [b.lo for b in dist.bands[1:]]
    assert edges == sorted(edges) and all(e == float(f"{e:.2g}") for e in edges)


def test_review_sample_measures_the_error_rate_per_band(cws):
    dist = confidence_distribution(cws, "mean_logprob")
    queued = queue_review_sample(cws, dist, per_band=3)
    assert list(queued.values()) == [min(3, b.n) for b in dist.bands] and sum(queued.values()) >= 13
    again = queue_review_sample(cws, confidence_distribution(cws, "mean_logprob"), per_band=3)
    assert sum(again.values()) == 0  # a top-up: every band has its 3 already
    sampled = [r[0] for r in cws.query("SELECT record_id FROM review_events WHERE reviewer = ?",
                                       [sample_source("mean_logprob")])]  # fmt: skip
    assert len(sampled) == sum(queued.values())
    assert cws.scalar("SELECT count(*) FROM reviews WHERE status = 'needs_review'") == len(sampled)
    # Reviewers: the lowest band's answers are wrong (one edited, the others rejected), the rest right.
    in_low = [r.record_id for r in band_records(cws, dist, 0, 0, 100) if r.sampled]
    assert len(in_low) == queued[dist.bands[0].label] >= 2
    for rid in sampled:
        if rid == in_low[0]:
            review.edit(cws, rid, '{"intent": "x"}')
        elif rid in in_low:
            review.reject(cws, rid, "wrong intent")
        else:
            review.accept(cws, rid)
    after = confidence_distribution(cws, "mean_logprob")
    n_low = len(in_low)
    assert [(b.reviewed, b.wrong) for b in after.bands] == [(n_low, n_low)] + [(3, 0)] * (len(after.bands) - 1)
    assert after.bands[0].rate == 1.0 and after.bands[0].interval == wilson(n_low, n_low)
    assert after.bands[1].interval == wilson(0, 3)
    first = after.cutoffs()[0]
    assert first.cutoff == after.bands[1].lo
    # Below the first edge: the low band's judged answers (the edited and rejected ones are not judged), all wrong.
    assert after.bands[0].n == dist.bands[0].n - n_low
    assert first.errors_removed[0] == pytest.approx(after.bands[0].n) and first.good_lost[0] == pytest.approx(0)
    last = after.cutoffs()[-1]
    assert last.good_lost[0] == pytest.approx(last.dropped - after.bands[0].n)
    assert last.errors_removed[2] > last.errors_removed[0]  # the upper bound counts the other bands' intervals


def test_confidence_without_logprobs_is_a_user_error(tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"t{k}"}], "response": "ok"} for k in range(3)]
    w = build_workspace(tmp_path / "n.duckdb", rows=rows)
    with pytest.raises(UserError, match="no answer has a mean_logprob"):
        confidence_distribution(w, "mean_logprob")
    with pytest.raises(UserError, match="answer_prob needs"):
        confidence_distribution(w, "answer_prob")
    w.close()


# -- CLI -------------------------------------------------------------------------------------------------------


def test_cli_dedupe_distribution_and_pairs(ws, minilm, capsys, tmp_path):
    from distill.cli import main

    path = str(ws.path)
    ws.close()
    out_file = tmp_path / "pairs.jsonl"
    rc = main(["dedupe", "-w", path, "--distribution", "--examples", "2", "--pairs", str(out_file)])
    out = capsys.readouterr().out
    assert rc == 0 and "what each threshold would remove" in out and "0.85 <" in out
    assert "example pairs per band" in out and "nothing stored" in out
    assert out_file.exists() and f"wrote {len(out_file.read_text().splitlines()):,} candidate pairs" in out
    rc = main(["dedupe", "-w", path, "--distribution", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and set(doc["histogram"]) == {"(all)", "billing", "login", "shipping", "security"}
    assert sum(n for _, _, n in doc["histogram"]["(all)"]) == 26 and "0.85" in doc["removed"]
    assert main(["dedupe", "-w", path, "--exact", "--distribution"]) == 1
    assert "leave out --exact" in capsys.readouterr().err


def test_cli_filter_distribution_and_review_sample(tmp_path, capsys):
    from distill.cli import main

    w = build_workspace(tmp_path / "c.duckdb", rows=_conf_rows())
    path = str(w.path)
    w.close()
    rc = main(["filter", "-w", path, "--distribution", "--confidence", "min_logprob", "--min", "-1"])
    out = capsys.readouterr().out
    assert rc == 0 and "error rate [95% CI]" in out and "what each cut-off would fail" in out and "-1 <" in out
    assert "no reviewed sample yet" in out
    rc = main(["filter", "-w", path, "--review-sample", "2", "--confidence", "min_logprob"])
    out = capsys.readouterr().out
    assert rc == 0 and "queued 10 answers for review" in out
    rc = main(["filter", "-w", path, "--distribution", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["metric"] == "mean_logprob" and [b["sampled"] for b in doc["bands"]] == [0] * 5
    assert main(["filter", "-w", path, "--review-sample", "0"]) == 1
    assert "at least 1" in capsys.readouterr().err
