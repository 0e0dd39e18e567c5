"""The examples a new user runs (`devlink watch examples/NAME`), each driven the way
the README shows: start it, edit the file it names, see the running program change."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import pytest

from helpers import REPO_ROOT, find_cc, write
from watch_helpers import WatchProcess, save_rename

pytestmark = pytest.mark.skipif(find_cc() is None, reason="needs a C compiler")
EXAMPLES = REPO_ROOT / "examples"


@pytest.fixture
def example(tmp_path):
    started = []

    def copy(name: str) -> tuple[Path, callable]:
        root = tmp_path / name
        shutil.copytree(EXAMPLES / name, root, ignore=shutil.ignore_patterns(".devlink", name))

        def start():
            w = WatchProcess(root)
            started.append(w)
            return w
        return root, start

    yield copy
    for w in started:
        w.stop()


def test_life_rules_change_live(example):
    root, start = example("life")
    w = start()
    gen = int(w.expect(r"^generation (\d+) alive (\d+)").group(1))
    rules = root / "rules.c"
    save_rename(rules, rules.read_text().replace("return neighbours == 3;\n}", "return 0;\n}")
                .replace("return neighbours == 2 || neighbours == 3;", "return 0;"))
    m = w.expect(r"^generation (\d+) alive 0$")
    assert int(m.group(1)) > gen, "the board restarted: the game lost its generation count"


def test_server_keeps_connection_across_handler_edit(example):
    root, start = example("server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    write(root / "devlink.toml", f'sources = ["*.c"]\nargs = ["{port}"]\n')
    w = start()
    w.expect(r"^listening on")
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = conn.makefile("rw")
    f.write("hi\n"); f.flush()
    assert f.readline() == "echo #1: hi\n"
    handler = root / "handler.c"
    mark = w.mark()
    save_rename(handler, handler.read_text().replace('"echo #%ld: %s\\n"', '"hello #%ld, you said %s\\n"'))
    w.expect_log(r"gen \d+ · handler\.c", start=mark)
    f.write("again\n"); f.flush()
    assert f.readline() == "hello #2, you said again\n"     # same connection, count kept
    conn.close()


def test_prodcons_threads_pick_up_edit(example):
    root, start = example("prodcons")
    w = start()
    w.expect(r"^consumer [12] got \d+$")
    work = root / "work.c"
    save_rename(work, work.read_text().replace('"consumer %d got %ld\\n"', '"consumer %d ate %ld\\n"'))
    seen = set()
    deadline = time.monotonic() + 30
    while seen != {"1", "2"} and time.monotonic() < deadline:
        seen.add(w.expect(r"^consumer ([12]) ate \d+$").group(1))
    assert seen == {"1", "2"}
