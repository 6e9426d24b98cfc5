"""Ollama Modelfiles: render one from a profile, and parse / check one as Ollama would.

Rendering: FROM (the GGUF), TEMPLATE (the chat family's Go template, proven equal to its Jinja
chat template), SYSTEM (the security prompt), PARAMETER (the family's stop strings first, then the
profile's sampling settings) and LICENSE, through templates/Modelfile.j2. The family comes from the
profile, never from a model name: a wrong TEMPLATE or a missing stop string is the commonest
reason a fine-tuned model misbehaves in Ollama.

Parsing follows Ollama's own grammar (parser/parser.go): an instruction name, a space, a value
that is bare, "quoted" or \"\"\"triple quoted\"\"\" (no escapes), `#` comments, parameter names
and types from Ollama's Options. A Modelfile value has no escapes, so text it cannot hold (a
triple quote, a control character) is an error that names where it is; `fwyy create` sends such
text through the API's own fields instead, which can hold anything.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fwyy_ollama.errors import FwyyError

INSTRUCTIONS = (
    "from",
    "template",
    "system",
    "parameter",
    "message",
    "adapter",
    "license",
    "draft",
    "renderer",
    "parser",
    "requires",
)
MESSAGE_ROLES = ("system", "user", "assistant")

# Ollama's Options (api/types.go) by JSON name -> type; "list" is a repeated string (stop).
PARAMETER_TYPES: dict[str, str] = {
    "num_ctx": "int",
    "num_batch": "int",
    "num_gpu": "int",
    "main_gpu": "int",
    "use_mmap": "bool",
    "num_thread": "int",
    "draft_num_predict": "int",
    "num_keep": "int",
    "seed": "int",
    "num_predict": "int",
    "top_k": "int",
    "top_p": "float",
    "min_p": "float",
    "typical_p": "float",
    "repeat_last_n": "int",
    "temperature": "float",
    "repeat_penalty": "float",
    "presence_penalty": "float",
    "frequency_penalty": "float",
    "stop": "list",
}
# Accepted by older Ollama releases; today's prints a warning and ignores them.
DEPRECATED_PARAMETERS = (
    "penalize_newline",
    "low_vram",
    "f16_kv",
    "logits_all",
    "vocab_only",
    "use_mlock",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
)

ANALYST_DEFAULTS: dict[str, Any] = {"temperature": 0.2, "top_p": 0.9, "repeat_penalty": 1.1}
"""Sampling for an analyst, not a storyteller: used where a profile's [parameters] leaves them out."""

LICENSES = {
    "apache-2.0": "Apache License 2.0 - https://www.apache.org/licenses/LICENSE-2.0",
    "mit": "MIT License - https://opensource.org/license/mit",
    "llama3": "META LLAMA 3 COMMUNITY LICENSE AGREEMENT - https://llama.meta.com/llama3/license/",
}

_INT_RE = re.compile(r"^[+-]?[0-9]+$")
_FLOAT_RE = re.compile(
    r"^[+-]?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)$", re.I
)
_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True}
_BOOLS |= {"0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}
_SEMVER_RE = re.compile(
    r"^v?(0|[1-9]\d*)(\.(0|[1-9]\d*)(\.(0|[1-9]\d*))?)?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"
)


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Instruction:
    """One Modelfile instruction, its value unquoted as Ollama would store it."""

    name: str
    """Lower-case instruction (from, template, system, parameter, message, ...)."""
    value: str
    line: int
    """Line where the instruction starts (1-based)."""
    key: str = ""
    """PARAMETER's name or MESSAGE's role."""


@dataclass(frozen=True)
class Problem:
    line: int
    message: str
    severity: str = "error"

    def format(self, source: str) -> str:
        tag = "" if self.severity == "error" else f"{self.severity}: "
        return f"{source}:{self.line}: {tag}{self.message}"


class ModelfileError(FwyyError):
    """A Modelfile Ollama would reject (or misread); `problems` lists each as file:line: problem."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"] or problems
        lines = "\n".join(p.format(source) for p in errors)
        super().__init__(lines if len(errors) > 1 else errors[0].format(source))


@dataclass(frozen=True)
class Modelfile:
    instructions: tuple[Instruction, ...]
    source: str = "Modelfile"
    base_dir: Path | None = None
    """The folder relative FROM/ADAPTER paths are taken from (the Modelfile's own, as in Ollama)."""
    warnings: tuple[Problem, ...] = field(default=(), compare=False)

    def all(self, name: str) -> list[Instruction]:
        return [i for i in self.instructions if i.name == name]

    def last(self, name: str) -> Instruction | None:
        found = self.all(name)
        return found[-1] if found else None

    @property
    def from_(self) -> str:
        ins = self.last("from")
        return ins.value if ins else ""

    @property
    def template(self) -> str | None:
        ins = self.last("template")
        return ins.value if ins else None

    @property
    def system(self) -> str | None:
        ins = self.last("system")
        return ins.value if ins else None

    @property
    def adapter(self) -> str | None:
        """The ADAPTER Ollama applies: with several lines it keeps the last (parser.CreateRequest)."""
        ins = self.last("adapter")
        return ins.value if ins else None

    @property
    def draft(self) -> str | None:
        ins = self.last("draft")
        return ins.value if ins else None

    @property
    def renderer(self) -> str | None:
        ins = self.last("renderer")
        return ins.value if ins else None

    @property
    def parser(self) -> str | None:
        ins = self.last("parser")
        return ins.value if ins else None

    @property
    def requires(self) -> str | None:
        """REQUIRES as Ollama stores it: a semantic version without its leading "v"."""
        ins = self.last("requires")
        return ins.value.removeprefix("v") if ins else None

    @property
    def licenses(self) -> list[str]:
        return [i.value for i in self.all("license")]

    @property
    def messages(self) -> list[dict[str, str]]:
        return [{"role": i.key, "content": i.value} for i in self.all("message")]

    @property
    def parameters(self) -> dict[str, Any]:
        """Typed parameters as the API's `parameters` field takes them (stop: a list)."""
        out: dict[str, Any] = {}
        for ins in self.all("parameter"):
            kind = PARAMETER_TYPES.get(ins.key)
            if kind is None:
                continue
            value = _convert(kind, ins.value)
            if kind == "list":
                out.setdefault(ins.key, []).append(value)
            else:
                out[ins.key] = value
        return out

    def resolve(self, value: str) -> Path:
        """A FROM/ADAPTER path as Ollama resolves it: ~ expanded, relative to the Modelfile's folder."""
        p = Path(os.path.expanduser(value))
        if not p.is_absolute():
            p = (self.base_dir or Path.cwd()) / p
        return p


def _convert(kind: str, raw: str) -> Any:
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "bool":
        return _BOOLS[raw]
    return raw


def _unquote(s: str) -> tuple[str, bool]:
    """Ollama's unquote: triple or double quotes around the whole value, no escapes."""
    if s.startswith('"""'):
        if len(s) >= 6 and s.endswith('"""'):
            return s[3:-3], True
        return "", False
    if s.startswith('"'):
        if len(s) >= 2 and s.endswith('"'):
            return s[1:-1], True
        return "", False
    return s, True


def _printable(ch: str) -> bool:
    # Go's strconv.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space.
    return ch == " " or ch.isprintable()


def parse_modelfile(text: str, *, source: str = "Modelfile", base_dir: Path | None = None) -> Modelfile:
    """Parse Modelfile text the way Ollama does; raise ModelfileError (file:line: problem) on bad syntax.

    Only syntax is checked here (what Ollama's parser rejects); `check_modelfile` adds the
    semantic checks (FROM present, parameter names and types, roles, paths, template).
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    nil, name_s, value_s, param_s, message_s, comment_s = range(6)
    state = nil
    buf: list[str] = []
    line = 1
    start_line = 1
    instr = ""
    key = ""
    out: list[Instruction] = []
    warnings: list[Problem] = []

    def fail(message: str, at: int | None = None) -> ModelfileError:
        return ModelfileError(source, [Problem(at or line, message)])

    for ch in text:
        newline = ch in "\r\n"
        space = ch in " \t"
        if state == nil:
            if ch == "#":
                state = comment_s
            elif not (space or newline):
                state, buf, start_line = name_s, [ch], line
        elif state == comment_s:
            if newline:
                state = nil
        elif state == name_s:
            if ch.isascii() and ch.isalpha():
                buf.append(ch)
            elif space:
                word = "".join(buf)
                lower = word.lower()
                if lower not in INSTRUCTIONS:
                    raise fail(
                        f"unknown instruction {word!r} (Ollama knows {', '.join(i.upper() for i in INSTRUCTIONS)})"
                    )
                instr, key, buf = lower, "", []
                state = param_s if lower == "parameter" else message_s if lower == "message" else value_s
            elif newline and "".join(buf).lower() in INSTRUCTIONS:
                raise fail(f"{''.join(buf).upper()} has no value")
            else:
                raise fail(
                    f"unknown instruction {''.join(buf) + ch!r}: an instruction is a word followed by a space"
                )
        elif state in (param_s, message_s):
            ok = (
                (ch.isascii() and (ch.isalnum() or ch == "_"))
                if state == param_s
                else (ch.isascii() and ch.isalpha())
            )
            if ok:
                buf.append(ch)
            elif space and buf:
                key = "".join(buf)
                if state == message_s and key not in MESSAGE_ROLES:
                    raise fail(f"MESSAGE role {key!r} must be one of {', '.join(MESSAGE_ROLES)}")
                buf, state = [], value_s
            else:
                what = (
                    "PARAMETER needs a name and a value"
                    if state == param_s
                    else "MESSAGE needs a role and a text"
                )
                raise fail(what)
        elif state == value_s:
            if newline or space:
                value, ok = _unquote("".join(buf).strip())
                if not ok or space:
                    buf.append(ch)
                else:
                    out.append(Instruction(instr, value, start_line, key))
                    state, buf = nil, []
            elif _printable(ch):
                buf.append(ch)
            else:
                warnings.append(
                    Problem(line, f"character U+{ord(ch):04X} is not printable: Ollama drops it", "warning")
                )
        if ch == "\n" or (ch == "\r"):
            line += 1

    if state == value_s:
        value, ok = _unquote("".join(buf).strip())
        if not ok:
            quote = '"""' if "".join(buf).strip().startswith('"""') else '"'
            raise fail(
                f"unterminated {quote} quote: the {instr.upper()} value starting here never closes",
                start_line,
            )
        out.append(Instruction(instr, value, start_line, key))
    elif state in (name_s, param_s, message_s):
        raise fail(f"unexpected end of file in {''.join(buf) or instr.upper()!r}", start_line)
    return Modelfile(tuple(out), source=source, base_dir=base_dir, warnings=tuple(warnings))


def decode_modelfile(data: bytes, source: str = "Modelfile") -> str:
    """Modelfile bytes as text, decoded as Ollama does: a UTF-8 or UTF-16 (LE/BE) byte-order mark
    picks the encoding, else UTF-8. Windows PowerShell 5 writes `>` redirections as UTF-16 LE with
    a BOM, and Ollama reads those files; so does fwyy."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):  # noqa: B007 - used after the loop
        if data.startswith(bom):
            break
    else:
        bom, codec = b"", "utf-8"
    try:
        return data[len(bom) :].decode(codec)
    except UnicodeDecodeError as exc:
        at = exc.start + len(bom)
        raise FwyyError(
            f"{source}: not {codec.upper()} text ({exc.reason} at byte {at})",
            hint="save the Modelfile as UTF-8 (or UTF-16 with a byte-order mark)",
        ) from None


def load_modelfile(path: str | Path) -> Modelfile:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FwyyError(f"{path}: no such Modelfile") from None
    except IsADirectoryError:
        raise FwyyError(f"{path}: is a folder, not a Modelfile") from None
    return parse_modelfile(
        decode_modelfile(data, str(path)), source=str(path), base_dir=path.resolve().parent
    )


# --------------------------------------------------------------------------- checking


def _check_parameter(ins: Instruction) -> list[Problem]:
    name, raw = ins.key, ins.value
    if name in DEPRECATED_PARAMETERS:
        return [Problem(ins.line, f"parameter {name} is deprecated: Ollama ignores it", "warning")]
    kind = PARAMETER_TYPES.get(name)
    if kind is None:
        near = [k for k in PARAMETER_TYPES if k.replace("_", "") == name.replace("_", "").lower()]
        hint = f" (did you mean {near[0]}?)" if near else ""
        return [Problem(ins.line, f"unknown parameter {name!r}{hint}")]
    if kind == "int" and not _INT_RE.match(raw):
        return [Problem(ins.line, f"parameter {name} wants a whole number, got {raw!r}")]
    if kind == "float" and not _FLOAT_RE.match(raw):
        return [Problem(ins.line, f"parameter {name} wants a number, got {raw!r}")]
    if kind == "bool" and raw not in _BOOLS:
        return [Problem(ins.line, f"parameter {name} wants true or false, got {raw!r}")]
    if kind == "list" and not raw:
        return [Problem(ins.line, "an empty stop string would stop every answer at once")]
    # Ollama type-checks values only (api.FormatParams), so odd but well-typed values are accepted
    # there and warned about here: they are legal, probably not meant.
    problems: list[Problem] = []
    if name == "temperature" and float(raw) < 0:
        problems.append(Problem(ins.line, f"temperature {raw} is negative: sampling acts as at 0", "warning"))
    if name in ("top_p", "min_p", "typical_p") and not 0.0 <= float(raw) <= 1.0:
        problems.append(Problem(ins.line, f"{name} {raw} is outside 0..1, its useful range", "warning"))
    if name == "num_ctx" and int(raw) <= 0:
        problems.append(
            Problem(ins.line, f"num_ctx {raw} is not positive: the model's default applies", "warning")
        )
    return problems


_GO_ACTION_RE = re.compile(r"\{\{(-?)(.*?)(-?)\}\}", re.S)
_GO_OPEN = ("if", "range", "with", "define", "block")


def check_go_template(text: str) -> str | None:
    """A light syntax check of a Go text/template (Go itself is not needed at run time).

    Catches what breaks `ollama create`: an unclosed `{{`, an `{{ end }}` too many or too few,
    `{{ else }}` outside a block. Returns the problem or None.
    """
    depth: list[str] = []
    rest = _GO_ACTION_RE.sub("", text)
    if "{{" in rest:
        return "an action opened with {{ is never closed with }}"
    for m in _GO_ACTION_RE.finditer(text):
        body = m.group(2).strip()
        if body.startswith("/*"):
            if not body.endswith("*/"):
                return "a {{/* comment */}} is not closed"
            continue
        word = body.split(None, 1)[0] if body else ""
        if not body:
            return "an empty action {{ }}"
        if word in _GO_OPEN:
            depth.append(word)
        elif word == "end":
            if not depth:
                return "{{ end }} without an open if/range/with"
            depth.pop()
        elif word in ("else", "break", "continue") and not depth:
            return f"{{{{ {word} }}}} outside if/range/with"
    if depth:
        return f"{{{{ {depth[-1]} }}}} is never closed with {{{{ end }}}}"
    return None


def check_modelfile(mf: Modelfile, *, need_files: bool = False) -> list[Problem]:
    """Semantic problems in a parsed Modelfile (errors and warnings), in line order.

    `need_files`: a FROM/ADAPTER path that does not exist is an error (as for `fwyy create`),
    else a warning (a shipped Modelfile names the GGUF a build will write).
    """
    problems: list[Problem] = list(mf.warnings)
    froms = mf.all("from")
    if not froms:
        problems.append(
            Problem(1, "no FROM line: a Modelfile must name the model (a GGUF path or a model name)")
        )
    for extra in froms[1:]:
        problems.append(Problem(extra.line, "more than one FROM: Ollama merges them; keep one", "warning"))
    for ins in mf.instructions:
        if ins.name in (
            "template",
            "system",
            "adapter",
            "draft",
            "renderer",
            "parser",
            "requires",
        ) and ins is not mf.last(ins.name):
            problems.append(
                Problem(
                    ins.line, f"{ins.name.upper()} given again later: Ollama keeps the last one", "warning"
                )
            )
        if ins.name == "parameter":
            problems.extend(_check_parameter(ins))
        elif ins.name in ("from", "adapter", "draft"):
            problems.extend(_check_path(mf, ins, need_files))
        elif ins.name == "template":
            problem = check_go_template(ins.value)
            if problem:
                problems.append(Problem(ins.line, f"TEMPLATE is not a valid Go template: {problem}"))
            elif ".Messages" not in ins.value and ".Prompt" not in ins.value:
                problems.append(Problem(ins.line, "TEMPLATE uses neither .Messages nor .Prompt", "warning"))
        elif ins.name == "requires" and not _SEMVER_RE.match(ins.value):
            problems.append(Problem(ins.line, f"REQUIRES wants a version such as 0.14.0, got {ins.value!r}"))
        elif ins.name == "message" and not ins.value:
            problems.append(Problem(ins.line, "MESSAGE has an empty text", "warning"))
    tmpl = mf.last("template")
    if tmpl is not None and not any(i.key == "stop" for i in mf.all("parameter")):
        problems.append(
            Problem(
                tmpl.line,
                "TEMPLATE without any PARAMETER stop: the model may run on past its turn",
                "warning",
            )
        )
    return sorted(problems, key=lambda p: p.line)


def _looks_like_path(value: str) -> bool:
    return value.startswith((".", "/", "~", "\\")) or value.lower().endswith(
        (".gguf", ".bin", ".safetensors")
    )


def _check_path(mf: Modelfile, ins: Instruction, need_files: bool) -> list[Problem]:
    value = ins.value
    if not value:
        return [Problem(ins.line, f"{ins.name.upper()} has an empty value")]
    if ins.name == "from" and not _looks_like_path(value):
        return []  # a model name (qwen2:7b) the daemon resolves
    path = mf.resolve(value)
    if not path.exists():
        severity = "error" if need_files or ins.name != "from" else "warning"
        return [Problem(ins.line, f"{ins.name.upper()} {value}: no such file ({path})", severity)]
    if path.is_dir():
        if ins.name == "adapter":
            problem = adapter_folder_problem(path)
            return [Problem(ins.line, f"ADAPTER {value}: {problem}")] if problem else []
        return []
    if path.is_file() and path.suffix.lower() == ".gguf":
        with open(path, "rb") as fh:
            if fh.read(4) != b"GGUF":
                return [Problem(ins.line, f"{ins.name.upper()} {value}: not a GGUF file (no GGUF magic)")]
    if ins.name == "draft" and mf.from_ and _same_file(path, mf.resolve(mf.from_)):
        return [Problem(ins.line, f"DRAFT {value} is the FROM model itself: Ollama refuses that")]
    return []


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.resolve() == b.resolve()
    except OSError:
        return False


def adapter_folder_files(folder: Path) -> list[Path]:
    """The files of a safetensors LoRA adapter folder that Ollama converts: adapter_config.json and
    the *.safetensors weights (PEFT writes adapter_model.safetensors)."""
    return sorted([folder / "adapter_config.json", *folder.glob("*.safetensors")])


def adapter_folder_problem(folder: Path) -> str | None:
    """Why `folder` is not an adapter Ollama can convert (None when it is)."""
    if not (folder / "adapter_config.json").is_file():
        return "a folder without adapter_config.json is not a safetensors LoRA adapter"
    if not any(folder.glob("*.safetensors")):
        return "the adapter folder has no .safetensors weights"
    return None


def check_file(path: str | Path, *, need_files: bool = False) -> list[str]:
    """`fwyy modelfile --check`: every problem as `file:line: problem` (syntax errors stop early)."""
    try:
        mf = load_modelfile(path)
    except ModelfileError as exc:
        return [p.format(exc.source) for p in exc.problems]
    return [p.format(mf.source) for p in check_modelfile(mf, need_files=need_files)]


# --------------------------------------------------------------------------- rendering


def value_problem(text: str) -> str | None:
    """Why `text` cannot be a triple-quoted Modelfile value, with its line and column; None if it can."""
    for lineno, row in enumerate(text.split("\n"), 1):
        col = row.find('"""')
        if col >= 0:
            return f'line {lineno}, column {col + 1}: contains """ which would end the value early'
        for c, ch in enumerate(row, 1):
            if ch != "\t" and not _printable(ch):
                return f"line {lineno}, column {c}: character U+{ord(ch):04X} is not printable and Ollama drops it"
    return None


def quote_value(text: str, where: str) -> str:
    """Triple-quote `text` for a Modelfile, or raise a FwyyError naming `where` and what cannot be held."""
    problem = value_problem(text)
    if problem:
        raise FwyyError(
            f"{where} cannot be written in a Modelfile: {problem}",
            hint="a Modelfile value has no escapes; `fwyy create --profile` sends such text through the API instead",
        )
    return text


def format_parameter(key: str, value: Any, where: str) -> list[str]:
    """PARAMETER values as Modelfile text (a list gives one line per item, e.g. several stops)."""
    if key in DEPRECATED_PARAMETERS or key not in PARAMETER_TYPES:
        raise FwyyError(f"{where}: {key!r} is not an Ollama parameter (known: {', '.join(PARAMETER_TYPES)})")
    kind = PARAMETER_TYPES[key]
    values = value if isinstance(value, (list, tuple)) else [value]
    if kind != "list" and len(values) != 1:
        raise FwyyError(f"{where}: {key} takes one value, got {value!r}")
    out: list[str] = []
    for v in values:
        if kind == "bool":
            if not isinstance(v, bool):
                raise FwyyError(f"{where}: {key} wants true or false, got {v!r}")
            text = "true" if v else "false"
        elif kind == "int":
            if isinstance(v, bool) or not isinstance(v, int):
                raise FwyyError(f"{where}: {key} wants a whole number, got {v!r}")
            text = str(v)
        elif kind == "float":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise FwyyError(f"{where}: {key} wants a number, got {v!r}")
            text = repr(float(v)) if isinstance(v, float) else str(v)
        else:
            text = str(v)
            if not text or "\n" in text or "\r" in text or '"' in text or not all(map(_printable, text)):
                raise FwyyError(f"{where}: {key} value {text!r} cannot be written in a Modelfile")
            text = f'"{text}"'  # quoted always: stop strings often hold spaces or look like markup
        out.append(text)
    return out


def default_gguf_name(profile: Any, quant: str | None = None) -> str:
    """The GGUF file a build writes for a profile: `<profile.name>.<quant>.gguf`."""
    return f"{profile.name}.{(quant or profile.export.quant).lower()}.gguf"


def license_text(profile: Any) -> str:
    lic = profile.base.license
    name = LICENSES.get(lic.lower(), lic) if lic else "see the base model's license"
    return (
        f"Base model {profile.base.hf_id}: {name}\n"
        "Fine-tuned as a security analyst with fwyy; the base model's license terms apply to this model."
    )


def modelfile_fields(profile: Any, *, lang: str | None = None, system: str | None = None) -> dict[str, Any]:
    """What a profile's Modelfile carries, as plain values (the API's create fields use them too)."""
    from fwyy_ollama.chat_families import get_family
    from fwyy_ollama.prompts import system_prompt

    family = get_family(profile.chat_family)
    lang = lang or profile.language
    params: dict[str, Any] = dict(profile.parameters)
    for key, value in ANALYST_DEFAULTS.items():
        params.setdefault(key, value)
    stops = list(family.stop)
    extra = params.pop("stop", [])
    for s in [extra] if isinstance(extra, str) else list(extra):
        if s not in stops:
            stops.append(s)
    return {
        "family": family,
        "lang": lang,
        "template": family.ollama_template,
        # stripped where the family's Jinja strips a system message (Llama 3): Go cannot
        "system": family.prepare_system(system if system is not None else system_prompt(lang)),
        "stop": stops,
        "parameters": params,
        "license": license_text(profile),
    }


def render_modelfile(
    profile: Any,
    gguf: str | os.PathLike[str] | None = None,
    lang: str | None = None,
    system: str | None = None,
) -> str:
    """The Modelfile text for `profile`, FROM `gguf` (default ./<name>.<quant>.gguf, as written).

    Raises FwyyError naming the part (SYSTEM, TEMPLATE, a parameter) when a value cannot be held.
    """
    from fwyy_ollama.resources import template_env

    f = modelfile_fields(profile, lang=lang, system=system)
    from_path = str(gguf) if gguf is not None else f"./{default_gguf_name(profile)}"
    if "\n" in from_path or "\r" in from_path or '"' in from_path:
        raise FwyyError(f"FROM path {from_path!r} cannot be written in a Modelfile")
    if " " in from_path or "\t" in from_path:
        from_path = f'"{from_path}"'
    where = f"profile {profile.name}"
    parameters: list[tuple[str, str]] = []
    for stop in f["stop"]:
        parameters += [("stop", v) for v in format_parameter("stop", stop, f"{where}: stop")]
    for key, value in f["parameters"].items():
        parameters += [(key, v) for v in format_parameter(key, value, f"{where}: parameters.{key}")]
    env = template_env()
    text = env.get_template("Modelfile.j2").render(
        name=profile.name,
        description=" ".join((profile.description or profile.name).split()),  # one comment line
        family=f["family"].name,
        lang=f["lang"],
        from_path=from_path,
        template=quote_value(f["template"], f"the {f['family'].name} TEMPLATE"),
        system=quote_value(f["system"], "SYSTEM (the system prompt)"),
        parameters=parameters,
        license=quote_value(f["license"], "LICENSE"),
    )
    # Proof that what we wrote reads back as we meant it.
    mf = parse_modelfile(text, source=f"<{profile.name} Modelfile>")
    if mf.template != f["template"] or mf.system != f["system"]:
        raise RuntimeError(f"the {profile.name} Modelfile does not read back as written (a bug in fwyy)")
    return text


def write_modelfile(
    profile: Any,
    gguf: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    *,
    lang: str | None = None,
    system: str | None = None,
) -> Path:
    """Render and write atomically to `out`. A GGUF path that exists and lies in out's folder (or
    below) is written relative (./name.gguf), so the folder can be moved as a whole; another
    existing one absolute; a path that does not exist (yet) as given, relative to out's folder."""
    from fwyy_ollama.atomic import write_text

    if out is None:
        raise TypeError("write_modelfile needs out= (where to write the Modelfile)")
    out = Path(out)
    ref: str | None = None
    if gguf is not None:
        g = Path(gguf)
        if g.is_absolute() or g.exists():
            g_abs, base = g.resolve(), out.resolve().parent
            try:
                ref = "./" + g_abs.relative_to(base).as_posix()
            except ValueError:
                ref = str(g_abs)
        else:
            ref = str(gguf)
    return write_text(out, render_modelfile(profile, ref, lang=lang, system=system))


def shipped_modelfile_path(profile_name: str) -> Path:
    from fwyy_ollama.resources import modelfiles_dir

    return modelfiles_dir() / f"{profile_name}.Modelfile"


def render_shipped(profiles: Iterable[Any]) -> dict[Path, str]:
    """The text every shipped Modelfile must have (modelfiles/<name>.Modelfile)."""
    return {shipped_modelfile_path(p.name): render_modelfile(p) for p in profiles}
