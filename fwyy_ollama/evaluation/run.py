"""Running the eval: every model (and detector) on every item, answers cached, figures computed.

Each item is asked greedily (temperature 0, seed 0). Real-world items go through
`fwyy_ollama.analysis.prepare_analysis`, exactly as `fwyy analyze` asks (its instruction, its
truncation to the context, the model's language); Alpaca items are asked as training showed them.
Constrained decoding is on by default, as in `fwyy analyze`: the llama.cpp backend samples under
the report's GBNF grammar, Ollama gets the report's JSON schema as `format`. `both=True` runs each
model both ways, so the table shows what the constraint buys.

Answers are cached per model identity + data hash + settings + constrain flag under
FWYY_CACHE/eval (default ~/.cache/fwyy/eval), one entry per item (keyed by what was asked, the
language included), so a rerun or a larger --limit only asks for what it has not seen.
Detectors run in milliseconds and are not cached.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fwyy_ollama import __version__
from fwyy_ollama.atomic import write_text
from fwyy_ollama.errors import FwyyError
from fwyy_ollama.evaluation.backends import DEFAULT_MAX_TOKENS, open_model
from fwyy_ollama.evaluation.data import Item, default_data, load_items
from fwyy_ollama.evaluation.detectors import DETECTORS, covers, run_detector
from fwyy_ollama.evaluation.scoring import Metrics, Prediction, compute_metrics, score_answer
from fwyy_ollama.evaluation.specs import (
    SPEC_HELP,
    ModelSpec,
    model_identity,
    parse_model,
    prompt_language,
    resolve,
)
from fwyy_ollama.hashing import sha256_file, sha256_json

if TYPE_CHECKING:  # pragma: no cover
    from fwyy_ollama.findings import Finding

Progress = Callable[[float, "float | None", str], None]

EVAL_FORMAT_VERSION = 2
"""Bumped when how answers are asked for or stored changes (invalidates the cache)."""
OLLAMA_CONSTRAINED_MAX_TOKENS = 1024
"""Ollama's JSON schema bounds no string's length: a cap, high enough for any real report."""


def cache_dir() -> Path:
    root = os.environ.get("FWYY_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "fwyy") / "eval"


@dataclass
class ModelResult:
    """One row of the table: a model asked one way (constrained or free), or a detector."""

    name: str
    spec: ModelSpec
    backend: str
    constrain: bool | None
    """True/False: asked with/without constrained decoding; None: not applicable (detector, HF)."""
    lang: str | None
    """The language real-world items were asked in (None for a detector)."""
    categories: tuple[str, ...] | None
    """The categories a detector judges (None: a model, which judges all)."""
    metrics: Metrics
    predictions: list[Prediction]
    cached: int
    """How many answers came from the cache."""
    cache_file: Path | None

    @property
    def is_detector(self) -> bool:
        return self.spec.is_detector

    def to_json(self, *, answers: bool = False) -> dict[str, Any]:
        out = {
            "model": self.name,
            "spec": self.spec.text,
            "backend": self.backend,
            "constrain": self.constrain,
            "lang": self.lang,
            "categories": list(self.categories) if self.categories is not None else None,
            # Ollama's client gives text only: its tokens are estimated (about 3 characters a token).
            "tokens_exact": self.backend not in ("ollama", "detector"),
            "cached": self.cached,
            "cache_file": str(self.cache_file) if self.cache_file else None,
            **self.metrics.to_json(),
        }
        if answers:
            out["predictions"] = [asdict(p) for p in self.predictions]
        return out


@dataclass
class EvalResult:
    data: Path
    data_sha256: str
    format: str
    """alpaca or realworld."""
    n: int
    settings: dict[str, Any]
    models: list[ModelResult]
    categories: list[str]
    """The categories of the items asked, sorted (a table shows each, "—" where a row has none)."""

    def to_json(self, *, answers: bool = False) -> dict[str, Any]:
        return {
            "data": str(self.data),
            "data_sha256": self.data_sha256,
            "format": self.format,
            "n": self.n,
            "categories": self.categories,
            "settings": self.settings,
            "models": [m.to_json(answers=answers) for m in self.models],
        }


def _load_cache(path: Path) -> dict[str, dict[str, Any]]:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("answers", {})
    except (OSError, ValueError, AttributeError):
        return {}


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


def _constrain_modes(spec: ModelSpec, constrain: bool, both: bool) -> list[bool | None]:
    """How to ask this model: llama.cpp and Ollama can be constrained; transformers cannot."""
    if spec.kind == "hf":
        return [None]
    return [True, False] if both else [constrain]


def _options(spec: ModelSpec, constrain: bool | None, max_tokens: int | None) -> dict[str, Any]:
    """Greedy sampling; the answer's length cap. Under a grammar none is needed unless asked for
    (the grammar bounds every part, and a cut answer would not parse)."""
    options: dict[str, Any] = {"temperature": 0, "seed": 0}
    if max_tokens is not None:
        options["num_predict"] = max_tokens
    elif not constrain:
        options["num_predict"] = DEFAULT_MAX_TOKENS
    elif spec.kind == "ollama":
        options["num_predict"] = OLLAMA_CONSTRAINED_MAX_TOKENS
    return options


def evaluate(
    models: Sequence[str | ModelSpec],
    *,
    data: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    max_tokens: int | None = None,
    n_ctx: int | None = None,
    use_cache: bool = True,
    constrain: bool = True,
    both: bool = False,
    lang: str | None = None,
    progress: Progress | None = None,
    findings: bool = True,
    veto: bool = True,
) -> EvalResult:
    """Evaluate each model / detector on the eval file (greedy), reusing cached answers.

    max_tokens: cap on each answer (default: 384 free; none under a llama.cpp grammar; 1024 under
    Ollama's schema). constrain: ask with constrained decoding; both: ask each model both ways.
    lang: ask real-world items in this language instead of each model's own. findings: give
    each prompt fwyy's static-check line, as `fwyy analyze` does (fwyy_ollama.findings); with
    `veto` too, a VETO_RULES finding overrules a "safe" answer, as in `fwyy analyze` (applied
    to the cached answers, so switching it asks nothing again).
    """
    if not models:
        raise FwyyError("name at least one --model", hint=SPEC_HELP)
    if limit is not None and limit <= 0:
        raise FwyyError(f"--limit must be positive, got {limit}")
    if max_tokens is not None and max_tokens <= 0:
        raise FwyyError(f"--max-tokens must be positive, got {max_tokens}")
    if lang is not None and lang not in ("zh", "en"):
        raise FwyyError(f"--lang {lang!r}: choose zh or en")
    path = Path(data) if data is not None else default_data()
    fmt, items = load_items(path, limit=limit, findings=findings)
    data_hash = sha256_file(path)
    specs = [resolve(m if isinstance(m, ModelSpec) else parse_model(m)) for m in models]
    plan: list[tuple[ModelSpec, bool | None]] = []
    for spec in specs:
        modes: list[bool | None] = [None] if spec.is_detector else _constrain_modes(spec, constrain, both)
        plan += [(spec, mode) for mode in modes]
    runner = _Runner(
        path, data_hash, items, n_ctx=n_ctx, use_cache=use_cache, progress=progress, findings=findings,
        veto=findings and veto,
    )
    runner.total = sum(
        len([it for it in items if covers(s.target, it.category)]) if s.is_detector else len(items)
        for s, _ in plan
    )
    named_twice = both and any(mode is not None for _, mode in plan)
    results = []
    for spec, mode in plan:
        if spec.is_detector:
            results.append(runner.detector(spec))
        else:
            suffix = "" if not named_twice or mode is None else (" constrained" if mode else " free")
            results.append(
                runner.model(spec, mode, _options(spec, mode, max_tokens), lang, spec.display + suffix)
            )
    settings = {
        "max_tokens": max_tokens,
        "temperature": 0,
        "limit": limit,
        "constrain": constrain,
        "both": both,
        "lang": lang,
        "findings": findings,
        "veto": findings and veto,
        "format_version": EVAL_FORMAT_VERSION,
    }
    categories = sorted({it.category for it in items})
    return EvalResult(path, data_hash, fmt, len(items), settings, results, categories)


class _Runner:
    """Asks one model or detector after another, keeping the shared progress count."""

    def __init__(
        self,
        path: Path,
        data_hash: str,
        items: list[Item],
        *,
        n_ctx: int | None,
        use_cache: bool,
        progress: Progress | None,
        findings: bool = True,
        veto: bool = True,
    ) -> None:
        self.path, self.data_hash, self.items = path, data_hash, items
        self.findings, self.veto = findings, veto
        self.n_ctx, self.use_cache, self.progress = n_ctx, use_cache, progress
        self.done = 0
        self.total = 0

    @cached_property
    def vetoes(self) -> list[Finding | None]:
        """Each item's VETO_RULES finding when the veto is on (else None): found once, for every model."""
        from fwyy_ollama.findings import veto_finding

        return [veto_finding(_asked_text(it)) if self.veto else None for it in self.items]

    def _tick(self, description: str) -> None:
        if self.progress:
            self.progress(self.done, self.total, description)

    def detector(self, spec: ModelSpec) -> ModelResult:
        name = spec.target
        mine = [it for it in self.items if covers(name, it.category)]
        self._tick(f"{spec.display}: {len(mine)} items")
        verdicts = run_detector(name, [(it.text, it.category) for it in mine])
        preds = [
            Prediction(
                key=it.key("en"),
                category=it.category,
                risky=it.risky,
                gold=it.gold,
                predicted=None,
                predicted_risky=v.risky,
                parsed=None,
                latency_s=v.latency_s,
                tokens=None,
                answer=v.detail,
                error=v.error,
            )
            for it, v in zip(mine, verdicts, strict=True)
        ]
        self.done += len(mine)
        self._tick(f"{spec.display}: done")
        metrics = compute_metrics(preds, judge_only=True)
        return ModelResult(
            spec.display, spec, "detector", None, None, DETECTORS[name].categories, metrics, preds, 0, None
        )

    def model(
        self, spec: ModelSpec, constrain: bool | None, options: dict[str, Any], lang: str | None, name: str
    ) -> ModelResult:
        asked_lang = lang or prompt_language(spec)
        key = sha256_json(
            {
                "model": model_identity(spec),
                "data": self.data_hash,
                "settings": options,
                "constrain": constrain,
                "findings": self.findings,
                "v": EVAL_FORMAT_VERSION,
            }
        )
        cache_file = cache_dir() / f"{key[:24]}.json"
        cache = _load_cache(cache_file) if self.use_cache else {}
        keys = [it.key(asked_lang, self.findings) for it in self.items]
        todo = [(k, it) for k, it in zip(keys, self.items, strict=True) if k not in cache]
        cached = len(self.items) - len(todo)
        self.done += cached
        backend_name = spec.kind
        if todo:
            self._tick(f"{name}: loading")
            backend = open_model(spec, n_ctx=self.n_ctx)
            backend_name = backend.name
            try:
                for k, it in todo:
                    self._tick(f"{name}: {it.category}")
                    cache[k] = _ask(
                        backend, it, asked_lang, options, bool(constrain), f"{self.path}:{it.line}", self.findings
                    )
                    self.done += 1
                    if self.use_cache:
                        _save_cache(cache_file, spec, self.path, self.data_hash, cache)
            finally:
                backend.close()
        elif spec.kind == "gguf":
            backend_name = "local"
        preds = [_prediction(k, it, cache[k], v) for k, it, v in zip(keys, self.items, self.vetoes, strict=True)]
        self._tick(f"{name}: done")
        return ModelResult(
            name,
            spec,
            backend_name,
            constrain,
            asked_lang,
            None,
            compute_metrics(preds),
            preds,
            cached,
            cache_file if self.use_cache else None,
        )


def _ask(
    backend: Any,
    item: Item,
    lang: str,
    options: Mapping[str, Any],
    constrain: bool,
    name: str,
    findings: bool = True,
) -> dict[str, Any]:
    """One answer: the request built as `fwyy analyze` builds it (constraints included)."""
    from fwyy_ollama.analysis import prepare_analysis

    asked = item.lang or lang
    start = time.perf_counter()
    answer, error, notice = "", None, None
    try:
        # Alpaca items keep the messages they were trained with; the request still gives the
        # constraint (grammar / format) for their language.
        text = _asked_text(item)
        request = prepare_analysis(
            backend, text, lang=asked, name=name, constrain=constrain, findings=findings
        )
        notice = request.notice if item.messages is None else None
        messages = (
            request.messages
            if item.messages is None
            else [{"role": r, "content": c} for r, c in item.messages]
        )
        start = time.perf_counter()
        answer = "".join(backend.chat(messages, stream=True, options=options, **request.chat_kwargs()))
    except FwyyError as exc:  # e.g. the prompt is longer than the context: a failed answer
        error = exc.message
    latency = time.perf_counter() - start
    return {
        "answer": answer,
        "latency_s": latency,
        "tokens": backend.count_tokens(answer) if answer else 0,
        "error": error,
        "lang": asked,
        "notice": notice,
    }


def _asked_text(item: Item) -> str:
    """The text analyzed: the input, or for an Alpaca record without one its last user turn."""
    return item.text if item.text.strip() else item.messages[-1][1] if item.messages else item.text


def _prediction(key: str, item: Item, entry: Mapping[str, Any], veto: Finding | None = None) -> Prediction:
    """The answer scored; `veto`, the item's VETO_RULES finding, overrules a "safe" label as
    `fwyy analyze` does (on the whole item: eval items fit the context, so nothing is cut)."""
    from fwyy_ollama.findings import vetoed
    from fwyy_ollama.report import Label

    label, parsed, reason = score_answer(entry["answer"])
    raised_by = None
    if veto is not None and label is not None:
        new, by = vetoed(Label(label), veto)
        label, raised_by = new.value, by.rule if by is not None else None
    return Prediction(
        key=key,
        category=item.category,
        risky=item.risky,
        gold=item.gold,
        predicted=label,
        predicted_risky=None if label is None else label != "safe",
        parsed=parsed,
        latency_s=float(entry["latency_s"]),
        tokens=int(entry["tokens"]),
        answer=entry["answer"],
        error=entry.get("error") or (None if parsed else reason),
        raised_by=raised_by,
    )
