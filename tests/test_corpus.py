"""End-to-end corpus test: every program in tests/corpus/, at -O0 and -O2, built once
with `cc` (the reference) and once with `devlink build`, must behave identically when
run: same stdout, same stderr, same exit status.

See tests/helpers.py for the corpus layout and the per-file directives."""

from __future__ import annotations

import re
import subprocess

import pytest

import helpers

CC = helpers.find_cc()
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler (`cc`) found on PATH; install gcc")

PROGRAMS = helpers.corpus_programs()
PROGRAM_IDS = [p.name for p in PROGRAMS]


def test_corpus_is_populated():
    assert len(PROGRAMS) >= 28, f"expected at least 28 corpus programs, found {len(PROGRAMS)}"
    for p in PROGRAMS:
        assert p.sources, f"{p.name}: no sources"


@pytest.mark.parametrize("opt", helpers.OPT_LEVELS, ids=lambda o: o.lstrip("-"))
@pytest.mark.parametrize("prog", PROGRAMS, ids=PROGRAM_IDS)
def test_corpus_program(prog: helpers.CorpusProgram, opt: str, tmp_path):
    d = prog.directives
    inputs = helpers.corpus_inputs(prog, CC, tmp_path / "archive", opt)

    # Both executables are called `prog` (in different directories) so argv[0]'s basename agrees.
    ref = helpers.cc_build(CC, tmp_path / "ref" / "prog", inputs, opt=opt, cflags=d.cflags,
                           ldflags=d.ldflags, cwd=tmp_path)
    try:
        out = helpers.devlink_build(tmp_path / "out" / "prog", inputs, opt=opt, cflags=d.cflags,
                                    ldflags=d.ldflags, cwd=tmp_path)
    except helpers.BuildError as e:
        pytest.fail(f"devlink build of {prog.name} {opt} failed:\n{e}", pytrace=False)

    env = helpers.program_env()
    expected = helpers.run_program([ref, *prog.args], env=env, cwd=tmp_path)
    assert not expected.timed_out, f"reference build of {prog.name} {opt} timed out: corpus bug"
    actual = helpers.run_program([out, *prog.args], env=env, cwd=tmp_path)

    report = helpers.compare_runs(expected, actual)
    if report:
        pytest.fail(f"{prog.name} {opt}: devlink's executable behaves differently from cc's\n"
                    f"sources: {' '.join(str(s) for s in inputs)}\n{report}", pytrace=False)


# ---- corpus sanity: the programs really exercise what they claim (uses cc/binutils only)

CHECKED = [p for p in PROGRAMS if p.directives.check_nm or p.directives.check_rodata_relocs]


@pytest.mark.parametrize("opt", helpers.OPT_LEVELS, ids=lambda o: o.lstrip("-"))
@pytest.mark.parametrize("prog", CHECKED, ids=[p.name for p in CHECKED])
def test_corpus_objects_have_expected_shape(prog: helpers.CorpusProgram, opt: str, tmp_path):
    nm, readelf = helpers.find_tool("nm"), helpers.find_tool("readelf")
    if nm is None or readelf is None:
        pytest.skip("nm/readelf not found (install binutils)")
    d = prog.directives
    objs = helpers.cc_compile_objects(CC, prog.all_sources, tmp_path, [opt, *d.cflags])

    names = set()
    for o in objs:
        text = subprocess.run([nm, str(o)], capture_output=True, text=True, check=True).stdout
        names.update(line.split()[-1] for line in text.splitlines() if line.strip())
    for regex in d.nm_checks_for(opt):
        assert any(re.search(regex, n) for n in names), \
            f"{prog.name} {opt}: no symbol matches {regex!r}; symbols: {sorted(names)}"

    if d.check_rodata_relocs:
        found = []
        for o in objs:
            text = subprocess.run([readelf, "-rW", str(o)], capture_output=True, text=True, check=True).stdout
            found += re.findall(r"Relocation section '\.rela(\.rodata[^']*)'", text)
        assert found, f"{prog.name} {opt}: no relocations against .rodata (no jump table?)"
