"""The Ollama daemon through its REST API, with the official `ollama` Python client.

The client has no Modelfile argument, so `create_model` parses the Modelfile itself (Ollama's
grammar, fwyy_ollama.modelfile), uploads the GGUF as a blob (its sha256 digest; skipped when the
daemon already has it), and creates the model from that blob with the template, system prompt,
parameters, license and messages the Modelfile names, optionally asking Ollama to quantize.
`create_from_profile` does the same from a profile without a Modelfile, so it can carry text a
Modelfile cannot hold. Every failure a user can fix (no daemon, digest mismatch, a model that
exists, an unsupported quantization, a missing file) is a FwyyError that says what to do.

Where the real daemon differs from what a Modelfile seems to say, this module follows the daemon
(ollama/ollama: parser/parser.go, server/create.go, server/images.go, types/model/name.go):
model names are checked with Ollama's own rules before anything is uploaded; of several ADAPTER
lines the last counts; a safetensors adapter folder is sent file by file; RENDERER, PARSER,
REQUIRES and DRAFT are sent, or refused when the daemon is too old to know them (an old daemon
would drop an unknown field without a word); and a GGUF whose own Jinja chat template Ollama
0.30.11+ would run instead of the TEMPLATE we proved is caught before the upload.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.redact import redact_url

Progress = Callable[[float, "float | None", str], None]

DEFAULT_HOST = "http://127.0.0.1:11434"
QUANTIZE_TYPES = ("q8_0", "q4_K_S", "q4_K_M")
"""What Ollama itself quantizes to; other types come from `fwyy export --quant`."""
QUANTIZABLE_FILE_TYPES = {0: "F32", 1: "F16", 32: "BF16"}
"""GGUF general.file_type values Ollama accepts as the source of a quantization."""

_CHUNK = 1 << 20

Version = tuple[int, int, int]

FIELDS_SINCE: dict[str, Version] = {
    "renderer": (0, 12, 0),
    "parser": (0, 12, 0),
    "requires": (0, 14, 0),
    "draft": (0, 30, 0),
}
"""First Ollama release whose /api/create reads each field (api/types.go CreateRequest). Older
daemons decode JSON leniently and drop fields they do not know, so fwyy refuses instead."""
BF16_QUANTIZE_SINCE: Version = (0, 22, 0)
"""Before 0.22.0 Ollama quantized only F16 and F32 sources ("quantization is only supported for
F16 and F32 models"); 0.22.0 added BF16."""
PREFERS_GGUF_TEMPLATE_SINCE: Version = (0, 30, 11)
"""From 0.30.11 Ollama runs a GGUF's own Jinja chat template instead of the Modelfile TEMPLATE
when the Jinja has more capabilities (server/images.go shouldPreferChatTemplate), unless the
daemon runs with OLLAMA_GO_TEMPLATE set."""


def parse_version(text: str) -> Version | None:
    """(major, minor, patch) of an Ollama version string ("0.12.6", "v0.30.11-rc2"); None for a
    development build (0.0.0) or anything unreadable: such daemons are taken to be current."""
    m = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    if not m:
        return None
    version = (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
    return None if version == (0, 0, 0) else version


def _at_least(version: Version | None, since: Version) -> bool:
    return version is None or version >= since


def _dotted(v: Version) -> str:
    return ".".join(map(str, v))


def host_url(host: str | None = None) -> str:
    """The daemon's URL: `host`, else OLLAMA_HOST, else Ollama's default (as the client parses it)."""
    from ollama._client import _parse_host

    return _parse_host(host or os.environ.get("OLLAMA_HOST") or None)


def _client(host: str | None = None, timeout: float | None = None):  # type: ignore[no-untyped-def]
    import ollama

    return ollama.Client(host=host_url(host), timeout=timeout)


def _down(host: str) -> FwyyError:
    env = os.environ.get("OLLAMA_HOST")
    where = f"OLLAMA_HOST={redact_url(env)}" if env else "OLLAMA_HOST is not set, so the default"
    return FwyyError(
        f"no Ollama daemon answers at {redact_url(host)} ({where})",
        hint="start it with `ollama serve` (or the Ollama app), or set OLLAMA_HOST to where it listens",
    )


@contextlib.contextmanager
def _api(host: str, what: str) -> Iterator[None]:
    """Turn the client's exceptions into FwyyErrors that say what failed and where."""
    import httpx
    import ollama

    host = redact_url(host)  # a user:password in OLLAMA_HOST never reaches an error message
    try:
        yield
    except ollama.ResponseError as exc:
        code = f" (HTTP {exc.status_code})" if exc.status_code and exc.status_code > 0 else ""
        raise FwyyError(f"Ollama at {host} refused to {what}: {exc.error}{code}") from None
    except (ConnectionError, httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise _down(host) from exc
    except httpx.HTTPError as exc:
        raise FwyyError(
            redact_url(f"talking to Ollama at {host} failed while trying to {what}: {exc}")
        ) from None


def daemon_available(host: str | None = None, timeout: float = 2.0) -> bool:
    """Whether a daemon answers /api/version at `host` (default: OLLAMA_HOST, then Ollama's default)."""
    try:
        daemon_version(host, timeout=timeout)
    except FwyyError:
        return False
    return True


def daemon_version(host: str | None = None, timeout: float = 5.0) -> str:
    url = host_url(host)
    client = _client(url, timeout=timeout)
    with _api(url, "report its version"):
        r = client._request_raw("GET", "/api/version")
        return str(r.json().get("version", ""))


def normalize_quantize(quantize: str | None) -> str | None:
    """Ollama's spelling of a quantization type, or a FwyyError listing the ones it supports."""
    if not quantize:
        return None
    for q in QUANTIZE_TYPES:
        if quantize.lower() == q.lower():
            return q
    raise FwyyError(
        f"Ollama cannot quantize to {quantize!r}: it supports only {', '.join(QUANTIZE_TYPES)}",
        hint="for other types write the GGUF with `fwyy export --quant TYPE` and create without --quantize",
    )


def gguf_file_type(path: Path) -> str | None:
    """The GGUF's general.file_type as a name (F32, F16, BF16, Q4_K_M, ...), or None if unset."""
    from gguf import LlamaFileType

    from fwyy_ollama.gguf_meta import gguf_metadata

    raw = gguf_metadata(path).get("general.file_type")  # bounded: a hostile header is a FwyyError
    if raw is None:
        return None
    value = int(raw)
    if value in QUANTIZABLE_FILE_TYPES:
        return QUANTIZABLE_FILE_TYPES[value]
    try:
        return LlamaFileType(value).name.removeprefix("MOSTLY_")
    except ValueError:
        return f"type {value}"


def _check_quantizable(gguf: Path, quantize: str) -> None:
    kind = gguf_file_type(gguf)
    if kind not in QUANTIZABLE_FILE_TYPES.values():
        raise FwyyError(
            f"{gguf} is {kind or 'of unknown type'}: Ollama quantizes only F16, BF16 or F32 GGUFs (asked for {quantize})",
            hint="export an f16 GGUF (`fwyy export --quant f16`), or create without --quantize",
        )


# ----------------------------------------------------------------------------- model names

_MISSING = "!MISSING!"
_NAME_DEFAULTS = ("registry.ollama.ai", "library", "", "latest")
_PART_MAX = {"host": 350, "namespace": 80, "model": 80, "tag": 80}


@dataclass(frozen=True)
class ModelName:
    """An Ollama model name split as types/model/name.go splits it, defaults filled in."""

    host: str
    namespace: str
    model: str
    tag: str

    def shortest(self) -> str:
        """Ollama's DisplayShortest: host and namespace only where not the defaults; always the tag."""
        prefix = ""
        if self.host.lower() != _NAME_DEFAULTS[0]:
            prefix = f"{self.host}/{self.namespace}/"
        elif self.namespace.lower() != _NAME_DEFAULTS[1]:
            prefix = f"{self.namespace}/"
        return f"{prefix}{self.model}:{self.tag}"


def _cut_promised(s: str, sep: str) -> tuple[str, str, bool]:
    i = s.rfind(sep)
    if i < 0:
        return s, "", False
    return s[:i] or _MISSING, s[i + len(sep) :] or _MISSING, True


def parse_model_name(name: str) -> ModelName:
    """`name` split into host / namespace / model : tag exactly as Ollama's ParseName does (not
    validated: see `model_name_problem`)."""
    host = namespace = tag = ""
    s = name
    if s.rfind(":") > s.rfind("/"):  # "/" cannot be in a tag, so a later ":" starts the tag
        s, tag, _ = _cut_promised(s, ":")
    s, model, promised = _cut_promised(s, "/")
    if not promised:
        model = s
    else:
        s, namespace, promised = _cut_promised(s, "/")
        if not promised:
            namespace = s
        else:
            scheme, sep, rest = s.partition("://")
            host = rest if sep else scheme
    d_host, d_ns, _, d_tag = _NAME_DEFAULTS
    return ModelName(host or d_host, namespace or d_ns, model, tag or d_tag)


def _part_problem(kind: str, part: str) -> str | None:
    if part in ("", _MISSING):
        return "is empty"
    if len(part.encode()) > _PART_MAX[kind]:
        return f"is longer than {_PART_MAX[kind]} characters"
    first = part[0]
    if not (first.isascii() and (first.isalnum() or first == "_")):
        return "must start with a letter, a digit or '_'"
    allowed = "_-" + ("" if kind == "namespace" else ".") + (":" if kind == "host" else "")
    for ch in part[1:]:
        if not (ch.isascii() and (ch.isalnum() or ch in allowed)):
            return f"may not contain {ch!r}"
    return None


def model_name_problem(name: str) -> str | None:
    """Why Ollama would refuse `name` as a model name (None when it takes it).

    The rules of types/model/name.go: [[host/]namespace/]model[:tag]; model and tag are 1-80 of
    letters, digits, '_', '-', '.', starting with a letter, digit or '_'; a namespace takes no
    '.'; a host may also hold ':' (a port) and be 350 long.
    """
    if not name:
        return "the name is empty"
    parsed = parse_model_name(name)
    for kind in ("host", "namespace", "model", "tag"):
        problem = _part_problem(kind, getattr(parsed, kind))
        if problem:
            return f"its {kind} {getattr(parsed, kind).replace(_MISSING, '')!r} {problem}"
    return None


def _check_name(name: str) -> str:
    problem = model_name_problem(name)
    if problem:
        raise FwyyError(
            f"{name!r} is not a valid Ollama model name: {problem}",
            hint="[namespace/]model[:tag] of letters, digits, '_', '-' and '.' (none in a namespace), "
            "each part starting with a letter, digit or '_', e.g. fwyy-qwen2 or me/fwyy-qwen2:q4",
        )
    return name


# ----------------------------------------------------------------------------- GGUF chat templates


def jinja_capabilities(chat_template: str) -> set[str]:
    """What Ollama reads off a GGUF's Jinja chat template (server/images.go chatTemplateCapabilities)."""
    caps: set[str] = set()
    if "tools" in chat_template or "tool_call" in chat_template:
        caps.add("tools")
    splits = "content.split('</think>')" in chat_template or 'content.split("</think>")' in chat_template
    if ("<think>" in chat_template and "</think>" in chat_template) or (
        splits and "reasoning_content" not in chat_template and "<SPECIAL_12>" not in chat_template
    ):
        caps.add("thinking")
    return caps


def go_template_capabilities(template: str) -> set[str]:
    """What Ollama reads off a Go TEMPLATE (goTemplateCapabilities): .Tools, .Suffix, think tags."""
    names = {m.lower() for m in re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)", template)}
    caps: set[str] = set()
    if "tools" in names:
        caps.add("tools")
    if "suffix" in names:
        caps.add("insert")
    if "thinking" in names and re.search(r"<(\w+)>", template):
        caps.add("thinking")
    return caps


def _jinja_tool_round_trip(chat_template: str) -> bool:
    if "tools" not in chat_template and "tool_call" not in chat_template:
        return False
    calls = "tool_calls" in chat_template or "assistant_tool_call" in chat_template
    answers = ("tool_response", "tool_results", "role'] == 'tool'", "role'] == \"tool\"", "role\"] == 'tool'",
               "role\"] == \"tool\"", "message.role == 'tool'", "message.role == \"tool\"", "ipython")  # fmt: skip
    return calls and any(a in chat_template for a in answers)


def _go_tool_round_trip(template: str) -> bool:
    names = {m.lower() for m in re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)", template)}
    if "tools" not in names or "toolcalls" not in names:
        return False
    return any(a in template for a in ('eq .Role "tool"', "tool_response", "TOOL_RESULTS"))


def ollama_prefers_gguf_template(chat_template: str, go_template: str) -> bool:
    """Whether Ollama 0.30.11+ (OLLAMA_GO_TEMPLATE unset, no RENDERER/PARSER) runs the GGUF's Jinja
    `chat_template` instead of the Modelfile's `go_template` (server/images.go
    shouldPreferChatTemplate): when the Jinja has more capabilities, or the same ones with tools
    and only the Jinja can send tool results back."""
    if not chat_template or not go_template:
        return False
    jinja, go = jinja_capabilities(chat_template), go_template_capabilities(go_template)
    if len(jinja) > len(go):
        return not _go_tool_round_trip(go_template) or _jinja_tool_round_trip(chat_template)
    if jinja != go or "tools" not in jinja:
        return False
    return _jinja_tool_round_trip(chat_template) and not _go_tool_round_trip(go_template)


def _check_template_runs(gguf: Path, template: str | None, version: Version | None) -> list[str]:
    """Refuse a create whose proven TEMPLATE Ollama would not run; return notes for the rest.

    A TEMPLATE that is one of fwyy's chat families' was proven equal to the family's Jinja; if the
    daemon would run the GGUF's own Jinja instead and that Jinja is not the family's, what runs is
    unproven, so that is an error. For other TEMPLATEs (the user's own) it is a note.
    """
    from fwyy_ollama.chat_families import family_for_ollama_template
    from fwyy_ollama.gguf_meta import gguf_metadata

    if not template or not _at_least(version, PREFERS_GGUF_TEMPLATE_SINCE):
        return []
    jinja = gguf_metadata(gguf).get("tokenizer.chat_template")
    if not isinstance(jinja, str) or not ollama_prefers_gguf_template(jinja, template):
        return []
    family = family_for_ollama_template(template)
    why = (
        f"{gguf.name} carries a Jinja chat template with {', '.join(sorted(jinja_capabilities(jinja)))} "
        "support, so Ollama 0.30.11+ runs it instead of the Modelfile TEMPLATE"
    )
    if family is not None and jinja != family.hf_chat_template:
        raise FwyyError(
            f"{why}; that Jinja is not the {family.name} template fwyy proved",
            hint="re-export the GGUF with fwyy (it writes the family's template), "
            "or start the daemon with OLLAMA_GO_TEMPLATE=1",
        )
    return [f"{why} (OLLAMA_GO_TEMPLATE=1 on the daemon keeps TEMPLATE)"]


@dataclass(frozen=True)
class CreateResult:
    """What `create_model` did: the model, the daemon, the files sent and the statuses it streamed."""

    name: str
    host: str
    gguf: Path | None
    digest: str | None
    uploaded: bool
    """False when the daemon already had the blob (same digest)."""
    quantize: str | None
    replaced: bool
    statuses: tuple[str, ...] = field(default=())
    seconds: float = 0.0
    modelfile: Path | None = None
    notes: tuple[str, ...] = ()
    """Things the user should know that are not errors (e.g. the GGUF's own template will run)."""


def sha256_digest(path: Path, progress: Progress | None = None) -> str:
    size = path.stat().st_size
    h = hashlib.sha256()
    done = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, size, f"hashing {path.name}")
    return f"sha256:{h.hexdigest()}"


class _Upload:
    """File content for httpx that reports progress; fileno() lets httpx send a Content-Length."""

    def __init__(self, path: Path, progress: Progress | None) -> None:
        self._fh = open(path, "rb")  # closed by close()
        self._size = path.stat().st_size
        self._name = path.name
        self._progress = progress

    def fileno(self) -> int:
        return self._fh.fileno()

    def __iter__(self) -> Iterator[bytes]:
        done = 0
        while chunk := self._fh.read(_CHUNK):
            done += len(chunk)
            if self._progress:
                self._progress(done, self._size, f"uploading {self._name}")
            yield chunk

    def close(self) -> None:
        self._fh.close()


def upload_blob(client: Any, host: str, path: Path, progress: Progress | None = None) -> tuple[str, bool]:
    """Send `path` as a blob unless the daemon has it; returns (digest, uploaded)."""
    import ollama

    digest = sha256_digest(path, progress)
    with _api(host, f"check blob {digest}"):
        try:
            client._request_raw("HEAD", f"/api/blobs/{digest}")
            return digest, False
        except ollama.ResponseError as exc:
            if exc.status_code != 404:
                raise
    body = _Upload(path, progress)
    try:
        client._request_raw("POST", f"/api/blobs/{digest}", content=body)
    except ollama.ResponseError as exc:
        if exc.status_code == 400 and "digest" in str(exc.error).lower():
            raise FwyyError(
                f"upload of {path} arrived corrupted at {redact_url(host)}: {exc.error}",
                hint="the file may have changed while it was sent; run the command again",
            ) from None
        with _api(host, f"store {path.name}"):
            raise
    except Exception:
        with _api(host, f"store {path.name}"):
            raise
    finally:
        body.close()
    return digest, True


def model_exists(name: str, host: str | None = None) -> bool:
    """Whether the daemon has a model `name` (a missing tag means :latest, as in Ollama)."""
    url = host_url(host)
    return _exists(_client(url, timeout=30), url, name)


def _exists(client: Any, host: str, name: str) -> bool:
    import ollama

    with _api(host, f"look up {name}"):
        try:
            client.show(name)
            return True
        except ollama.ResponseError as exc:
            if exc.status_code == 404:
                return False
            raise


@dataclass(frozen=True)
class CreateExtras:
    """Modelfile instructions the `ollama` client has no argument for, sent in /api/create's JSON."""

    renderer: str | None = None
    parser: str | None = None
    requires: str | None = None
    draft: Path | None = None
    """A GGUF (or safetensors folder) for speculative decoding: DRAFT."""

    def given(self) -> list[str]:
        return [k for k in ("renderer", "parser", "requires", "draft") if getattr(self, k)]


def _adapter_files(adapter: Path) -> list[Path]:
    """The files an ADAPTER sends: the GGUF itself, or a safetensors folder's config and weights."""
    from fwyy_ollama.modelfile import adapter_folder_files, adapter_folder_problem

    if adapter.is_file():
        return [adapter]
    if adapter.is_dir():
        problem = adapter_folder_problem(adapter)
        if problem:
            raise FwyyError(f"ADAPTER {adapter}: {problem}")
        return adapter_folder_files(adapter)
    raise FwyyError(f"{adapter}: no such adapter file or folder")


def _check_version(url: str, version: Version | None, extras: CreateExtras, quant: str | None,
                   gguf: Path | None) -> None:  # fmt: skip
    shown = "unknown" if version is None else _dotted(version)
    for key in extras.given():
        if not _at_least(version, FIELDS_SINCE[key]):
            raise FwyyError(
                f"{key.upper()} needs Ollama {_dotted(FIELDS_SINCE[key])} or newer; the daemon at "
                f"{redact_url(url)} is {shown} and would drop it without a word",
                hint=f"upgrade Ollama, or remove the {key.upper()} line",
            )
    if quant and gguf is not None and not _at_least(version, BF16_QUANTIZE_SINCE):
        if gguf_file_type(gguf) == "BF16":
            raise FwyyError(
                f"{gguf} is BF16: Ollama {shown} quantizes only F16 and F32 GGUFs "
                f"(BF16 from {_dotted(BF16_QUANTIZE_SINCE)})",
                hint="upgrade Ollama, or export an f16 GGUF (`fwyy export --quant f16`)",
            )


def _create(
    name: str,
    *,
    gguf: Path | None,
    from_: str | None,
    template: str | None,
    system: str | None,
    parameters: dict[str, Any] | None,
    license: list[str] | None,
    messages: list[dict[str, str]] | None,
    adapter: Path | None,
    quantize: str | None,
    force: bool,
    progress: Progress | None,
    host: str | None,
    modelfile: Path | None = None,
    extras: CreateExtras | None = None,
) -> CreateResult:
    from fwyy_ollama.chat_families import family_for_ollama_template

    _check_name(name)
    extras = extras or CreateExtras()
    quant = normalize_quantize(quantize)
    if gguf is not None:
        if not gguf.is_file():
            raise FwyyError(f"{gguf}: no such GGUF file", hint="write it with `fwyy export` (or fix FROM)")
        if quant:
            _check_quantizable(gguf, quant)
    adapter_files = _adapter_files(adapter) if adapter is not None else []
    draft_files = []
    if extras.draft is not None:
        if not extras.draft.exists():
            raise FwyyError(f"DRAFT {extras.draft}: no such file or folder")
        draft_files = [extras.draft] if extras.draft.is_file() else sorted(
            p for p in extras.draft.iterdir() if p.suffix in (".safetensors", ".json", ".gguf")
        )  # fmt: skip
    # Contents the family's Jinja would trim (Llama 3, Mistral) go trimmed: Go templates cannot trim.
    family = family_for_ollama_template(template or "")
    if family is not None:
        if messages:
            messages = family.prepare_messages(messages)
        if system:
            system = family.prepare_system(system)
    url = host_url(host)
    started = time.monotonic()
    client = _client(url)
    version = parse_version(daemon_version(url))  # a clear "daemon down" before hashing gigabytes
    _check_version(url, version, extras, quant, gguf)
    notes = _check_template_runs(gguf, template, version) if gguf is not None else []
    replaced = _exists(client, url, name)
    if replaced and not force:
        raise FwyyError(
            f"model {name} already exists at {url}",
            hint=f"pass --force to replace it, or `fwyy rm {name}` first",
        )
    digest, uploaded = (None, False)
    files: dict[str, str] | None = None
    if gguf is not None:
        digest, uploaded = upload_blob(client, url, gguf, progress)
        files = {gguf.name: digest}
    adapters = {p.name: upload_blob(client, url, p, progress)[0] for p in adapter_files} or None
    drafts = {p.name: upload_blob(client, url, p, progress)[0] for p in draft_files} or None
    request: dict[str, Any] = {
        "model": name,
        "quantize": quant,
        "from_": from_ if files is None else None,
        "files": files,
        "adapters": adapters,
        "template": template,
        "system": system,
        "parameters": parameters or None,
        "license": license or None,
        "messages": messages or None,
    }
    statuses: list[str] = []
    with _api(url, f"create {name}"):
        if extras.given():
            # The client has no argument for these: the same request, with them, through its transport.
            from ollama._types import ProgressResponse

            body = {("from" if k == "from_" else k): v for k, v in request.items() if v is not None}
            body |= {"renderer": extras.renderer, "parser": extras.parser, "requires": extras.requires}
            body = {k: v for k, v in body.items() if v is not None} | {"stream": True}
            if drafts:
                body["draft_files"] = drafts
            stream = client._request(ProgressResponse, "POST", "/api/create", json=body, stream=True)
        else:
            stream = client.create(**request, stream=True)
        for part in stream:
            status = part.status or ""
            statuses.append(status)
            if progress:
                total = float(part.total) if part.total else None
                progress(float(part.completed or 0), total, status)
    if not statuses or statuses[-1] != "success":
        raise FwyyError(
            f"Ollama at {redact_url(url)} did not finish creating {name} (last status: {statuses[-1:] or 'none'})"
        )
    return CreateResult(
        name=name,
        host=redact_url(url),
        gguf=gguf,
        digest=digest,
        uploaded=uploaded,
        quantize=quant,
        replaced=replaced,
        statuses=tuple(statuses),
        seconds=time.monotonic() - started,
        modelfile=modelfile,
        notes=tuple(notes),
    )


def create_model(
    name: str,
    modelfile_path: str | os.PathLike[str],
    *,
    quantize: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    host: str | None = None,
) -> CreateResult:
    """`ollama create NAME -f MODELFILE` through the API: parse, upload the GGUF, create, stream progress."""
    from fwyy_ollama.modelfile import ModelfileError, check_modelfile, load_modelfile

    path = Path(modelfile_path)
    mf = load_modelfile(path)
    problems = [p for p in check_modelfile(mf, need_files=True) if p.severity == "error"]
    missing = [p for p in problems if "no such file" in p.message]
    if missing:
        p = missing[0]
        raise FwyyError(
            f"{path}:{p.line}: {p.message}",
            hint="FROM paths are relative to the Modelfile's folder; write the GGUF with `fwyy export` first",
        )
    if problems:
        raise ModelfileError(str(path), problems)
    gguf: Path | None = None
    from_: str | None = None
    resolved = mf.resolve(mf.from_)
    if resolved.is_file():
        gguf = resolved
    elif resolved.is_dir():
        raise FwyyError(
            f"{path}: FROM {mf.from_} is a folder; fwyy create takes a GGUF file",
            hint="export one with `fwyy export`, or use `ollama create` for safetensors folders",
        )
    else:
        from_ = mf.from_  # a model the daemon has (e.g. qwen2:7b)
    draft = mf.resolve(mf.draft) if mf.draft else None
    return _create(
        name,
        gguf=gguf,
        from_=from_,
        template=mf.template,
        system=mf.system,
        parameters=mf.parameters,
        license=mf.licenses,
        messages=mf.messages,
        adapter=mf.resolve(mf.adapter) if mf.adapter else None,  # Ollama keeps the last ADAPTER
        quantize=quantize,
        force=force,
        progress=progress,
        host=host,
        modelfile=path,
        extras=CreateExtras(renderer=mf.renderer, parser=mf.parser, requires=mf.requires, draft=draft),
    )


def create_from_profile(
    name: str,
    profile: Any,
    gguf: str | os.PathLike[str],
    *,
    lang: str | None = None,
    system: str | None = None,
    quantize: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    host: str | None = None,
) -> CreateResult:
    """Create from a profile's template, system prompt and parameters, sent in the API's own fields
    (which hold any text, unlike a Modelfile value)."""
    from fwyy_ollama.modelfile import format_parameter, license_text, modelfile_fields

    f = modelfile_fields(profile, lang=lang, system=system)
    params: dict[str, Any] = {"stop": list(f["stop"])}
    for key, value in f["parameters"].items():
        format_parameter(key, value, f"profile {profile.name}: parameters.{key}")  # validates name and type
        params[key] = value
    return _create(
        name,
        gguf=Path(gguf),
        from_=None,
        template=f["template"],
        system=f["system"],
        parameters=params,
        license=[license_text(profile)],
        messages=None,
        adapter=None,
        quantize=quantize,
        force=force,
        progress=progress,
        host=host,
    )


def chat_family_of(client: Any, name: str) -> Any:
    """The fwyy chat family (ChatFamily) whose TEMPLATE the daemon's model `name` carries, or None.

    Chats use it to send contents trimmed where that family's Jinja trims them (Llama 3, Mistral):
    Ollama renders through the Go TEMPLATE, which cannot trim. Any failure here is None: the chat
    itself reports a missing model or a daemon that is down.
    """
    from fwyy_ollama.chat_families import family_for_ollama_template

    try:
        template = client.show(name).template or ""
    except Exception:  # noqa: BLE001 - best effort; the chat request says what is wrong
        return None
    return family_for_ollama_template(template)


def list_models(host: str | None = None) -> list[dict[str, Any]]:
    """The daemon's models (name, size, modified, digest, family, parameter size, quantization)."""
    url = host_url(host)
    client = _client(url, timeout=30)
    with _api(url, "list models"):
        resp = client.list()
    out = []
    for m in resp.models:
        d = m.details
        out.append(
            {
                "name": m.model,
                "size": int(m.size or 0),
                "modified_at": m.modified_at.isoformat() if m.modified_at else None,
                "digest": m.digest,
                "family": d.family if d else None,
                "parameter_size": d.parameter_size if d else None,
                "quantization": d.quantization_level if d else None,
            }
        )
    return out


def show_model(name: str, host: str | None = None) -> dict[str, Any]:
    """A model's template, system prompt, parameters, license, details and Modelfile."""
    import ollama

    url = host_url(host)
    client = _client(url, timeout=30)
    with _api(url, f"show {name}"):
        try:
            resp = client.show(name)
        except ollama.ResponseError as exc:
            if exc.status_code == 404:
                raise FwyyError(
                    f"no model {name} at {redact_url(url)}", hint="`fwyy ls` lists them"
                ) from None
            raise
    data = resp.model_dump(mode="json", by_alias=False, exclude_none=True)
    system = None
    if resp.modelfile:
        from fwyy_ollama.modelfile import ModelfileError, parse_modelfile

        with contextlib.suppress(ModelfileError):
            system = parse_modelfile(resp.modelfile).system
    data["name"] = name
    if system is not None:
        data["system"] = system
    return data


def delete_model(name: str, host: str | None = None) -> None:
    import ollama

    url = host_url(host)
    client = _client(url, timeout=30)
    with _api(url, f"delete {name}"):
        try:
            client.delete(name)
        except ollama.ResponseError as exc:
            if exc.status_code == 404:
                raise FwyyError(
                    f"no model {name} at {redact_url(url)}", hint="`fwyy ls` lists them"
                ) from None
            raise
