"""Hot-patching a running program through a Session (real compiler, real child).

The child prints one line per tick; the test rewrites a source file the way an editor
saves it, applies the update, and reads what the running program prints next.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devlink.testing import CProject  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")

PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int counter = 0;
static int calls;
const int table[4] = {1, 2, 3, 4};
const char *label(void) { return "v1"; }
int step(int x) { return x + 1; }
int apply(int (*f)(int), int x) { return f(x); }
int pick(int i) { return table[i]; }    /* a constant index would be folded into main */

int main(void) {
    int (*stored)(int) = step;          /* a function pointer taken before any patch */
    char *heap = malloc(16);
    strcpy(heap, "heap-ok");
    for (int i = 0; i < 400; i++) {
        counter = step(counter);
        calls++;
        printf("tick counter=%d stored=%d label=%s table=%d calls=%d heap=%s\n",
               counter, apply(stored, 0), label(), pick(2), calls, heap);
        fflush(stdout);
        usleep(20000);
    }
    return 0;
}
"""


class Live(CProject):
    """The hot-patch tests' project (devlink.testing.CProject, the pytest plugin's
    fixture): one source file, prog.c, started at once."""

    def __init__(self, tmp: Path, source: str, flags=("-O0",), **session_options):
        super().__init__(tmp, output="prog")
        self.src = self.write("prog.c", source)
        self.start(cflags=tuple(flags), **session_options)

    def edit(self, old: str, new: str) -> None:
        gen = super().edit("prog.c", old, new)
        assert gen is not None and gen.patched, gen

    def lines_until(self, pred, timeout: float = 10.0) -> str:
        """The next line (in order, none skipped) for which `pred` holds."""
        return self.expect_line(pred, timeout)

    @property
    def child(self):
        return self.session.child

    def close(self) -> None:
        self.stop()


@pytest.fixture
def live(tmp_path):
    lv = Live(tmp_path, PROGRAM)
    yield lv
    lv.close()


def field(line: str, name: str) -> str:
    for part in line.split():
        if part.startswith(name + "="):
            return part.split("=", 1)[1]
    raise KeyError(name)


def test_edit_reaches_running_program_and_state_stays(live):
    before = live.lines_until(lambda ln: ln.startswith("tick"))
    n0 = int(field(before, "counter"))
    live.edit("return x + 1;", "return x + 1000;")
    after = live.lines_until(lambda ln: ln.startswith("tick") and int(field(ln, "stored")) == 1000)
    # the counter kept its value (it was not reset) and now grows by 1000
    assert int(field(after, "counter")) > n0
    nxt = live.lines_until(lambda ln: ln.startswith("tick"))
    assert int(field(nxt, "counter")) - int(field(after, "counter")) == 1000
    # a static counter and the heap kept their values
    assert int(field(nxt, "calls")) > 1 and field(nxt, "heap") == "heap-ok"


def test_function_pointer_stored_before_patch_calls_new_code(live):
    live.lines_until(lambda ln: ln.startswith("tick"))
    live.edit("return x + 1;", "return x + 7;")
    line = live.lines_until(lambda ln: ln.startswith("tick") and field(ln, "stored") == "7")
    assert field(line, "stored") == "7"


def test_string_literal_and_const_table_take_effect(live):
    live.lines_until(lambda ln: ln.startswith("tick"))
    live.edit('return "v1";', 'return "version-two";')
    live.lines_until(lambda ln: "label=version-two" in ln)
    live.edit("{1, 2, 3, 4}", "{1, 2, 33, 4}")
    live.lines_until(lambda ln: "table=33" in ln)


def test_new_function_global_and_libc_call(live):
    live.lines_until(lambda ln: ln.startswith("tick"))
    live.edit("int step(int x) { return x + 1; }",
              "int bonus = 5;\n"
              "int extra(int x) { return x * 2 + bonus + (int)strlen(\"abc\"); }\n"
              "int step(int x) { return extra(x) - x * 2 - 8 + 1 + x; }")
    # extra(x) = 2x + 5 + 3 -> step(x) = x + 1, but now through new code, a new global and strlen
    live.lines_until(lambda ln: ln.startswith("tick"))
    line = live.lines_until(lambda ln: ln.startswith("tick"))
    c1 = int(field(line, "counter"))
    line = live.lines_until(lambda ln: ln.startswith("tick"))
    assert int(field(line, "counter")) == c1 + 1


THREADS = r"""
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <unistd.h>

volatile int seen[4];
volatile long calls[4];
volatile int eintr;
int version(int x) { return x * 0 + 0; }

static void *worker(void *arg) {
    int id = (int)(long)arg;
    for (;;) { seen[id] = version(id); calls[id]++; }
    return 0;
}

static void *waiter(void *arg) {
    int fds[2];
    pipe(fds);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev);
    for (;;) {
        int n = epoll_wait(ep, &ev, 1, -1);
        if (n < 0 && errno == EINTR) eintr++;
    }
    return arg;
}

int main(void) {
    pthread_t t[5];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], 0, worker, (void *)i);
    pthread_create(&t[4], 0, waiter, 0);
    for (int i = 0; i < 3000; i++) {
        printf("tick seen=%d,%d,%d,%d eintr=%d calls=%ld\n", seen[0], seen[1], seen[2], seen[3], eintr, calls[0]);
        fflush(stdout);
        usleep(20000);
    }
    return 0;
}
"""


def test_threads_and_epoll_survive_100_patches(tmp_path):
    lv = Live(tmp_path, THREADS, flags=("-O2", "-pthread"))
    try:
        lv.lines_until(lambda ln: ln.startswith("tick"))
        assert getattr(lv.session.patcher, "active", False), "the shared patch area is not active"
        current = "x * 0 + 0"
        for k in range(1, 101):
            new = f"x * 0 + {k}"
            lv.edit(current, new)
            current = new
            assert lv.child.poll() is None, f"the program died after patch {k}"
        want = ",".join(["100"] * 4)
        line = lv.lines_until(lambda ln: f"seen={want}" in ln, timeout=15)
        assert field(line, "eintr") == "0", line      # no blocked call was disturbed
        assert lv.session.patcher.mem.writes == 0      # code and cells: stores into the shared area
        calls = int(field(line, "calls"))
        later = lv.lines_until(lambda ln: ln.startswith("tick"))
        assert int(field(later, "calls")) > calls      # the threads are still running
    finally:
        lv.close()
