"""Code lens titles: one line above each function, from the session's `lenses` reply (pure)."""

from __future__ import annotations


def lens_title(row: dict) -> str:
    """`GOT[17] · 212/288 B · patched 3×`"""
    n = row.get("patches", 0)
    return (f"GOT[{row['got_slot']}] · {row['size']}/{row['capacity']} B · "
            + (f"patched {n}×" if n else "not patched"))
