"""A loopback Hugging Face Hub for tests: the real huggingface_hub client talks to it via HF_ENDPOINT.

Why a fake at the HTTP level: fwyy's downloads go through huggingface_hub (repo info, file
listing, HEAD metadata, redirects to a CDN, Range requests for resuming), and the behaviour worth
testing lives in those exchanges. The server answers the way the Hub does for the client's
current version (read from its source: file_download.get_hf_file_metadata, http_get,
utils/_http.hf_raise_for_status, hf_api.repo_info / list_repo_tree):

- GET  /api/models/{org}/{name}[/revision/{rev}]  repo info: sha, siblings (with sizes)
- GET  /api/models/{org}/{name}/tree/{rev}[/{dir}]  file listing: type, oid, size, path, lfs
- HEAD|GET /{org}/{name}/resolve/{rev}/{file}  ETag (git blob sha), X-Repo-Commit; for LFS files a
  302 to the "CDN" with X-Linked-Etag / X-Linked-Size, as the Hub does
- HEAD|GET /cdn/{sha256}  on a second port (another origin, like the real CDN), with Range support

Errors carry the Hub's X-Error-Code header: 401 GatedRepo for a gated repo without a valid
token, 404 RepoNotFound / EntryNotFound / RevisionNotFound. `interrupt()` makes the next GET of a
file drop the connection after some bytes, which is how a dropped connection or a Ctrl-C in the
middle of a shard looks to the client.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")


def git_blob_sha(data: bytes) -> str:
    """The git object id of a file, which the Hub uses as the ETag of non-LFS files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FakeRepo:
    repo_id: str
    files: dict[str, bytes]
    gated: bool = False
    commit: str = ""

    def __post_init__(self) -> None:
        if not self.commit:
            h = hashlib.sha1(self.repo_id.encode())
            for name in sorted(self.files):
                h.update(name.encode() + hashlib.sha256(self.files[name]).digest())
            self.commit = h.hexdigest()

    def is_lfs(self, name: str) -> bool:
        return name.endswith(LFS_SUFFIXES)


@dataclass
class FakeHub:
    """Start with `with FakeHub() as hub:`; hub.endpoint goes into HF_ENDPOINT."""

    token: str = "hf_fake_token"
    repos: dict[str, FakeRepo] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    """(method, path, Range header) of every request, in order."""
    body_bytes: int = 0
    """File bytes sent (resolve and CDN bodies), to tell whether a run downloaded anything."""
    _interrupts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_repo(self, repo_id: str, files: dict[str, bytes], *, gated: bool = False) -> FakeRepo:
        repo = FakeRepo(repo_id, dict(files), gated=gated)
        self.repos[repo_id] = repo
        return repo

    def add_folder(self, repo_id: str, folder: Path, *, gated: bool = False) -> FakeRepo:
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        return self.add_repo(repo_id, files, gated=gated)

    def interrupt(self, repo_id: str, filename: str, after_bytes: int) -> None:
        """The next GET of this file sends `after_bytes` of its body and then drops the connection."""
        self._interrupts[f"{repo_id}/{filename}"] = after_bytes

    def file_requests(self, method: str = "GET") -> list[tuple[str, str, str]]:
        return [r for r in self.requests if r[0] == method and ("/resolve/" in r[1] or r[1].startswith("/cdn/"))]

    # ------------------------------------------------------------------ server

    def __enter__(self) -> FakeHub:
        self._servers = [_Server(("127.0.0.1", 0), _handler(self)) for _ in range(2)]
        for s in self._servers:
            s.daemon_threads = True
            threading.Thread(target=s.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for s in self._servers:
            s.shutdown()
            s.server_close()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._servers[0].server_address[1]}"

    @property
    def cdn(self) -> str:
        # Another host name for the same loopback: huggingface_hub (by host name, or by origin in
        # newer releases) follows a HEAD's redirect only within the Hub, as with the real CDN.
        return f"http://localhost:{self._servers[1].server_address[1]}"

    def _find_blob(self, sha256: str) -> tuple[FakeRepo, str] | None:
        for repo in self.repos.values():
            for name, data in repo.files.items():
                if hashlib.sha256(data).hexdigest() == sha256:
                    return repo, name
        return None


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up mid-body (the Ctrl-C test) is expected, not an error to print."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        # -------------------------------------------------------------- helpers

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and body:
                self.wfile.write(body)

        def _json(self, value: object, headers: dict[str, str] | None = None) -> None:
            self._send(200, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})

        def _error(self, status: int, code: str, message: str) -> None:
            body = json.dumps({"error": message}).encode()
            self._send(
                status,
                body,
                {"Content-Type": "application/json", "X-Error-Code": code, "X-Error-Message": message},
            )

        def _repo(self, repo_id: str, rev: str | None) -> FakeRepo | None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", f"Repository Not Found for url: {self.path}.")
                return None
            if repo.gated and self.headers.get("Authorization") != f"Bearer {hub.token}":
                self._error(
                    401,
                    "GatedRepo",
                    f"Access to model {repo_id} is restricted. You must have access to it and be authenticated.",
                )
                return None
            if rev not in (None, "main", repo.commit):
                self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
                return None
            return repo

        def _body(self, data: bytes, etag: str, extra: dict[str, str], interrupt_key: str) -> None:
            """Send a file body, honouring `Range: bytes=N-` and a pending interruption."""
            start = 0
            rng = self.headers.get("Range")
            status = 200
            headers = {"ETag": f'"{etag}"', "Accept-Ranges": "bytes", **extra}
            if rng:
                m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
                if m:
                    start = int(m.group(1))
                    if start >= len(data):
                        self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                        return
                    status = 206
                    headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            part = data[start:]
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(part)))
            self.end_headers()
            if self.command == "HEAD":
                return
            cut = hub._interrupts.pop(interrupt_key, None)
            if cut is not None and cut < len(part):
                self.wfile.write(part[:cut])
                self.wfile.flush()
                with hub._lock:
                    hub.body_bytes += cut
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(part)
            with hub._lock:
                hub.body_bytes += len(part)

        # -------------------------------------------------------------- routes

        def do_HEAD(self) -> None:
            self._route()

        def do_GET(self) -> None:
            self._route()

        def _route(self) -> None:
            url = urlsplit(self.path)
            path = unquote(url.path)
            with hub._lock:
                hub.requests.append((self.command, path, self.headers.get("Range", "")))
            m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
            if m:
                return self._info(m.group(1), m.group(2))
            m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path)
            if m:
                return self._tree(m.group(1), m.group(2), m.group(3) or "", parse_qs(url.query))
            m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
            if m:
                return self._resolve(m.group(1), m.group(2), m.group(3))
            m = re.fullmatch(r"/cdn/([0-9a-f]{64})", path)
            if m:
                return self._cdn(m.group(1))
            self._error(404, "NotFound", f"no route for {path}")

        def _entries(self, repo: FakeRepo) -> Iterator[dict[str, object]]:
            for name in sorted(repo.files):
                data = repo.files[name]
                entry: dict[str, object] = {"type": "file", "oid": git_blob_sha(data), "size": len(data), "path": name}
                if repo.is_lfs(name):
                    entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
                yield entry

        def _info(self, repo_id: str, rev: str | None) -> None:
            repo = self._repo(repo_id, rev)
            if repo is None:
                return
            siblings = []
            for e in self._entries(repo):
                sib: dict[str, object] = {"rfilename": e["path"], "size": e["size"], "blobId": e["oid"]}
                if "lfs" in e:
                    sib["lfs"] = {"sha256": e["lfs"]["oid"], "size": e["size"], "pointerSize": 134}  # type: ignore[index]
                siblings.append(sib)
            self._json(
                {
                    "_id": repo.commit[:24],
                    "id": repo_id,
                    "modelId": repo_id,
                    "sha": repo.commit,
                    "private": False,
                    "gated": "manual" if repo.gated else False,
                    "disabled": False,
                    "downloads": 0,
                    "likes": 0,
                    "tags": [],
                    "lastModified": "2026-01-01T00:00:00.000Z",
                    "createdAt": "2026-01-01T00:00:00.000Z",
                    "siblings": siblings,
                }
            )

        def _tree(self, repo_id: str, rev: str, under: str, query: dict[str, list[str]]) -> None:
            repo = self._repo(repo_id, rev)
            if repo is None:
                return
            recursive = query.get("recursive", ["false"])[0].lower() in ("true", "1")
            out: list[dict[str, object]] = []
            folders: set[str] = set()
            prefix = under.strip("/") + "/" if under.strip("/") else ""
            for e in self._entries(repo):
                name = str(e["path"])
                if not name.startswith(prefix):
                    continue
                rest = name[len(prefix) :]
                if "/" in rest and not recursive:
                    folders.add(prefix + rest.split("/", 1)[0])
                    continue
                if recursive:
                    parts = rest.split("/")[:-1]
                    for i in range(1, len(parts) + 1):
                        folders.add(prefix + "/".join(parts[:i]))
                out.append(e)
            out = [{"type": "directory", "oid": "0" * 40, "size": 0, "path": f} for f in sorted(folders)] + out
            self._json(out)

        def _resolve(self, repo_id: str, rev: str, filename: str) -> None:
            repo = self._repo(repo_id, rev)
            if repo is None:
                return
            data = repo.files.get(filename)
            if data is None:
                self._error(404, "EntryNotFound", f"{filename} does not exist on {rev}")
                return
            commit = {"X-Repo-Commit": repo.commit}
            if repo.is_lfs(filename):
                sha = hashlib.sha256(data).hexdigest()
                self._send(
                    302,
                    b"",
                    {
                        "Location": f"{hub.cdn}/cdn/{sha}",
                        "ETag": f'"{git_blob_sha(data)}"',
                        "X-Linked-Etag": f'"{sha}"',
                        "X-Linked-Size": str(len(data)),
                        **commit,
                    },
                )
                return
            self._body(data, git_blob_sha(data), commit, f"{repo_id}/{filename}")

        def _cdn(self, sha: str) -> None:
            found = hub._find_blob(sha)
            if found is None:
                self._error(404, "NotFound", "no such object")
                return
            repo, name = found
            self._body(repo.files[name], sha, {}, f"{repo.repo_id}/{name}")

    return Handler
