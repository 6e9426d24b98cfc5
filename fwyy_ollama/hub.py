"""Fetch a base model from the Hugging Face Hub into the ordinary HF cache, resumably.

Why fwyy downloads at all: on a fresh GPU machine `fwyy build` used to stop at once because the
base was not cached, while every tool people compare it with (Unsloth, LLaMA-Factory, `ollama
pull`) fetches the model itself. The download is planned before a byte moves: the Hub's file
listing gives each file's size, so a full disk is refused up front instead of after 14 GB.

Why the bytes are moved here and not by `snapshot_download`: huggingface_hub writes each file to a
per-process temporary name and deletes it when interrupted, so a Ctrl-C in the middle of a 4 GB
shard started that shard again. fwyy streams each missing blob into `blobs/<etag>.incomplete` of
the HF cache (the name older huggingface_hub releases resumed from) with `Range` requests, checks
its size and, for LFS files, its sha256, and renames it into place; `snapshot_download` then only
links the finished blobs into the snapshot, so the cache is the one every HF tool reads.

The endpoint (HF_ENDPOINT), cache (HF_HUB_CACHE, HF_HOME) and offline switch (HF_HUB_OFFLINE, or
`--offline`) are read when a call is made, not when huggingface_hub was imported, so tests and
the CLI can set them late. Nothing here imports torch or transformers.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fwyy_ollama.errors import FwyyError

Progress = Callable[[float, float | None, str], None]

DEFAULT_ENDPOINT = "https://huggingface.co"
MODEL_PATTERNS = ("*.json", "*.safetensors", "tokenizer.model", "*.txt", "*.jinja", "*.tiktoken")
"""What training and the merge read: config, safetensors weights, tokenizer files (no .bin, .gguf, onnx)."""
SPARE_BYTES = 256 * 2**20
"""Free space kept beyond the download itself, so the machine is not left with a full disk."""
_CHUNK = 1 << 20
_RETRIES = 5


def offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub reads it (1/ON/YES/TRUE); `--offline` sets it."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def shown_endpoint() -> str:
    """The endpoint as messages show it: a user:password@ in HF_ENDPOINT is never printed."""
    from fwyy_ollama.redact import redact_url

    return redact_url(endpoint())


def hub_cache() -> Path:
    """The HF hub cache folder, resolved now from HF_HUB_CACHE, HF_HOME or the default."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "huggingface"
    )
    return Path(home).expanduser() / "hub"


def model_page(repo_id: str) -> str:
    """Where a person accepts a gated model's licence (on the Hub fwyy talks to)."""
    return f"{shown_endpoint()}/{repo_id}"


def _token() -> str | None:
    return os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None


_SWITCH = threading.Lock()


@contextmanager
def _hub_online() -> Iterator[None]:
    """huggingface_hub's offline switch as fwyy reads it now (it read HF_HUB_OFFLINE once, at import).

    fwyy decides offline mode at call time (the environment, `--offline`); a process that imported
    huggingface_hub under HF_HUB_OFFLINE=1 and has since been allowed online would otherwise still
    refuse every request.
    """
    from huggingface_hub import constants

    with _SWITCH:
        before = constants.HF_HUB_OFFLINE
        constants.HF_HUB_OFFLINE = offline()
        try:
            yield
        finally:
            constants.HF_HUB_OFFLINE = before


@dataclass(frozen=True)
class HubFile:
    path: str
    size: int
    etag: str
    """The blob's name in the cache: the LFS sha256, else the git blob id (the Hub's ETag)."""
    lfs: bool


@dataclass(frozen=True)
class Plan:
    """What a download of one repo would move, known before it starts."""

    repo_id: str
    commit: str
    files: tuple[HubFile, ...]
    missing: tuple[HubFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def missing_bytes(self) -> int:
        return sum(f.size for f in self.missing)


def _has_weights(folder: Path) -> bool:
    """config.json and every safetensors shard the model needs (per its index, if sharded) are there."""
    import json

    if not (folder / "config.json").is_file():
        return False
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, AttributeError):
            return False
        return bool(shards) and all((folder / s).is_file() for s in shards)
    return any(p.is_file() for p in folder.glob("*.safetensors"))


def cached_model(repo_id: str) -> Path | None:
    """The repo's cached snapshot at `main` when it holds a loadable model; no network call.

    Read from the cache layout itself (refs/main -> snapshots/<commit>), so a snapshot fetched by
    fwyy, by `hf download` or by transformers counts, whatever else the repo has in subfolders.
    """
    storage = _storage(repo_id)
    try:
        commit = (storage / "refs" / "main").read_text().strip()
    except OSError:
        return None
    folder = storage / "snapshots" / commit
    return folder if commit and _has_weights(folder) else None


def require_hub() -> Any:
    """huggingface_hub, or None when it is not installed (it is a core dependency; be lenient)."""
    try:
        import huggingface_hub
    except ImportError:
        return None
    return huggingface_hub


def _refused(repo_id: str, status: int | None, what: str) -> FwyyError:
    status_text = f" (HTTP {status})" if status else ""
    if _token():
        hint = (
            f"HF_TOKEN is set, but its account has no access: accept the licence at {model_page(repo_id)} "
            "with that account (gated models are granted per account), then run again"
        )
    else:
        hint = (
            f"accept the licence at {model_page(repo_id)}, create a read token at "
            f"{shown_endpoint()}/settings/tokens and export HF_TOKEN=<token>, then run again"
        )
    return FwyyError(f"the Hugging Face Hub refused access to {what} {repo_id}{status_text}: it is gated", hint=hint)


def _hub_error(exc: BaseException, repo_id: str, what: str) -> FwyyError:
    """One line for what went wrong talking to the Hub, with what to do about it."""
    import httpx
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    from fwyy_ollama.redact import redact_url

    status = getattr(getattr(exc, "response", None), "status_code", None)
    detail = redact_url(str(exc).strip().splitlines()[0]) if str(exc).strip() else type(exc).__name__
    if isinstance(exc, GatedRepoError) or status in (401, 403) and not isinstance(exc, RepositoryNotFoundError):
        return _refused(repo_id, status, what)
    if isinstance(exc, (RepositoryNotFoundError, RevisionNotFoundError)) or status == 404:
        return FwyyError(
            f"{what} {repo_id} does not exist on the Hugging Face Hub ({shown_endpoint()})",
            hint="check the id (profile key base.hf_id / base.unsloth_id); a private repo also needs HF_TOKEN",
        )
    if isinstance(exc, HfHubHTTPError):
        return FwyyError(f"the Hugging Face Hub answered an error for {repo_id}: {detail}")
    if isinstance(exc, (httpx.TransportError, OSError)) or "Connect" in type(exc).__name__:
        return FwyyError(
            f"cannot reach the Hugging Face Hub at {shown_endpoint()} to download {what} {repo_id} "
            f"({type(exc).__name__}: {detail})",
            hint="check the network (or HF_ENDPOINT); a download that stopped resumes where it was on the next run",
        )
    return FwyyError(f"downloading {repo_id} failed: {type(exc).__name__}: {detail}")


def plan_download(repo_id: str, *, what: str = "model", patterns: tuple[str, ...] = MODEL_PATTERNS) -> Plan:
    """Ask the Hub for the repo's commit and file listing (sizes), and see what the cache lacks."""
    hub = require_hub()
    if hub is None:
        raise FwyyError("downloading a base model needs huggingface_hub", hint="pip install huggingface_hub")
    api = hub.HfApi(endpoint=endpoint(), token=_token())
    try:
        with _hub_online():
            commit = api.model_info(repo_id, revision="main").sha
            listing = list(api.list_repo_tree(repo_id, recursive=True, revision=commit))
    except Exception as exc:  # noqa: BLE001 - mapped to one user-facing line
        raise _hub_error(exc, repo_id, what) from None
    files: list[HubFile] = []
    for entry in listing:
        size = getattr(entry, "size", None)
        if size is None or not any(fnmatch.fnmatch(entry.path.rsplit("/", 1)[-1], p) for p in patterns):
            continue
        if "/" in entry.path:  # original/, onnx/, gguf/ subfolders: not what HF loading reads
            continue
        lfs = getattr(entry, "lfs", None)
        sha = getattr(lfs, "sha256", None) if lfs is not None else None
        files.append(HubFile(entry.path, int(size), str(sha or entry.blob_id), lfs is not None))
    if not any(f.path.endswith(".safetensors") for f in files):
        raise FwyyError(
            f"{what} {repo_id} on the Hub has no .safetensors weights, which fwyy trains on and merges from",
            hint="pick a repo that ships safetensors (most do), or convert it once and set base.hf_id to the folder",
        )
    blobs = _storage(repo_id) / "blobs"
    missing = tuple(f for f in files if not (blobs / f.etag).is_file())
    return Plan(repo_id, str(commit), tuple(files), missing)


def _storage(repo_id: str) -> Path:
    return hub_cache() / ("models--" + repo_id.replace("/", "--"))


def check_disk(plan: Plan) -> None:
    """Refuse a download that would not fit, before it starts (partial blobs already count)."""
    if not plan.missing:
        return
    blobs = _storage(plan.repo_id) / "blobs"
    have = sum(
        (blobs / f"{f.etag}.incomplete").stat().st_size for f in plan.missing if (blobs / f"{f.etag}.incomplete").is_file()
    )
    need = plan.missing_bytes - have
    probe = hub_cache()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < need + SPARE_BYTES:
        raise FwyyError(
            f"downloading {plan.repo_id} needs {need / 2**30:.2f} GiB (+{SPARE_BYTES / 2**30:.2f} GiB spare) in "
            f"{hub_cache()}, and {free / 2**30:.2f} GiB are free there",
            hint="free some space, or point HF_HOME (or HF_HUB_CACHE) at a larger disk and run again",
        )


def fetch_model(
    repo_id: str,
    *,
    what: str = "base model",
    progress: Progress | None = None,
    patterns: tuple[str, ...] = MODEL_PATTERNS,
) -> Path:
    """A local snapshot folder of `repo_id`: the cached one, else downloaded (resumably) into the HF cache.

    A complete cached snapshot is used without asking the Hub, so a second build costs no network
    and builds are reproducible until the user refreshes the cache (`hf download`).
    """
    cached = cached_model(repo_id)
    if cached is not None:
        return cached
    if offline():
        raise FwyyError(
            f"{what} {repo_id} is not on this machine, and offline mode (HF_HUB_OFFLINE=1 or --offline) "
            "forbids downloading it",
            hint=f"run once without HF_HUB_OFFLINE/--offline so fwyy fetches it, or fetch it with `hf download {repo_id}`",
        )
    plan = plan_download(repo_id, what=what, patterns=patterns)
    check_disk(plan)
    _download(plan, progress)
    return _link_snapshot(plan, what)


def _download(plan: Plan, progress: Progress | None) -> None:
    import httpx
    from huggingface_hub import hf_hub_url

    blobs = _storage(plan.repo_id) / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    total = plan.missing_bytes
    done = 0
    if progress:
        progress(0, total, f"downloading {plan.repo_id} ({len(plan.missing)} files)")
    headers = {"user-agent": "fwyy-ollama", "Accept-Encoding": "identity"}
    if _token():
        headers["authorization"] = f"Bearer {_token()}"
    with httpx.Client(follow_redirects=True, timeout=httpx.Timeout(30.0, read=120.0)) as client:
        for f in plan.missing:
            url = hf_hub_url(plan.repo_id, f.path, revision=plan.commit, endpoint=endpoint())

            def moved(n: int, name: str = f.path) -> None:
                nonlocal done
                done += n
                if progress:
                    progress(done, total, f"{plan.repo_id} {name}")

            _fetch_blob(client, url, headers, f, blobs, moved, plan.repo_id)
    if progress:
        progress(total, total, f"downloaded {plan.repo_id}")


def _fetch_blob(
    client: Any, url: str, headers: dict[str, str], f: HubFile, blobs: Path, moved: Callable[[int], None], repo_id: str
) -> None:
    """Stream one file into blobs/<etag>.incomplete, resuming with Range, then verify and rename it."""
    import httpx

    blob = blobs / f.etag
    partial = blobs / f"{f.etag}.incomplete"
    have = partial.stat().st_size if partial.is_file() else 0
    if have > f.size:
        partial.unlink()
        have = 0
    moved(have)
    tries = _RETRIES
    while have < f.size:
        request_headers = dict(headers)
        if have:
            request_headers["Range"] = f"bytes={have}-"
        try:
            with client.stream("GET", url, headers=request_headers) as reply:
                if reply.status_code >= 400:
                    reply.read()
                    raise _http_error(reply, repo_id)
                mode = "ab"
                if have and reply.status_code == 200:  # the server ignored Range: start over
                    moved(-have)
                    have, mode = 0, "wb"
                with open(partial, mode) as out:
                    for chunk in reply.iter_bytes(_CHUNK):
                        out.write(chunk)
                        have += len(chunk)
                        moved(len(chunk))
                        tries = _RETRIES  # progress was made: the retry budget is for stalls
        except (httpx.TransportError, httpx.StreamError) as exc:
            tries -= 1
            if tries <= 0:
                raise _hub_error(exc, repo_id, "model") from None
            continue
    if have != f.size:
        partial.unlink(missing_ok=True)
        raise FwyyError(f"{repo_id}: {f.path} arrived with {have} bytes, the Hub lists {f.size}; run again")
    if f.lfs and len(f.etag) == 64:
        digest = hashlib.sha256()
        with open(partial, "rb") as fh:
            for chunk in iter(lambda: fh.read(8 * _CHUNK), b""):
                digest.update(chunk)
        if digest.hexdigest() != f.etag:
            partial.unlink(missing_ok=True)
            raise FwyyError(f"{repo_id}: {f.path} does not match the Hub's sha256 (corrupted in transit); run again")
    os.replace(partial, blob)


def _http_error(reply: Any, repo_id: str) -> FwyyError:
    from huggingface_hub.utils import hf_raise_for_status

    try:
        hf_raise_for_status(reply)
    except Exception as exc:  # noqa: BLE001 - mapped to one user-facing line
        return _hub_error(exc, repo_id, "model")
    return FwyyError(f"the Hugging Face Hub answered HTTP {reply.status_code} for {repo_id}")


def _link_snapshot(plan: Plan, what: str) -> Path:
    """Let huggingface_hub lay out the snapshot (links, refs, its listing cache) over the finished blobs."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        with _hub_online():
            snapshot_download(
                plan.repo_id,
                revision=plan.commit,
                cache_dir=str(hub_cache()),
                endpoint=endpoint(),
                token=_token(),
                allow_patterns=[f.path for f in plan.files],
            )
        # Point `main` at this commit too, so an offline lookup by name finds it.
        refs = _storage(plan.repo_id) / "refs"
        refs.mkdir(parents=True, exist_ok=True)
        if not (refs / "main").is_file() or (refs / "main").read_text().strip() != plan.commit:
            from fwyy_ollama.atomic import atomic_path

            with atomic_path(refs / "main") as tmp:
                tmp.write_text(plan.commit)
    except FwyyError:
        raise
    except Exception as exc:  # noqa: BLE001 - mapped to one user-facing line
        raise _hub_error(exc, plan.repo_id, what) from None
    finally:
        if not was_disabled:
            enable_progress_bars()
    folder = _storage(plan.repo_id) / "snapshots" / plan.commit
    if not _has_weights(folder):
        raise FwyyError(f"{plan.repo_id}: the downloaded snapshot {folder} has no config.json or safetensors")
    return folder


def describe(repo_id: str) -> str:
    """For `fwyy doctor`: cached (where), or what a download would move — without downloading."""
    cached = cached_model(repo_id)
    if cached is not None:
        return f"cached at {cached}"
    if offline():
        raise FwyyError(
            f"{repo_id} is not cached and offline mode (HF_HUB_OFFLINE=1) forbids downloading it",
            hint=f"unset HF_HUB_OFFLINE, or fetch it once with `hf download {repo_id}`",
        )
    plan = plan_download(repo_id)
    check_disk(plan)
    return (
        f"not cached; `fwyy build` downloads {plan.missing_bytes / 2**30:.2f} GiB "
        f"({len(plan.missing)} files) from {shown_endpoint()} into {hub_cache()}"
    )
