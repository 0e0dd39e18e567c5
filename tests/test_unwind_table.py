"""The `.eh_frame_hdr` table an update maintains (eh_frame.update_hdr_table): equal to a
table built from scratch, and the runs it reports are exactly what must be rewritten.
Pure: numpy arrays, no files."""

from __future__ import annotations

import random

import numpy as np
import pytest

from devlink.link import eh_frame


def naive(entries: dict[int, int]) -> np.ndarray:
    return np.array(sorted(entries.items()), np.int64).reshape(-1, 2)


def apply_runs(old: np.ndarray, new: np.ndarray, runs) -> np.ndarray:
    """What a reader of the file sees: the old rows, with the reported runs rewritten."""
    out = np.zeros((max(len(old), len(new)), 2), np.int64)
    out[:len(old)] = old
    for start, end in runs:
        out[start:end] = new[start:end]
    return out[:len(new)]


@pytest.mark.parametrize("seed", range(40))
def test_update_matches_a_rebuild_and_reports_every_changed_row(seed):
    rng = random.Random(seed)
    entries = {pc: rng.randrange(1 << 20) for pc in rng.sample(range(0, 1 << 16, 16), rng.randrange(0, 300))}
    table = naive(entries)
    for _ in range(5):
        removed = [(pc, entries[pc]) for pc in rng.sample(sorted(entries), min(len(entries), rng.randrange(0, 20)))]
        removed += [(rng.randrange(1 << 16), 7)]                 # not in the table: ignored
        added = [(pc if rng.random() < 0.5 else rng.randrange(0, 1 << 17, 16), rng.randrange(1 << 20))
                 for pc, _ in removed[:rng.randrange(0, len(removed) + 1)]]
        added += [(rng.randrange(1 << 16, 1 << 17, 16), rng.randrange(1 << 20)) for _ in range(rng.randrange(0, 4))]
        for pc, fde in removed:
            if entries.get(pc) == fde:
                del entries[pc]
        for pc, fde in added:
            entries[pc] = fde
        new, runs = eh_frame.update_hdr_table(table, np.array(removed, np.int64).reshape(-1, 2),
                                              np.array(added, np.int64).reshape(-1, 2))
        assert np.array_equal(new, naive(entries))
        assert np.array_equal(apply_runs(table, new, runs), new)
        table = new


def test_replacing_every_fde_of_an_object_in_place_writes_only_its_rows():
    table = naive({pc: pc + 1 for pc in range(0, 16 * 1000, 16)})
    moved = np.array([(pc, pc + 5) for pc in range(1600, 3200, 16)], np.int64)
    old_pairs = np.array([(pc, pc + 1) for pc in range(1600, 3200, 16)], np.int64)
    new, runs = eh_frame.update_hdr_table(table, old_pairs, moved)
    assert runs == [(100, 200)]
    # code appended at the end (a live edit): the tail only
    new2, runs2 = eh_frame.update_hdr_table(new, np.zeros((0, 2), np.int64), np.array([(1 << 20, 9)], np.int64))
    assert runs2 == [(1000, 1001)] and len(new2) == 1001
