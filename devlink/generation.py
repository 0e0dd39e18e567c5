"""One generation of a session: what an update, undo, restart or rollback did."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Generation:
    number: int
    time: float
    changed: list[str]
    added: list[str]
    removed: list[str]
    compile_ms: float
    link_ms: float
    patch_ms: float
    patched: bool                   #: applied to a running child
    #: why the edit could not be patched safely (empty: it was safe)
    unsafe: list[str] = field(default_factory=list)
    #: what was done: "patched", "file" (no child), "restarted", "kept-old", "undo", "rollback"
    action: str = "patched"
    #: functions whose cells went back to an earlier generation's code (undo)
    reverted: list[str] = field(default_factory=list)
    #: (name, object, kind) of every decl that changed or was added (names alone are
    #: ambiguous for file-local functions)
    decls: list[tuple[str, str, str]] = field(default_factory=list)
