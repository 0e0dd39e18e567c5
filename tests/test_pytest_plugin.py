"""devlink's pytest plugin, tested with pytest's own pytester: a user's test of a live
edit passes; a failing expectation shows what was expected and the program's last
output; a test that times out leaves no process behind; no compiler means a skip."""

from __future__ import annotations

import os
import shutil

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")

USER_PROGRAM = r'''
def step_seen(c_project, step):
    """The count before the first pair of lines that differ by `step`."""
    prev = int(c_project.expect_output(r"count (\d+)").group(1))
    for _ in range(1000):
        cur = int(c_project.expect_output(r"count (\d+)").group(1))
        if cur - prev == step:
            return prev
        prev = cur
    raise AssertionError(f"no step of {step}")

PROGRAM = r"""
#include <stdio.h>
#include <unistd.h>
int counter;
int step(int x) { return x + 1; }
int main(void) {
    for (;;) {
        counter = step(counter);
        printf("count %d\n", counter);
        fflush(stdout);
        usleep(10000);
    }
}
"""
'''


def run(pytester, body: str, *args: str):
    pytester.makepyfile(test_user=USER_PROGRAM + body)
    # a subprocess: the user's test runs in a pytest of its own, plugin from the entry point
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_plugin_is_registered_by_entry_point(pytester):
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*--devlink-cc*", "*--devlink-timeout*"])


def test_a_users_live_edit_test_passes(pytester):
    result = run(pytester, '''
def test_edit(c_project):
    c_project.write("main.c", PROGRAM)
    c_project.start()
    c_project.expect_output(r"count 3")
    before = c_project.symbol("step")
    assert c_project.value("counter") >= 3
    gen = c_project.edit("main.c", "return x + 1;", "return x + 100;")
    assert gen.number == 2 and gen.patched
    c_project.wait_generation(2)
    assert step_seen(c_project, 100) >= 3        # the new code, in the same process: state kept
    after = c_project.symbol("step")
    assert after["stub"] == before["stub"] and after["atom"] != before["atom"]
    assert c_project.undo() == ["step"]
    step_seen(c_project, 1)
    pid = c_project.pid
    assert c_project.restart() != pid
    c_project.expect_output(r"^count 1$")
''')
    result.assert_outcomes(passed=1)


def test_a_failing_expectation_shows_the_programs_last_output(pytester):
    result = run(pytester, '''
def test_wrong(c_project):
    c_project.write("main.c", PROGRAM)
    c_project.start()
    c_project.expect_output(r"this never appears", timeout=1)
''')
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*did not print a line matching /this never appears/ in time (1 s;*"
                                 "its last output:*", "*count *"])


def test_a_test_that_times_out_leaves_no_process(pytester, tmp_path):
    pidfile = tmp_path / "pid"
    result = run(pytester, f'''
import signal, time

def test_slow(c_project):
    c_project.write("main.c", PROGRAM)
    c_project.start()
    open({str(pidfile)!r}, "w").write(str(c_project.pid))
    def expired(*_):
        raise TimeoutError("the test ran out of time")
    signal.signal(signal.SIGALRM, expired)
    signal.alarm(1)
    time.sleep(30)
''')
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*TimeoutError*"])
    pid = int(pidfile.read_text())
    # gone (or a zombie nobody waits for any more is not possible: the session reaped it)
    assert not os.path.exists(f"/proc/{pid}"), f"program {pid} was left behind"


def test_no_compiler_is_a_skip_with_the_reason(pytester):
    result = run(pytester, '''
def test_needs_cc(c_project):
    c_project.write("main.c", PROGRAM)
    c_project.start()
''', "--devlink-cc=/nonexistent/cc", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*c_project needs a C compiler*/nonexistent/cc*"])
