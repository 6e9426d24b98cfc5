"""Label-keeping augmentations: the same sample written differently.

Each augmentation rewrites an input the way attackers (or careless writers) do -- keyword case,
inline comments, URL / HTML-entity / base64 encodings, quote splitting, `${IFS}`, spacing -- and
returns a short note the analysis gains ("the input is URL-encoded; decoded it is the same
payload"), so the explanation stays true to the text the model sees. Obfuscation is only applied
to malicious samples: a harmless command wrapped in base64 and piped to bash is no longer
harmless, and the label must not change. Renamed variables are not a text rewrite: the generator
redraws a template's variable-name parameters (see generate.py), so analyses that name a
variable stay right.

Every rewrite here is undone by split.skeleton, which is what keeps variants on one side of the
train/eval split.
"""

from __future__ import annotations

import base64
import random
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from fwyy_ollama.report import Label

Notes = tuple[str, str]  # (en, zh)


@dataclass(frozen=True)
class Augmentation:
    name: str
    categories: tuple[str, ...]
    malicious_only: bool
    apply: Callable[[str, random.Random], tuple[str, Notes] | None]
    """New input and the (en, zh) note for the analysis, or None when it does not apply."""

    def applies_to(self, category: str, label: Label) -> bool:
        return category in self.categories and not (self.malicious_only and not label.is_risky)


_SQL_WORDS = re.compile(
    r"\b(select|union|all|from|where|or|and|order|by|sleep|drop|table|insert|into|update|set|exec|"
    r"waitfor|delay|null|values|outfile|substring|extractvalue|updatexml|concat|having|group)\b",
    re.I,
)


def _random_case(word: str, rng: random.Random) -> str:
    for _ in range(8):
        out = "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in word)
        if out not in (word, word.lower(), word.upper()):
            return out
    return word[0].lower() + word[1:].upper() if len(word) > 1 else word.swapcase()


def sql_case(text: str, rng: random.Random) -> tuple[str, Notes] | None:
    words = _SQL_WORDS.findall(text)
    if not any(len(w) > 2 for w in words):
        return None
    changed: list[str] = []

    def repl(m: re.Match[str]) -> str:
        if len(m.group(0)) <= 2:
            return m.group(0)
        new = _random_case(m.group(0), rng)
        changed.append(new)
        return new

    out = _SQL_WORDS.sub(repl, text)
    sample = changed[0]
    return out, (
        f"Mixed-case keywords such as `{sample}` change nothing: SQL keywords are case-insensitive.",
        f"`{sample}` 这类大小写混写不影响解析：SQL 关键字不区分大小写。",
    )


def sql_comments(text: str, rng: random.Random) -> tuple[str, Notes] | None:
    if not _SQL_WORDS.search(text) or " " not in text.strip():
        return None
    head, sep, tail = text.rpartition("--") if text.rstrip().endswith(("--", "-- -")) else (text, "", "")
    body = re.sub(r"(?<=\S) (?=\S)", "/**/", head if sep else text)
    if body == (head if sep else text):
        return None
    out = body + sep + tail if sep else body
    return out, (
        "The `/**/` inline comments stand in for spaces to slip past keyword filters.",
        "用 `/**/` 内联注释代替空格，是绕过关键字过滤的常见手法。",
    )


def url_encode(text: str, rng: random.Random) -> tuple[str, Notes] | None:
    if "\n" in text:
        return None
    safe = "" if rng.random() < 0.5 else "()=,"
    out = urllib.parse.quote(text, safe=safe)
    if out == text:
        return None
    return out, (
        "The input is URL-encoded; the server decodes it to the text analysed here.",
        "输入经过 URL 编码，服务端解码后即为上述内容。",
    )


_TAG = re.compile(r"<([a-zA-Z][a-zA-Z0-9]*)")
_ATTR = re.compile(r"\b(on[a-z]+|src|href|style|action)(?==)", re.I)


def html_case(text: str, rng: random.Random) -> tuple[str, Notes] | None:
    if not _TAG.search(text):
        return None
    out = _TAG.sub(lambda m: "<" + _random_case(m.group(1), rng), text)
    out = _ATTR.sub(lambda m: _random_case(m.group(1), rng), out)
    if out == text:
        return None
    sample = _TAG.search(out).group(0)  # type: ignore[union-attr]
    return out, (
        f"Tag and attribute names are case-insensitive in HTML, so `{sample}` works the same.",
        f"HTML 标签和属性名不区分大小写，`{sample}` 效果相同。",
    )


def html_slash(text: str, rng: random.Random) -> tuple[str, Notes] | None:
    m = re.search(r"<([a-zA-Z][a-zA-Z0-9]*) (?=[a-zA-Z])", text)
    if not m:
        return None
    out = text[: m.start()] + f"<{m.group(1)}/" + text[m.end() :]
    return out, (
        f"`<{m.group(1)}/` uses a slash where a space would be; browsers accept it.",
        f"`<{m.group(1)}/` 用斜杠代替空格，浏览器同样接受。",
    )


def html_entities(text: str, rng: random.Random) -> tuple[str, Notes] | None:
    # Encode the script inside a javascript: URL or an event-handler value: the browser decodes
    # attribute entities before running it, so the payload is unchanged.
    m = re.search(r"(javascript:[^\"'>]+)|(\bon[a-z]+=)([\"']?)([^\"'> ]+)", text, re.I)
    if not m:
        return None
    if m.group(1):
        start, end = m.span(1)
    else:
        start, end = m.span(4)
    target = text[start:end]
    hexa = rng.random() < 0.5
    encoded = "".join(
        (f"&#x{ord(c):x};" if hexa else f"&#{ord(c)};") if c.isalpha() else c for c in target[:10]
    )
    out = text[:start] + encoded + target[10:] + text[end:]
    return out, (
        "HTML entities inside the attribute are decoded by the browser before the script runs.",
        "属性中的 HTML 实体在脚本执行前会被浏览器解码。",
    )


_COMMENTS = {
    "bash": ("cleanup", "update cache", "fix permissions", "nightly job", "ops ticket 4711", "temp fix"),
    "python": ("helper", "TODO: refactor", "legacy code", "quick fix", "from the wiki", "do not touch"),
}


def shell_comment(text: str, rng: random.Random) -> tuple[str, Notes] | None:
    if "\n" in text:
        return None
    word = rng.choice(_COMMENTS["bash"])
    return f"{text}  # {word}", (
        f"The trailing `# {word}` comment is ignored by the shell and changes nothing.",
        f"末尾的 `# {word}` 注释会被 Shell 忽略，不改变行为。",
    )


def python_comment(text: str, rng: random.Random) -> tuple[str, Notes] | None:
    word = rng.choice(_COMMENTS["python"])
    return f"# {word}\n{text}", (
        f"The `# {word}` comment does not change what the code does.",
        f"`# {word}` 注释不改变代码行为。",
    )


_CMD = re.compile(r"\b(bash|curl|wget|nc|rm|sh|python3|crontab|history|chmod|socat|dd|mkfs)\b")


def shell_quotes(text: str, rng: random.Random) -> tuple[str, Notes] | None:
    m = _CMD.search(text)
    if not m or len(m.group(1)) < 2:
        return None
    word = m.group(1)
    cut = rng.randrange(1, len(word))
    split = word[:cut] + ("''" if rng.random() < 0.5 else "\\") + word[cut:]
    out = text[: m.start()] + split + text[m.end() :]
    return out, (
        f"`{split}` is still `{word}` to the shell: the quotes or backslash only dodge keyword filters.",
        f"`{split}` 在 Shell 中仍是 `{word}`：引号或反斜杠只是为了绕过关键字过滤。",
    )


def shell_ifs(text: str, rng: random.Random) -> tuple[str, Notes] | None:
    if " " not in text or "'" in text or '"' in text or "\n" in text:
        return None
    out = text.replace(" ", "${IFS}")
    return out, (
        "`${IFS}` expands to whitespace, so the command runs unchanged while dodging space filters.",
        "`${IFS}` 展开为空白，命令照常执行，同时绕过对空格的过滤。",
    )


def shell_base64(text: str, rng: random.Random) -> tuple[str, Notes] | None:
    if "base64" in text or "\n" in text:
        return None
    encoded = base64.b64encode(text.encode()).decode()
    runner = rng.choice(("bash", "sh"))
    return f"echo {encoded} | base64 -d | {runner}", (
        f"It is hidden in base64 and piped to `{runner}`, which decodes and runs the command above.",
        f"命令被 base64 编码后通过管道交给 `{runner}` 解码执行，内容即上述命令。",
    )


def python_spacing(text: str, rng: random.Random) -> tuple[str, Notes] | None:
    out = re.sub(r" = ", "=", text) if " = " in text else re.sub(r"(?<=\w)=(?=[\w\"'(\[])", " = ", text)
    out = re.sub(r", ", ",", out) if rng.random() < 0.5 else out
    if out == text:
        return None
    return out, ("", "")


AUGMENTATIONS: tuple[Augmentation, ...] = (
    Augmentation("sql_case", ("sqli",), False, sql_case),
    Augmentation("sql_comments", ("sqli",), True, sql_comments),
    Augmentation("url_encode", ("sqli", "xss"), False, url_encode),
    Augmentation("html_case", ("xss",), False, html_case),
    Augmentation("html_slash", ("xss",), False, html_slash),
    Augmentation("html_entities", ("xss",), True, html_entities),
    Augmentation("shell_comment", ("bash",), False, shell_comment),
    Augmentation("shell_quotes", ("bash",), True, shell_quotes),
    Augmentation("shell_ifs", ("bash",), True, shell_ifs),
    Augmentation("shell_base64", ("bash",), True, shell_base64),
    Augmentation("python_comment", ("python",), False, python_comment),
    Augmentation("python_spacing", ("python",), False, python_spacing),
)
BY_NAME = {a.name: a for a in AUGMENTATIONS}


# Framings: the sample as it reaches an analyst in the wild, inside a script file or an HTTP
# request, rather than bare. They keep the label (a harmless command in a script is still
# harmless) and apply to both verdicts, so the frame never gives the answer away. Without them the
# model only ever saw bare payloads and judged `#!/bin/bash` + a reverse shell by its first line.

_SHEBANGS = {
    "bash": ("#!/bin/bash", "#!/bin/sh", "#!/usr/bin/env bash"),
    "python": ("#!/usr/bin/env python3", "#!/usr/bin/python3"),
}
_SCRIPT_COMMENTS = ("# deploy helper", "# run from cron", "# maintenance", "# setup step")


def _script(category: str, text: str, rng: random.Random) -> tuple[str, Notes]:
    shebang = rng.choice(_SHEBANGS[category])
    lines = [shebang] + ([rng.choice(_SCRIPT_COMMENTS)] if rng.random() < 0.4 else [])
    return "\n".join([*lines, text]), (
        f"The `{shebang}` line only picks the interpreter; the script runs the code analysed here.",
        f"`{shebang}` 这一行只指定解释器，脚本执行的就是上面分析的代码。",
    )


def shell_script(text: str, rng: random.Random) -> tuple[str, Notes] | None:
    return _script("bash", text, rng)


def python_script(text: str, rng: random.Random) -> tuple[str, Notes] | None:
    return None if text.startswith("#!") else _script("python", text, rng)


_STATEMENT = re.compile(r"^\s*(select|insert|update|delete|with|create|drop|alter)\b", re.I)
_ENCODED = re.compile(r"%[0-9A-Fa-f]{2}")
_HOSTS = ("shop.example.com", "app.example.org", "intranet.example.net", "blog.example.com")
_GET = {
    "sqli": (("/login.php", "user", "pass=x"), ("/products", "id", "page=2"), ("/search", "q", "")),
    "xss": (("/search", "q", ""), ("/profile", "name", "tab=1"), ("/view", "title", "")),
}
_POST = {
    "sqli": (("/api/login", "username", "password=x"),),
    "xss": (("/comments", "comment", "post=7"), ("/guestbook", "message", "")),
}


def http_value(text: str) -> str | None:
    """The input as one URL-encoded parameter value, or None when it is no single value."""
    if "\n" in text or len(text) > 400 or _STATEMENT.match(text):
        return None  # a whole SQL statement is not what a request parameter carries
    if _ENCODED.search(text):
        return None if re.search(r"[\s&#+]", text) else text  # already encoded: sent as it is
    return urllib.parse.quote(text, safe="'()=,*!:/;@$~")


def _http_request(category: str, text: str, rng: random.Random) -> tuple[str, Notes] | None:
    """GET query or POST form; the payload is the longest value, which split.skeleton takes back out."""
    value = http_value(text)
    if value is None:
        return None
    host = rng.choice(_HOSTS)
    method = "POST" if rng.random() < 0.35 else "GET"
    path, param, extra = rng.choice((_POST if method == "POST" else _GET)[category])
    query = f"{param}={value}" + (f"&{extra}" if extra else "")
    if method == "GET":
        request = f"GET {path}?{query} HTTP/1.1\nHost: {host}"
    else:
        request = (
            f"POST {path} HTTP/1.1\nHost: {host}\n"
            f"Content-Type: application/x-www-form-urlencoded\n\n{query}"
        )
    return request, (
        f"It arrives as the `{param}` parameter of an HTTP {method} request; URL-decoded, that value "
        "is the input analysed here.",
        f"它作为 HTTP {method} 请求的 `{param}` 参数到达服务端，URL 解码后就是上面分析的输入。",
    )


def sqli_request(text: str, rng: random.Random) -> tuple[str, Notes] | None:
    return _http_request("sqli", text, rng)


def xss_request(text: str, rng: random.Random) -> tuple[str, Notes] | None:
    return _http_request("xss", text, rng)


FRAMINGS: tuple[Augmentation, ...] = (
    Augmentation("shell_script", ("bash",), False, shell_script),
    Augmentation("python_script", ("python",), False, python_script),
    Augmentation("sqli_request", ("sqli",), False, sqli_request),
    Augmentation("xss_request", ("xss",), False, xss_request),
)
"""Applied on top of the other variants, to the training split only (see generate.py)."""
BY_FRAMING = {a.name: a for a in FRAMINGS}


def applicable(category: str, label: Label) -> list[Augmentation]:
    return [a for a in AUGMENTATIONS if a.applies_to(category, label)]
