"""Patch plans: what to write into a running program after an update.  Pure.

An update's writes (devlink.link.incremental.Write) go to the output file; the plan
picks the ones a running child needs and orders them so that no thread can see a
half-made change (invariant 5):

1. bytes nothing reaches yet: new code, new data, new stubs, new GOT entries, unwind
   tables (any order);
2. read-only named data written in place (an edited `const` table takes effect);
3. the GOT cells, last, each one aligned 8-byte store: the moment a function changes.

Writable variables that kept their address keep their *value* in the child: the
update marks their new initial value `init`, which goes only to the file (for the next
start).  A variable whose layout changed cannot be patched, which the plan reports
instead of writing.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class PatchWrite:
    address: int
    data: bytes
    kind: str                      #: "code", "data", "rodata", "stub", "got", "cell"


@dataclass
class PatchPlan:
    generation: int
    #: everything but the cells, in order
    writes: list[PatchWrite] = field(default_factory=list)
    #: (cell address, new target) — each one atomic, after all writes
    cells: list[tuple[int, int]] = field(default_factory=list)
    #: why this update cannot be applied to the running program (empty: it can)
    unsafe: list[str] = field(default_factory=list)
    #: decls that changed, for the report
    changed: list[str] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        return not self.unsafe

    def size(self) -> int:
        return sum(len(w.data) for w in self.writes) + 8 * len(self.cells)


def plan_patch(result) -> PatchPlan:
    """The plan for an update `result` (devlink.link.incremental.UpdateResult) made with
    live=True."""
    plan = PatchPlan(result.generation)
    plan.changed = [c.name for c in result.changed + result.added]
    for c in result.layout_changes:
        if c.kind == "variable":
            plan.unsafe.append(f"variable {c.name!r} ({c.file}) changed size from {c.old_size} to {c.new_size} bytes; "
                               f"its running value cannot be kept")
    late: list[PatchWrite] = []
    for w in result.writes:
        if w.vaddr is None:
            continue                          # not loaded: symbol table, headers
        if w.kind == "cell":
            plan.cells.append((w.vaddr, int.from_bytes(w.data, "little")))
            continue
        if w.kind == "init":
            continue                          # the child keeps its running value
        pw = PatchWrite(w.vaddr, w.data, w.kind)
        (late if w.visible else plan.writes).append(pw)
    plan.writes += late
    return plan


def apply_in_order(target, plan: PatchPlan) -> None:
    """Bytes first, cells last (invariant 5), through `target.write(address, data)` and
    `target.flip_cell(address, value)`: the one order every patcher writes in."""
    for w in plan.writes:
        target.write(w.address, w.data)
    for address, value in plan.cells:
        target.flip_cell(address, value)
