"""devlink's pytest plugin (entry point `pytest11`): the `c_project` fixture.

`pip install devlink` makes it available to every pytest run, with no conftest code:

    def test_edit_lands(c_project):
        c_project.write("main.c", SOURCE)
        c_project.start()
        c_project.expect_output(r"tick 1")
        c_project.edit("main.c", "tick", "tock")
        c_project.expect_output(r"tock \\d+")

Options: `--devlink-cc` (the compiler; default $CC or cc), `--devlink-timeout`
(seconds `expect_output` and `wait_generation` wait by default).  A test using the
fixture on a machine without a C compiler is skipped, saying so.  The API is
`devlink.testing.CProject`.
"""

from __future__ import annotations

import os
import shlex
import shutil

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("devlink", "devlink: live edits of C programs")
    group.addoption("--devlink-cc", default=None,
                    help="C compiler for c_project (default: $CC, then cc)")
    group.addoption("--devlink-timeout", type=float, default=None,
                    help="seconds c_project.expect_output waits by default (10)")


def pytest_configure(config):
    config.addinivalue_line("markers", "devlink: a test of live edits (uses the c_project fixture)")


def _compiler(config) -> str | None:
    cc = config.getoption("--devlink-cc") or os.environ.get("CC") or "cc"
    argv = shlex.split(cc)
    return cc if argv and shutil.which(argv[0]) else None


@pytest.fixture
def c_project(request, tmp_path):
    """A C program in a temporary folder, built by devlink and run under a session
    (devlink.testing.CProject).  The program is stopped at the end of the test, also
    when the test fails or times out."""
    cc = _compiler(request.config)
    if cc is None:
        wanted = request.config.getoption("--devlink-cc") or os.environ.get("CC") or "cc"
        pytest.skip(f"c_project needs a C compiler: {wanted!r} was not found (install gcc, or pass --devlink-cc)")
    from devlink.testing import DEFAULT_TIMEOUT, CProject
    timeout = request.config.getoption("--devlink-timeout") or DEFAULT_TIMEOUT
    project = CProject(tmp_path / "project", cc=cc, timeout=timeout)
    try:
        yield project
    finally:
        project.stop()
