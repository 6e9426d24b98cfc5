"""`fwyy card`: write a build's model card (out/<name>/README.md) again, e.g. after `fwyy eval`."""

from __future__ import annotations

from pathlib import Path

import click

from fwyy_ollama.cli.common import build_options, console, json_option, print_json


@click.command()
@build_options
@click.option("--repo", "repo_id", default=None, help="The Hub repo (owner/name) its download commands name.")
@json_option
def card(out: Path, model: str | None, profile: str | None, repo_id: str | None, as_json: bool) -> None:
    """Write the Hugging Face model card of a build: recipe, data hashes, eval table, Modelfile, limits.

    `fwyy build` writes it too; run this after `fwyy eval` to put the new figures in it.
    """
    from fwyy_ollama.model_card import build_folder, profile_for_folder, write_card
    from fwyy_ollama.push import check_repo_id

    if repo_id is not None:
        check_repo_id(repo_id)
    folder = build_folder(out, model)
    path = write_card(folder, profile_for_folder(folder, profile), repo_id=repo_id)
    if as_json:
        print_json({"card": str(path)})
        return
    console.print(f"wrote {path}", highlight=False, markup=False)
