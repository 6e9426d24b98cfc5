"""The streaming writer's scheduling: in-flight bytes stay within the budget, output bytes do not
depend on slicing or workers, and transformers' tokenizer check runs while the tensors are written."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest


def test_in_order_keeps_submitted_work_within_the_budget() -> None:
    from fwyy_ollama.export.convert import in_order

    rng = random.Random(0)
    costs = [rng.randint(1, 6) for _ in range(200)] + [25] + [1] * 20  # 25 > budget: it must go alone
    budget = 10
    inflight, violations, got = 0, [], []
    lock = threading.Lock()

    class CountingPool:
        def __init__(self, pool: ThreadPoolExecutor) -> None:
            self.pool = pool

        def submit(self, fn, *args):  # type: ignore[no-untyped-def]
            nonlocal inflight
            with lock:
                inflight += costs[args[0]]
                if inflight > budget and inflight != costs[args[0]]:
                    violations.append((args[0], inflight))
            return self.pool.submit(fn, *args)

    def work(i: int) -> int:
        time.sleep(rng.random() / 2000)  # finish out of order
        return i

    with ThreadPoolExecutor(max_workers=4) as pool:
        tasks = ((cost, (i,)) for i, cost in enumerate(costs))
        for i in in_order(CountingPool(pool), work, tasks, budget):
            with lock:
                inflight -= costs[i]
            got.append(i)
    assert got == list(range(len(costs)))
    assert violations == []


def test_slices_shrink_with_more_workers_within_the_budget() -> None:
    from fwyy_ollama.export import convert

    assert convert.slice_bytes(1) == convert.slice_bytes(2) == convert.SLICE_BYTES
    for workers in (2, 8, 16, 64, 128):
        assert 2 * workers * convert.slice_bytes(workers) <= convert.INFLIGHT_BYTES
    assert convert.slice_bytes(16) < convert.slice_bytes(8)
    assert convert.slice_bytes(10_000) == convert.MIN_SLICE_BYTES


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("quant", ["q4_k_m", "q8_0"])
def test_bytes_do_not_depend_on_slices_or_workers(
    quant: str, tiny_llama_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiny slices (q/k cut at head boundaries) on 1 and on 8 workers: the same file as whole tensors;
    every slice the writer hands out stays within the budget."""
    from fwyy_ollama.export import convert, export_gguf

    whole = export_gguf(model_dir=tiny_llama_dir, out=tmp_path / "whole.gguf", quant=quant, workers=1)
    monkeypatch.setattr(convert, "INFLIGHT_BYTES", 64 << 10)
    monkeypatch.setattr(convert, "SLICE_BYTES", 16 << 10)
    monkeypatch.setattr(convert, "MIN_SLICE_BYTES", 4 << 10)
    seen: list[tuple[int, list[int]]] = []
    real_in_order = convert.in_order

    def spy(pool, work, tasks, budget):  # type: ignore[no-untyped-def]
        costs: list[int] = []
        seen.append((budget, costs))

        def recorded():  # type: ignore[no-untyped-def]
            for cost, args in tasks:
                costs.append(cost)
                yield cost, args

        return real_in_order(pool, work, recorded(), budget)

    for workers in (1, 8):
        out = export_gguf(
            model_dir=tiny_llama_dir, out=tmp_path / f"w{workers}.gguf", quant=quant, workers=workers
        )
        assert _sha(out.gguf) == _sha(whole.gguf)
    monkeypatch.setattr(convert, "in_order", spy)
    export_gguf(model_dir=tiny_llama_dir, out=tmp_path / "spied.gguf", quant=quant, workers=8)
    ((budget, costs),) = seen
    assert budget <= 64 << 10 and len(costs) > 100
    # a slice is at most SLICE_BYTES, or one head's rows of q/k (64 columns: 16 rows of 256 bytes)
    assert max(costs) <= 16 << 10


def test_tokenizer_check_runs_while_tensors_are_written(
    tiny_llama_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """transformers answers only after the first tensor is written; where it names another
    pre-tokenizer than tokenizer.json, the file is written again with it (and is complete)."""
    from fwyy_ollama.export import export_gguf, vocab
    from tests.test_export import _fields

    fake_ids = [1, 2, 3]
    monkeypatch.setitem(vocab.PRE_HASHES, hashlib.sha256(str(fake_ids).encode()).hexdigest(), "qwen2")
    writing = threading.Event()
    answered_while_writing = []

    def late_transformers(folder: Path) -> tuple[list[int], str]:
        answered_while_writing.append(writing.wait(timeout=120))
        return fake_ids, "FakeTokenizer"

    def progress(done: float, total: float | None, desc: str) -> None:
        writing.set()

    monkeypatch.setattr(vocab, "_transformers_ids", late_transformers)
    result = export_gguf(
        model_dir=tiny_llama_dir, out=tmp_path / "late.gguf", quant="q4_k_m", progress=progress
    )
    assert answered_while_writing == [True]
    assert result.tokenizer_pre == "qwen2" == _fields(result.gguf)["tokenizer.ggml.pre"]
    assert any("FakeTokenizer" in n for n in result.notes)

    monkeypatch.setattr(vocab, "_transformers_ids", lambda folder: (None, ""))
    by_hand = export_gguf(
        model_dir=tiny_llama_dir, out=tmp_path / "hand.gguf", quant="q4_k_m", tokenizer_pre="qwen2"
    )
    assert _sha(result.gguf) == _sha(by_hand.gguf)
