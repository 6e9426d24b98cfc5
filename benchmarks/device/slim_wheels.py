"""Shrink carried wheels so the device machine's 64 MiB working-tree limit holds.

The device machine has no network, so Unsloth and friends travel as wheels under `.whl/`.
Two of them are bulky for reasons that do not matter there: Unsloth ships its "studio" web app
(about 80 MB unpacked) and bitsandbytes ships one native library per CUDA/ROCm/XPU version.
This rewrites those wheels in place without the unneeded members, and drops their RECORD lines
so pip installs them cleanly. Usage: python benchmarks/device/slim_wheels.py .whl [--cuda 130 132]
"""

from __future__ import annotations

import argparse
import os
import re
import zipfile
from pathlib import Path


def _drop(name: str, keep_cuda: set[str]) -> bool:
    """True for wheel members the device does not need."""
    if name.startswith("studio/") or name.startswith("unsloth/studio/"):
        return True
    m = re.match(r"bitsandbytes/libbitsandbytes_(cuda\d+|rocm\d+|xpu\d+)\.so$", name)
    if m:
        kind = m.group(1)
        return not (kind.startswith("cuda") and kind[4:] in keep_cuda)
    return False


def slim(wheel: Path, keep_cuda: set[str]) -> tuple[int, int]:
    """Rewrite `wheel` without dropped members; returns (bytes before, bytes after)."""
    before = wheel.stat().st_size
    with zipfile.ZipFile(wheel) as zin:
        names = zin.namelist()
        dropped = {n for n in names if _drop(n, keep_cuda)}
        if not dropped:
            return before, before
        tmp = wheel.with_suffix(".tmp")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zout:
            for info in zin.infolist():
                if info.filename in dropped:
                    continue
                data = zin.read(info.filename)
                if info.filename.endswith(".dist-info/RECORD"):
                    lines = [ln for ln in data.decode().splitlines() if ln.split(",", 1)[0] not in dropped]
                    data = ("\n".join(lines) + "\n").encode()
                zout.writestr(info, data)
    os.replace(tmp, wheel)
    return before, wheel.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--cuda", nargs="+", default=["130", "132"], help="CUDA builds of bitsandbytes to keep")
    args = ap.parse_args()
    total = 0
    for wheel in sorted(args.folder.glob("*.whl")):
        before, after = slim(wheel, set(args.cuda))
        total += after
        if before != after:
            print(f"{wheel.name}: {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB")
    print(f"total {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
