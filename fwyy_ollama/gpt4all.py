"""Install a GGUF into GPT4All with the settings its desktop app and Python bindings need.

GPT4All's desktop app (v3) finds models by scanning its model folder for `*.gguf`; a side-loaded
file's id is its file name, and the app keeps per-model overrides in its QSettings INI file under
the group `model-<file name>`. The app's system message is empty unless set there, and since v3.5
the keys are `chatTemplate` (Jinja, rendered with `messages` and `add_generation_prompt`) and
`systemMessage`; the legacy keys `promptTemplate` / `systemPrompt` win over them when present, so
we remove those. The file is written byte-compatibly with Qt's INI writer (key and value escaping,
quoting), and every other group of an existing file is kept byte for byte.

The Python bindings (gpt4all 2.8) do not read that file: `chat_session(system_prompt,
prompt_template)` ingests the system prompt verbatim (control tokens included) and formats each
user turn with `prompt_template.format(message)`. We derive both from the same chat template, so
all three ways (app, bindings, Ollama) see the same prompt.

Compatibility: gpt4all 2.8.2 bundles a llama.cpp from mid-2024 that refuses newer
`tokenizer.ggml.pre` values (SmolLM2's `smollm`). Where a newer value splits text exactly like an
older one, the GGUF is copied with the older name (metadata only; tensors byte-identical).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fwyy_ollama.atomic import atomic_path, write_bytes
from fwyy_ollama.errors import FwyyError, require

Progress = Callable[[float, "float | None", str], None]

QUANTS = ("q4_0", "q4_1", "f16", "q4_k_m")
GPU_QUANTS = ("q4_0", "q4_1", "f16")
"""GPT4All's GPU (Vulkan/Kompute) path runs these; other quantizations fall back to the CPU."""
DEFAULT_PROFILE_QUANT = "q4_0"

# general.file_type (llama_ftype) -> quantization name, for the types a user is likely to hand us.
FILE_TYPES = {
    0: "f32",
    1: "f16",
    2: "q4_0",
    3: "q4_1",
    7: "q8_0",
    8: "q5_0",
    9: "q5_1",
    10: "q2_k",
    11: "q3_k_s",
    12: "q3_k_m",
    13: "q3_k_l",
    14: "q4_k_s",
    15: "q4_k_m",
    16: "q5_k_s",
    17: "q5_k_m",
    18: "q6_k",
    32: "bf16",
}
_FTYPE_OF = {"q4_0": 2, "q4_1": 3, "f16": 1, "q4_k_m": 15}

# tokenizer.ggml.pre values that the llama.cpp inside gpt4all 2.8.2 accepts (read from the
# `llm_load_vocab` branch of that build: its strings and its refusal of anything else).
GPT4ALL_KNOWN_PRE = frozenset(
    {
        "default",
        "llama3",
        "llama-v3",
        "llama-bpe",
        "deepseek-llm",
        "deepseek-coder",
        "falcon",
        "mpt",
        "starcoder",
        "gpt-2",
        "phi-2",
        "jina-es",
        "jina-de",
        "jina-v2-es",
        "jina-v2-de",
        "jina-v2-code",
        "refact",
        "command-r",
        "qwen2",
        "stablelm2",
        "olmo",
        "dbrx",
        "smaug-bpe",
        "poro-chat",
        "chatglm-bpe",
        "viking",
        "jais",
    }
)
# Newer values whose pre-tokenizer is the same split as an older one. In llama.cpp these all use
# the STARCODER regexes (digits one by one, then the GPT-2 split); the only difference is that
# newer llama.cpp turns off "clean spaces" in llama_detokenize, which GPT4All (it streams
# token_to_piece) never calls.
PRE_EQUIVALENTS = {
    "smollm": "starcoder",
    "codeshell": "starcoder",
    "exaone": "starcoder",
    "minerva-7b": "starcoder",
}

# Profile [parameters] (Ollama names) -> GPT4All model settings keys.
_PARAMETER_KEYS = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "min_p": "minP",
    "repeat_penalty": "repeatPenalty",
    "repeat_last_n": "repeatPenaltyTokens",
    "num_ctx": "contextLength",
    "num_predict": "maxLength",
}
LEGACY_KEYS = ("promptTemplate", "systemPrompt")


# ---------------------------------------------------------------------------------------- where things go


def _home() -> Path:
    return Path(os.path.expanduser("~"))


def default_settings_file(platform: str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """GPT4All.ini as Qt places an IniFormat file for organization nomic.ai, application GPT4All.

    Windows: %APPDATA%; elsewhere (macOS included, Qt's INI path ignores ~/Library there):
    $XDG_CONFIG_HOME or ~/.config.
    """
    platform = platform or sys.platform
    env = os.environ if env is None else env
    if platform.startswith("win"):
        base = Path(env.get("APPDATA") or _home() / "AppData" / "Roaming")
    else:
        xdg = env.get("XDG_CONFIG_HOME", "")
        base = Path(xdg) if xdg.startswith("/") else _home() / ".config"
    return base / "nomic.ai" / "GPT4All.ini"


def default_models_dir(platform: str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """GPT4All v3's default download folder (QStandardPaths::AppLocalDataLocation)."""
    platform = platform or sys.platform
    env = os.environ if env is None else env
    if platform.startswith("win"):
        base = Path(env.get("LOCALAPPDATA") or _home() / "AppData" / "Local")
    elif platform == "darwin":
        base = _home() / "Library" / "Application Support"
    else:
        xdg = env.get("XDG_DATA_HOME", "")
        base = Path(xdg) if xdg.startswith("/") else _home() / ".local" / "share"
    return base / "nomic.ai" / "GPT4All"


def configured_models_dir(settings_file: Path) -> Path | None:
    """The download path the user chose in the app ([General] modelPath), if any."""
    if not settings_file.is_file():
        return None
    value = QtIni(settings_file.read_bytes()).get("", "modelPath")
    return Path(value) if isinstance(value, str) and value.strip() else None


# ---------------------------------------------------------------------------------------- Qt INI format


def qt_escape_key(key: str) -> str:
    """A key or group name as QSettingsPrivate::iniEscapedKey writes it ('/' becomes '\\')."""
    out = []
    for ch in key:
        c = ord(ch)
        if ch == "/":
            out.append("\\")
        elif ch.isascii() and (ch.isalnum() or ch in "_-."):
            out.append(ch)
        elif c <= 0xFF:
            out.append(f"%{c:02X}")
        elif c <= 0xFFFF:
            out.append(f"%U{c:04X}")
        else:  # Qt works on UTF-16 code units: a surrogate pair is two %U escapes
            v = c - 0x10000
            out.append(f"%U{0xD800 + (v >> 10):04X}%U{0xDC00 + (v & 0x3FF):04X}")
    return "".join(out)


def qt_unescape_key(raw: str) -> str:
    """The inverse of qt_escape_key (QSettingsPrivate::iniUnescapedKey)."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            out.append("/")
            i += 1
            continue
        if ch != "%" or i == len(raw) - 1:
            out.append(ch)
            i += 1
            continue
        digits, first = 2, i + 1
        if raw[i + 1] == "U":
            digits, first = 4, i + 2
        chunk = raw[first : first + digits]
        if len(chunk) == digits and all(c in "0123456789abcdefABCDEF" for c in chunk):
            out.append(chr(int(chunk, 16)))
            i = first + digits
        else:
            out.append("%")
            i += 1
    return "".join(out).encode("utf-16", "surrogatepass").decode("utf-16")


def qt_variant_string(value: str | bool | int | float) -> str:
    """QSettingsPrivate::variantToString for the types we write (strings starting '@' get '@@')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text  # QString::number(2.0) is "2"
    if "\0" in value:
        raise ValueError("GPT4All settings cannot hold NUL characters")
    return "@" + value if value.startswith("@") else value


def qt_escape_value(text: str) -> bytes:
    """A string value as QSettingsPrivate::iniEscapedString writes it (UTF-8, Qt 6)."""
    named = {"\a": b"\\a", "\b": b"\\b", "\f": b"\\f", "\n": b"\\n", "\r": b"\\r", "\t": b"\\t", "\v": b"\\v"}
    out = bytearray()
    needs_quotes = False
    escape_next_if_digit = False
    for ch in text:
        c = ord(ch)
        if ch in ";,=":
            needs_quotes = True
        if escape_next_if_digit and ch in "0123456789abcdefABCDEF":
            out += b"\\x" + format(c, "x").encode()
            continue
        escape_next_if_digit = False
        if ch == "\0":
            out += b"\\0"
            escape_next_if_digit = True
        elif ch in named:
            out += named[ch]
        elif ch in '"\\':
            out += b"\\" + ch.encode()
        elif c <= 0x1F:
            out += b"\\x" + format(c, "x").encode()
            escape_next_if_digit = True
        else:
            out += ch.encode("utf-8", "surrogatepass")
    if needs_quotes or (out[:1] == b" " or out[-1:] == b" "):
        out = bytearray(b'"') + out + b'"'
    return bytes(out)


_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    '"': '"',
    "?": "?",
    "'": "'",
    "\\": "\\",
}


def qt_unescape_value(raw: bytes) -> str | list[str]:
    """A value as QSettingsPrivate::iniUnescapedStringList reads it (a list when unquoted commas)."""
    text = raw.decode("utf-8", "replace")
    items: list[str] = []
    cur: list[str] = []
    is_list = in_quotes = quoted = False
    i, n = 0, len(text)
    chop_limit = 0

    def chop() -> None:
        while len(cur) > chop_limit and cur[-1] in " \t":
            cur.pop()

    while i < n and text[i] in " \t":
        i += 1
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 1
            if i >= n:
                break
            e = text[i]
            i += 1
            if e in _ESCAPES:
                cur.append(_ESCAPES[e])
            elif e == "x":
                j = i
                while j < n and text[j] in "0123456789abcdefABCDEF":
                    j += 1
                if j > i:
                    cur.append(chr(int(text[i:j], 16) & 0xFFFF))
                i = j
            elif e in "01234567":
                j = i
                while j < n and text[j] in "01234567":
                    j += 1
                cur.append(chr(int(text[i - 1 : j], 8) & 0xFFFF))
                i = j
            chop_limit = len(cur)
        elif ch == '"':
            i += 1
            quoted = True
            in_quotes = not in_quotes
            if not in_quotes:
                while i < n and text[i] in " \t":
                    i += 1
        elif ch == "," and not in_quotes:
            if not quoted:
                chop()
            is_list = True
            items.append("".join(cur))
            cur, quoted, chop_limit = [], False, 0
            i += 1
            while i < n and text[i] in " \t":
                i += 1
        else:
            cur.append(ch)
            i += 1
    if not quoted:
        chop()
    if is_list:
        items.append("".join(cur))
        return [s[1:] if s.startswith("@@") else s for s in items]
    value = "".join(cur)
    return value[1:] if value.startswith("@@") else value


@dataclass
class _Line:
    start: int
    end: int
    equals: int  # offset of '=' or -1


def _ini_lines(data: bytes) -> list[_Line]:
    """Logical lines as QConfFileSettingsPrivate::readIniLine cuts them (quotes and '\\' join lines)."""
    lines: list[_Line] = []
    pos, n = 0, len(data)
    while True:
        start = pos
        while start < n and data[start] in b" \t\r\n":
            start += 1
        i, in_quotes, equals = start, False, -1
        while i < n:
            ch = data[i]
            i += 1
            if ch == 0x3D:  # =
                if not in_quotes and equals == -1:
                    equals = i - 1
            elif ch in (0x0A, 0x0D):
                if i == start + 1:
                    start += 1
                elif not in_quotes:
                    i -= 1
                    break
            elif ch == 0x5C:  # backslash
                if i < n:
                    c2 = data[i]
                    i += 1
                    if i < n and ((c2 == 0x0A and data[i] == 0x0D) or (c2 == 0x0D and data[i] == 0x0A)):
                        i += 1
            elif ch == 0x22:  # "
                in_quotes = not in_quotes
            elif ch == 0x3B:  # ;
                if i == start + 1:
                    while i < n and data[i] not in (0x0A, 0x0D):
                        i += 1
                    while i < n and data[i] in b" \t\r\n":
                        i += 1
                    start = i
                elif not in_quotes:
                    i -= 1
                    break
        pos = i
        if i - start <= 0:
            return lines
        lines.append(_Line(start, i, equals))


@dataclass
class _Section:
    name: str  # "" for [General]
    start: int  # offset of the header line ('[') or 0 for keys before any header
    end: int
    keys: list[tuple[str, _Line]] = field(default_factory=list)
    header: bool = True
    """False for the keys before the first [section] (Qt files them under General)."""

    @property
    def present(self) -> bool:
        return self.header or bool(self.keys)


def _section_name(header: bytes) -> str:
    close = header.find(b"]")
    inner = (header[1:close] if close > 0 else header[1:]).strip()
    if inner.lower() == b"general":
        return ""
    if inner.lower() == b"%general":
        return inner[1:].decode("latin-1")
    return qt_unescape_key(inner.decode("utf-8", "replace"))


class QtIni:
    """An INI file as Qt's QSettings reads and writes it, edited group by group.

    Only the edited group is re-serialized; every other byte of the file stays as it was, so the
    user's other models, window geometry and app settings are untouched.
    """

    def __init__(self, data: bytes = b"") -> None:
        self.data = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
        self.eol = b"\r\n" if b"\r\n" in self.data else (b"\n" if self.data else os.linesep.encode())
        self.sections = self._parse()

    def _parse(self) -> list[_Section]:
        sections = [_Section("", 0, 0, header=False)]
        for line in _ini_lines(self.data):
            text = self.data[line.start : line.end]
            if text.startswith(b"["):
                sections[-1].end = line.start
                sections.append(_Section(_section_name(text), line.start, line.start))
            elif line.equals != -1:
                key = self.data[line.start : line.equals].strip().decode("utf-8", "replace")
                sections[-1].keys.append((qt_unescape_key(key), line))
        sections[-1].end = len(self.data)
        return sections

    def groups(self) -> list[str]:
        seen: list[str] = []
        for s in self.sections:
            if s.present and s.name not in seen:
                seen.append(s.name)
        return seen

    def group_bytes(self, name: str) -> list[bytes]:
        """The raw bytes of each section called `name` (header included), as in the file."""
        return [self.data[s.start : s.end] for s in self.sections if s.name == name and s.present]

    def items(self, group: str) -> dict[str, str | list[str]]:
        out: dict[str, str | list[str]] = {}
        for s in self.sections:
            if s.name != group:
                continue
            for key, line in s.keys:
                out[key] = qt_unescape_value(self.data[line.equals + 1 : line.end])
        return out

    def get(self, group: str, key: str) -> str | list[str] | None:
        return self.items(group).get(key)

    def set_group(
        self, group: str, values: Mapping[str, str | bool | int | float], *, remove: Sequence[str] = ()
    ) -> bytes:
        """The file's bytes with `group` holding its old keys (minus `remove`) updated by `values`.

        The group is written where it first appeared (or appended), keys sorted as Qt sorts new ones.
        """
        if not group:
            raise ValueError("refusing to rewrite [General]")
        kept: dict[str, bytes] = {}
        for s in self.sections:
            if s.name == group:
                for key, line in s.keys:
                    kept[key] = self.data[line.equals + 1 : line.end].strip(b" \t")
        for key in remove:
            kept.pop(key, None)
        for key, value in values.items():
            kept[key] = qt_escape_value(qt_variant_string(value))
        body = [b"[" + qt_escape_key(group).encode() + b"]"]
        body += [qt_escape_key(k).encode() + b"=" + kept[k] for k in sorted(kept)]
        block = self.eol.join(body) + self.eol

        out = bytearray()
        placed = False
        for s in self.sections:
            chunk = self.data[s.start : s.end]
            if s.name == group and s.present:
                if not placed:
                    out += block + (self.eol if s.end < len(self.data) else b"")
                    placed = True
                continue
            out += chunk
        if not placed:
            if out and not out.endswith(b"\n"):
                out += self.eol
            if out:
                out += self.eol
            out += block
        return bytes(out)


# ---------------------------------------------------------------------------------------- GGUF handling


def gguf_metadata(path: Path) -> dict[str, Any]:
    """The GGUF's scalar metadata (arrays such as the vocabulary left out)."""
    from gguf import GGUFReader, GGUFValueType

    try:
        reader = GGUFReader(path)
    except (ValueError, OSError) as exc:
        raise FwyyError(f"{path}: not a readable GGUF file: {exc}") from None
    out: dict[str, Any] = {}
    for name, f in reader.fields.items():
        if f.types and f.types[0] != GGUFValueType.ARRAY:
            out[name] = f.contents()
    return out


def gguf_quant(meta: Mapping[str, Any]) -> str:
    ftype = meta.get("general.file_type")
    return FILE_TYPES.get(int(ftype), f"ftype{ftype}") if ftype is not None else "unknown"


def compat_changes(meta: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Metadata GPT4All 2.8's llama.cpp would refuse: key -> (old value, the equivalent it knows)."""
    changes: dict[str, tuple[Any, Any]] = {}
    pre = meta.get("tokenizer.ggml.pre")
    if isinstance(pre, str) and pre not in GPT4ALL_KNOWN_PRE:
        if pre not in PRE_EQUIVALENTS:
            raise FwyyError(
                f"tokenizer.ggml.pre = {pre!r} is unknown to GPT4All 2.8's llama.cpp and fwyy knows no "
                "equivalent for it",
                hint="known values: " + ", ".join(sorted(GPT4ALL_KNOWN_PRE)),
            )
        changes["tokenizer.ggml.pre"] = (pre, PRE_EQUIVALENTS[pre])
    return changes


def copy_gguf(
    src: Path, dst: Path, *, set_values: Mapping[str, Any] | None = None, progress: Progress | None = None
) -> None:
    """Copy a GGUF through GGUFReader -> GGUFWriter, replacing string metadata; tensors unchanged.

    Written under a temporary name and renamed, so an interrupted copy leaves no half model.
    """
    from gguf import GGUFReader, GGUFValueType, GGUFWriter

    set_values = dict(set_values or {})
    reader = GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    with atomic_path(dst) as tmp:
        writer = GGUFWriter(tmp, arch=arch, endianess=reader.endianess)
        for name, f in reader.fields.items():
            if name.startswith("GGUF.") or name == "general.architecture":
                continue
            vtype = f.types[0]
            value = set_values.pop(name) if name in set_values else f.contents()
            if name == "general.alignment":
                writer.data_alignment = int(value)
            sub = f.types[-1] if vtype == GGUFValueType.ARRAY else None
            writer.add_key_value(name, value, vtype, sub_type=sub)
        for name, value in set_values.items():  # keys the source lacked
            writer.add_key_value(name, value, GGUFValueType.STRING)
        for t in reader.tensors:
            writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        total = len(reader.tensors)
        for i, t in enumerate(reader.tensors):
            writer.write_tensor_data(t.data)
            if progress and (i % 16 == 0 or i == total - 1):
                progress(i + 1, total, "copying tensors")
        writer.close()


def requantize(src: Path, dst: Path, quant: str) -> None:
    """Re-quantize a GGUF with llama.cpp (llama-cpp-python), atomically."""
    llama_cpp = require("llama_cpp", "llama", f"Converting a GGUF to {quant}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = _FTYPE_OF[quant]
    params.allow_requantize = True
    params.nthread = int(os.environ.get("FWYY_THREADS") or 0)
    with atomic_path(dst) as tmp:
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), params)
        if rc != 0:
            raise FwyyError(f"{src}: llama.cpp could not convert it to {quant} (code {rc})")


# ---------------------------------------------------------------------------------------- prompts


def _family_template(family: str) -> tuple[str, str, str]:
    """(Jinja chat template, BOS text, EOS text) of a chat family (fwyy_ollama.chat_families)."""
    from fwyy_ollama.chat_families import get_family

    fam = get_family(family)
    return fam.hf_chat_template, fam.bos_token, fam.eos_token


def default_system_prompt(lang: str) -> str:
    from fwyy_ollama.prompts import system_prompt

    return system_prompt(lang)


def _render(template: str, messages: list[dict[str, str]], *, generation: bool, bos: str, eos: str) -> str:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(
        messages=messages, add_generation_prompt=generation, bos_token=bos, eos_token=eos
    )


@dataclass(frozen=True)
class BindingsPrompt:
    """What gpt4all's Python bindings take: chat_session(system_prompt=..., prompt_template=...)."""

    system_prompt: str
    """Ingested verbatim (control tokens included) at the start of a session."""
    prompt_template: str
    """str.format template; {0} is the user's message, literal braces doubled."""
    note: str = ""


def bindings_prompt(chat_template: str, system: str, *, bos: str = "", eos: str = "") -> BindingsPrompt:
    """Split a Jinja chat template into the bindings' system prompt and `{0}` user template.

    Rendered with sentinels: [system] gives the system prefix, [system, user] + generation prompt
    minus that prefix gives the user turn. BOS is dropped: llama.cpp adds it itself.
    """
    mark = "\x00FWYY_USER\x00"
    try:
        sys_only = _render(
            chat_template, [{"role": "system", "content": system}], generation=False, bos=bos, eos=eos
        )
        both = _render(
            chat_template,
            [{"role": "system", "content": system}, {"role": "user", "content": mark}],
            generation=True,
            bos=bos,
            eos=eos,
        )
        note = ""
    except Exception:  # noqa: BLE001 - a template that rejects a lone system turn (Mistral)
        sys_only = ""
        both = _render(
            chat_template,
            [{"role": "user", "content": system + "\n\n" + mark}],
            generation=True,
            bos=bos,
            eos=eos,
        )
        note = "this chat format has no system turn: the system prompt is repeated inside every user turn"
    if bos:
        sys_only = sys_only.removeprefix(bos)
        both = both.removeprefix(bos)
    if sys_only and both.startswith(sys_only):
        user = both[len(sys_only) :]
    else:
        user, sys_only = both, ""
        note = note or (
            "this chat format has no separate system turn: the prompt template carries the system "
            "prompt inside every user turn"
        )
    if mark not in user:
        raise FwyyError("the chat template drops the user's message; cannot build a GPT4All prompt template")
    before, after = user.split(mark, 1)
    template = (
        before.replace("{", "{{").replace("}", "}}") + "{0}" + after.replace("{", "{{").replace("}", "}}")
    )
    return BindingsPrompt(system_prompt=sys_only, prompt_template=template, note=note)


# ---------------------------------------------------------------------------------------- the stage


@dataclass(frozen=True)
class GPT4AllExport:
    """What `export_gpt4all` wrote and what a script needs to use it."""

    gguf: Path
    settings_file: Path
    group: str
    name: str
    quant: str
    source: Path
    changes: tuple[str, ...]
    """Sentences saying what was changed for GPT4All (metadata rewrites, requantization)."""
    settings: dict[str, Any]
    """The keys written to the group (chatTemplate, systemMessage, ...)."""
    system_message: str
    """The plain system message the desktop app puts in `messages`."""
    chat_template: str
    bindings: BindingsPrompt
    gpu_ok: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "gguf": str(self.gguf),
            "models_dir": str(self.gguf.parent),
            "settings_file": str(self.settings_file),
            "settings_group": self.group,
            "name": self.name,
            "quant": self.quant,
            "source": str(self.source),
            "changes": list(self.changes),
            "gpu_ok": self.gpu_ok,
            "settings": self.settings,
            "system_message": self.system_message,
            "chat_template": self.chat_template,
            "bindings": {
                "model_name": self.gguf.name,
                "model_path": str(self.gguf.parent),
                "system_prompt": self.bindings.system_prompt,
                "prompt_template": self.bindings.prompt_template,
                "note": self.bindings.note,
            },
        }


_QUANT_SUFFIX = re.compile(r"[.-](?:f16|f32|bf16|q\d(?:_[0-9a-z]+)*)$", re.IGNORECASE)


def _base_name(gguf: Path) -> str:
    return _QUANT_SUFFIX.sub("", gguf.name[: -len(".gguf")] if gguf.name.endswith(".gguf") else gguf.stem)


def _profile_gguf(profile: Any, quant: str, out_dir: Path) -> tuple[Path | None, list[str], Path | None]:
    """Where a profile's export starts: (a GGUF, notes, None), or (None, notes, adapter folder)
    when the build has an adapter but no GGUF of `quant` (fwyy's exporter then quantizes the merged
    full-precision weights, better than re-quantizing a 4-bit file)."""
    folder = out_dir / profile.name
    notes: list[str] = []
    exact = [folder / f"{profile.name}.{q}.gguf" for q in (quant, quant.upper())]
    for p in exact:
        if p.is_file():
            return p, notes, None
    if (folder / "adapter" / "adapter_config.json").is_file():
        try:
            import fwyy_ollama.export  # noqa: F401 - helper B's exporter
        except ImportError:
            pass
        else:
            return None, notes, folder / "adapter"
    candidates = sorted(folder.glob("*.gguf")) if folder.is_dir() else []
    if candidates:
        # Prefer the least lossy file as the source of a re-quantization.
        rank = {"f32": 0, "f16": 1, "bf16": 1, "q8_0": 2}
        best = min(candidates, key=lambda p: rank.get(gguf_quant(gguf_metadata(p)), 9))
        return best, notes, None
    if profile.base.gguf_package:
        from fwyy_ollama.runtime import demo_gguf

        demo = demo_gguf()
        if demo is not None and profile.base.gguf_file == demo.name:
            notes.append(f"no build output in {folder}: exported the profile's base model {demo.name}")
            return demo, notes, None
    raise FwyyError(
        f"no GGUF built for profile {profile.name!r} in {folder}",
        hint=f"run `fwyy build -p {profile.name}` first, or pass --gguf FILE",
    )


def export_gpt4all(
    *,
    gguf: str | os.PathLike[str] | None = None,
    profile: Any = None,
    quant: str | None = None,
    models_dir: str | os.PathLike[str] | None = None,
    settings_file: str | os.PathLike[str] | None = None,
    name: str | None = None,
    system: str | None = None,
    lang: str | None = None,
    chat_family: str | None = None,
    out_dir: str | os.PathLike[str] = "out",
    progress: Progress | None = None,
) -> GPT4AllExport:
    """Put a GGUF into GPT4All's model folder and write its settings group.

    From a profile the default quantization is q4_0 (GPT4All's GPU path runs q4_0, q4_1, f16);
    with `gguf` the file's own quantization is kept unless `quant` asks for another.
    """
    from fwyy_ollama.profiles import load_profile

    if quant is not None and quant not in QUANTS:
        raise FwyyError(f"--quant {quant!r} is not one of {', '.join(QUANTS)}")
    prof = None
    if profile is not None:
        prof = load_profile(profile) if isinstance(profile, (str, os.PathLike)) else profile
    changes: list[str] = []
    if gguf is not None:
        source = Path(gguf)
        if not source.is_file():
            raise FwyyError(f"{source}: no such GGUF file")
    else:
        prof = prof or load_profile(None)
        quant = quant or DEFAULT_PROFILE_QUANT
        found, notes, adapter = _profile_gguf(prof, quant, Path(out_dir))
        changes += notes
        if adapter is not None:
            from fwyy_ollama.export import export_gguf

            source = Path(out_dir) / prof.name / f"{prof.name}.{quant}.gguf"
            if progress:
                progress(0, None, f"exporting {adapter} as {quant}")
            export_gguf(adapter_dir=adapter, out=source, quant=quant, progress=progress)
            changes.append(f"exported {quant} from the adapter merged into its base: {source}")
        else:
            assert found is not None
            source = found
    meta = gguf_metadata(source)
    src_quant = gguf_quant(meta)
    target_quant = quant or src_quant

    family = chat_family or (prof.chat_family if prof else "chatml")
    language = lang or (prof.language if prof else "en")
    base = name or (prof.name if prof and gguf is None else _base_name(source))
    filename = f"{base}.{target_quant}.gguf"
    settings_path = Path(settings_file) if settings_file else default_settings_file()
    folder = (
        Path(models_dir) if models_dir else (configured_models_dir(settings_path) or default_models_dir())
    )
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / filename

    # 1. quantization
    work = source
    if target_quant != src_quant:
        if progress:
            progress(0, None, f"converting {src_quant} -> {target_quant}")
        requantized = folder / f".{filename}.requant"
        requantize(source, requantized, target_quant)
        work = requantized
        lossy = src_quant not in ("f32", "f16", "bf16", "q8_0")
        changes.append(
            f"quantization {src_quant} -> {target_quant}"
            + (" (re-quantized from an already 4-bit file: expect some extra quality loss)" if lossy else "")
        )
    # 2. metadata GPT4All's llama.cpp refuses
    try:
        fixes = compat_changes(gguf_metadata(work) if work != source else meta)
        rewrite = {k: new for k, (_, new) in fixes.items()}
        for key, (old, new) in fixes.items():
            changes.append(
                f"{key}: {old!r} -> {new!r} (GPT4All 2.8's llama.cpp refuses {old!r}; same tokenization)"
            )
        if rewrite or work != source:
            copy_gguf(work, dest, set_values=rewrite, progress=progress)
        else:
            with atomic_path(dest) as tmp:
                _copy_file(source, tmp, progress)
    finally:
        if work != source:
            work.unlink(missing_ok=True)

    # 3. prompts and settings
    template, bos, eos = _family_template(family)
    system_message = system if system is not None else default_system_prompt(language)
    bindings = bindings_prompt(template, system_message, bos=bos, eos=eos)
    group = f"model-{filename}"
    values: dict[str, Any] = {
        "filename": filename,
        "name": f"{base} (fwyy)",
        "chatTemplate": template,
        "systemMessage": system_message,
    }
    if prof is not None:
        for key, value in prof.parameters.items():
            if key in _PARAMETER_KEYS and isinstance(value, (int, float)):
                values[_PARAMETER_KEYS[key]] = value
    write_settings(settings_path, group, values)
    return GPT4AllExport(
        gguf=dest,
        settings_file=settings_path,
        group=group,
        name=values["name"],
        quant=target_quant,
        source=source,
        changes=tuple(changes),
        settings=values,
        system_message=system_message,
        chat_template=template,
        bindings=bindings,
        gpu_ok=target_quant in GPU_QUANTS,
    )


def _copy_file(src: Path, dst: Path, progress: Progress | None) -> None:
    total = src.stat().st_size
    done = 0
    with src.open("rb") as fin, dst.open("wb") as fout:
        while chunk := fin.read(8 << 20):
            fout.write(chunk)
            done += len(chunk)
            if progress:
                progress(done >> 20, total >> 20, "copying (MiB)")


def write_settings(path: Path, group: str, values: Mapping[str, Any]) -> Path:
    """Set `values` in `group` of GPT4All's INI file (other groups byte-identical), atomically."""
    data = path.read_bytes() if path.is_file() else b""
    ini = QtIni(data)
    new = ini.set_group(group, values, remove=LEGACY_KEYS)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_bytes(path, new)


# ---------------------------------------------------------------------------------------- checking


def check_loads(gguf: str | os.PathLike[str], *, n_ctx: int = 512) -> bool:
    """True when gpt4all's own llama.cpp loads the file (it only logs on failure, never raises)."""
    require("gpt4all", "gpt4all", "Checking a GPT4All export")
    from gpt4all._pyllmodel import LLModel

    # gpt4all itself asks for "kompute" with no GPU initialised when device="cpu" (macOS: "cpu").
    model = LLModel(str(gguf), n_ctx, 0, "cpu" if sys.platform == "darwin" else "kompute")
    try:
        return bool(model.load_model())
    finally:
        model.close()
