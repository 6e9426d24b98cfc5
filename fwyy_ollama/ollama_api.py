"""The Ollama daemon through its REST API, with the official `ollama` Python client.

The client has no Modelfile argument, so `create_model` parses the Modelfile itself (Ollama's
grammar, fwyy_ollama.modelfile), uploads the GGUF as a blob (its sha256 digest; skipped when the
daemon already has it), and creates the model from that blob with the template, system prompt,
parameters, license and messages the Modelfile names, optionally asking Ollama to quantize.
`create_from_profile` does the same from a profile without a Modelfile, so it can carry text a
Modelfile cannot hold. Every failure a user can fix (no daemon, digest mismatch, a model that
exists, an unsupported quantization, a missing file) is a FwyyError that says what to do.
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
_NAME_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*){0,2}(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?$"
)


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


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise FwyyError(
            f"{name!r} is not a valid Ollama model name",
            hint="letters, digits, '.', '_' and '-', optionally namespace/name:tag, e.g. fwyy-qwen2 or fwyy-qwen2:q4",
        )
    return name


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
    adapters: list[Path],
    quantize: str | None,
    force: bool,
    progress: Progress | None,
    host: str | None,
    modelfile: Path | None = None,
) -> CreateResult:
    _check_name(name)
    quant = normalize_quantize(quantize)
    if gguf is not None:
        if not gguf.is_file():
            raise FwyyError(f"{gguf}: no such GGUF file", hint="write it with `fwyy export` (or fix FROM)")
        if quant:
            _check_quantizable(gguf, quant)
    for adapter in adapters:
        if not adapter.is_file():
            raise FwyyError(f"{adapter}: no such adapter file")
    url = host_url(host)
    started = time.monotonic()
    client = _client(url)
    daemon_version(url)  # a clear "daemon down" before hashing gigabytes
    replaced = _exists(client, url, name)
    if replaced and not force:
        raise FwyyError(
            f"model {name} already exists at {redact_url(url)}",
            hint=f"pass --force to replace it, or `fwyy rm {name}` first",
        )
    digest, uploaded = (None, False)
    files: dict[str, str] | None = None
    if gguf is not None:
        digest, uploaded = upload_blob(client, url, gguf, progress)
        files = {gguf.name: digest}
    adapter_files: dict[str, str] | None = None
    for adapter in adapters:
        adapter_files = adapter_files or {}
        adapter_files[adapter.name] = upload_blob(client, url, adapter, progress)[0]
    statuses: list[str] = []
    with _api(url, f"create {name}"):
        stream = client.create(
            model=name,
            quantize=quant,
            from_=from_ if files is None else None,
            files=files,
            adapters=adapter_files,
            template=template,
            system=system,
            parameters=parameters or None,
            license=license or None,
            messages=messages or None,
            stream=True,
        )
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
    adapters = [mf.resolve(a.value) for a in mf.all("adapter")]
    return _create(
        name,
        gguf=gguf,
        from_=from_,
        template=mf.template,
        system=mf.system,
        parameters=mf.parameters,
        license=mf.licenses,
        messages=mf.messages,
        adapters=adapters,
        quantize=quantize,
        force=force,
        progress=progress,
        host=host,
        modelfile=path,
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
        adapters=[],
        quantize=quantize,
        force=force,
        progress=progress,
        host=host,
    )


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
                raise FwyyError(f"no model {name} at {redact_url(url)}", hint="`fwyy ls` lists them") from None
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
                raise FwyyError(f"no model {name} at {redact_url(url)}", hint="`fwyy ls` lists them") from None
            raise
