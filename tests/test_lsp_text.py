"""The pure parts of the editor support: gcc's text to diagnostics, where a name is used
or declared, the word under the cursor, hover and lens text."""

from __future__ import annotations

from devlink.diagnostics import declaration_of, parse_gcc, uses_of, word_at
from devlink.lsp.hover import hover_markdown
from devlink.lsp.lens import lens_title

GCC = """main.c: In function 'step':
main.c:9:45: error: expected expression before ';' token
    9 | int step(int n) { return n + 1 +; }
      |                                             ^
/abs/util.h:3:5: warning: unused variable 'x' [-Wunused-variable]
main.c:2:1: note: declared here
cc1: fatal error: gone.c: No such file or directory
lib.c:7: error: old style without a column
"""


def test_parse_gcc_by_file_with_severities():
    out = parse_gcc(GCC, "/proj")
    assert out["/proj/main.c"] == [
        {"line": 9, "column": 45, "severity": "error", "message": "expected expression before ';' token", "source": "gcc"},
        {"line": 2, "column": 1, "severity": "info", "message": "declared here", "source": "gcc"}]
    assert out["/abs/util.h"][0]["severity"] == "warning" and out["/abs/util.h"][0]["line"] == 3
    assert out["/proj/lib.c"][0] == {"line": 7, "column": 1, "severity": "error",
                                      "message": "old style without a column", "source": "gcc"}
    assert parse_gcc("", "/proj") == {}


def test_uses_leave_out_prototypes_and_externs():
    src = "void missing(void);\nextern int missing_v;\nint main(void) {\n    missing();\n    return missing_v + notmissing;\n}\n"
    assert uses_of("missing", src) == [(4, 5)]
    assert uses_of("missing_v", src) == [(5, 12)]
    assert uses_of("absent", src) == []


def test_declaration_of_a_variable():
    src = "#include <x.h>\nint counter;\nchar label[16] = \"hi\";\nint f(void) { return counter; }\n"
    assert declaration_of("label", src) == (3, 6)
    assert declaration_of("counter", src) == (2, 5)
    assert declaration_of("nothing", src) is None


def test_word_at():
    assert word_at("    counter = step(counter);", 5) == ("counter", 4)
    assert word_at("    counter = step(counter);", 11) == ("counter", 4)      # just after the word
    assert word_at("    counter = step(counter);", 2) is None
    assert word_at("x", 5) is None and word_at("x", -1) is None


def test_hover_text():
    f = {"found": True, "kind": "function", "name": "step", "decl_file": "/p/main.c", "decl_line": 9,
         "signature": "int (int)", "stub": 0x401000, "atom": 0x402000, "size": 12, "capacity": 32,
         "got_slot": 4, "got_cell": 0x500020, "got_target": 0x402000, "generation": 3, "patches": 2,
         "last_patch": 1_700_000_000.0}
    text = hover_markdown(f, "/p")
    assert "**step** — function `int (int)` · main.c:9" in text and "`0x401000`" in text
    assert "12/32 B" in text and "GOT[4] cell `0x500020` → `0x402000`" in text and "patched 2×, last at" in text
    v = {"found": True, "kind": "static", "name": "calls", "scope": "static in tick()", "type": "int",
         "address": 0x600000, "size": 4, "section": ".bss", "value": None, "value_note": "the program is not running"}
    text = hover_markdown(v, "/p")
    assert "static variable (static in tick()) `int`" in text and "the program is not running" in text
    assert hover_markdown({"found": False, "name": "x"}, "/p") is None


def test_lens_title():
    assert lens_title({"got_slot": 17, "size": 212, "capacity": 288, "patches": 3}) == "GOT[17] · 212/288 B · patched 3×"
    assert lens_title({"got_slot": 0, "size": 5, "capacity": 32, "patches": 0}) == "GOT[0] · 5/32 B · not patched"


GCC_JSON = [{"kind": "error", "message": "expected expression before ‘;’ token", "children": [],
             "locations": [{"caret": {"file": "m.c", "line": 2, "column": 9, "display-column": 9}}]},
            {"kind": "warning", "message": "unused variable ‘u’", "option": "-Wunused-variable", "children": [],
             "locations": [{"caret": {"file": "m.c", "line": 1, "column": 19, "display-column": 19},
                            "finish": {"file": "m.c", "line": 1, "column": 19, "display-column": 19}}]}]


def test_gcc_json_diagnostics_to_rows_and_terminal_text():
    from devlink.diagnostics import parse_gcc, render_gcc_json
    rows = parse_gcc(GCC_JSON, "/p")["/p/m.c"]
    assert rows[0] == {"line": 2, "column": 9, "severity": "error", "message": "expected expression before ‘;’ token",
                       "source": "gcc"}
    assert rows[1]["code"] == "-Wunused-variable" and rows[1]["end_column"] == 20
    lines = {1: "int f(void) { int u; return 1; }", 2: "  return;"}
    text = render_gcc_json(GCC_JSON, lambda f, n: lines.get(n))
    assert text.splitlines()[:3] == ["m.c:2:9: error: expected expression before ‘;’ token",
                                     "    2 |   return;", "      |         ^"]
    assert "m.c:1:19: warning: unused variable ‘u’ [-Wunused-variable]" in text
    # the terminal text reads back as the same diagnostics
    assert [(r["line"], r["column"]) for r in parse_gcc(text, "/p")["/p/m.c"]] == [(2, 9), (1, 19)]
