"""A loopback server that behaves as Ollama's REST API documentation says, for tests.

The Ollama daemon cannot be installed on these machines, so the tests talk through the real
`ollama` client to this server instead. It follows the documented behaviour (and the status
codes and error bodies of Ollama's server): blobs by sha256 digest (HEAD 200/404, POST 201 with
digest verification, 400 `digest mismatch`), `/api/create` streaming status lines (GGUF parsing,
quantizing only F16/BF16/F32 to q8_0/q4_K_S/q4_K_M, layers, manifest, success), `/api/show`,
`/api/tags`, `/api/delete` (404 `{"error": "model 'x' not found"}`), `/api/chat` and
`/api/generate` streaming NDJSON or one object, `/api/version`, `/api/ps`, `/api/copy` (404 for
a missing source) and `/api/push`, streamed as server/images.go PushModel reports it: "retrieving
manifest", one "pushing <digest[7:19]>" line per layer with digest/total/completed (complete at
once for a layer the registry already has), "pushing manifest", "success". The registry is
`registry_owner` (the namespace whose key the daemon holds; None: the key is unknown to it),
`registry_blobs` the layers it has; a push elsewhere ends in the registry's refusal as an
{"error"} line, and `push_cut_after` ends the stream after that many lines with no "success"
(a daemon that died or a connection that dropped mid-push).

Strict where the real daemon is (ollama/ollama server/routes.go, server/create.go, server/images.go,
types/model/name.go): an error before the first streamed line is a real HTTP status with a JSON
body (routes.go streamResponse), later ones an `{"error"}` line; names are checked with Ollama's
rules; quantizing ends with `verifying conversion`; a model made FROM another keeps the base's
parameters it does not override; `/api/show` names a missing model with its `:latest` tag; fields
of /api/create the emulated `version` does not know are dropped silently, as Go's JSON decoder
does (renderer/parser from 0.12.0, requires 0.14.0, draft_files 0.30.0); BF16 is quantized from
0.22.0; and from 0.30.11 a GGUF's own Jinja chat template is run instead of TEMPLATE when it has
more capabilities (`FakeModel.runs`, `go_template_env` stands for OLLAMA_GO_TEMPLATE).

Use the `fake_ollama` fixture (it also points OLLAMA_HOST at the server for the test); import its
function under its own name so ruff sees no redefinition::

    from tests.fake_ollama import fake_ollama_fixture  # noqa: F401  (registers fixture "fake_ollama")

    def test_x(fake_ollama):
        fake_ollama.add_model("fwyy-qwen2")
        fake_ollama.reply = "Analysis: ...\\nLabel: high\\nRisk: ...\\nSolution: ..."
        ...  # talk to fake_ollama.host
        assert fake_ollama.requests[-1].path == "/api/chat"
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

VERSION = "0.30.11"
"""The Ollama release the fake behaves as by default (set `FakeOllama.version` for another)."""
QUANTIZE_TYPES = {"Q8_0": "Q8_0", "Q4_K_S": "Q4_K_S", "Q4_K_M": "Q4_K_M"}
_DIGEST_RE = re.compile(r"^sha256[:-][0-9a-f]{64}$")
_FILE_TYPES = {0: "F32", 1: "F16", 32: "BF16", 7: "Q8_0", 14: "Q4_K_S", 15: "Q4_K_M", 3: "Q4_1", 2: "Q4_0"}

DEFAULT_REPLY = (
    "Analysis: The command pipes a script fetched over plain HTTP straight into a shell.\n"
    "Label: high\n"
    "Risk: Anyone on the network path can replace the script and run code as this user.\n"
    "Solution: Download over HTTPS, verify a checksum or signature, read it, then run it."
)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def full_name(name: str) -> str:
    """Ollama's name normalisation: a missing tag is :latest."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _version(text: str) -> tuple[int, ...]:
    m = re.match(r"^v?(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(g) for g in m.groups()) if m else (0, 0, 0)


# types/model/name.go, written out again here so the fake does not trust fwyy's own port.
_NAME_PART = {
    "host": re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}$"),
    "namespace": re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,79}$"),
    "model": re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$"),
    "tag": re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$"),
}


def valid_name(name: str) -> bool:
    """Ollama's ParseName + IsValid: [[scheme://]host/][namespace/]model[:tag], defaults merged."""
    parts = {"host": "registry.ollama.ai", "namespace": "library", "tag": "latest"}
    rest = name
    if rest.rfind(":") > rest.rfind("/"):
        rest, _, parts["tag"] = rest.rpartition(":")
        if not rest or not parts["tag"]:
            return False
    pieces = rest.split("/")
    if len(pieces) > 3 and "://" in rest:  # a scheme's "//" splits too
        scheme_host = "/".join(pieces[:-2])
        pieces = [scheme_host.split("://", 1)[1], *pieces[-2:]]
    if len(pieces) > 3 or any(p == "" for p in pieces):
        return False
    parts["model"] = pieces[-1]
    if len(pieces) >= 2:
        parts["namespace"] = pieces[-2]
    if len(pieces) == 3:
        parts["host"] = pieces[0]
    return all(_NAME_PART[k].match(v) for k, v in parts.items())


def _jinja_caps(t: str) -> set[str]:
    caps = set()
    if "tools" in t or "tool_call" in t:
        caps.add("tools")
    if "<think>" in t and "</think>" in t:
        caps.add("thinking")
    return caps


def _go_caps(t: str) -> set[str]:
    caps = set()
    if re.search(r"\.Tools\b", t):
        caps.add("tools")
    if re.search(r"\.Suffix\b", t):
        caps.add("insert")
    return caps


@dataclass
class Request:
    method: str
    path: str
    body: Any
    """Parsed JSON (or None); blob uploads record their size instead: {"bytes": n}."""


@dataclass
class FakeModel:
    name: str
    template: str = "{{ .Prompt }}"
    system: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    license: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    quantization: str = "Q4_K_M"
    family: str = "llama"
    parameter_size: str = "135M"
    size: int = 0
    digest: str = ""
    modified_at: str = field(default_factory=_now)
    chat_template: str = ""
    """The GGUF's tokenizer.chat_template (what Ollama 0.30+ may run natively)."""
    renderer: str = ""
    parser: str = ""
    requires: str = ""
    adapters: dict[str, str] = field(default_factory=dict)
    draft_files: dict[str, str] = field(default_factory=dict)
    prefer_chat_template: bool = False
    """Set at create time as images.go sets PreferChatTemplate."""
    go_template_env: str | None = None

    @property
    def runs(self) -> str:
        """Which template a chat goes through: "go" (TEMPLATE), "jinja" (the GGUF's) or "renderer"."""
        if self.renderer or self.parser:
            return "renderer"
        env = self.go_template_env
        if env not in (None, ""):
            forced = env.lower() not in ("0", "f", "false")
            return "go" if forced and self.template else "jinja"
        if not self.template or self.prefer_chat_template:
            return "jinja"
        return "go"

    def modelfile(self) -> str:
        lines = [f"# Modelfile generated by the fake Ollama\nFROM {self.name}"]
        lines.append(f'TEMPLATE """{self.template}"""')
        if self.system:
            lines.append(f'SYSTEM """{self.system}"""')
        for key, value in self.parameters.items():
            for v in value if isinstance(value, list) else [value]:
                lines.append(f"PARAMETER {key} {json.dumps(v) if isinstance(v, str) else v}")
        for lic in self.license:
            lines.append(f'LICENSE """{lic}"""')
        return "\n".join(lines) + "\n"

    def parameters_text(self) -> str:
        rows = []
        for key, value in self.parameters.items():
            for v in value if isinstance(value, list) else [value]:
                rows.append(f"{key:<30} {json.dumps(v) if isinstance(v, str) else v}")
        return "\n".join(rows)


class FakeOllama:
    """The server's state; tests read and set it directly."""

    def __init__(self) -> None:
        self.blobs: dict[str, Path] = {}
        self.models: dict[str, FakeModel] = {}
        self.requests: list[Request] = []
        self.reply: str = DEFAULT_REPLY
        """What /api/chat and /api/generate answer (streamed in chunks of `chunk_size` characters)."""
        self.replies: dict[str, str] = {}
        """Per-model replies (model name -> text), overriding `reply`."""
        self.chunk_size = 12
        self.chunk_delay = 0.0
        self.errors: dict[str, tuple[int, str]] = {}
        """Inject a failure: path -> (HTTP status, error text), e.g. {"/api/chat": (500, "boom")}."""
        self.create_delay = 0.0
        self.version = VERSION
        self.go_template_env: str | None = None
        self.registry_owner: str | None = "me"
        self.registry_blobs: set[str] = set()
        self.registry_models: dict[str, str] = {}
        """Pushed names (host/namespace/model:tag as given) -> the model's digest."""
        self.push_cut_after: int | None = None
        """OLLAMA_GO_TEMPLATE as the emulated daemon was started with (None: unset)."""
        self._dir = Path(tempfile.mkdtemp(prefix="fake-ollama-"))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.lock = threading.Lock()

    # -- life cycle
    @property
    def host(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeOllama:
        state = self

        class Handler(_Handler):
            fake = state

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-ollama", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        import shutil

        shutil.rmtree(self._dir, ignore_errors=True)

    # -- helpers for tests
    def add_model(self, name: str, **kwargs: Any) -> FakeModel:
        model = FakeModel(name=full_name(name), **kwargs)
        self.models[model.name] = model
        return model

    def add_blob(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self._dir / digest.replace(":", "-")
        path.write_bytes(data)
        self.blobs[digest] = path
        return digest

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def reply_for(self, model: str) -> str:
        return self.replies.get(model, self.replies.get(full_name(model), self.reply))


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOllama
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
        pass

    # -- plumbing
    def _body_bytes(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json_body(self) -> Any:
        raw = self._body_bytes()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return {"__invalid__": raw.decode(errors="replace")}

    def _send(self, status: int, body: Any = None, *, content_type: str = "application/json") -> None:
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        self.send_response(status)
        self.send_header("Content-Type", content_type if data else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": message})

    def _stream(self, parts: Iterator[dict[str, Any]]) -> None:
        """NDJSON as routes.go streamResponse writes it: an error before any line is an HTTP status
        (its "status", default 500) with a JSON body; after the first line, an {"error"} line."""
        started = False
        for part in parts:
            if "error" in part:
                if not started:
                    return self._error(int(part.get("status", 500)), part["error"])
                self._chunk(json.dumps({"error": part["error"]}).encode() + b"\n")
                break
            if not started:
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                started = True
            self._chunk(json.dumps(part).encode() + b"\n")
        if not started:
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunk(self, line: bytes) -> None:
        self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
        self.wfile.flush()

    def _record(self, body: Any) -> None:
        with self.fake.lock:
            self.fake.requests.append(Request(self.command, self.path, body))

    def _injected(self) -> bool:
        if self.path in self.fake.errors:
            status, message = self.fake.errors[self.path]
            self._error(status, message)
            return True
        return False

    # -- verbs
    def do_HEAD(self) -> None:  # noqa: N802
        self._record(None)
        if self.path.startswith("/api/blobs/"):
            digest = self.path.rsplit("/", 1)[1]
            if not _DIGEST_RE.match(digest):
                return self._error(400, "invalid digest format")
            if digest in self.fake.blobs:
                return self._send(200)
            return self._error(404, f'blob "{digest}" not found')
        if self.path == "/":
            return self._send(200, b"Ollama is running", content_type="text/plain")
        self._error(404, "404 page not found")

    def do_GET(self) -> None:  # noqa: N802
        self._record(None)
        if self._injected():
            return
        if self.path == "/":
            return self._send(200, b"Ollama is running", content_type="text/plain")
        if self.path == "/api/version":
            return self._send(200, {"version": self.fake.version})
        if self.path == "/api/tags":
            return self._send(200, {"models": [self._tag(m) for m in self.fake.models.values()]})
        if self.path == "/api/ps":
            return self._send(200, {"models": []})
        self._error(404, "404 page not found")

    def do_DELETE(self) -> None:  # noqa: N802
        body = self._json_body()
        self._record(body)
        if self._injected():
            return
        if self.path != "/api/delete":
            return self._error(404, "404 page not found")
        name = (body or {}).get("model") or (body or {}).get("name") or ""
        if full_name(name) not in self.fake.models:
            return self._error(404, f"model '{name}' not found")
        del self.fake.models[full_name(name)]
        self._send(200)

    def do_POST(self) -> None:  # noqa: N802
        if self.path.startswith("/api/blobs/"):
            return self._post_blob()
        body = self._json_body()
        self._record(body)
        if self._injected():
            return
        if isinstance(body, dict) and "__invalid__" in body:
            return self._error(400, "invalid character in request body")
        routes = {
            "/api/create": self._create,
            "/api/show": self._show,
            "/api/chat": self._chat,
            "/api/generate": self._generate,
            "/api/copy": self._copy,
            "/api/push": self._push,
        }
        if self.path not in routes:
            return self._error(404, "404 page not found")
        routes[self.path](body or {})

    # -- handlers
    def _post_blob(self) -> None:
        digest = self.path.rsplit("/", 1)[1]
        if not _DIGEST_RE.match(digest):
            self._body_bytes()
            self._record(None)
            return self._error(400, "invalid digest format")
        if digest in self.fake.blobs:
            self._body_bytes()
            self._record({"bytes": 0, "existing": True})
            return self._send(200)
        data = self._body_bytes()
        self._record({"bytes": len(data)})
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if got != digest:
            return self._error(400, f'digest mismatch, expected "{digest}", got "{got}"')
        self.fake.add_blob(data)
        self._send(201)

    def _create(self, body: dict[str, Any]) -> None:
        name = body.get("model") or body.get("name") or ""
        if not valid_name(name):
            return self._error(400, "invalid model name")
        # Go's JSON decoder drops fields the release does not know.
        version = _version(self.fake.version)
        for key, since in (("renderer", (0, 12, 0)), ("parser", (0, 12, 0)), ("requires", (0, 14, 0)),
                           ("draft_files", (0, 30, 0))):  # fmt: skip
            if version < since:
                body.pop(key, None)
        for digest in (body.get("adapters") or {}).values():
            if not digest:
                return self._error(400, "invalid digest format")
        files: dict[str, str] = body.get("files") or {}
        for fname, digest in files.items():
            if fname.startswith("/") or ".." in fname.split("/"):
                return self._error(400, "file path must be relative")
            if not digest:
                return self._error(400, "invalid digest format")
        if not files and not body.get("from"):
            return self._error(400, "neither 'from' or 'files' was specified")
        stream = body.get("stream", True)
        parts = list(self._create_parts(name, body, files))
        if stream:
            return self._stream(iter(parts))
        last = parts[-1]
        if "error" in last:
            return self._error(int(last.pop("status", 500)), last["error"])
        self._send(200, last)

    def _create_parts(
        self, name: str, body: dict[str, Any], files: dict[str, str]
    ) -> Iterator[dict[str, Any]]:
        fake = self.fake
        quantize = (body.get("quantize") or body.get("quantization") or "").upper()
        base: FakeModel | None = None
        file_type = None
        size = 0
        chat_template = ""
        if files:
            yield {"status": "parsing GGUF"}
            for digest in files.values():
                path = fake.blobs.get(digest)
                if path is None:
                    yield {"error": f"blob {digest} not found: upload it first", "status": 400}
                    return
                head = path.read_bytes()[:4]
                if head != b"GGUF":
                    yield {"error": "supplied file was not in GGUF format", "status": 400}
                    return
                file_type = _gguf_file_type(path)
                chat_template = _gguf_string(path, "tokenizer.chat_template")
                size += path.stat().st_size
        else:
            base = fake.models.get(full_name(body["from"]))
            if base is None:  # parseFromModel pulls a model it lacks; this registry has none
                yield {"status": "pulling manifest"}
                yield {"error": "pull model manifest: file does not exist"}
                return
            file_type = base.quantization
            size = base.size
            chat_template = base.chat_template
        adapters: dict[str, str] = body.get("adapters") or {}
        for digest in adapters.values():
            if digest not in fake.blobs:
                yield {"error": f"blob {digest} not found: upload it first", "status": 400}
                return
        if adapters and not any(f.endswith(".safetensors") for f in adapters):
            if len(adapters) > 1:
                yield {"error": "only one adapter is currently supported", "status": 400}
                return
        elif adapters and "adapter_config.json" not in adapters:
            yield {"error": "open adapter_config.json: file does not exist", "status": 400}
            return
        if adapters and any(f.endswith(".safetensors") for f in adapters):
            yield {"status": "converting adapter"}
        if quantize:
            if quantize not in QUANTIZE_TYPES:
                yield {"error": f"unsupported quantization type {quantize}"}
                return
            sources = ("F16", "BF16", "F32") if _version(fake.version) >= (0, 22, 0) else ("F16", "F32")
            if file_type not in sources:
                yield {
                    "error": f"quantization is only supported for {', '.join(sources[:-1])} and F32 models"
                }
                return
            for step in range(1, 5):
                time.sleep(fake.create_delay)
                yield {
                    "status": f"quantizing {file_type} model to {quantize}",
                    "digest": "0000000000000000000",
                    "total": size,
                    "completed": size * step // 4,
                }
            yield {"status": "verifying conversion"}
            file_type = quantize
        for digest in files.values():
            yield {"status": f"using existing layer {digest}"}
        for key in ("template", "system", "parameters", "license", "messages"):
            if body.get(key):
                layer = hashlib.sha256(json.dumps(body[key], sort_keys=True).encode()).hexdigest()
                yield {"status": f"creating new layer sha256:{layer}"}
        yield {"status": "writing manifest"}
        lic = body.get("license")
        # setParameters: the base's parameters stay unless the request names the same key.
        parameters = dict(base.parameters) if base else {}
        parameters.update(body.get("parameters") or {})
        template = body.get("template") or (base.template if base else "")
        renderer = body.get("renderer") or (base.renderer if base else "")
        parser = body.get("parser") or (base.parser if base else "")
        prefer = False
        if _version(fake.version) >= (0, 30, 11) and template and chat_template and not (renderer or parser):
            jinja, go = _jinja_caps(chat_template), _go_caps(template)
            prefer = len(jinja) > len(go)
        model = FakeModel(
            name=full_name(name),
            template=template or "{{ .Prompt }}",
            system=body.get("system") or (base.system if base else ""),
            parameters=parameters,
            license=[lic] if isinstance(lic, str) else list(lic or []),
            messages=list(body.get("messages") or []),
            files=dict(files),
            quantization=file_type or "unknown",
            size=size,
            digest=hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest(),
            chat_template=chat_template,
            renderer=renderer,
            parser=parser,
            requires=body.get("requires") or (base.requires if base else ""),
            adapters=dict(adapters),
            draft_files=dict(body.get("draft_files") or {}),
            prefer_chat_template=prefer,
            go_template_env=fake.go_template_env,
        )
        fake.models[model.name] = model
        yield {"status": "success"}

    def _tag(self, m: FakeModel) -> dict[str, Any]:
        return {
            "name": m.name,
            "model": m.name,
            "modified_at": m.modified_at,
            "size": m.size,
            "digest": m.digest,
            "details": self._details(m),
        }

    @staticmethod
    def _details(m: FakeModel) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": m.family,
            "families": [m.family],
            "parameter_size": m.parameter_size,
            "quantization_level": m.quantization,
        }

    def _model_or_404(self, name: str) -> FakeModel | None:
        model = self.fake.models.get(full_name(name or ""))
        if model is None:
            self._error(404, f"model '{name}' not found")
        return model

    def _show(self, body: dict[str, Any]) -> None:
        name = body.get("model") or body.get("name") or ""
        m = self.fake.models.get(full_name(name))
        if m is None:  # ShowHandler names the model as DisplayShortest: with its tag
            return self._error(404, f"model '{full_name(name)}' not found")
        out = {
            "license": "\n".join(m.license),
            "modelfile": m.modelfile(),
            "parameters": m.parameters_text(),
            "template": m.template,
            "system": m.system,
            "details": self._details(m),
            "model_info": {"general.architecture": m.family, "general.parameter_count": 134515008},
            "capabilities": ["completion"],
            "modified_at": m.modified_at,
        }
        for key in ("renderer", "parser", "requires"):
            if getattr(m, key):
                out[key] = getattr(m, key)
        self._send(200, out)

    def _chunks(self, text: str) -> Iterator[str]:
        n = max(1, self.fake.chunk_size)
        for i in range(0, len(text), n):
            if self.fake.chunk_delay:
                time.sleep(self.fake.chunk_delay)
            yield text[i : i + n]

    def _final(self, model: str, text: str) -> dict[str, Any]:
        return {
            "model": model,
            "created_at": _now(),
            "done": True,
            "done_reason": "stop",
            "total_duration": 1_000_000,
            "load_duration": 100_000,
            "prompt_eval_count": 20,
            "prompt_eval_duration": 200_000,
            "eval_count": max(1, len(text) // 4),
            "eval_duration": 700_000,
        }

    def _chat(self, body: dict[str, Any]) -> None:
        name = body.get("model") or ""
        if self._model_or_404(name) is None:
            return
        messages = body.get("messages")
        if messages is not None and not all(isinstance(m, dict) and "role" in m for m in messages):
            return self._error(400, "invalid message format")
        text = self.fake.reply_for(name)
        if not body.get("stream", True):
            out = self._final(name, text) | {"message": {"role": "assistant", "content": text}}
            return self._send(200, out)

        def parts() -> Iterator[dict[str, Any]]:
            for chunk in self._chunks(text):
                yield {
                    "model": name,
                    "created_at": _now(),
                    "message": {"role": "assistant", "content": chunk},
                    "done": False,
                }
            yield self._final(name, text) | {"message": {"role": "assistant", "content": ""}}

        self._stream(parts())

    def _generate(self, body: dict[str, Any]) -> None:
        name = body.get("model") or ""
        if self._model_or_404(name) is None:
            return
        text = self.fake.reply_for(name)
        if not body.get("prompt"):  # Ollama loads the model and answers empty
            return self._send(200, {"model": name, "created_at": _now(), "response": "", "done": True})
        if not body.get("stream", True):
            return self._send(200, self._final(name, text) | {"response": text, "context": [1, 2, 3]})

        def parts() -> Iterator[dict[str, Any]]:
            for chunk in self._chunks(text):
                yield {"model": name, "created_at": _now(), "response": chunk, "done": False}
            yield self._final(name, text) | {"response": "", "context": [1, 2, 3]}

        self._stream(parts())

    def _copy(self, body: dict[str, Any]) -> None:
        source, dest = body.get("source") or "", body.get("destination") or ""
        model = self.fake.models.get(full_name(source))
        if model is None:
            return self._error(404, f"model '{source}' not found")
        if not valid_name(dest):
            return self._error(400, f"invalid destination name: {dest!r}")
        import dataclasses

        self.fake.models[full_name(dest)] = dataclasses.replace(model, name=full_name(dest))
        self._send(200)

    def _push(self, body: dict[str, Any]) -> None:
        name = body.get("model") or body.get("name") or ""
        fake = self.fake
        model = fake.models.get(full_name(name))
        pieces = name.split(":")[0].split("/")
        namespace = pieces[-2] if len(pieces) >= 2 else "library"

        def parts() -> Iterator[dict[str, Any]]:
            yield {"status": "retrieving manifest"}
            if model is None:
                yield {"status": "couldn't retrieve manifest"}
                yield {"error": f"open /root/.ollama/models/manifests/registry.ollama.ai/{namespace}/{pieces[-1]}/latest: no such file or directory"}
                return
            if fake.registry_owner is None:
                yield {"error": 'unauthorized: unknown ollama key "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests"'}
                return
            if namespace != fake.registry_owner:
                yield {"error": '403: {"errors":[{"code":"ACCESS DENIED", "message":"access denied"}]}'}
                return
            layers = [(d, fake.blobs[d].stat().st_size) for d in model.files.values() if d in fake.blobs]
            config = "sha256:" + hashlib.sha256(json.dumps(model.parameters, sort_keys=True).encode()).hexdigest()
            layers.append((config, 2))
            for digest, size in layers:
                status = f"pushing {digest[7:19]}"
                if digest in fake.registry_blobs:
                    yield {"status": status, "digest": digest, "total": size, "completed": size}
                    continue
                step = max(1, size // 4)
                for done in range(0, size, step):
                    yield {"status": status, "digest": digest, "total": size, "completed": done}
                yield {"status": status, "digest": digest, "total": size, "completed": size}
                fake.registry_blobs.add(digest)
            yield {"status": "pushing manifest"}
            fake.registry_models[name] = model.digest or config
            yield {"status": "success"}

        lines = parts()
        if fake.push_cut_after is not None:
            import itertools

            lines = itertools.islice(lines, fake.push_cut_after)
        self._stream(lines)



def _gguf_string(path: Path, key: str) -> str:
    from gguf import GGUFReader

    field = GGUFReader(path).get_field(key)
    if field is None:
        return ""
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def _gguf_file_type(path: Path) -> str:
    from gguf import GGUFReader

    field = GGUFReader(path).get_field("general.file_type")
    if field is None:
        return "unknown"
    value = int(field.parts[field.data[0]][0])
    return _FILE_TYPES.get(value, f"type {value}")


@pytest.fixture(name="fake_ollama")
def fake_ollama_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOllama]:
    """A running fake daemon; OLLAMA_HOST points at it for the test's duration."""
    server = FakeOllama().start()
    monkeypatch.setenv("OLLAMA_HOST", server.host)
    try:
        yield server
    finally:
        server.stop()


fake_ollama = fake_ollama_fixture
"""The same fixture under its own name, for `from tests.fake_ollama import fake_ollama`."""
