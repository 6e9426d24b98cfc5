"""`fwyy push hf REPO` and `fwyy push ollama MODEL`: share a build on the Hugging Face Hub or an
Ollama registry, with a progress bar and one clear line when the service says no."""

from __future__ import annotations

from pathlib import Path

import click

from fwyy_ollama.cli.common import (
    build_options,
    console,
    json_option,
    offline_option,
    print_json,
    progress_callback,
)


def _escaped(update):  # type: ignore[no-untyped-def]
    """A progress callback whose descriptions (file names, registry statuses) are shown, not parsed as markup."""
    from rich.markup import escape

    return lambda done, total, description: update(done, total, escape(description))


@click.group()
def push() -> None:
    """Share a build: the Hugging Face Hub (GGUF, Modelfile, card) or an Ollama registry."""


@push.command("hf")
@click.argument("repo_id")
@build_options
@click.option("--private", is_flag=True, help="Create the repo private (an existing repo keeps its visibility).")
@click.option("--adapter", is_flag=True, help="Also upload the LoRA adapter folder (under adapter/).")
@click.option("--token", default=None, help="A Hugging Face token with write access [default: HF_TOKEN, or `hf auth login`'s].")
@click.option("--message", "-m", default=None, help="Commit message.")
@offline_option
@json_option
def push_hf(
    repo_id: str,
    out: Path,
    model: str | None,
    profile: str | None,
    private: bool,
    adapter: bool,
    token: str | None,
    message: str | None,
    as_json: bool,
) -> None:
    """Upload a build's GGUF(s), Modelfile and model card to the Hugging Face Hub repo REPO_ID (owner/name).

    The card (README.md) is written again first, with the latest `fwyy eval` table. A push that
    stopped (Ctrl-C, a dropped connection) resumes: files the Hub already has are not sent again.
    """
    from fwyy_ollama.model_card import build_folder, profile_for_folder
    from fwyy_ollama.push import check_repo_id, push_hf

    check_repo_id(repo_id)  # before reading anything, so a typo costs nothing
    folder = build_folder(out, model)
    prof = profile_for_folder(folder, profile)
    with progress_callback(f"pushing {folder.name}", disable=as_json) as update:
        result = push_hf(
            folder, prof, repo_id, private=private, adapter=adapter, token=token, progress=_escaped(update), message=message
        )
    if as_json:
        print_json(result.to_json())
        return
    console.print(f"[green]pushed[/] {len(result.files)} files to {result.url}", highlight=False, markup=True)
    for name in result.already:
        console.print(f"  already on the Hub, not sent again: {name}", highlight=False, markup=False)


@push.command("ollama")
@click.argument("model")
@click.option(
    "--as",
    "as_name",
    default=None,
    metavar="USER/NAME[:TAG]",
    help="Copy MODEL to this name in the daemon first (as `ollama cp`), then push that.",
)
@click.option("--insecure", is_flag=True, help="Allow a registry over plain HTTP (your own registry only).")
@click.option("--host", default=None, help="The Ollama daemon [default: OLLAMA_HOST].")
@json_option
def push_ollama(model: str, as_name: str | None, insecure: bool, host: str | None, as_json: bool) -> None:
    """Push MODEL from the Ollama daemon to its registry (ollama.com for USER/NAME).

    ollama.com takes only models named under your user, from a daemon whose public key
    (~/.ollama/id_ed25519.pub) you added at https://ollama.com/settings/keys.
    """
    from fwyy_ollama.push import push_ollama

    with progress_callback(f"pushing {model}", disable=as_json) as update:
        result = push_ollama(model, as_name=as_name, insecure=insecure, host=host, progress=_escaped(update))
    if as_json:
        print_json(result.to_json())
        return
    where = result.page or result.name
    console.print(f"[green]pushed[/] {result.name}: {where}", highlight=False)
