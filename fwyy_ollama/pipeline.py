"""`fwyy build`: dataset -> train -> export -> Modelfile -> ollama create, skipping what is done.

Each stage is the same plain function its single-stage command calls. A stage's key hashes what
it reads (files and settings); when the key and its outputs on disk match the manifest, the stage
is skipped, so a second build with nothing changed costs seconds, and a changed setting reruns
from the first stage it affects.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fwyy_ollama import __version__
from fwyy_ollama.errors import FwyyError
from fwyy_ollama.hashing import sha256_json, sha256_tree
from fwyy_ollama.manifest import Manifest, StageRecord, describe_output
from fwyy_ollama.names import child_folder
from fwyy_ollama.profiles import Profile
from fwyy_ollama.resources import data_dir, templates_dir

STAGES = ("dataset", "train", "export", "modelfile", "create")
Progress = Callable[[float, float | None, str], None]


@dataclass
class BuildOptions:
    out: Path = Path("out")
    quant: str | None = None
    skip_train: bool = False
    ollama: bool = True
    max_steps: int | None = None
    backend: str = "auto"
    force: bool = False


@dataclass
class StageOutcome:
    name: str
    status: str  # "ran", "skipped", "not run"
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class BuildResult:
    profile: str
    folder: Path
    gguf: Path
    modelfile: Path
    created: bool
    stages: list[StageOutcome]
    ollama_command: str

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "folder": str(self.folder),
            "gguf": str(self.gguf),
            "modelfile": str(self.modelfile),
            "created": self.created,
            "ollama_command": self.ollama_command,
            "stages": [s.__dict__ for s in self.stages],
        }


def _versions(*dists: str) -> dict[str, str]:
    found = {"fwyy": __version__}
    for d in dists:
        try:
            found[d] = importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def data_files(profile: Profile) -> list[Path]:
    return [p if p.is_absolute() else data_dir() / p for p in map(Path, profile.data)]


class StageHooks:
    """Callbacks the CLI gives build() to show stage progress; the default shows nothing."""

    def start(self, stage: str, note: str) -> Progress:
        return lambda *_: None

    def done(self, outcome: StageOutcome) -> None:
        pass


def build(profile: Profile, options: BuildOptions, hooks: StageHooks | None = None) -> BuildResult:
    hooks = hooks or StageHooks()
    # Names become paths: check them before joining anything, so nothing lands outside --out.
    folder = child_folder(options.out, profile.name, f"{profile.source or 'profile'}: name")
    quant = _checked_quant(options.quant or profile.export.quant)
    folder.mkdir(parents=True, exist_ok=True)
    _sweep_temporaries(folder)
    manifest = Manifest(folder / "manifest.json")
    outcomes: list[StageOutcome] = []

    def run_stage(
        name: str,
        inputs: dict[str, str],
        settings: dict[str, Any],
        outputs: list[str],
        work: Callable[[Progress], dict[str, Any] | None],
        versions: tuple[str, ...] = (),
    ) -> StageOutcome:
        key = sha256_json({"inputs": inputs, "settings": settings})
        if not options.force and manifest.is_current(name, key, folder):
            outcome = StageOutcome(name, "skipped", outputs=outputs, note="unchanged")
        else:
            progress = hooks.start(name, "")
            started = time.perf_counter()
            details = work(progress) or {}
            seconds = time.perf_counter() - started
            record = StageRecord(
                key=key,
                inputs=inputs,
                settings=settings,
                outputs={rel: describe_output(folder / rel) for rel in outputs},
                versions=_versions(*versions),
                seconds=round(seconds, 2),
                details=details,
            )
            manifest.record(name, record)
            outcome = StageOutcome(
                name, "ran", seconds=seconds, outputs=outputs, note=details.get("note", "")
            )
        outcomes.append(outcome)
        hooks.done(outcome)
        return outcome

    # 0. preflight: every stage's inputs before the first stage runs; the base is fetched now, so a
    # missing, gated or too-large model stops the build before the dataset stage, not after it.
    _preflight(profile, options, hooks)

    # 1. dataset: validate the profile's training files and gather them into one file.
    sources = data_files(profile)
    dataset_rel = "dataset.jsonl"
    run_stage(
        "dataset",
        {str(p): sha256_tree(p) for p in sources},
        {"data": list(profile.data)},
        [dataset_rel],
        lambda progress: _gather_dataset(sources, folder / dataset_rel, progress),
    )

    # 2. train: LoRA adapter over the base.
    from fwyy_ollama.prompts import system_prompt

    adapter_rel = "adapter"
    chat_template = _family_template(profile)
    if options.skip_train:
        outcomes.append(StageOutcome("train", "not run", note="--skip-train: exporting the base model"))
        hooks.done(outcomes[-1])
        manifest.forget("train")
    else:
        train_settings = {
            "base": profile.settings()["base"],
            "lora": profile.settings()["lora"],
            "train": profile.settings()["train"],
            "chat_family": profile.chat_family,
            "language": profile.language,
            "system_prompt": sha256_json(system_prompt(profile.language)),
            "chat_template": sha256_json(chat_template),
            "max_steps": options.max_steps,
            "backend": options.backend,
            # The recipe the hardware picks ([train] on CPU, [train.gpu] on an NVIDIA GPU).
            "recipe": _recipe_name(profile),
        }

        def train_work(progress: Progress) -> dict[str, Any]:
            from fwyy_ollama.finetune import train_adapter

            result = train_adapter(
                profile,
                data_files=[folder / dataset_rel],
                out_dir=folder / adapter_rel,
                max_steps=options.max_steps,
                backend=options.backend,
                progress=progress,
            )
            meta = getattr(result, "metadata", {}) or {}
            return {"final_loss": meta.get("final_loss"), "backend": meta.get("backend")}

        run_stage(
            "train",
            {dataset_rel: manifest.stage("dataset")["outputs"][dataset_rel]["sha256"]},
            train_settings,
            [adapter_rel],
            train_work,
            versions=("torch", "transformers", "peft", "trl", "datasets", "unsloth"),
        )

    # 3. export: merge and write the GGUF.
    gguf_rel = f"{profile.name}.{quant}.gguf"
    if options.skip_train:
        from fwyy_ollama.base_model import resolve_base_model

        base_dir = resolve_base_model(profile)
        export_inputs = {"base": sha256_json(str(base_dir))}
        export_kwargs: dict[str, Any] = {"model_dir": base_dir}
    else:
        export_inputs = {adapter_rel: manifest.stage("train")["outputs"][adapter_rel]["sha256"]}
        export_kwargs = {"adapter_dir": folder / adapter_rel}

    def export_work(progress: Progress) -> dict[str, Any]:
        from fwyy_ollama.export import export_gguf

        # The GGUF carries the family's Jinja: the template its Ollama TEMPLATE is proven against.
        result = export_gguf(
            out=folder / gguf_rel, quant=quant, progress=progress, chat_template=chat_template, **export_kwargs
        )
        return {"note": getattr(result, "note", "") or ""}

    run_stage(
        "export",
        export_inputs,
        {"quant": quant, "chat_template": sha256_json(chat_template)},
        [gguf_rel],
        export_work,
        versions=("gguf", "llama_cpp_python"),
    )

    # 4. modelfile: render from templates/.
    modelfile_rel = "Modelfile"

    def modelfile_work(progress: Progress) -> dict[str, Any]:
        from fwyy_ollama.modelfile import write_modelfile

        progress(0, 1, "rendering")
        write_modelfile(profile, f"./{gguf_rel}", folder / modelfile_rel)
        progress(1, 1, "rendered")
        return {}

    run_stage(
        "modelfile",
        {gguf_rel: manifest.stage("export")["outputs"][gguf_rel]["sha256"]},
        {
            "name": profile.name,
            "chat_family": profile.chat_family,
            "language": profile.language,
            "parameters": profile.parameters,
            "license": profile.base.license,
            "templates": sha256_tree(templates_dir()),
        },
        [modelfile_rel],
        modelfile_work,
    )

    # The model card (README.md), rendered every build (milliseconds): it shows what is on disk now.
    from fwyy_ollama.model_card import write_card

    write_card(folder, profile)

    # 5. ollama create, when a daemon answers.
    modelfile_path = folder / modelfile_rel
    ollama_command = f"ollama create {profile.name} -f {modelfile_path}"
    created = False
    if not options.ollama:
        outcomes.append(StageOutcome("create", "not run", note="--no-ollama"))
        hooks.done(outcomes[-1])
    else:
        from fwyy_ollama.ollama_api import create_model, daemon_available, model_exists

        if not daemon_available():
            outcomes.append(StageOutcome("create", "not run", note="no Ollama daemon answers at OLLAMA_HOST"))
            hooks.done(outcomes[-1])
        else:
            inputs = {
                modelfile_rel: manifest.stage("modelfile")["outputs"][modelfile_rel]["sha256"],
                gguf_rel: manifest.stage("export")["outputs"][gguf_rel]["sha256"],
            }
            if not model_exists(profile.name):
                manifest.forget("create")

            def create_work(progress: Progress) -> dict[str, Any]:
                create_model(profile.name, modelfile_path, force=True, progress=progress)
                return {}

            run_stage("create", inputs, {"name": profile.name}, [], create_work, versions=("ollama",))
            created = True

    from fwyy_ollama.runtime import record_last_build

    record_last_build(options.out, profile, folder / gguf_rel)  # plain `fwyy analyze`/`chat` use it
    return BuildResult(
        profile=profile.name,
        folder=folder,
        gguf=folder / gguf_rel,
        modelfile=modelfile_path,
        created=created,
        stages=outcomes,
        ollama_command=ollama_command,
    )


def _checked_quant(quant: str) -> str:
    """The quantization name, lowercased; it is part of the GGUF's file name, so only known ones."""
    from fwyy_ollama.export.quantize import QUANTS

    name = quant.lower()
    if name not in QUANTS:
        raise FwyyError(
            f"quant: {quant!r} is not a quantization fwyy writes",
            hint="one of " + ", ".join(QUANTS),
        )
    return name


def _preflight(profile: Profile, options: BuildOptions, hooks: StageHooks) -> None:
    """Check (and fetch) what the stages will read: the training files, the training base, the export base."""
    from fwyy_ollama.base_model import resolve_base_model, training_base

    missing = [p for p in data_files(profile) if not p.is_file()]
    if missing:
        raise FwyyError(f"{profile.source or profile.name}: data: {missing[0]} does not exist")
    progress = hooks.start("base", "")
    started = time.perf_counter()
    if not options.skip_train:
        from fwyy_ollama.finetune.backends import select_backend

        training_base(profile, select_backend(options.backend).name, progress=progress)
    folder = resolve_base_model(profile, progress=progress)  # the 16-bit original the merge reads
    seconds = time.perf_counter() - started
    hooks.done(StageOutcome("base", "ran", seconds=seconds, note=str(folder)))


def _sweep_temporaries(folder: Path) -> None:
    """Remove what a build killed outright (SIGKILL, power loss) left under a temporary name.

    Only entries directly in `folder` are touched, and a symbolic link is unlinked, never followed:
    a planted `.x.tmp -> /somewhere` must not make the sweep delete /somewhere.
    """
    import shutil

    for tmp in folder.glob(".*.tmp"):
        if tmp.parent != folder:
            continue
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def _recipe_name(profile: Profile) -> str:
    if profile.train_gpu is None:
        return "train"
    from fwyy_ollama.finetune.core import cuda_available

    return "train.gpu" if cuda_available() else "train"


def _gather_dataset(sources: list[Path], dest: Path, progress: Progress) -> dict[str, Any]:
    """Validate every training file (all bad lines reported at once) and write them as one."""
    import json

    from fwyy_ollama.atomic import atomic_path
    from fwyy_ollama.dataset.records import load_records

    records: list[dict[str, Any]] = []
    for i, src in enumerate(sources):
        progress(i, len(sources), f"validating {src.name}")
        records.extend(load_records(src))
    with atomic_path(dest) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    progress(len(sources), len(sources), f"{len(records)} records")
    return {"records": len(records), "note": f"{len(records)} records"}


def _family_template(profile: Profile) -> str:
    from fwyy_ollama.chat_families import get_family

    return get_family(profile.chat_family).hf_chat_template
