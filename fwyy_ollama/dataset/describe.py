"""What an input plainly does, in a few words, so an analysis talks about this very input.

explain.py says which attack techniques a sample carries; that leaves a benign sample with only "no
pattern found", and a model trained on it learns to recite a checklist instead of reading the
input. This module reads the input's structure (the SQL statement and the tables it touches, the
HTML tags and handlers, the commands of a shell pipeline, the functions a Python snippet defines
and calls) and words it as a short clause in English or Chinese. It never judges: the verdict comes
from the source and explain.py.
"""

from __future__ import annotations

import ast
import re
import shlex

_SQL_VERB = re.compile(
    r"\b(select|insert|update|delete|create|alter|drop|with|merge|replace|grant|explain|truncate)\b", re.I
)
_SQL_TABLE = re.compile(r"\b(?:from|join|into|update|table)\s+([`\"\[]?[A-Za-z_][\w.$]*[`\"\]]?)", re.I)
_SQL_PARAM = re.compile(r"\?|%s|%\(\w+\)s|:[A-Za-z_]\w*|\$\d+|@[A-Za-z_]\w*")
_TAG = re.compile(r"<\s*([A-Za-z][\w-]*)")
_HANDLER = re.compile(r"\b(on[a-z]+)\s*=", re.I)
_ENTITY = re.compile(r"&(?:lt|gt|quot|#x?[0-9a-f]+);", re.I)
_SHELL_SPLIT = re.compile(r"\|\|?|&&|;|\n")
_SKIP_WORDS = {"sudo", "env", "nohup", "time", "exec", "then", "do", "else", "if", "while", "for", "!"}


def _names(items: list[str], limit: int = 4) -> str:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return ", ".join(f"`{s}`" for s in seen[:limit])


def _sql(text: str, zh: bool) -> str | None:
    verbs = [m.group(1).upper() for m in _SQL_VERB.finditer(text)]
    if not verbs:
        return None
    tables = [t.strip("`\"[]") for t in _SQL_TABLE.findall(text)]
    tables = [t for t in tables if t.lower() not in {"select", "dual", "information_schema"}]
    params = bool(_SQL_PARAM.search(text))
    verb = verbs[0]
    if zh:
        out = f"是一条 {verb} 语句" + (f"，涉及表 {_names(tables, 3)}" if tables else "")
        return out + ("，值通过占位符绑定" if params else "")
    out = f"is a {verb} statement" + (f" on {_names(tables, 3)}" if tables else "")
    return out + (" with bound parameters" if params else "")


def _html(text: str, zh: bool) -> str | None:
    tags = [t.lower() for t in _TAG.findall(text)]
    handlers = [h.lower() for h in _HANDLER.findall(text)]
    if not tags and not handlers:
        if _ENTITY.search(text):
            return "只含转义后的文本（HTML 实体）" if zh else "holds only escaped text (HTML entities)"
        return None
    if zh:
        out = f"包含标签 {_names(tags)}" if tags else "包含属性"
        return out + (f"，事件属性 {_names(handlers, 3)}" if handlers else "")
    out = f"contains {_names(tags)} markup" if tags else "contains attributes"
    return out + (f" with {_names(handlers, 3)} handlers" if handlers else "")


def _shell(text: str, zh: bool) -> str | None:
    commands: list[str] = []
    for segment in _SHELL_SPLIT.split(text):
        segment = segment.strip()
        if not segment or segment.startswith("#"):
            continue
        try:
            words = shlex.split(segment, comments=True)
        except ValueError:
            words = segment.split()
        for word in words:
            if "=" in word.split("/")[0] and not word.startswith("-"):
                continue  # VAR=value prefix
            if word in _SKIP_WORDS:
                continue
            commands.append(word.rsplit("/", 1)[-1][:24])
            break
    commands = [c for c in commands if re.fullmatch(r"[\w.+-]+", c)]
    if not commands:
        return None
    return f"运行 {_names(commands)}" if zh else f"runs {_names(commands)}"


def _python(text: str, zh: bool) -> str | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return None
    defs = [n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    calls: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                calls.append(f"{f.value.id}.{f.attr}")
            elif isinstance(f, ast.Attribute):
                calls.append(f.attr)
            elif isinstance(f, ast.Name):
                calls.append(f.id)
    if not defs and not calls:
        return None
    if zh:
        out = f"定义了 {_names(defs, 2)}" if defs else "是一段脚本"
        return out + (f"，调用 {_names(calls)}" if calls else "")
    out = f"defines {_names(defs, 2)}" if defs else "is a script"
    return out + (f" and calls {_names(calls)}" if calls else "")


_DESCRIBERS = {"sqli": _sql, "xss": _html, "bash": _shell, "python": _python}


def describe(text: str, category: str, lang: str) -> str | None:
    """A clause that follows the analysis subject ("This SQL input …"), or None when nothing is clear."""
    return _DESCRIBERS[category](text, lang == "zh")
