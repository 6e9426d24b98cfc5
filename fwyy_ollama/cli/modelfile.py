"""`fwyy modelfile`: render a profile's Ollama Modelfile, or check one."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fwyy_ollama.cli.common import console, json_option, print_json, profile_option
from fwyy_ollama.errors import FwyyError


@click.command()
@profile_option
@click.option(
    "--gguf",
    type=click.Path(dir_okay=False),
    default=None,
    help="The GGUF for FROM. Default: ./<profile>.<quant>.gguf (what `fwyy export` writes).",
)
@click.option(
    "--lang",
    type=click.Choice(["zh", "en"]),
    default=None,
    help="Language of the system prompt. Default: the profile's.",
)
@click.option(
    "--system-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Use this file's text as SYSTEM instead of the shipped security prompt.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write here (atomically) instead of printing.",
)
@click.option(
    "--check",
    "check",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Check FILE against Ollama's Modelfile grammar; print file:line: problem.",
)
@click.option("--strict", is_flag=True, help="With --check: a FROM file that does not exist is an error.")
@json_option
def modelfile(
    profile: str | None,
    gguf: str | None,
    lang: str | None,
    system_file: str | None,
    output: str | None,
    check: str | None,
    strict: bool,
    as_json: bool,
) -> None:
    """Render the Modelfile for a profile (FROM, TEMPLATE, SYSTEM, PARAMETER, LICENSE), or --check one.

    The TEMPLATE and stop strings follow the profile's chat family, the one it was trained with.
    """
    if check:
        _check(check, strict, as_json)
        return
    from fwyy_ollama.modelfile import render_modelfile, write_modelfile
    from fwyy_ollama.profiles import load_profile

    prof = load_profile(profile)
    system = Path(system_file).read_text(encoding="utf-8").strip() if system_file else None
    if output:
        path = write_modelfile(prof, gguf, out=output, lang=lang, system=system)
        if as_json:
            print_json({"modelfile": str(path), "profile": prof.name, "chat_family": prof.chat_family})
        else:
            console.print(f"wrote [bold]{path}[/] ({prof.name}, chat family {prof.chat_family})")
        return
    text = render_modelfile(prof, gguf, lang=lang, system=system)
    if as_json:
        print_json({"profile": prof.name, "chat_family": prof.chat_family, "modelfile": text})
    else:
        sys.stdout.write(text)


def _check(path: str, strict: bool, as_json: bool) -> None:
    from fwyy_ollama.modelfile import check_file

    if not Path(path).is_file():
        raise FwyyError(f"{path}: no such Modelfile")
    lines = check_file(path, need_files=strict)
    errors = [line for line in lines if ": warning: " not in line]
    if as_json:
        print_json({"file": path, "ok": not errors, "problems": lines})
    else:
        for line in lines:  # plain lines, never wrapped: editors and grep read file:line: problem
            click.echo(line, err=line in errors)
        if not lines:
            click.echo(f"{path}: ok")
    if errors:
        raise click.exceptions.Exit(1)
