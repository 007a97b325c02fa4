"""The micro-batcher alone, with a stand-in model call: a lone caller never waits, concurrent callers share calls."""

from __future__ import annotations

import threading
import time

from train.generate import Generation
from train.serve.batching import MicroBatcher, StudentJob


def _fake_model(sizes: list[int], seconds: float = 0.05):
    def run(jobs: list[StudentJob]) -> list[Generation]:
        sizes.append(len(jobs))
        time.sleep(seconds)
        return [Generation(j.prompt.upper(), 0.0, 1) for j in jobs]

    return run


def test_a_lone_caller_never_waits_for_company() -> None:
    sizes: list[int] = []
    b = MicroBatcher(_fake_model(sizes), max_batch=8, wait_ms=500)
    try:
        t0 = time.monotonic()
        for i in range(5):
            assert b.submit(StudentJob(f"p{i}", 4)).result().text == f"P{i}"
        assert time.monotonic() - t0 < 5 * 0.05 + 0.4  # far under one 500 ms wait
    finally:
        b.close()
    assert sizes == [1] * 5


def test_closed_loop_clients_fill_whole_batches_and_sampling_is_kept_apart() -> None:
    sizes: list[int] = []
    b = MicroBatcher(_fake_model(sizes), max_batch=8, wait_ms=200)

    def client(n: int) -> None:
        for i in range(6):
            assert b.submit(StudentJob(f"c{n}-{i}", 4)).result().text == f"C{n}-{i}"

    try:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        greedy, sampled = StudentJob("g", 4), StudentJob("s", 4, temperature=0.7)
        b.submit(greedy), b.submit(sampled)
        greedy.future.result(), sampled.future.result()
    finally:
        b.close()
    assert sum(sizes[:-2]) == 48
    assert sizes[-2:] == [1, 1]  # different sampling never shares a call
    assert sum(s == 8 for s in sizes[:-2]) >= 4  # after the first round every batch is whole (no 1+7 split)


def test_a_cancelled_request_is_skipped() -> None:
    sizes: list[int] = []
    b = MicroBatcher(_fake_model(sizes, 0.2), max_batch=8, wait_ms=0)
    try:
        first = b.submit(StudentJob("a", 4))
        time.sleep(0.05)  # "a" is generating
        gone = b.submit(StudentJob("b", 4))
        assert gone.cancel()
        assert first.result().text == "A" and b.submit(StudentJob("c", 4)).result().text == "C"
    finally:
        b.close()
    assert sizes == [1, 1]
