"""Qt's INI format as QSettings reads and writes it: key and value escaping, logical lines, groups.

GPT4All keeps its settings in a QSettings IniFormat file. To edit one model's group without
disturbing the rest (the user's other models, window geometry, app settings), fwyy re-serializes
only that group, byte-compatibly with Qt's writer, and keeps every other byte. Pure Python, no
fwyy imports: the rules are Qt's (QSettingsPrivate::iniEscapedKey/iniEscapedString,
QConfFileSettingsPrivate::readIniLine), checked against PyQt6's QSettings in tests/test_gpt4all.py.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


def qt_escape_key(key: str) -> str:
    """A key or group name as QSettingsPrivate::iniEscapedKey writes it ('/' becomes '\\')."""
    out = []
    for ch in key:
        c = ord(ch)
        if ch == "/":
            out.append("\\")
        elif ch.isascii() and (ch.isalnum() or ch in "_-."):
            out.append(ch)
        elif c <= 0xFF:
            out.append(f"%{c:02X}")
        elif c <= 0xFFFF:
            out.append(f"%U{c:04X}")
        else:  # Qt works on UTF-16 code units: a surrogate pair is two %U escapes
            v = c - 0x10000
            out.append(f"%U{0xD800 + (v >> 10):04X}%U{0xDC00 + (v & 0x3FF):04X}")
    return "".join(out)


def qt_unescape_key(raw: str) -> str:
    """The inverse of qt_escape_key (QSettingsPrivate::iniUnescapedKey)."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            out.append("/")
            i += 1
            continue
        if ch != "%" or i == len(raw) - 1:
            out.append(ch)
            i += 1
            continue
        digits, first = 2, i + 1
        if raw[i + 1] == "U":
            digits, first = 4, i + 2
        chunk = raw[first : first + digits]
        if len(chunk) == digits and all(c in "0123456789abcdefABCDEF" for c in chunk):
            out.append(chr(int(chunk, 16)))
            i = first + digits
        else:
            out.append("%")
            i += 1
    return "".join(out).encode("utf-16", "surrogatepass").decode("utf-16")


def qt_variant_string(value: str | bool | int | float) -> str:
    """QSettingsPrivate::variantToString for the types we write (strings starting '@' get '@@')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text  # QString::number(2.0) is "2"
    if "\0" in value:
        raise ValueError("GPT4All settings cannot hold NUL characters")
    return "@" + value if value.startswith("@") else value


def qt_escape_value(text: str) -> bytes:
    """A string value as QSettingsPrivate::iniEscapedString writes it (UTF-8, Qt 6)."""
    named = {"\a": b"\\a", "\b": b"\\b", "\f": b"\\f", "\n": b"\\n", "\r": b"\\r", "\t": b"\\t", "\v": b"\\v"}
    out = bytearray()
    needs_quotes = False
    escape_next_if_digit = False
    for ch in text:
        c = ord(ch)
        if ch in ";,=":
            needs_quotes = True
        if escape_next_if_digit and ch in "0123456789abcdefABCDEF":
            out += b"\\x" + format(c, "x").encode()
            continue
        escape_next_if_digit = False
        if ch == "\0":
            out += b"\\0"
            escape_next_if_digit = True
        elif ch in named:
            out += named[ch]
        elif ch in '"\\':
            out += b"\\" + ch.encode()
        elif c <= 0x1F:
            out += b"\\x" + format(c, "x").encode()
            escape_next_if_digit = True
        else:
            out += ch.encode("utf-8", "surrogatepass")
    if needs_quotes or (out[:1] == b" " or out[-1:] == b" "):
        out = bytearray(b'"') + out + b'"'
    return bytes(out)


_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    '"': '"',
    "?": "?",
    "'": "'",
    "\\": "\\",
}


def qt_unescape_value(raw: bytes) -> str | list[str]:
    """A value as QSettingsPrivate::iniUnescapedStringList reads it (a list when unquoted commas)."""
    text = raw.decode("utf-8", "replace")
    items: list[str] = []
    cur: list[str] = []
    is_list = in_quotes = quoted = False
    i, n = 0, len(text)
    chop_limit = 0

    def chop() -> None:
        while len(cur) > chop_limit and cur[-1] in " \t":
            cur.pop()

    while i < n and text[i] in " \t":
        i += 1
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 1
            if i >= n:
                break
            e = text[i]
            i += 1
            if e in _ESCAPES:
                cur.append(_ESCAPES[e])
            elif e == "x":
                j = i
                while j < n and text[j] in "0123456789abcdefABCDEF":
                    j += 1
                if j > i:
                    cur.append(chr(int(text[i:j], 16) & 0xFFFF))
                i = j
            elif e in "01234567":
                j = i
                while j < n and text[j] in "01234567":
                    j += 1
                cur.append(chr(int(text[i - 1 : j], 8) & 0xFFFF))
                i = j
            chop_limit = len(cur)
        elif ch == '"':
            i += 1
            quoted = True
            in_quotes = not in_quotes
            if not in_quotes:
                while i < n and text[i] in " \t":
                    i += 1
        elif ch == "," and not in_quotes:
            if not quoted:
                chop()
            is_list = True
            items.append("".join(cur))
            cur, quoted, chop_limit = [], False, 0
            i += 1
            while i < n and text[i] in " \t":
                i += 1
        else:
            cur.append(ch)
            i += 1
    if not quoted:
        chop()
    if is_list:
        items.append("".join(cur))
        return [s[1:] if s.startswith("@@") else s for s in items]
    value = "".join(cur)
    return value[1:] if value.startswith("@@") else value


@dataclass
class _Line:
    start: int
    end: int
    equals: int  # offset of '=' or -1


def _ini_lines(data: bytes) -> list[_Line]:
    """Logical lines as QConfFileSettingsPrivate::readIniLine cuts them (quotes and '\\' join lines)."""
    lines: list[_Line] = []
    pos, n = 0, len(data)
    while True:
        start = pos
        while start < n and data[start] in b" \t\r\n":
            start += 1
        i, in_quotes, equals = start, False, -1
        while i < n:
            ch = data[i]
            i += 1
            if ch == 0x3D:  # =
                if not in_quotes and equals == -1:
                    equals = i - 1
            elif ch in (0x0A, 0x0D):
                if i == start + 1:
                    start += 1
                elif not in_quotes:
                    i -= 1
                    break
            elif ch == 0x5C:  # backslash
                if i < n:
                    c2 = data[i]
                    i += 1
                    if i < n and ((c2 == 0x0A and data[i] == 0x0D) or (c2 == 0x0D and data[i] == 0x0A)):
                        i += 1
            elif ch == 0x22:  # "
                in_quotes = not in_quotes
            elif ch == 0x3B:  # ;
                if i == start + 1:
                    while i < n and data[i] not in (0x0A, 0x0D):
                        i += 1
                    while i < n and data[i] in b" \t\r\n":
                        i += 1
                    start = i
                elif not in_quotes:
                    i -= 1
                    break
        pos = i
        if i - start <= 0:
            return lines
        lines.append(_Line(start, i, equals))


@dataclass
class _Section:
    name: str  # "" for [General]
    start: int  # offset of the header line ('[') or 0 for keys before any header
    end: int
    keys: list[tuple[str, _Line]] = field(default_factory=list)
    header: bool = True
    """False for the keys before the first [section] (Qt files them under General)."""

    @property
    def present(self) -> bool:
        return self.header or bool(self.keys)


def _section_name(header: bytes) -> str:
    close = header.find(b"]")
    inner = (header[1:close] if close > 0 else header[1:]).strip()
    if inner.lower() == b"general":
        return ""
    if inner.lower() == b"%general":
        return inner[1:].decode("latin-1")
    return qt_unescape_key(inner.decode("utf-8", "replace"))


class QtIni:
    """An INI file as Qt's QSettings reads and writes it, edited group by group.

    Only the edited group is re-serialized; every other byte of the file stays as it was, so the
    user's other models, window geometry and app settings are untouched.
    """

    def __init__(self, data: bytes = b"") -> None:
        self.data = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
        self.eol = b"\r\n" if b"\r\n" in self.data else (b"\n" if self.data else os.linesep.encode())
        self.sections = self._parse()

    def _parse(self) -> list[_Section]:
        sections = [_Section("", 0, 0, header=False)]
        for line in _ini_lines(self.data):
            text = self.data[line.start : line.end]
            if text.startswith(b"["):
                sections[-1].end = line.start
                sections.append(_Section(_section_name(text), line.start, line.start))
            elif line.equals != -1:
                key = self.data[line.start : line.equals].strip().decode("utf-8", "replace")
                sections[-1].keys.append((qt_unescape_key(key), line))
        sections[-1].end = len(self.data)
        return sections

    def groups(self) -> list[str]:
        seen: list[str] = []
        for s in self.sections:
            if s.present and s.name not in seen:
                seen.append(s.name)
        return seen

    def group_bytes(self, name: str) -> list[bytes]:
        """The raw bytes of each section called `name` (header included), as in the file."""
        return [self.data[s.start : s.end] for s in self.sections if s.name == name and s.present]

    def items(self, group: str) -> dict[str, str | list[str]]:
        out: dict[str, str | list[str]] = {}
        for s in self.sections:
            if s.name != group:
                continue
            for key, line in s.keys:
                out[key] = qt_unescape_value(self.data[line.equals + 1 : line.end])
        return out

    def get(self, group: str, key: str) -> str | list[str] | None:
        return self.items(group).get(key)

    def set_group(
        self, group: str, values: Mapping[str, str | bool | int | float], *, remove: Sequence[str] = ()
    ) -> bytes:
        """The file's bytes with `group` holding its old keys (minus `remove`) updated by `values`.

        The group is written where it first appeared (or appended), keys sorted as Qt sorts new ones.
        """
        if not group:
            raise ValueError("refusing to rewrite [General]")
        kept: dict[str, bytes] = {}
        for s in self.sections:
            if s.name == group:
                for key, line in s.keys:
                    kept[key] = self.data[line.equals + 1 : line.end].strip(b" \t")
        for key in remove:
            kept.pop(key, None)
        for key, value in values.items():
            kept[key] = qt_escape_value(qt_variant_string(value))
        body = [b"[" + qt_escape_key(group).encode() + b"]"]
        body += [qt_escape_key(k).encode() + b"=" + kept[k] for k in sorted(kept)]
        block = self.eol.join(body) + self.eol

        out = bytearray()
        placed = False
        for s in self.sections:
            chunk = self.data[s.start : s.end]
            if s.name == group and s.present:
                if not placed:
                    out += block + (self.eol if s.end < len(self.data) else b"")
                    placed = True
                continue
            out += chunk
        if not placed:
            if out and not out.endswith(b"\n"):
                out += self.eol
            if out:
                out += self.eol
            out += block
        return bytes(out)
