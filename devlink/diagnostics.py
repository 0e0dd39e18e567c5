"""Diagnostics for the editor, from what the session already has (pure: text in, rows out).

gcc's terminal text is kept as gcc prints it (`devlink watch` shows it unchanged), so
the editor's diagnostics are parsed from that same text rather than from a second,
JSON-formatted compile.  A link error names a symbol and the objects referencing it; a
patch refusal names a variable: both are placed on source lines found here.
"""

from __future__ import annotations

import os
import re

#: `file:line:col: severity: message` (gcc and clang; `fatal error` is an error)
_GCC_LINE = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?:(?P<col>\d+):)?\s*"
                       r"(?P<sev>fatal error|error|warning|note):\s*(?P<msg>.*)$")


def parse_gcc(text: str, cwd: str) -> dict[str, list[dict]]:
    """gcc's diagnostics text -> {absolute file: [{line, column, severity, message}]}
    (1-based line and column; notes are kept as "info")."""
    out: dict[str, list[dict]] = {}
    for raw in text.splitlines():
        m = _GCC_LINE.match(raw)
        if not m:
            continue
        sev = m["sev"]
        sev = "error" if sev == "fatal error" else ("info" if sev == "note" else sev)
        path = os.path.normpath(os.path.join(cwd, m["file"]))
        out.setdefault(path, []).append({"line": int(m["line"]), "column": int(m["col"] or 1),
                                         "severity": sev, "message": m["msg"].strip(), "source": "gcc"})
    return out


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _prototype(line: str, name: str) -> bool:
    """A declaration only (`int f(void);`, `extern int x;`): not where the name is used."""
    code = line.split("//")[0].strip()
    if code.startswith("extern"):
        return True
    m = re.match(r"^[A-Za-z_][\w\s\*]*\b" + re.escape(name) + r"\s*\([^;{}]*\)\s*;\s*$", code)
    return m is not None and "=" not in code and "return" not in code.split()


def uses_of(name: str, text: str) -> list[tuple[int, int]]:
    """(1-based line, 1-based column) of each use of identifier `name` in C source
    `text`, leaving out prototypes and extern declarations (comments are not parsed)."""
    rx = re.compile(r"(?<![A-Za-z0-9_])" + re.escape(name) + r"(?![A-Za-z0-9_])")
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        m = rx.search(line)
        if m and not _prototype(line, name):
            found.append((n, m.start() + 1))
    return found


def declaration_of(name: str, text: str) -> tuple[int, int] | None:
    """(line, column) of the first line that declares a variable `name` with a type
    before it (a fallback when the object has no DWARF for it)."""
    rx = re.compile(r"^[^=;(){}]*[A-Za-z_][\w\s\*]*\s\**(?<![A-Za-z0-9_])(" + re.escape(name) + r")(?![A-Za-z0-9_])\s*[\[=;]")
    for n, line in enumerate(text.splitlines(), 1):
        m = rx.search(line)
        if m:
            return n, m.start(1) + 1
    return None


def word_at(line: str, character: int) -> tuple[str, int] | None:
    """The C identifier under (or just before) `character` of `line`, and its start."""
    if character < 0 or character > len(line):
        return None
    for m in _IDENT.finditer(line):
        if m.start() <= character <= m.end():
            return m.group(), m.start()
    return None
