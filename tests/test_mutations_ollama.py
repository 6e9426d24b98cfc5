"""Mutation-catching tests for the Ollama client (issue 18), through the real `ollama` client.

A create stream that never says "success" is a failure, and a server error on the blob HEAD is
reported, not taken for "blob missing" (which would upload gigabytes to a broken daemon) nor for
"blob present". The fake daemon is bent for one request by patching its handler in this test only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.ollama_api import create_model
from tests import fake_ollama as fake_module
from tests.fake_ollama import FakeOllama, fake_ollama_fixture  # noqa: F401
from tests.test_ollama import tiny_gguf


@pytest.fixture
def modelfile(tmp_path: Path) -> Path:
    tiny_gguf(tmp_path / "tiny.gguf")
    (tmp_path / "Modelfile").write_text("FROM ./tiny.gguf\n")
    return tmp_path / "Modelfile"


def test_create_succeeds_on_a_well_behaved_daemon(fake_ollama: FakeOllama, modelfile: Path) -> None:
    result = create_model("tiny", modelfile)
    assert result.statuses[-1] == "success" and result.uploaded
    assert "tiny:latest" in fake_ollama.models


def test_create_stream_without_success_is_a_failure(
    fake_ollama: FakeOllama, modelfile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = fake_module._Handler._create_parts

    def no_success(self: Any, *args: Any) -> Iterator[dict[str, Any]]:
        for part in original(self, *args):
            if part.get("status") != "success":
                yield part

    monkeypatch.setattr(fake_module._Handler, "_create_parts", no_success)
    with pytest.raises(FwyyError, match="did not finish creating tiny"):
        create_model("tiny", modelfile)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_on_blob_head_is_reported(
    fake_ollama: FakeOllama, modelfile: Path, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    original = fake_module._Handler.do_HEAD

    def broken_head(self: Any) -> None:
        if self.path.startswith("/api/blobs/"):
            self._record(None)
            return self._error(status, "internal error")
        return original(self)

    monkeypatch.setattr(fake_module._Handler, "do_HEAD", broken_head)
    with pytest.raises(FwyyError) as info:
        create_model("tiny", modelfile)
    assert f"HTTP {status}" in str(info.value) and "check blob" in str(info.value)
    assert not [r for r in fake_ollama.requests if r.method == "POST" and r.path.startswith("/api/blobs/")]
    assert not fake_ollama.requests_to("/api/create")
