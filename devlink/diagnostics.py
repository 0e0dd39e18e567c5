"""Diagnostics for the editor, from what the session already has (pure: data in, rows out).

Compiles ask gcc for `-fdiagnostics-format=json` when it supports it (devlink/build.py):
the editor gets gcc's own structure (file, line, column, end column, kind, option), and
the terminal gets the same diagnostics rendered the way gcc prints them
(`render_gcc_json`).  A compiler without the JSON format (clang) prints text, which
`parse_gcc` reads.  A link error names a symbol and the objects referencing it; a
patch refusal names a variable: both are placed on source lines found here.
"""

from __future__ import annotations

import os
import re

#: `file:line:col: severity: message` (gcc and clang; `fatal error` is an error)
_GCC_LINE = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?:(?P<col>\d+):)?\s*"
                       r"(?P<sev>fatal error|error|warning|note):\s*(?P<msg>.*)$")


def parse_gcc(text, cwd: str) -> dict[str, list[dict]]:
    """gcc's diagnostics -> {absolute file: [{line, column, severity, message}]} (1-based
    line and column; notes are kept as "info").  `text`: gcc's JSON diagnostics (a
    list, as parsed) or its terminal text."""
    if isinstance(text, list):
        return _from_json(text, cwd)
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


_KINDS = {"error": "error", "fatal error": "error", "warning": "warning", "note": "info"}


def _from_json(diags: list, cwd: str, out: dict | None = None) -> dict[str, list[dict]]:
    out = {} if out is None else out
    for d in diags:
        locs = d.get("locations") or []
        caret = locs[0].get("caret") if locs else None
        if caret and caret.get("file"):
            path = os.path.normpath(os.path.join(cwd, caret["file"]))
            row = {"line": int(caret.get("line", 1)), "column": int(caret.get("column", 1)),
                   "severity": _KINDS.get(d.get("kind", ""), "warning"), "message": d.get("message", ""),
                   "source": "gcc"}
            finish = locs[0].get("finish")
            if finish and finish.get("line") == caret.get("line"):
                row["end_column"] = int(finish.get("column", row["column"])) + 1
            if d.get("option"):
                row["code"] = d["option"]
            out.setdefault(path, []).append(row)
        _from_json(d.get("children") or [], cwd, out)
    return out


def render_gcc_json(diags: list, read_line=None) -> str:
    """gcc's JSON diagnostics as gcc prints them on a terminal: `file:line:col: kind:
    message [-Woption]`, the source line and a caret under the column.  `read_line(file,
    line)` gives a source line (None: no excerpt)."""
    out: list[str] = []

    def one(d: dict) -> None:
        locs = d.get("locations") or []
        caret = locs[0].get("caret") if locs else None
        option = f" [{d['option']}]" if d.get("option") else ""
        if caret:
            out.append(f"{caret.get('file')}:{caret.get('line')}:{caret.get('column')}: "
                       f"{d.get('kind')}: {d.get('message')}{option}")
            src = read_line(caret.get("file"), int(caret.get("line", 0))) if read_line else None
            if src is not None:
                col = max(int(caret.get("display-column", caret.get("column", 1))), 1)
                width = 1
                finish = locs[0].get("finish")
                if finish and finish.get("line") == caret.get("line"):
                    width = max(1, int(finish.get("display-column", finish.get("column", col))) - col + 1)
                out.append(f"{caret.get('line'):>5} | {src}")
                out.append(f"      | {' ' * (col - 1)}^{'~' * (width - 1)}")
        else:
            out.append(f"{d.get('kind')}: {d.get('message')}{option}")
        for child in d.get("children") or []:
            one(child)

    for d in diags:
        one(d)
    return "\n".join(out) + ("\n" if out else "")


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
