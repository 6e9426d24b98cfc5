"""`fwyy export`: merge an adapter (or take a model folder) and write a (quantized) GGUF."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from fwyy_ollama.cli.common import console, json_option, offline_option, print_json, progress_callback
from fwyy_ollama.errors import FwyyError
from fwyy_ollama.export.quantize import DEFAULT_QUANT, QUANTS


def _default_out(adapter: Path | None, model: Path | None, quant: str) -> Path:
    name = (adapter or model or Path("model")).resolve().name
    return Path.cwd() / f"{name}-{quant}.gguf"


def _size(n: int) -> str:
    return f"{n / (1 << 30):.2f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.1f} MiB"


@click.command()
@click.option(
    "--adapter", type=click.Path(file_okay=False, path_type=Path), help="A trained LoRA adapter folder."
)
@click.option(
    "--model",
    type=click.Path(file_okay=False, path_type=Path),
    help="An HF model folder (alone: export it; with --adapter: the base to merge into).",
)
@click.option(
    "--quant",
    "-q",
    type=click.Choice(list(QUANTS), case_sensitive=False),
    default=DEFAULT_QUANT,
    show_default=True,
    help="Output type. K-quants (q*_k*) use llama.cpp (the 'llama' extra or llama-quantize on PATH).",
)
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), help="GGUF file to write.")
@click.option("--verify", is_flag=True, help="Load the result in llama.cpp and compare it with the HF model.")
@click.option(
    "--tokenizer-pre",
    default=None,
    metavar="NAME",
    help="Name llama.cpp's pre-tokenizer by hand (only for a tokenizer its hash table does not know; add --verify).",
)
@offline_option
@json_option
def export(
    adapter: Path | None,
    model: Path | None,
    quant: str,
    out: Path | None,
    verify: bool,
    tokenizer_pre: str | None,
    as_json: bool,
) -> None:
    """Merge a LoRA adapter into its base and write a GGUF for Ollama, GPT4All and llama.cpp.

    fwyy export --adapter runs/fwyy-qwen2/adapter --quant q4_k_m --verify
    """
    from fwyy_ollama.export import export_gguf

    if adapter is None and model is None:
        raise FwyyError("give --adapter DIR (a trained LoRA) or --model DIR (an HF model folder)")
    quant = quant.lower()
    out = out or _default_out(adapter, model, quant)
    with progress_callback("reading model", disable=as_json) as progress:
        result = export_gguf(
            adapter_dir=adapter,
            model_dir=model,
            out=out,
            quant=quant,
            verify=verify,
            progress=progress,
            tokenizer_pre=tokenizer_pre,
        )
    if as_json:
        print_json(result.to_json())
        return
    table = Table(title=f"fwyy export → {result.gguf}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("file", f"{result.gguf} ({_size(result.size_bytes)})")
    table.add_row("type", f"{result.quant} via {result.quantizer}")
    table.add_row(
        "model", f"{result.arch} ({result.hf_architecture}), {result.n_params / 1e6:.0f}M parameters"
    )
    table.add_row("weights", result.merged_into)
    if result.adapter_dir is not None:
        table.add_row(
            "adapter", f"{result.adapter_dir} ({result.lora_modules} LoRA modules merged in float32)"
        )
    table.add_row("tokenizer", f"pre={result.tokenizer_pre}, EOS={result.eos_token}")
    for note in result.notes:
        table.add_row("note", note)
    if result.verify is not None:
        v = result.verify
        toks = sum(c.ok for c in v.tokenization)
        table.add_row("verify", "[green]passed[/]" if v.ok else "[red]failed[/]")
        table.add_row("  tokenizer", f"{toks}/{len(v.tokenization)} strings tokenized exactly as HF")
        table.add_row(
            "  logits",
            f"top-1 agreement {v.top1_agreement:.0%} over {v.positions} positions, "
            f"min cosine {v.min_cosine:.5f}",
        )
    table.add_row("time", f"{result.seconds:.1f} s")
    console.print(table)
