"""The session's diagnostics reply as LSP diagnostics per file URI (pure)."""

from __future__ import annotations

from lsprotocol import types as T
from pygls.uris import from_fs_path

SEVERITY = {"error": T.DiagnosticSeverity.Error, "warning": T.DiagnosticSeverity.Warning,
            "info": T.DiagnosticSeverity.Information}


def to_lsp(files: dict[str, list[dict]]) -> dict[str, list[T.Diagnostic]]:
    out = {}
    for path, diags in files.items():
        items = []
        for d in diags:
            line, col = max(0, int(d["line"]) - 1), max(0, int(d.get("column", 1)) - 1)
            end = max(col + 1, int(d.get("end_column", col + 2)) - 1)     # gcc's range, when it gave one
            items.append(T.Diagnostic(
                range=T.Range(start=T.Position(line=line, character=col), end=T.Position(line=line, character=end)),
                message=d["message"], severity=SEVERITY.get(d.get("severity"), T.DiagnosticSeverity.Error),
                code=d.get("code"),
                source="devlink" if d.get("source") == "devlink" else f"devlink ({d.get('source', 'gcc')})"))
        out[from_fs_path(path)] = items
    return out
