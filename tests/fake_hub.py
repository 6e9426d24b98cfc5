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

Uploads, as huggingface_hub's create_repo / preupload_lfs_files / create_commit send them (read
from its hf_api.py, _commit_api.py and lfs.py), with a token that must match `token` (401
otherwise; a token in `read_only_tokens` gets 403):

- POST /api/repos/create  {name, organization, visibility}: 200 {url}, 409 when it exists
- POST /api/validate-yaml  the README's front-matter must parse as a YAML mapping (400 otherwise)
- POST /api/models/{repo}/preupload/{rev}  uploadMode lfs|regular per file, and the oid the repo
  already holds at that path (so an unchanged file is left out of the commit)
- POST /{repo}.git/info/lfs/objects/batch  the git-lfs batch API: no `actions` for an object the
  Hub already stores (the client then sends nothing), else an upload href on the storage origin
  plus a verify href; objects over `multipart_threshold` get the Hub's multipart form (chunk_size
  and one presigned URL per part, the href being the completion endpoint)
- PUT  /storage/{sha256}[/{part}] on the second port (the storage origin, like S3): ETag per part
- POST /{repo}.git/info/lfs/objects/verify|complete/{sha256}  checks the object arrived whole
- POST /api/models/{repo}/commit/{rev}  NDJSON: header, file (base64), lfsFile (must be stored)

`fail_upload(sha256, mode)` makes the storage misbehave on the next PUT of that object: "drop"
reads half the body and hangs up (a dropped connection; huggingface_hub retries it), "refuse"
answers 400 IncompleteBody as S3 does for a body cut short (not retried: the push stops there).

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
    private: bool = False

    def __post_init__(self) -> None:
        if not self.commit:
            h = hashlib.sha1(self.repo_id.encode())
            for name in sorted(self.files):
                h.update(name.encode() + hashlib.sha256(self.files[name]).digest())
            self.commit = h.hexdigest()

    def recompute_commit(self, parent: str) -> None:
        h = hashlib.sha1(parent.encode())
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
    read_only_tokens: set[str] = field(default_factory=set)
    lfs_objects: dict[str, bytes] = field(default_factory=dict)
    """LFS objects the storage holds, by sha256 (what an upload added, and every repo's LFS files)."""
    multipart_threshold: int = 8 << 20
    part_size: int = 5 << 20
    commits: list[dict[str, object]] = field(default_factory=list)
    """Every commit: repo, summary and the paths it wrote."""
    _upload_faults: dict[str, list[str]] = field(default_factory=dict)
    _parts: dict[str, dict[int, bytes]] = field(default_factory=dict)

    def fail_upload(self, sha256: str, mode: str = "refuse") -> None:
        """The next PUT of this object to the storage misbehaves: "drop" or "refuse" (see above)."""
        self._upload_faults.setdefault(sha256, []).append(mode)

    def uploads(self) -> list[str]:
        """Storage PUT paths, in order: what a push actually sent."""
        return [r[1] for r in self.requests if r[0] == "PUT"]
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

        def do_POST(self) -> None:
            self._route()

        def do_PUT(self) -> None:
            self._route()

        def _route(self) -> None:
            self._body_read = False  # one handler serves every request of a kept-alive connection
            url = urlsplit(self.path)
            path = unquote(url.path)
            with hub._lock:
                hub.requests.append((self.command, path, self.headers.get("Range", "")))
            if self.command in ("POST", "PUT"):
                return self._write(path)
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

        # -------------------------------------------------------------- uploads

        def _read_body(self, limit: int | None = None) -> bytes:
            """The request body (Content-Length or chunked); with `limit`, only that much of it.
            Read once: a second call (an error answered after the body was read) returns b""."""
            if getattr(self, "_body_read", False):
                return b""
            self._body_read = True
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = b""
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()
                    if limit is not None and len(out) >= limit:
                        return out[:limit]
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length if limit is None else min(limit, length))

        def _writer(self, owner: str | None) -> bool:
            """The token may write (to `owner`); else a 401 or 403 has been sent."""
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ")
            if token in hub.read_only_tokens:
                self._read_body()
                self._error(403, "Forbidden", f"You don't have the rights to write to the namespace {owner}")
                return False
            if auth != f"Bearer {hub.token}":
                self._read_body()
                self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
                return False
            return True

        def _write(self, path: str) -> None:
            routes = [
                (r"/api/repos/create", self._create_repo),
                (r"/api/validate-yaml", self._validate_yaml),
                (r"/api/models/([^/]+/[^/]+)/preupload/([^/]+)", self._preupload),
                (r"/api/models/([^/]+/[^/]+)/commit/([^/]+)", self._commit),
                (r"/([^/]+/[^/]+)\.git/info/lfs/objects/batch", self._batch),
                (r"/([^/]+/[^/]+)\.git/info/lfs/objects/(?:verify|complete/([0-9a-f]{64}))", self._verify),
                (r"/storage/([0-9a-f]{64})(?:/(\d+))?", self._store),
            ]
            for pattern, handler in routes:
                m = re.fullmatch(pattern, path)
                if m and (self.command == "PUT") == (handler == self._store):
                    return handler(*m.groups())
            self._read_body()
            self._error(404, "NotFound", f"no route for {self.command} {path}")

        def _json_body(self) -> dict[str, object]:
            try:
                value = json.loads(self._read_body() or b"{}")
            except ValueError:
                value = None
            return value if isinstance(value, dict) else {}

        def _create_repo(self) -> None:
            body = self._json_body()
            owner, name = body.get("organization"), body.get("name")
            if not self._writer(str(owner)):
                return
            repo_id = f"{owner}/{name}"
            if repo_id in hub.repos:
                self._send(409, json.dumps({"error": "You already created this model repo", "url": f"{hub.endpoint}/{repo_id}"}).encode(), {"Content-Type": "application/json"})
                return
            repo = hub.add_repo(repo_id, {})
            repo.private = body.get("visibility") == "private" or body.get("private") is True
            self._json({"url": f"{hub.endpoint}/{repo_id}", "name": repo_id, "id": repo.commit[:24]})

        def _validate_yaml(self) -> None:
            import yaml

            content = str(self._json_body().get("content", ""))
            meta: object = {}
            if content.startswith("---\n"):
                end = content.find("\n---\n", 4)
                try:
                    meta = yaml.safe_load(content[4:end]) if end > 0 else None
                except yaml.YAMLError as exc:
                    meta = exc
            if not isinstance(meta, dict):
                body = json.dumps({"errors": [{"message": f"Invalid YAML in front-matter: {meta}"}], "warnings": []})
                self._send(400, body.encode(), {"Content-Type": "application/json", "X-Error-Code": "BadRequest"})
                return
            self._json({"errors": [], "warnings": []})

        def _repo_for_write(self, repo_id: str) -> FakeRepo | None:
            if not self._writer(repo_id.split("/")[0]):
                return None
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._read_body()
                self._error(404, "RepoNotFound", f"Repository Not Found for url: {self.path}.")
            return repo

        def _preupload(self, repo_id: str, rev: str) -> None:
            repo = self._repo_for_write(repo_id)
            if repo is None:
                return
            files = []
            for f in self._json_body().get("files", []):  # type: ignore[union-attr]
                path, size = str(f["path"]), int(f["size"])
                lfs = repo.is_lfs(path) or size > 10 << 20
                have = repo.files.get(path)
                oid = None
                if have is not None:
                    oid = hashlib.sha256(have).hexdigest() if lfs else git_blob_sha(have)
                files.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
            self._json({"files": files, "commitOid": repo.commit})

        def _batch(self, repo_id: str) -> None:
            repo = self._repo_for_write(repo_id)
            if repo is None:
                return
            body = self._json_body()
            objects = []
            for o in body.get("objects", []):  # type: ignore[union-attr]
                oid, size = str(o["oid"]), int(o["size"])
                entry: dict[str, object] = {"oid": oid, "size": size, "authenticated": True}
                if oid not in hub.lfs_objects:
                    verify = {"href": f"{hub.endpoint}/{repo_id}.git/info/lfs/objects/verify", "header": {}}
                    if size > hub.multipart_threshold:
                        parts = -(-size // hub.part_size)
                        header = {"chunk_size": str(hub.part_size)}
                        header |= {str(i): f"{hub.cdn}/storage/{oid}/{i}" for i in range(1, parts + 1)}
                        href = f"{hub.endpoint}/{repo_id}.git/info/lfs/objects/complete/{oid}"
                        entry["actions"] = {"upload": {"href": href, "header": header}, "verify": verify}
                    else:
                        entry["actions"] = {"upload": {"href": f"{hub.cdn}/storage/{oid}"}, "verify": verify}
                objects.append(entry)
            self._json({"transfer": "basic", "objects": objects})

        def _store(self, oid: str, part: str | None) -> None:
            faults = hub._upload_faults.get(oid)
            fault = faults.pop(0) if faults else None
            if fault == "drop":
                length = int(self.headers.get("Content-Length") or 0)
                self._read_body(limit=length // 2)
                self.close_connection = True
                self.connection.shutdown(2)
                return
            data = self._read_body()
            if fault == "refuse":
                xml = b"<Error><Code>IncompleteBody</Code><Message>You did not provide the number of bytes specified by the Content-Length HTTP header.</Message></Error>"
                self._send(400, xml, {"Content-Type": "application/xml"})
                return
            with hub._lock:
                hub.body_bytes += len(data)
                if part is None:
                    hub.lfs_objects[oid] = data
                else:
                    hub._parts.setdefault(oid, {})[int(part)] = data
            self._send(200, b"", {"ETag": f'"{hashlib.md5(data).hexdigest()}"'})

        def _verify(self, repo_id: str, oid: str | None) -> None:
            body = self._json_body()
            if oid is not None:  # multipart completion: join the parts in the order given
                parts = hub._parts.pop(oid, {})
                numbers = [int(p["partNumber"]) for p in body.get("parts", [])]  # type: ignore[union-attr]
                if not numbers or any(n not in parts for n in numbers):
                    self._error(400, "BadRequest", "missing parts")
                    return
                data = b"".join(parts[n] for n in sorted(numbers))
                if hashlib.sha256(data).hexdigest() != oid:
                    self._error(400, "BadRequest", "sha256 mismatch after completing the multipart upload")
                    return
                hub.lfs_objects[oid] = data
                self._json({"success": True})
                return
            oid = str(body.get("oid"))
            if oid not in hub.lfs_objects or len(hub.lfs_objects[oid]) != body.get("size"):
                self._error(404, "NotFound", f"object {oid} is not stored")
                return
            self._json({"success": True})

        def _commit(self, repo_id: str, rev: str) -> None:
            repo = self._repo_for_write(repo_id)
            if repo is None:
                return
            import base64

            summary, written = "", []
            for line in self._read_body().splitlines():
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "header":
                    summary = value["summary"]
                elif key == "file":
                    repo.files[value["path"]] = base64.b64decode(value["content"])
                    written.append(value["path"])
                elif key == "lfsFile":
                    stored = hub.lfs_objects.get(value["oid"])
                    if stored is None:
                        self._error(400, "BadRequest", "Your push was rejected because an LFS pointer pointed to a file that does not exist")
                        return
                    repo.files[value["path"]] = stored
                    written.append(value["path"])
                elif key == "deletedFile":
                    repo.files.pop(value["path"], None)
            repo.recompute_commit(repo.commit)
            hub.commits.append({"repo": repo_id, "summary": summary, "files": written})
            self._json(
                {"commitUrl": f"{hub.endpoint}/{repo_id}/commit/{repo.commit}", "commitOid": repo.commit, "success": True, "pullRequestUrl": None}
            )

    return Handler
