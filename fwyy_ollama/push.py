"""Share a build: `fwyy push hf` (the Hugging Face Hub) and `fwyy push ollama` (an Ollama registry).

Why both: Hub users find GGUFs and their cards on the Hub (`hf download`, `ollama run hf.co/...`),
Ollama users `ollama pull user/model`. Both go through the official clients, as the rest of fwyy
does: huggingface_hub's HfApi (create_repo, preupload_lfs_files, create_commit with
CommitOperationAdd) and the `ollama` client's push and copy.

Hub uploads take the LFS path (the batch API, single or multipart PUTs to the storage URLs it
hands out), one file after another: a push stopped in the middle (Ctrl-C, a dropped connection,
a refused part) leaves the files already sent on the Hub, and the next run's batch request finds
them there and sends only the rest. huggingface_hub would pick its Xet protocol when hf_xet is
installed; fwyy turns that off for its own calls (constants.HF_HUB_DISABLE_XET) so the transfer is
the documented one that fwyy's tests exercise against tests/fake_hub.py. Each file object reports
its read position, which is the progress bar: hashing first, then the upload (a retried request
rewinds the file, and the bar with it).

An Ollama push is the daemon's work (/api/push); fwyy streams its status events into the same
progress callback and turns the registry's refusals into what to do: a model named without a
namespace (library/) cannot be pushed by anyone but Ollama, and a namespace you do not own, or a
key ollama.com does not know, is refused with "unauthorized"/"access denied".
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fwyy_ollama import __version__
from fwyy_ollama.errors import FwyyError

Progress = Callable[[float, "float | None", str], None]

TOKEN_PAGE = "https://huggingface.co/settings/tokens"
OLLAMA_KEYS_PAGE = "https://ollama.com/settings/keys"
_REPO_PART = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,95}\Z")


# ------------------------------------------------------------------------------------ Hugging Face


def check_repo_id(repo_id: str) -> str:
    """`owner/name` as the Hub accepts it, checked before any request (the owner is never guessed)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    rule = "owner/name: letters, digits, '-', '_', '.', each part at most 96, no '--' or '..', not ending in '.'"
    owner, sep, name = repo_id.partition("/")
    if not sep or not _REPO_PART.match(owner) or not _REPO_PART.match(name):
        raise FwyyError(f"{repo_id!r} is not a Hugging Face repo id ({rule})", hint="e.g. fwyy push hf your-user/fwyy-qwen2")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise FwyyError(f"{repo_id!r} is not a Hugging Face repo id: {exc}", hint=rule) from None
    return repo_id


@dataclass(frozen=True)
class HubFile:
    """One file of a push: where it is here, where it goes in the repo, or its bytes."""

    path_in_repo: str
    local: Path | None = None
    data: bytes | None = None

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else (self.local.stat().st_size if self.local else 0)


@dataclass
class HubPushResult:
    repo_id: str
    url: str
    commit: str | None
    private: bool
    files: list[str]
    sent: list[str] = field(default_factory=list)
    """LFS files whose bytes went up in this run (the rest were already on the Hub, or small)."""
    already: list[str] = field(default_factory=list)
    """LFS files the Hub already had: not sent again."""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _public_adapter_meta(path: Path) -> bytes:
    """fwyy-adapter.json without this machine's absolute paths (base folder, data files)."""
    meta = json.loads(path.read_text(encoding="utf-8"))
    for holder in (meta, meta.get("base") if isinstance(meta.get("base"), dict) else {}):
        if "base_model_dir" in holder:
            holder["base_model_dir"] = None
    for item in meta.get("data") or []:
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            item["path"] = Path(item["path"]).name
    return (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode()


def hub_files(folder: Path, *, adapter: bool) -> list[HubFile]:
    """What a push sends: every GGUF of the build, its Modelfile and card, the adapter if asked."""
    ggufs = [p for p in sorted(folder.glob("*.gguf")) if p.is_file() and not p.is_symlink()]
    if not ggufs:
        raise FwyyError(f"{folder} holds no GGUF to push", hint=f"run `fwyy build -p {folder.name}` first")
    if not (folder / "Modelfile").is_file():
        raise FwyyError(f"{folder} has no Modelfile", hint=f"run `fwyy build -p {folder.name}` again to write it")
    files = [HubFile(p.name, p) for p in ggufs]
    files += [HubFile("Modelfile", folder / "Modelfile"), HubFile("README.md", folder / "README.md")]
    if adapter:
        adir = folder / "adapter"
        if not (adir / "adapter_config.json").is_file():
            raise FwyyError(
                f"--adapter: {adir} is not a LoRA adapter folder (no adapter_config.json)",
                hint="this build was made with --skip-train, so it has no adapter; push without --adapter",
            )
        for p in sorted(adir.iterdir()):
            if not p.is_file() or p.is_symlink():
                continue
            if p.name == "fwyy-adapter.json":
                files.append(HubFile(f"adapter/{p.name}", data=_public_adapter_meta(p)))
            else:
                files.append(HubFile(f"adapter/{p.name}", p))
    return files


class _ReportingReader(io.BufferedReader):
    """A file whose reads report the position: hashing and uploading both read it through."""

    def __init__(self, path: Path, report: Callable[[int], None]) -> None:
        super().__init__(io.FileIO(path, "rb"), buffer_size=1 << 20)
        self._report = report

    def read(self, size: int | None = -1) -> bytes:  # type: ignore[override]
        data = super().read(size)
        self._report(self.tell())
        return data


_SWITCH = threading.Lock()


@contextlib.contextmanager
def _hub_for_push() -> Iterator[None]:
    """huggingface_hub as fwyy pushes with it: online per HF_HUB_OFFLINE now, the LFS transfer,
    its own bars and warnings off (fwyy shows progress and says what happened itself)."""
    from huggingface_hub import constants
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from huggingface_hub.utils import logging as hf_logging

    from fwyy_ollama.hub import offline

    with _SWITCH:
        before = (constants.HF_HUB_OFFLINE, constants.HF_HUB_DISABLE_XET, hf_logging.get_verbosity())
        bars_off = are_progress_bars_disabled()
        constants.HF_HUB_OFFLINE = offline()
        constants.HF_HUB_DISABLE_XET = True
        hf_logging.set_verbosity_error()
        disable_progress_bars()
        try:
            yield
        finally:
            constants.HF_HUB_OFFLINE, constants.HF_HUB_DISABLE_XET, verbosity = before
            hf_logging.set_verbosity(verbosity)
            if not bars_off:
                enable_progress_bars()


def hub_token(token: str | None) -> str:
    """--token, else HF_TOKEN (or the token `hf auth login` saved); a push cannot go without one."""
    from huggingface_hub import get_token

    found = token or os.environ.get("HF_TOKEN") or get_token()
    if not found:
        raise FwyyError(
            "pushing to the Hugging Face Hub needs a token with write access, and none is set",
            hint=f"create one at {TOKEN_PAGE} and set HF_TOKEN=hf_... (or run `hf auth login`, or pass --token)",
        )
    return found


def _cause_chain(exc: BaseException) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]


def _push_error(exc: BaseException, repo_id: str, current: str | None) -> FwyyError:
    """One line a person can act on, for whatever the Hub or the network answered."""
    import httpx
    from huggingface_hub.errors import HfHubHTTPError

    from fwyy_ollama.hub import shown_endpoint

    where = f"the Hugging Face Hub ({shown_endpoint()})"
    again = "run the same command again: the files the Hub already has are not sent again"
    for e in _cause_chain(exc):
        if isinstance(e, HfHubHTTPError) and e.response is not None:
            status = e.response.status_code
            detail = (getattr(e, "server_message", None) or str(e).splitlines()[0]).strip()
            if status == 401:
                return FwyyError(
                    f"{where} refused the token (HTTP 401: {detail})",
                    hint=f"set HF_TOKEN to a valid token with write access from {TOKEN_PAGE} (or pass --token, or `hf auth login`)",
                )
            if status == 403:
                owner = repo_id.split("/")[0]
                return FwyyError(
                    f"{where} does not let this token write to {repo_id} (HTTP 403: {detail})",
                    hint=f"use a token with write access to {owner} in HF_TOKEN ({TOKEN_PAGE}), or push to a namespace you own",
                )
            what = f" while uploading {current}" if current else ""
            return FwyyError(f"{where} answered HTTP {status} for {repo_id}{what}: {detail}", hint=again)
        if isinstance(e, (httpx.TransportError, ConnectionError)):
            what = f"uploading {current}" if current else f"pushing to {repo_id}"
            return FwyyError(f"{what} stopped: the connection to {where} failed ({type(e).__name__}: {e})", hint=again)
    return FwyyError(f"pushing to {repo_id} failed: {type(exc).__name__}: {exc}", hint=again)


def push_hf(
    folder: Path,
    profile: Any,
    repo_id: str,
    *,
    private: bool = False,
    adapter: bool = False,
    token: str | None = None,
    progress: Progress | None = None,
    message: str | None = None,
) -> HubPushResult:
    """Create `repo_id` (private if asked; an existing repo is reused) and commit the build to it.

    The card is rendered again first (with the repo's download commands and the latest eval),
    so the Hub gets what the folder holds now.
    """
    from fwyy_ollama.hub import endpoint, offline
    from fwyy_ollama.model_card import write_card

    check_repo_id(repo_id)
    if offline():
        raise FwyyError(
            "offline mode (HF_HUB_OFFLINE=1 or --offline) forbids pushing to the Hugging Face Hub",
            hint="unset HF_HUB_OFFLINE (and drop --offline) to push",
        )
    token = hub_token(token)
    write_card(folder, profile, repo_id=repo_id)
    files = hub_files(folder, adapter=adapter)
    report = progress or (lambda *_: None)
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=endpoint(), token=token, library_name="fwyy", library_version=__version__)
    current: str | None = None
    readers: list[_ReportingReader] = []
    sent: list[str] = []
    already: list[str] = []
    try:
        with _hub_for_push():
            report(0, None, f"creating {repo_id}")
            url = str(api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model"))
            operations = []
            phase = {"name": "", "size": 0, "verb": "hashing", "read": 0}

            def moved(position: int) -> None:
                phase["read"] = max(int(phase["read"]), position)
                report(position, phase["size"], f"{phase['verb']} {phase['name']}")

            for f in files:
                current = f.path_in_repo
                if f.data is not None or f.size < (1 << 20):
                    data = f.data if f.data is not None else f.local.read_bytes()  # type: ignore[union-attr]
                    operations.append(CommitOperationAdd(f.path_in_repo, data))
                    continue
                phase.update(name=f.path_in_repo, size=f.size, verb="hashing")
                reader = _ReportingReader(f.local, moved)  # type: ignore[arg-type]
                readers.append(reader)
                operations.append(CommitOperationAdd(f.path_in_repo, reader))
            for op, f in zip(operations, files, strict=True):
                current = f.path_in_repo
                if not isinstance(op.path_or_fileobj, _ReportingReader):
                    continue
                phase.update(name=f.path_in_repo, size=f.size, verb="uploading", read=0)
                report(0, f.size, f"uploading {f.path_in_repo}")
                api.preupload_lfs_files(repo_id, additions=[op], repo_type="model", free_memory=False)
                if op._upload_mode == "lfs":  # noqa: SLF001 - set by the preupload answer
                    (sent if phase["read"] else already).append(f.path_in_repo)
            current = None
            report(0, None, f"committing {len(operations)} files to {repo_id}")
            commit = api.create_commit(
                repo_id,
                operations=operations,
                commit_message=message or f"fwyy {__version__}: {folder.name}",
                repo_type="model",
            )
    except FwyyError:
        raise
    except KeyboardInterrupt:
        raise FwyyError(
            f"push to {repo_id} interrupted" + (f" while uploading {current}" if current else ""),
            exit_code=130,
            hint="run the same command again: the files the Hub already has are not sent again",
        ) from None
    except Exception as exc:  # noqa: BLE001 - mapped to one user-facing line
        raise _push_error(exc, repo_id, current) from None
    finally:
        for r in readers:
            r.close()
    return HubPushResult(
        repo_id=repo_id,
        url=url,
        commit=getattr(commit, "oid", None),
        private=private,
        files=[f.path_in_repo for f in files],
        sent=sent,
        already=already,
    )


# ------------------------------------------------------------------------------------------ Ollama


@dataclass
class OllamaPushResult:
    name: str
    copied_from: str | None
    statuses: list[str]
    page: str | None
    """https://ollama.com/<namespace>/<model> when pushed to ollama.com."""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


_AUTH_WORDS = ("unauthorized", "access denied", "not authorized", "unknown ollama key", "forbidden")


def _ollama_auth_error(name: str, model: str, detail: str) -> FwyyError:
    from fwyy_ollama.ollama_api import parse_model_name

    parsed = parse_model_name(name)
    return FwyyError(
        f"the registry refused to let the Ollama daemon push {name}: {detail}",
        hint=(
            f"add your Ollama public key (~/.ollama/id_ed25519.pub, or the daemon's) at {OLLAMA_KEYS_PAGE}, "
            f"and push under your own user: `fwyy push ollama {model} --as YOUR-USER/{parsed.model}` "
            f"(or `ollama cp {model} YOUR-USER/{parsed.model}` and push that)"
        ),
    )


def push_ollama(
    model: str,
    *,
    as_name: str | None = None,
    insecure: bool = False,
    host: str | None = None,
    progress: Progress | None = None,
) -> OllamaPushResult:
    """Push `model` from the daemon to its registry; with `as_name`, copy it to that name first
    (the daemon's /api/copy, as `ollama cp`) and push the copy."""
    import httpx
    import ollama

    from fwyy_ollama.ollama_api import _api, _check_name, _client, _exists, host_url, parse_model_name
    from fwyy_ollama.redact import redact_url

    _check_name(model)
    source = model if as_name is not None else None
    name = _check_name(as_name) if as_name is not None else model
    parsed = parse_model_name(name)
    default_registry = parsed.host.lower() in ("registry.ollama.ai", "ollama.com")
    if default_registry and parsed.namespace.lower() == "library":
        raise FwyyError(
            f"{name} has no namespace, so Ollama would push it to library/{parsed.model}, which only Ollama can publish to",
            hint=f"push a copy under your Ollama user: `fwyy push ollama {model} --as YOUR-USER/{parsed.model}`",
        )
    url = host_url(host)
    client = _client(url)
    if source is not None:
        with _api(url, f"copy {source} to {name}"):
            try:
                client.copy(source, name)
            except ollama.ResponseError as exc:
                if exc.status_code == 404:
                    raise FwyyError(f"no model {source} at {redact_url(url)}", hint="`fwyy ls` lists them") from None
                raise
    elif not _exists(client, url, name):
        raise FwyyError(
            f"the Ollama daemon at {redact_url(url)} has no model {name} to push",
            hint="`fwyy ls` lists the daemon's models; push one of them, with --as YOUR-USER/NAME to rename it",
        )
    statuses: list[str] = []
    report = progress or (lambda *_: None)
    try:
        with _api(url, f"push {name}"):
            for part in client.push(name, insecure=insecure, stream=True):
                status = part.status or ""
                statuses.append(status)
                total = float(part.total) if part.total else None
                report(float(part.completed or 0), total, status)
    except FwyyError as err:
        lowered = err.message.lower()
        if any(w in lowered for w in _AUTH_WORDS):
            detail = err.message.split(": ", 1)[-1]
            raise _ollama_auth_error(name, model, detail) from None
        if "not found" in lowered:
            raise FwyyError(
                f"the Ollama daemon at {redact_url(url)} has no model {name} to push",
                hint="`fwyy ls` lists the daemon's models; push one of them, with --as YOUR-USER/NAME to rename it",
            ) from None
        raise FwyyError(err.message, hint="run the same command again: layers the registry already has are not sent again") from None
    except httpx.HTTPError as exc:  # the stream broke after it started
        raise FwyyError(
            f"the push of {name} through {redact_url(url)} stopped: {type(exc).__name__}: {exc}",
            hint="run the same command again: layers the registry already has are not sent again",
        ) from None
    except KeyboardInterrupt:
        raise FwyyError(f"push of {name} interrupted", exit_code=130, hint="run the same command again") from None
    if not statuses or statuses[-1] != "success":
        raise FwyyError(
            f"the push of {name} ended before the daemon reported success (last status: {statuses[-1] if statuses else 'none'})",
            hint="run the same command again: layers the registry already has are not sent again",
        )
    page = f"https://ollama.com/{parsed.namespace}/{parsed.model}" if default_registry else None
    return OllamaPushResult(name=name, copied_from=source, statuses=statuses, page=page)
