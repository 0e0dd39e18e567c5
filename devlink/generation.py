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
    #: what the user should know about this update ("total: new initial value applies
    #: at the next restart", "main is running its old code ...")
    notes: list[str] = field(default_factory=list)

    def counts(self) -> str:
        """`1 changed (step), 0 added, 0 removed`: the decls, named when few."""
        def part(names: list[str], what: str) -> str:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            return f"{len(names)} {what}" + (f" ({shown})" if names else "")
        return ", ".join((part(self.changed, "changed"), part(self.added, "added"), part(self.removed, "removed")))
