"""Lua 5.4 linked by devlink behaves exactly like Lua linked by cc.

Slow: compiles Lua (cached under ~/.cache/devlink/lua-obj), links it twice, runs the
scripts in tests/lua_scripts/ with both binaries and compares stdout, stderr and the
exit status. The Lua source comes from Debian's source package (tests/lua.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lua as lua_helper  # noqa: E402  (tests/lua.py)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SCRIPTS_DIR = Path(__file__).resolve().parent / "lua_scripts"
SCRIPTS = sorted(p.name for p in SCRIPTS_DIR.glob("*.lua"))
STDIN_TEXT = "the cat and the dog\nA cat! a Dog.\nthe end\n"
TIMEOUT = 60

C_MODULE = r"""
#include "lua.h"
#include "lauxlib.h"
static int add(lua_State *L) {
    lua_pushinteger(L, luaL_checkinteger(L, 1) + luaL_checkinteger(L, 2));
    return 1;
}
static int greet(lua_State *L) {
    lua_pushfstring(L, "hello, %s (%d)", luaL_checkstring(L, 1), (int)lua_gettop(L));
    return 1;
}
static int call(lua_State *L) {          /* calls back into the interpreter */
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    lua_pushinteger(L, 20);
    lua_call(L, 1, 1);
    return 1;
}
static const luaL_Reg fns[] = {{"add", add}, {"greet", greet}, {"call", call}, {NULL, NULL}};
int luaopen_cmod(lua_State *L) { luaL_newlib(L, fns); return 1; }
"""
C_MODULE_SCRIPT = """
local m = require("cmod")
print(m.add(2, 40), m.greet("devlink"), m.call(function(x) return x * 2 + 2 end))
print(pcall(m.add, "x"))
"""


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not found")


@pytest.fixture(scope="module")
def lua_objects() -> list[Path]:
    _need("cc")
    try:
        lua_helper.lua_sources()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    return lua_helper.lua_objects(opt=["-O2"], jobs=2)


@pytest.fixture(scope="module")
def lua_bins(lua_objects, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("lua")
    ref = d / "lua-ref"
    cmd = ["cc", "-o", str(ref), *map(str, lua_objects), *lua_helper.lua_cc_link_args()]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"reference link failed: {' '.join(cmd)}\n{proc.stderr}"

    out = d / "lua-devlink"
    cmd = [sys.executable, "-m", "devlink", "build", "-o", str(out),
           *map(str, lua_objects), *lua_helper.lua_devlink_link_args()]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=d, env=env, timeout=300)
    assert proc.returncode == 0, (
        f"devlink link failed (exit {proc.returncode}): {' '.join(cmd)}\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    assert out.is_file() and os.access(out, os.X_OK), "devlink produced no executable"
    assert "Traceback" not in proc.stderr, proc.stderr
    return {"ref": ref, "devlink": out}


def run_lua(exe: Path, args: list[str], stdin: str = "", cwd: Path = SCRIPTS_DIR,
            env: dict | None = None) -> tuple[int, str, str]:
    # argv[0] is "lua" for both binaries: lua prints it in uncaught-error messages
    proc = subprocess.run(["lua", *args], executable=str(exe), input=stdin.encode(),
                          capture_output=True, cwd=cwd, env=env, timeout=TIMEOUT)
    return (proc.returncode,
            proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"))


def assert_same(bins: dict[str, Path], args: list[str], **kw) -> tuple[int, str, str]:
    ref = run_lua(bins["ref"], args, **kw)
    got = run_lua(bins["devlink"], args, **kw)
    assert got[0] == ref[0], f"exit status {got[0]} != reference {ref[0]}\nstderr:\n{got[2]}"
    assert got[1] == ref[1], "stdout differs from the cc-linked lua"
    assert got[2] == ref[2], "stderr differs from the cc-linked lua"
    return ref


def test_scripts_exist():
    assert len(SCRIPTS) >= 5, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_matches_reference(lua_bins, script):
    status, out, _err = assert_same(lua_bins, [script], stdin=STDIN_TEXT)
    assert out, "the script printed nothing"
    expected_status = {"exit_code.lua": 7, "uncaught.lua": 1}.get(script, 0)
    assert status == expected_status


@pytest.mark.parametrize("args", [
    ["-v"],
    ["-e", "print(1 + 1, ('x'):rep(3), math.pi)"],
    ["-e", "x = 5", "-e", "print(x * x)"],
    ["-"],   # the chunk comes from stdin
    ["-e", "error('from -e')"],
    ["-e", "print(#arg, arg[1], arg[2])", "-", "a1", "a2"],
])
def test_command_line(lua_bins, args):
    assert_same(lua_bins, args, stdin="print('chunk from stdin', ...)\n")


def test_c_module_uses_exported_api(lua_bins, tmp_path):
    """-E: a C module loaded by require() resolves lua_* from the executable."""
    _need("cc")
    src = tmp_path / "cmod.c"
    src.write_text(C_MODULE)
    so = tmp_path / "cmod.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", f"-I{lua_helper.lua_sources()}",
                    "-o", str(so), str(src)], check=True, capture_output=True)
    script = tmp_path / "use_cmod.lua"
    script.write_text(C_MODULE_SCRIPT)
    args = ["-e", f"package.cpath = '{tmp_path}/?.so'", str(script)]
    status, out, err = assert_same(lua_bins, args, cwd=tmp_path)
    assert status == 0, err
    assert "42\thello, devlink (1)\t42" in out
