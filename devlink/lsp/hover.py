"""Hover text: a session's `symbol` reply as Markdown (pure)."""

from __future__ import annotations

import os
import time


def _addr(v) -> str:
    return "-" if v is None else f"`{v:#x}`"


def _where(info: dict, root: str) -> str:
    f, line = info.get("decl_file"), info.get("decl_line")
    if not f:
        return ""
    rel = os.path.relpath(f, root) if f.startswith(root + os.sep) else f
    return f"{rel}:{line}" if line else rel


def hover_markdown(info: dict, root: str) -> str | None:
    """The hover of one function or variable, or None when the session does not know it."""
    if not info.get("found"):
        return None
    name, where = info["name"], _where(info, root)
    if info["kind"] == "function":
        if info.get("import"):
            return "\n".join([f"**{name}** — imported function ({info.get('file') or 'shared library'})",
                              "", f"- stub (canonical address): {_addr(info.get('stub'))}",
                              f"- GOT entry {_addr(info.get('got_cell'))}, bound by ld.so at start"])
        sig = info.get("signature")
        lines = [f"**{name}** — function" + (f" `{sig}`" if sig else "") + (f" · {where}" if where else ""), ""]
        lines.append(f"- stub (canonical address): {_addr(info.get('stub'))}")
        lines.append(f"- atom: {_addr(info.get('atom'))} · {info.get('size', 0)}/{info.get('capacity', 0)} B"
                     + (" (removed)" if info.get("removed") else ""))
        lines.append(f"- GOT[{info.get('got_slot')}] cell {_addr(info.get('got_cell'))} → {_addr(info.get('got_target'))}")
        patches = info.get("patches", 0)
        last = info.get("last_patch")
        when = f", last at {time.strftime('%H:%M:%S', time.localtime(last))}" if last else ""
        lines.append(f"- generation {info.get('generation')} · patched {patches}×{when}")
        return "\n".join(lines)
    kind = "static" if info["kind"] == "static" else "global"
    scope = info.get("scope")
    head = f"**{name}** — {kind} variable" + (f" ({scope})" if scope else "")
    if info.get("type"):
        head += f" `{info['type']}`"
    if where:
        head += f" · {where}"
    lines = [head, "", f"- address {_addr(info.get('address'))} · {info.get('size')} B · {info.get('section')}"]
    if info.get("value") is not None:
        lines.append(f"- value (pid {info.get('pid')}): `{info['value']}`")
    else:
        lines.append(f"- value: {info.get('value_note') or 'not available'}")
    return "\n".join(lines)
