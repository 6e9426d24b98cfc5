"""Modelfile rendering, Ollama-grammar parsing and checking, the shipped Modelfiles, `fwyy modelfile`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner

from fwyy_ollama.chat_families import get_family
from fwyy_ollama.cli import cli
from fwyy_ollama.errors import FwyyError
from fwyy_ollama.modelfile import (
    ModelfileError,
    check_file,
    check_modelfile,
    default_gguf_name,
    parse_modelfile,
    render_modelfile,
    render_shipped,
    write_modelfile,
)
from fwyy_ollama.profiles import load_profile, shipped_profiles
from fwyy_ollama.prompts import system_prompt

GOOD = '''# a comment
FROM ./model.gguf
TEMPLATE """{{ range .Messages }}{{ .Content }}{{ end }}"""
SYSTEM """line one
  line "two" with  spaces  """
PARAMETER stop "<|im_end|>"
PARAMETER stop [INST]
PARAMETER temperature 0.2
PARAMETER num_ctx 4096
PARAMETER use_mmap true
MESSAGE user hello there
MESSAGE assistant "hi"
LICENSE """MIT"""
'''


def test_parser_reads_values_as_ollama_stores_them() -> None:
    mf = parse_modelfile(GOOD)
    assert mf.from_ == "./model.gguf"
    assert mf.template == "{{ range .Messages }}{{ .Content }}{{ end }}"
    assert mf.system == 'line one\n  line "two" with  spaces  '
    assert mf.parameters == {
        "stop": ["<|im_end|>", "[INST]"],
        "temperature": 0.2,
        "num_ctx": 4096,
        "use_mmap": True,
    }
    assert mf.messages == [{"role": "user", "content": "hello there"}, {"role": "assistant", "content": "hi"}]
    assert mf.licenses == ["MIT"]
    assert [i.line for i in mf.instructions][:4] == [2, 3, 4, 6]


def test_instruction_names_are_case_insensitive_and_bom_is_skipped() -> None:
    mf = parse_modelfile("\ufefffrom llama3\nsystem hi")
    assert mf.from_ == "llama3" and mf.system == "hi"


# Each bad Modelfile, and the words its problem must carry (file:line: problem).
BAD: list[tuple[str, str, int, str]] = [
    ("unknown instruction", "FROM x.gguf\nTEMPLTE hi\n", 2, "unknown instruction 'TEMPLTE'"),
    ("unterminated triple quote", 'FROM x.gguf\nSYSTEM """never\nends\n', 2, 'unterminated """ quote'),
    ("unterminated quote", 'FROM x.gguf\nPARAMETER stop "<|im_end|>\n', 2, "unterminated"),
    ("missing FROM", "SYSTEM hi\n", 1, "no FROM line"),
    ("unknown parameter", "FROM x\nPARAMETER temprature 0.2\n", 2, "unknown parameter 'temprature'"),
    ("float type", "FROM x\nPARAMETER temperature warm\n", 2, "temperature wants a number"),
    ("int type", "FROM x\nPARAMETER num_ctx 4k\n", 2, "num_ctx wants a whole number"),
    ("bool type", "FROM x\nPARAMETER use_mmap yes\n", 2, "use_mmap wants true or false"),
    ("message role", "FROM x\nMESSAGE bot hi\n", 2, "role 'bot' must be one of"),
    ("value missing", "FROM x\nSYSTEM\n", 2, "SYSTEM has no value"),
    ("broken Go template", 'FROM x\nTEMPLATE """{{ if .System }}x"""\n', 2, "not a valid Go template"),
    ("missing adapter file", "FROM x\nADAPTER ./nope.gguf\n", 2, "no such file"),
    ("adapter folder without config", "FROM x\nADAPTER ./empty\n", 2, "without adapter_config.json"),
    ("requires", "FROM x\nREQUIRES soon\n", 2, "REQUIRES wants a version"),
    ("parameter without value", "FROM x\nPARAMETER stop\n", 2, "PARAMETER needs a name and a value"),
]


@pytest.mark.parametrize(("kind", "text", "line", "words"), BAD, ids=[b[0] for b in BAD])
def test_check_catches_bad_modelfiles(tmp_path: Path, kind: str, text: str, line: int, words: str) -> None:
    (tmp_path / "empty").mkdir()
    path = tmp_path / "Modelfile"
    path.write_text(text, encoding="utf-8")
    problems = [p for p in check_file(path) if ": warning: " not in p]
    assert problems, kind
    assert any(p.startswith(f"{path}:{line}: ") and words in p for p in problems), problems


def test_good_modelfile_has_no_errors(tmp_path: Path) -> None:
    (tmp_path / "model.gguf").write_bytes(b"GGUF" + b"\0" * 20)
    path = tmp_path / "Modelfile"
    path.write_text(GOOD, encoding="utf-8")
    assert check_file(path, need_files=True) == []


def test_warnings_do_not_fail(tmp_path: Path) -> None:
    path = tmp_path / "Modelfile"
    path.write_text(
        'FROM ./later.gguf\nTEMPLATE """{{ .Prompt }}"""\nPARAMETER mirostat 1\n', encoding="utf-8"
    )
    lines = check_file(path)
    assert all(": warning: " in p for p in lines)
    assert any("no such file" in p for p in lines)
    assert any("without any PARAMETER stop" in p for p in lines)
    assert any("deprecated" in p for p in lines)
    assert any("no such file" in p and ": warning: " not in p for p in check_file(path, need_files=True))


def test_from_a_file_that_is_not_gguf(tmp_path: Path) -> None:
    (tmp_path / "m.gguf").write_text("not a model")
    path = tmp_path / "Modelfile"
    path.write_text("FROM ./m.gguf\n")
    assert any("not a GGUF file" in p for p in check_file(path))


@pytest.mark.parametrize("name", sorted(shipped_profiles()))
def test_render_every_profile(name: str) -> None:
    profile = load_profile(name)
    fam = get_family(profile.chat_family)
    mf = parse_modelfile(render_modelfile(profile))
    assert mf.from_ == f"./{profile.name}.{profile.export.quant}.gguf"
    assert mf.template == fam.ollama_template
    assert mf.system == system_prompt(profile.language)
    params = mf.parameters
    assert params["stop"][: len(fam.stop)] == list(fam.stop)
    for key, value in profile.parameters.items():
        assert params[key] == value
    assert params["temperature"] <= 0.3  # an analyst, not a storyteller
    assert profile.base.hf_id in mf.licenses[0]
    assert [p for p in check_modelfile(mf) if p.severity == "error"] == []


def test_family_comes_from_the_profile_not_the_name() -> None:
    profile = dataclasses.replace(load_profile("fwyy-qwen2"), name="my-llama3-model", chat_family="chatml")
    mf = parse_modelfile(render_modelfile(profile))
    assert "<|im_start|>" in (mf.template or "") and "<|eot_id|>" not in (mf.template or "")


def test_render_options(tmp_path: Path) -> None:
    profile = load_profile("fwyy-smollm2")
    mf = parse_modelfile(render_modelfile(profile, "/models/my model.gguf", lang="zh", system=None))
    assert mf.from_ == "/models/my model.gguf"
    assert mf.system == system_prompt("zh")
    mf = parse_modelfile(render_modelfile(profile, system='Say "hi".\n\tThen stop.'))
    assert mf.system == 'Say "hi".\n\tThen stop.'


@pytest.mark.parametrize(
    ("system", "where"),
    [
        ('a """ quoted """ text', 'line 1, column 3: contains """'),
        ("ok\nbell\x07", "line 2, column 5: character U+0007"),
    ],
)
def test_text_a_modelfile_cannot_hold_is_a_clear_error(system: str, where: str) -> None:
    with pytest.raises(FwyyError) as info:
        render_modelfile(load_profile("fwyy-qwen2"), system=system)
    assert "SYSTEM" in str(info.value) and where in str(info.value)
    assert "fwyy create" in (info.value.hint or "")


def test_bad_profile_parameter_is_named() -> None:
    profile = dataclasses.replace(load_profile("fwyy-qwen2"), parameters={"temprature": 0.1})
    with pytest.raises(FwyyError, match="parameters.temprature"):
        render_modelfile(profile)
    profile = dataclasses.replace(load_profile("fwyy-qwen2"), parameters={"num_ctx": "big"})
    with pytest.raises(FwyyError, match="num_ctx wants a whole number"):
        render_modelfile(profile)


def test_profile_stop_strings_are_added_after_the_family_ones() -> None:
    profile = dataclasses.replace(load_profile("fwyy-qwen2"), parameters={"stop": ["Human: "]})
    mf = parse_modelfile(render_modelfile(profile))
    assert mf.parameters["stop"] == [*get_family("chatml").stop, "Human: "]


def test_write_modelfile_is_atomic_and_relative(tmp_path: Path) -> None:
    profile = load_profile("fwyy-smollm2")
    gguf = tmp_path / default_gguf_name(profile)
    gguf.write_bytes(b"GGUF")
    out = write_modelfile(profile, gguf, out=tmp_path / "Modelfile")
    assert parse_modelfile(out.read_text()).from_ == f"./{gguf.name}"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    elsewhere = tmp_path / "sub" / "Modelfile"
    out2 = write_modelfile(profile, gguf, out=elsewhere)
    assert parse_modelfile(out2.read_text()).from_ == str(gguf.resolve())


def test_shipped_modelfiles_match_the_templates() -> None:
    """modelfiles/ must be what templates/ render; regenerate with `fwyy modelfile -p NAME -o modelfiles/NAME.Modelfile`."""
    expected = render_shipped(load_profile(n) for n in shipped_profiles())
    assert len(expected) == len(shipped_profiles())
    for path, text in expected.items():
        assert path.is_file(), f"{path} missing"
        assert path.read_text(encoding="utf-8") == text, f"{path} drifted from templates/; regenerate it"


def test_parse_error_is_a_fwyy_error() -> None:
    with pytest.raises(ModelfileError) as info:
        parse_modelfile("FROM x\nBOGUS y\n", source="M")
    assert str(info.value).startswith("M:2: unknown instruction")


def test_cli_render_and_check(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["modelfile", "-p", "fwyy-llama3"])
    assert res.exit_code == 0, res.output
    assert "<|eot_id|>" in res.output and 'PARAMETER stop "<|eot_id|>"' in res.output
    sys_file = tmp_path / "sys.txt"
    sys_file.write_text("Only say OK.\n")
    out = tmp_path / "M"
    res = runner.invoke(
        cli,
        [
            "modelfile",
            "-p",
            "fwyy-mistral",
            "--lang",
            "en",
            "--system-file",
            str(sys_file),
            "--gguf",
            "./x.gguf",
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    mf = parse_modelfile(out.read_text())
    assert mf.system == "Only say OK." and mf.from_ == "./x.gguf"
    res = runner.invoke(cli, ["modelfile", "--check", str(out)])
    assert res.exit_code == 0 and "warning" in res.output
    bad = tmp_path / "bad"
    bad.write_text("FROM x\nPARAMETER temperature hot\nPARAMETER nope 1\n")
    res = runner.invoke(cli, ["modelfile", "--check", str(bad)])
    assert res.exit_code == 1
    assert f"{bad}:2: parameter temperature wants a number" in res.output
    assert f"{bad}:3: unknown parameter 'nope'" in res.output


def test_analyst_sampling_defaults_and_one_line_description() -> None:
    profile = dataclasses.replace(
        load_profile("fwyy-qwen2"), parameters={"num_ctx": 4096}, description="two\nlines"
    )
    text = render_modelfile(profile)
    assert "# fwyy-qwen2: two lines\n" in text
    assert parse_modelfile(text).parameters | {"stop": None} == {
        "stop": None,
        "num_ctx": 4096,
        "temperature": 0.2,
        "top_p": 0.9,
        "repeat_penalty": 1.1,
    }


# ------------------------------------------------------------------ where Ollama is more lenient


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-8-sig"])
def test_modelfile_with_a_byte_order_mark_is_read(tmp_path: Path, encoding: str) -> None:
    """PowerShell 5's `>` writes UTF-16 LE with a BOM; Ollama decodes any BOM (parser.ParseFile)."""
    path = tmp_path / "Modelfile"
    data = GOOD.replace("MIT", "MIT 中文").encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    path.write_bytes(data)
    from fwyy_ollama.modelfile import load_modelfile

    mf = load_modelfile(path)
    assert mf.instructions == parse_modelfile(GOOD.replace("MIT", "MIT 中文")).instructions
    assert mf.licenses == ["MIT 中文"]


def test_utf16_without_bom_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "Modelfile"
    path.write_bytes("FROM x\n".encode("utf-16-le") + b"\xff\xd8")
    with pytest.raises(FwyyError, match=r"Modelfile: not UTF-8 text") as info:
        from fwyy_ollama.modelfile import load_modelfile

        load_modelfile(path)
    assert "UTF-16 with a byte-order mark" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("PARAMETER temperature -1", "temperature -1 is negative"),
        ("PARAMETER top_p 1.5", "top_p 1.5 is outside 0..1"),
        ("PARAMETER min_p -0.1", "min_p -0.1 is outside 0..1"),
        ("PARAMETER num_ctx 0", "num_ctx 0 is not positive"),
    ],
)
def test_values_ollama_accepts_are_warnings(tmp_path: Path, line: str, words: str) -> None:
    """Ollama only type-checks PARAMETER values: these create fine there, so they only warn here."""
    path = tmp_path / "Modelfile"
    path.write_text(f"FROM x\n{line}\n", encoding="utf-8")
    problems = check_file(path)
    assert problems and all(": warning: " in p for p in problems), problems
    assert any(p.startswith(f"{path}:2: warning: ") and words in p for p in problems), problems


def test_several_adapters_keep_the_last_and_folders_are_adapters(tmp_path: Path) -> None:
    peft = tmp_path / "lora"
    peft.mkdir()
    (peft / "adapter_config.json").write_text("{}")
    (peft / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    (tmp_path / "old.gguf").write_bytes(b"GGUF" + b"\0" * 8)
    path = tmp_path / "Modelfile"
    path.write_text("FROM x\nADAPTER ./old.gguf\nADAPTER ./lora\n", encoding="utf-8")
    problems = check_file(path, need_files=True)
    assert problems == [f"{path}:2: warning: ADAPTER given again later: Ollama keeps the last one"]
    from fwyy_ollama.modelfile import load_modelfile

    assert load_modelfile(path).adapter == "./lora"


def test_renderer_parser_requires_draft_are_read() -> None:
    mf = parse_modelfile(
        "FROM x\nRENDERER qwen3-coder\nPARSER qwen3-coder\nREQUIRES v0.14.0\nDRAFT ./d.gguf\n"
    )
    assert (mf.renderer, mf.parser, mf.requires, mf.draft) == (
        "qwen3-coder",
        "qwen3-coder",
        "0.14.0",
        "./d.gguf",
    )


def test_draft_must_not_be_the_from_file(tmp_path: Path) -> None:
    (tmp_path / "m.gguf").write_bytes(b"GGUF" + b"\0" * 8)
    path = tmp_path / "Modelfile"
    path.write_text("FROM ./m.gguf\nDRAFT ./m.gguf\n", encoding="utf-8")
    assert any("DRAFT ./m.gguf is the FROM model itself" in p for p in check_file(path))
