"""Routing pieces without a server: canary buckets, slices, thresholds files, the routing curve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation.errors import UserError
from train.serve.routing import Router, in_share, key_hash
from train.serve.settings import ServeConfig, Thresholds


def test_canary_buckets_are_stable_and_nested() -> None:
    keys = [key_hash(f"user-{i}") for i in range(2000)]
    five = {k for k in keys if in_share(k, 0.05)}
    quarter = {k for k in keys if in_share(k, 0.25)}
    assert five <= quarter  # widening the rollout only adds users
    assert 0.03 < len(five) / len(keys) < 0.07 and 0.22 < len(quarter) / len(keys) < 0.28
    assert key_hash("user-1") == key_hash("user-1") and not in_share(keys[0], 0.0) and in_share(keys[0], 1.0)


def test_slice_from_header_then_body_then_none() -> None:
    r = Router(ServeConfig(teacher="t"), [])
    body = {"messages": [], "metadata": {"slice": "billing"}}
    assert r.slice_of({"X-Slice": "vip"}, body) == "vip"
    assert r.slice_of({}, body) == "billing"
    assert r.slice_of({}, {"messages": []}) == "(none)"
    assert r.update(mode="canary", share=0.3).share == 0.3
    with pytest.raises(UserError):
        r.update(mode="bogus")
    assert r.live.mode == "canary"


def test_thresholds_files(tmp_path: Path) -> None:
    flat = tmp_path / "t.json"
    flat.write_text(json.dumps({"billing": 0.7, "temperature": 1.5}))
    t = Thresholds.from_file(flat, Thresholds(default=0.4))
    assert (t.for_slice("billing"), t.for_slice("other"), t.temperature) == (0.7, 0.4, 1.5)
    nested = Thresholds.from_json({"default": 0.2, "slices": {"a": 0.9}}, "x")
    assert (nested.for_slice("a"), nested.for_slice("b")) == (0.9, 0.2)
    flat.write_text(json.dumps({"billing": 2}))
    with pytest.raises(UserError, match=r"t\.json: slice 'billing' must be a number between 0 and 1"):
        Thresholds.from_file(flat)
    with pytest.raises(UserError, match="temperature"):
        Thresholds.from_json({"temperature": 0}, "x")
