"""The tokenizer part of a GGUF, written the way llama.cpp's own converter writes it.

BPE tokenizers (tokenizer.json with a byte-level pre-tokenizer: Llama-3, Qwen2, SmolLM2) become
`tokenizer.ggml.model = gpt2` with tokens, token types and merges; `tokenizer.ggml.pre` names the
pre-tokenizer regex llama.cpp must use. llama.cpp decides it by encoding a fixed check text,
hashing the token ids and looking the hash up in a table; fwyy does the same, and an unknown hash
is an error (a silent default would tokenize digits, CJK or whitespace differently from training).
When transformers is installed, its tokenizer (what training used) has the last word: it takes a
few seconds to load, so the export starts writing with the name tokenizer.json gives while it
loads, and writes the file again in the rare case where the two disagree (Vocab.settle).
SentencePiece tokenizers (tokenizer.model: Mistral, Llama-2) become `tokenizer.ggml.model = llama`
with scores and types from the model file.

The check text and hashes are facts from llama.cpp's convert_hf_to_gguf.py (get_vocab_base_pre).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

from fwyy_ollama.errors import FwyyError, require

# llama.cpp's check text for the BPE pre-tokenizer (convert_hf_to_gguf.py, get_vocab_base_pre).
CHECK_TEXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) "
    "✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 "
    "?我想在apple工作1314151天～ ------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? "
    "I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"
)

# sha256(str(token ids of CHECK_TEXT)) -> tokenizer.ggml.pre, as in llama.cpp's table (subset of
# the families fwyy converts and their close relatives).
PRE_HASHES: dict[str, str] = {
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",  # Meta-Llama-3-8B
    "c136ed14d01c2745d4f60a9596ae66800e2b61fa45643e72436041855ad4089d": "smaug-bpe",  # Smaug-Llama-3
    "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea": "qwen2",  # Qwen1.5/Qwen2/Qwen2.5
    "d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c": "qwen2",  # Qwen3-Embedding
    "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm",  # SmolLM / SmolLM2
    "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454": "gpt-2",  # gpt2
    "63b97e4253352e6f357cc59ea5b583e3a680eaeaf2632188c2b952de2588485e": "tekken",  # Mistral-Nemo
    "b3f499bb4255f8ca19fccd664443283318f2fd2414d5e0b040fbdd0cc195d6c5": "deepseek-r1-qwen",
    "049ecf7629871e3041641907f3de7c733e4dbfdc736f57d882ba0b0845599754": "deepseek-llm",
    "347715f544604f9118bb75ed199f68779f423cabb20db6de6f31b908d04d7821": "deepseek-coder",
    "877081d19cf6996e2c4ff0e1236341e9b7bde288f5311a56a937f0afbbb3aeb5": "deepseek-v3",
    "d353350c764d8c3b39c763113960e4fb4919bea5fbf208a0e3b22e8469dc7406": "llama4",
    "9d032fcbd5501f4a38150912590928bfb36091efb5df11b8e2124b0390e3fb1e": "falcon3",
    "35d91631860c815f952d711435f48d356ebac988362536bed955d43bfa436e34": "starcoder",
    "32d85c31273f8019248f2559fed492d929ea28b17e51d81d3bb36fff23ca72b3": "stablelm2",
    "9c2227e4dd922002fb81bde4fc02b0483ca4f12911410dee2255e4987644e3f8": "command-r",
    "ccc2ef013c104be7bae2965776d611e1d7a8a2a9c547dd93a682c9a9fc80352e": "gpt-4o",
    "b6e8e1518dc4305be2fe39c313ed643381c4da5db34a98f6a04c093f8afbe99b": "chatglm-bpe",
    "81d72c7348a9f0ebe86f23298d37debe0a5e71149e29bd283904c02262b27516": "chatglm-bpe",
    "fcace8b9cac38ce847670c970cd5892031a753a1ef381abd1d9af00f713da085": "phi-2",
    "8aeee3860c56296a157a1fe2fad249ec40aa59b1bb5709f4ade11c4e6fe652ed": "falcon",
    "b6dc8df998e1cfbdc4eac8243701a65afe638679230920b50d6f17d81c098166": "mpt",
}

# gguf token types (llama.cpp's llama_token_type)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
SPECIAL_TYPES = ("bos", "eos", "unk", "sep", "pad", "cls", "mask")


class UnknownPreTokenizerError(FwyyError):
    """The tokenizer's check-text hash is not in llama.cpp's table."""


@dataclass
class Vocab:
    """Everything the GGUF's tokenizer.* keys hold."""

    model: str  # "gpt2" (BPE) or "llama" (SentencePiece)
    pre: str
    tokens: list[str]
    types: list[int]
    scores: list[float] | None = None
    merges: list[str] | None = None
    special_ids: dict[str, int] = field(default_factory=dict)
    add_bos: bool = False
    add_eos: bool = False
    add_space_prefix: bool | None = None
    chat_template: str | list[dict[str, str]] | None = None
    notes: list[str] = field(default_factory=list)
    # `pre` from tokenizer.json alone while transformers' tokenizer is still being asked
    unsettled: _PendingPre | None = field(default=None, repr=False, compare=False)

    def settle(self) -> bool:
        """Wait for transformers' answer and fix `pre` (and the notes) by it; True when `pre` changed,
        so that a file already written with the old name must be written again."""
        if self.unsettled is None:
            return False
        pending, self.unsettled = self.unsettled, None
        hf_ids, hf_class = pending.check.result()
        pre, notes = choose_pre(pending.ids, hf_ids, hf_class, pending.pre_override)
        self.notes = [n for n in self.notes if n not in pending.notes] + notes
        changed, self.pre = pre != self.pre, pre
        return changed

    def token_id(self, text: str) -> int | None:
        try:
            return self.tokens.index(text)
        except ValueError:
            return None

    def write(self, writer: Any) -> None:
        """Add the tokenizer keys to a gguf.GGUFWriter."""
        writer.add_tokenizer_model(self.model)
        writer.add_tokenizer_pre(self.pre)
        writer.add_token_list(self.tokens)
        if self.scores is not None:
            writer.add_token_scores(self.scores)
        writer.add_token_types(self.types)
        if self.merges:
            writer.add_token_merges(self.merges)
        for kind in SPECIAL_TYPES:
            if kind in self.special_ids:
                getattr(writer, f"add_{kind}_token_id")(self.special_ids[kind])
        writer.add_add_bos_token(self.add_bos)
        if self.add_eos:
            writer.add_add_eos_token(True)
        if self.add_space_prefix is not None:
            writer.add_add_space_prefix(self.add_space_prefix)
        if self.chat_template:
            writer.add_chat_template(self.chat_template)

    def metadata_bytes(self) -> int:
        """A close upper bound of the bytes the tokenizer keys take in the file."""
        n = sum(len(t.encode("utf-8")) + 8 for t in self.tokens) + 4 * len(self.types)
        n += sum(len(m.encode("utf-8")) + 8 for m in self.merges or ()) + 4 * len(self.scores or ())
        template = (
            self.chat_template if isinstance(self.chat_template, str) else json.dumps(self.chat_template)
        )
        return n + len((template or "").encode("utf-8")) + 4096


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FwyyError(f"{path}: not valid JSON ({exc})") from exc


def _token_text(entry: Any) -> str | None:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict) and isinstance(entry.get("content"), str):
        return entry["content"]
    return None


def looks_special(text: str) -> bool:
    """Added tokens that llama.cpp treats as control tokens even when not flagged special."""
    return (
        text in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
        or (text.startswith("<|") and text.endswith("|>"))
        or (text.startswith("<｜") and text.endswith("｜>"))
        or (text.startswith("<unused") and text.endswith(">"))
    )


def pre_tokenizer_for(ids: list[int]) -> tuple[str, str]:
    """(tokenizer.ggml.pre, check hash) for the token ids of CHECK_TEXT; unknown hash -> error."""
    digest = sha256(str(ids).encode()).hexdigest()
    pre = PRE_HASHES.get(digest)
    if pre is None:
        raise UnknownPreTokenizerError(
            f"the tokenizer's BPE pre-tokenizer is not one llama.cpp knows (check hash {digest}); "
            "a GGUF with a guessed pre-tokenizer would split text differently from training",
            hint="use a base whose tokenizer llama.cpp supports (Llama-3, Qwen2, SmolLM2, ...); if you know "
            "which llama.cpp pre-tokenizer matches, name it with --tokenizer-pre NAME --verify (the check "
            "proves it), or add the hash to fwyy_ollama.export.vocab.PRE_HASHES",
        )
    return pre, digest


def chat_template_of(folder: Path, tok_config: dict[str, Any]) -> str | list[dict[str, str]] | None:
    template = tok_config.get("chat_template")
    if template is None and (folder / "chat_template.jinja").is_file():
        template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    if template is None and (folder / "chat_template.json").is_file():
        template = _json(folder / "chat_template.json").get("chat_template")
    if isinstance(template, (str, list)):
        return template
    return None


def _special_ids(
    folder: Path, tok_config: dict[str, Any], lookup: dict[str, int], n_vocab: int
) -> dict[str, int]:
    ids: dict[str, int] = {}
    for kind in SPECIAL_TYPES:
        text = _token_text(tok_config.get(f"{kind}_token"))
        if text is not None and text in lookup and lookup[text] < n_vocab:
            ids[kind] = lookup[text]
    for name in ("config.json", "generation_config.json"):
        cfg = _json(folder / name)
        for kind in SPECIAL_TYPES:
            value = cfg.get(f"{kind}_token_id")
            if isinstance(value, list) and value:
                value = value[0]
            if kind not in ids and isinstance(value, int) and 0 <= value < n_vocab:
                ids[kind] = value
    return ids


def load_vocab(folder: Path, n_vocab: int, *, pre_override: str | None = None, wait: bool = True) -> Vocab:
    """Read the tokenizer of an HF folder into a Vocab (SentencePiece first, as llama.cpp does).

    `pre_override` names tokenizer.ggml.pre by hand, for a BPE tokenizer whose check hash is not
    in llama.cpp's table; --verify then shows whether llama.cpp really tokenizes like HF. With
    wait=False, a BPE vocab may come back before transformers' tokenizer has answered (its `pre`
    is then tokenizer.json's): call `settle()` before the file counts as done.
    """
    tok_config = _json(folder / "tokenizer_config.json")
    if (folder / "tokenizer.model").is_file():
        vocab = _load_sentencepiece(folder, tok_config, n_vocab)
    elif (folder / "tokenizer.json").is_file():
        vocab = _load_bpe(folder, tok_config, n_vocab, pre_override, wait)
    else:
        raise FwyyError(f"{folder}: no tokenizer.json or tokenizer.model; the GGUF needs the tokenizer")
    vocab.chat_template = chat_template_of(folder, tok_config)
    if isinstance(tok_config.get("add_prefix_space"), bool):
        vocab.add_space_prefix = tok_config["add_prefix_space"]
    return vocab


_HF_IDS_CHILD = """
import json, sys
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1], local_files_only=True)
print(json.dumps([type(tok).__name__, list(tok.encode(sys.stdin.read()))]))
"""


class TokenizerCheck:
    """_transformers_ids(folder) in a background thread, started at once; result() waits for it.

    The thread is a daemon: an export that fails before asking leaves it (and the short-lived child
    process it waits for) to finish on its own.
    """

    def __init__(self, folder: Path) -> None:
        self._answer: tuple[list[int] | None, str] = (None, "")
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(folder,), name="fwyy-tokenizer-check", daemon=True
        )
        self._thread.start()

    def _run(self, folder: Path) -> None:
        try:
            self._answer = _transformers_ids(folder)
        except BaseException as exc:  # noqa: BLE001 - raised again in the thread that asks
            self._error = exc

    def result(self) -> tuple[list[int] | None, str]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._answer


@dataclass(frozen=True)
class _PendingPre:
    """What Vocab.settle needs to decide `pre` again once transformers has answered."""

    check: TokenizerCheck
    ids: list[int]  # CHECK_TEXT's ids from tokenizer.json
    pre_override: str | None
    notes: tuple[str, ...]  # the notes that came with the provisional `pre`


def choose_pre(
    ids: list[int], hf_ids: list[int] | None, hf_class: str, pre_override: str | None
) -> tuple[str, list[str]]:
    """tokenizer.ggml.pre and notes from CHECK_TEXT's ids (tokenizer.json's, and transformers' if known)."""
    notes = []
    if hf_ids is not None and hf_ids != ids:
        # transformers' tokenizer class for this model type overrides tokenizer.json's rules
        # (e.g. Qwen2Tokenizer always splits with Qwen2's regex): training saw hf_ids, so hash those
        ids = hf_ids
        notes.append(f"transformers tokenizes with {hf_class}, whose rules differ from tokenizer.json")
    try:
        pre_name, _digest = pre_tokenizer_for(ids)
    except UnknownPreTokenizerError as exc:
        if pre_override is None:
            if notes:
                exc.message += f" ({notes[0]})"
                exc.args = (exc.message,)
            raise
        pre_name = pre_override
        notes.append(
            f"tokenizer.ggml.pre set by hand to {pre_override!r}: the check hash is not in llama.cpp's table"
        )
    else:
        if pre_override is not None and pre_override != pre_name:
            notes.append(
                f"tokenizer.ggml.pre set by hand to {pre_override!r} (llama.cpp's table says {pre_name!r})"
            )
            pre_name = pre_override
    return pre_name, notes


def _transformers_ids(folder: Path) -> tuple[list[int] | None, str]:
    """CHECK_TEXT's ids from transformers' AutoTokenizer (what training used), if it is installed.

    transformers pulls in torch (~400 MB, seconds), so unless it is loaded already this runs in a
    short-lived child process and the export itself stays small; the answer is cached (FWYY_CACHE)
    per tokenizer files and transformers version.
    """
    import importlib.util
    import subprocess
    import sys

    if "transformers" in sys.modules:
        try:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            return list(tok.encode(CHECK_TEXT)), type(tok).__name__
        except Exception:  # noqa: BLE001 - an unloadable tokenizer falls back to tokenizer.json alone
            return None, ""
    if importlib.util.find_spec("transformers") is None:
        return None, ""
    cache = _check_cache_path(folder)
    if cache is not None and cache.is_file():
        try:
            name, ids = json.loads(cache.read_text(encoding="utf-8"))
            return [int(i) for i in ids], str(name)
        except (ValueError, OSError):
            pass
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _HF_IDS_CHILD, str(folder)],
            input=CHECK_TEXT,
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=env,
            timeout=300,
            check=False,
        )
        name, ids = json.loads(proc.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError, OSError):
        return None, ""
    if cache is not None:
        from fwyy_ollama.atomic import write_text

        try:
            write_text(cache, json.dumps([name, ids]))
        except OSError:
            pass
    return [int(i) for i in ids], str(name)


def _check_cache_path(folder: Path) -> Path | None:
    """Where the check result for this tokenizer (and transformers version) is kept between runs."""
    import hashlib
    import importlib.metadata

    h = hashlib.sha256()
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json", "special_tokens_map.json"):
        path = folder / name
        if path.is_file():
            h.update(name.encode() + b"\0" + path.read_bytes())
    try:
        h.update(importlib.metadata.version("transformers").encode())
    except importlib.metadata.PackageNotFoundError:
        return None
    root = Path(os.environ.get("FWYY_CACHE") or Path.home() / ".cache" / "fwyy")
    return root / "export" / f"tokenizer-check-{h.hexdigest()[:32]}.json"


def _load_bpe(
    folder: Path, tok_config: dict[str, Any], n_vocab: int, pre_override: str | None, wait: bool
) -> Vocab:
    tokenizers = require("tokenizers", "train", "Reading a tokenizer.json")
    path = folder / "tokenizer.json"
    raw = _json(path)
    model = raw.get("model") or {}
    pre = json.dumps(raw.get("pre_tokenizer") or {})
    if model.get("type") != "BPE" or "ByteLevel" not in pre:
        kind = "Metaspace (SentencePiece-style)" if "Metaspace" in pre else str(model.get("type"))
        raise FwyyError(
            f"{path}: a {kind} tokenizer without tokenizer.model; fwyy converts byte-level BPE "
            "tokenizer.json files and SentencePiece tokenizer.model files",
            hint="keep tokenizer.model next to the weights (save the tokenizer with its slow files)",
        )
    tok = tokenizers.Tokenizer.from_file(str(path))
    ids = tok.encode(CHECK_TEXT).ids  # with special tokens, as llama.cpp's AutoTokenizer.encode()
    check = TokenizerCheck(folder)  # transformers' view, loading while the vocab is read
    pending = None
    if not wait:
        try:
            # provisional: tokenizer.json alone (transformers agrees with it but for rare model types)
            pre_name, vocab_notes = choose_pre(ids, None, "", pre_override)
            pending = _PendingPre(check, ids, pre_override, tuple(vocab_notes))
        except UnknownPreTokenizerError:
            pass  # tokenizer.json alone names no pre-tokenizer: transformers' answer must decide now
    if pending is None:
        pre_name, vocab_notes = choose_pre(ids, *check.result(), pre_override)

    lookup = tok.get_vocab(with_added_tokens=True)
    if lookup and max(lookup.values()) >= n_vocab:
        raise FwyyError(
            f"{path}: token id {max(lookup.values())} is outside the model's vocab_size {n_vocab} (config.json)"
        )
    added: dict[int, dict[str, Any]] = {int(a["id"]): dict(a) for a in raw.get("added_tokens") or []}
    for key, entry in (tok_config.get("added_tokens_decoder") or {}).items():
        merged = added.setdefault(int(key), {})
        merged.update({k: v for k, v in entry.items() if k in ("content", "special", "normalized")})
    reverse = {i: t for t, i in lookup.items()}
    tokens: list[str] = []
    types: list[int] = []
    for i in range(n_vocab):
        text = reverse.get(i)
        if text is None:
            tokens.append(f"[PAD{i}]")
            types.append(UNUSED)
            continue
        if i in added:
            info = added[i]
            if not info.get("normalized", True):
                text = tok.decode(tok.encode(text, add_special_tokens=False).ids, skip_special_tokens=False)
            if info.get("special") or looks_special(text):
                types.append(CONTROL)
            else:
                text = text.replace("\u2581", " ")
                types.append(USER_DEFINED)
        else:
            types.append(NORMAL)
        tokens.append(text)

    merges_raw = model.get("merges") or []
    merges: list[str] = []
    for m in merges_raw:
        if isinstance(m, str):
            merges.append(m)
        else:  # [left, right] pairs (tokenizers >= 0.20); spaces inside parts become U+0120 like llama.cpp
            merges.append(" ".join("".join(chr(ord(c) + 256) if c == " " else c for c in part) for part in m))

    vocab = Vocab("gpt2", pre_name, tokens, types, merges=merges, notes=vocab_notes, unsettled=pending)
    vocab.special_ids = _special_ids(folder, tok_config, lookup, n_vocab)
    probe = "fwyy probe"
    with_special = tok.encode(probe).ids
    without = tok.encode(probe, add_special_tokens=False).ids
    bos, eos = vocab.special_ids.get("bos"), vocab.special_ids.get("eos")
    vocab.add_bos = bos is not None and len(with_special) > len(without) and with_special[0] == bos
    vocab.add_eos = eos is not None and len(with_special) > len(without) and with_special[-1] == eos
    if isinstance(tok_config.get("add_bos_token"), bool):
        vocab.add_bos = tok_config["add_bos_token"]
    if isinstance(tok_config.get("add_eos_token"), bool):
        vocab.add_eos = tok_config["add_eos_token"]
    return vocab


def _load_sentencepiece(folder: Path, tok_config: dict[str, Any], n_vocab: int) -> Vocab:
    spm = require("sentencepiece", "train", "Reading a SentencePiece tokenizer.model")
    proc = spm.SentencePieceProcessor()
    proc.LoadFromFile(str(folder / "tokenizer.model"))
    size = n_vocab or proc.vocab_size()
    tokens = [f"[PAD{i}]" for i in range(size)]
    scores = [-10000.0] * size
    types = [UNUSED] * size
    for i in range(min(proc.vocab_size(), size)):
        tokens[i] = proc.IdToPiece(i)
        scores[i] = proc.GetScore(i)
        if proc.IsUnknown(i):
            types[i] = UNKNOWN
        elif proc.IsControl(i):
            types[i] = CONTROL
        elif proc.IsUnused(i):
            types[i] = UNUSED
        elif proc.IsByte(i):
            types[i] = BYTE
        else:
            types[i] = NORMAL
    for text, i in _json(folder / "added_tokens.json").items():
        if int(i) < size:
            tokens[int(i)], scores[int(i)], types[int(i)] = text, -1000.0, USER_DEFINED
    for key, entry in (tok_config.get("added_tokens_decoder") or {}).items():
        i = int(key)
        if i >= size:
            continue
        text = entry["content"]
        if entry.get("special") or looks_special(text):
            types[i] = CONTROL
        else:
            text = text.replace("\u2581", " ")
            types[i] = USER_DEFINED
        scores[i] = -1000.0
        tokens[i] = text
    vocab = Vocab("llama", "default", tokens, types, scores=scores)
    lookup = {t: i for i, t in enumerate(tokens)}
    vocab.special_ids = _special_ids(folder, tok_config, lookup, size)
    for kind, getter in (("bos", proc.bos_id), ("eos", proc.eos_id), ("unk", proc.unk_id)):
        if kind not in vocab.special_ids and getter() >= 0:
            vocab.special_ids[kind] = getter()
    vocab.add_bos = bool(tok_config.get("add_bos_token", True))
    vocab.add_eos = bool(tok_config.get("add_eos_token", False))
    return vocab


# ------------------------------------------------------------------------ the EOS check


def turn_end_text(template: str, bos: str = "", eos: str = "") -> str:
    """The text a chat template puts right after an assistant message (where generation must stop)."""
    jinja2 = require("jinja2", "core", "Reading the chat template")
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: "01 Jan 2026"
    env.filters["tojson"] = lambda value, indent=None, **_: json.dumps(
        value, ensure_ascii=False, indent=indent
    )
    marker = "FWYYMARKER7Q"
    messages = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u"},
        {"role": "assistant", "content": marker},
        {"role": "user", "content": "u2"},
    ]
    try:
        text = env.from_string(template).render(
            messages=messages, add_generation_prompt=False, bos_token=bos, eos_token=eos, tools=None
        )
    except jinja2.exceptions.TemplateError:
        # some templates refuse a system message; try without it
        text = env.from_string(template).render(
            messages=messages[1:], add_generation_prompt=False, bos_token=bos, eos_token=eos, tools=None
        )
    if marker not in text:
        raise FwyyError("the chat template does not render assistant messages; cannot find its turn end")
    return text.split(marker, 1)[1]


def check_eos(vocab: Vocab) -> str | None:
    """Make EOS the token that ends an assistant turn in the chat template; return a note if changed.

    A GGUF whose EOS is not the turn-end token generates past the answer forever in Ollama.
    """
    template = vocab.chat_template
    if isinstance(template, list):
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    if not template:
        vocab.notes.append("no chat template: EOS left as the tokenizer sets it")
        return None
    bos = vocab.tokens[vocab.special_ids["bos"]] if "bos" in vocab.special_ids else ""
    eos_id = vocab.special_ids.get("eos")
    eos = vocab.tokens[eos_id] if eos_id is not None else ""
    # a template that writes `eos_token` after answers (Mistral's) ends turns with EOS by definition
    sentinel = "\x00FWYY_EOS\x00"
    after = turn_end_text(template, bos, sentinel)
    if after.startswith(sentinel):
        if eos_id is None:
            raise FwyyError(
                "the chat template ends assistant turns with eos_token, but the tokenizer has no EOS"
            )
        return None
    # the turn end is the longest control token at the start of the text after the message
    best: tuple[int, int] | None = None
    for i, (text, kind) in enumerate(zip(vocab.tokens, vocab.types, strict=True)):
        if kind == CONTROL and text and after.startswith(text) and (best is None or len(text) > best[0]):
            best = (len(text), i)
    if best is None:
        raise FwyyError(
            f"the chat template ends an assistant turn with {after[:20]!r}, which starts with no special "
            "token; a model exported like this would never stop generating",
            hint="use a chat template whose assistant turns end with a special token (e.g. <|im_end|>)",
        )
    turn_end = best[1]
    if eos_id == turn_end:
        return None
    old = f"{eos!r} ({eos_id})" if eos_id is not None else "unset"
    vocab.special_ids["eos"] = turn_end
    note = f"EOS set to {vocab.tokens[turn_end]!r} ({turn_end}), the chat template's turn end; was {old}"
    vocab.notes.append(note)
    return note
