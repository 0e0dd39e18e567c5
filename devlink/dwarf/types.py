"""C types from DWARF, as small immutable trees: enough to render a declaration and to
format a live value read from the child's memory (the LSP's hover on a global).

Pure data and pure functions: no file, no process, no pyelftools.  `index.py` builds the
trees; `format_value` renders bytes; `type_hash` gives a digest that is stable across
recompiles while the type's layout and spelling are unchanged.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass, replace

# Kinds of TypeInfo.  A typedef is resolved: it has the kind of the type it names, with
# `name` = the typedef's name and `typedef_of` = the spelling of the underlying type.
KIND_BASE = "base"          # int, char, float, _Bool, ... (see `encoding`)
KIND_POINTER = "pointer"    # `target` is the pointee; a function pointer has a
                            # target of kind "function" (see `is_function_pointer`)
KIND_ARRAY = "array"        # `target` is the element type, `count` the element count
KIND_STRUCT = "struct"
KIND_UNION = "union"
KIND_ENUM = "enum"          # `enumerators`; `encoding` tells the underlying signedness
KIND_FUNCTION = "function"  # `target` is the return type (None: void), `params`
KIND_VOID = "void"
KIND_UNKNOWN = "unknown"    # anything devlink does not model (e.g. malformed DWARF)

# Encodings of base types (and of enums' underlying integers).
ENC_SIGNED = "signed"
ENC_UNSIGNED = "unsigned"
ENC_FLOAT = "float"
ENC_BOOL = "bool"
ENC_CHAR = "char"           # char / signed char / unsigned char: see `is_signed`
ENC_COMPLEX = "complex"
ENC_OTHER = "other"


@dataclass(frozen=True)
class Member:
    """One member of a struct or union."""

    name: str                 # source name; "" for an anonymous struct/union member
    offset: int               # byte offset from the start of the aggregate
    type: "TypeInfo"          # the member's type
    bit_size: int | None = None    # for a bit-field: its width in bits, else None
    bit_offset: int | None = None  # for a bit-field: bit offset from `offset` (LSB first)


@dataclass(frozen=True)
class TypeInfo:
    """A C type, resolved enough to format a value of it.

    Pointer targets that are structs, unions or functions are *shallow* (kind, name and
    size, no members/params: `shallow=True`), so the tree is finite (no cycles through
    `struct node *next`) and a variable's type hash depends only on the layout of its
    own storage.
    """

    kind: str                       # one of the KIND_* constants above
    name: str                       # C spelling: "int", "struct node", "pt_t", "int *",
                                    # "const int[5]"; for a typedef its own name
    size: int | None                # byte size (None when unknown, e.g. `int[]`, void)
    encoding: str | None = None     # base types and enums: one of the ENC_* constants
    is_signed: bool = False         # for ENC_CHAR / enums: whether the integer is signed
    target: "TypeInfo | None" = None  # pointee / array element / function return type
    count: int | None = None        # arrays: number of elements (None: unknown/flexible)
    members: tuple[Member, ...] = ()           # structs and unions, in DWARF order
    enumerators: tuple[tuple[str, int], ...] = ()  # enums: (name, value) in order
    params: tuple["TypeInfo", ...] = ()        # functions: parameter types in order
    variadic: bool = False          # functions: ends with `...`
    prototyped: bool = True         # functions: declared with a prototype
    const: bool = False             # qualified const (at this level)
    volatile: bool = False          # qualified volatile (at this level)
    typedef_of: str | None = None   # set when this is a typedef: the underlying spelling
    shallow: bool = False           # members/params omitted (pointer target; see above)

    @property
    def is_function_pointer(self) -> bool:
        """True for a pointer to a function (kind "pointer", target kind "function")."""
        return self.kind == KIND_POINTER and self.target is not None and \
            self.target.kind == KIND_FUNCTION

    @property
    def is_char_array(self) -> bool:
        """True for an array of char/signed char/unsigned char (formatted as a string)."""
        return (self.kind == KIND_ARRAY and self.target is not None
                and self.target.kind == KIND_BASE and self.target.encoding == ENC_CHAR)

    def c_decl(self, declarator: str = "") -> str:
        """This type as C, around `declarator` (a name or ""): `int (*fp)(int)`."""
        return c_decl(self, declarator)


# --------------------------------------------------------------------------- rendering


def _quals(t: TypeInfo) -> str:
    return ("const " if t.const else "") + ("volatile " if t.volatile else "")


def c_decl(t: TypeInfo | None, declarator: str = "") -> str:
    """Render `t` as a C declaration of `declarator` ("" gives an abstract type name:
    `int *`, `char[16]`, `int (int, const char *)`)."""
    if t is None:
        return ("void " + declarator).rstrip() if declarator else "void"
    named = t.typedef_of is not None or t.kind not in (KIND_POINTER, KIND_ARRAY,
                                                       KIND_FUNCTION)
    if named:
        base = _quals(t) + (t.name or "?")
        if not declarator:
            return base
        sep = "" if declarator.startswith("[") else " "
        return base + sep + declarator
    if t.kind == KIND_POINTER:
        inner = "*" + (" const" if t.const else "") + (" volatile" if t.volatile else "")
        if (t.const or t.volatile) and declarator:
            inner += " "
        inner += declarator
        tgt = t.target
        if tgt is not None and tgt.typedef_of is None and tgt.kind in (KIND_ARRAY,
                                                                     KIND_FUNCTION):
            inner = "(" + inner + ")"
        return c_decl(tgt, inner)
    if t.kind == KIND_ARRAY:
        elem = t.target
        if t.const and elem is not None and not elem.const:
            # gcc puts the const on the array; C spells it on the element
            elem = replace(elem, const=True)
        return c_decl(elem, declarator + "[%s]" % ("" if t.count is None else t.count))
    # function
    if not t.prototyped:
        plist = ""
    elif not t.params and not t.variadic:
        plist = "void"
    else:
        plist = ", ".join(c_decl(p) for p in t.params)
        if t.variadic:
            plist += ", ..." if plist else "..."
    ret = t.target
    return c_decl(ret, declarator + "(" + plist + ")") if declarator else \
        c_decl(ret, "") + " (" + plist + ")"


# --------------------------------------------------------------------------- hashing


def _canon(t: TypeInfo | None, out: list[str]) -> None:
    """Append a canonical description of `t` (layout + spelling) to `out`."""
    if t is None:
        out.append("v;")
        return
    out.append("%s|%s|%s|%s|%d|%d|%d|%s|%d|%d|%d;" % (
        t.kind, t.name, t.size, t.encoding, t.is_signed, t.const, t.volatile, t.count,
        t.variadic, t.prototyped, t.shallow))
    if t.kind in (KIND_POINTER, KIND_ARRAY, KIND_FUNCTION):
        _canon(t.target, out)
    for m in t.members:
        out.append("m%s@%d:%s:%s(" % (m.name, m.offset, m.bit_size, m.bit_offset))
        _canon(m.type, out)
        out.append(")")
    for n, v in t.enumerators:
        out.append("e%s=%d," % (n, v))
    for p in t.params:
        out.append("p(")
        _canon(p, out)
        out.append(")")


def type_hash(t: TypeInfo | None) -> str:
    """A 16-hex-digit digest of the type's layout and spelling (names, sizes, member
    names/offsets/types, enumerators).  Equal across recompiles for an unchanged type;
    different when e.g. `int` becomes `float` or struct members are renamed/reordered.
    Source positions are not part of it."""
    out: list[str] = []
    _canon(t, out)
    return hashlib.sha256("".join(out).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- formatting

_ESCAPES = {0x07: "\\a", 0x08: "\\b", 0x0c: "\\f", 0x0a: "\\n", 0x0d: "\\r",
            0x09: "\\t", 0x0b: "\\v", 0x5c: "\\\\", 0x22: '\\"'}


def _escape_byte(b: int, quote: str = '"') -> str:
    if b == ord(quote):
        return "\\" + quote
    if b in _ESCAPES and not (b == 0x22 and quote != '"'):
        return _ESCAPES[b]
    if 0x20 <= b < 0x7f:
        return chr(b)
    return "\\%03o" % b


def _c_string(data: bytes, max_len: int) -> str:
    """`data` up to its first NUL as an escaped C string literal of at most about
    `max_len` characters (escapes are never split); `...` follows when cut."""
    end = data.find(b"\0")
    if end < 0:
        end = len(data)  # no terminator inside the array: show all of it
    budget = max(max_len - 2, 1)
    out: list[str] = []
    used = 0
    for b in data[:end]:
        piece = _escape_byte(b)
        if used + len(piece) > budget:
            return '"' + "".join(out) + '"...'
        out.append(piece)
        used += len(piece)
    return '"' + "".join(out) + '"'


def _fmt_float(data: bytes, size: int) -> str:
    if size == 4:
        v = struct.unpack("<f", data[:4])[0]
        if math.isfinite(v):
            for p in range(1, 10):
                s = "%.*g" % (p, v)
                if struct.pack("<f", float(s)) == data[:4]:
                    return s
    elif size == 8:
        v = struct.unpack("<d", data[:8])[0]
        if math.isfinite(v):
            return repr(v)
    elif size in (10, 12, 16):
        # x87 80-bit extended precision (long double on x86-64)
        mant = int.from_bytes(data[:8], "little")
        se = int.from_bytes(data[8:10], "little")
        sign, exp = se >> 15, se & 0x7FFF
        if exp == 0x7FFF:
            v = float("nan") if mant << 1 & ((1 << 64) - 1) else float("inf")
        elif exp == 0 and mant == 0:
            v = 0.0
        else:
            try:
                v = math.ldexp(mant / (1 << 63), exp - 16383)
            except OverflowError:
                v = float("inf")
        v = -v if sign else v
        if math.isfinite(v):
            return repr(v)
    else:
        return "<float%d>" % (size * 8)
    return "nan" if math.isnan(v) else ("-inf" if v < 0 else "inf")


def _fmt_int(t: TypeInfo, data: bytes) -> int:
    size = t.size or len(data)
    return int.from_bytes(data[:size], "little", signed=t.is_signed)


def _format(t: TypeInfo, data: bytes, budget: int, max_elements: int, depth: int) -> str:
    size = t.size
    if t.kind in (KIND_VOID, KIND_FUNCTION, KIND_UNKNOWN):
        return "<%s>" % (t.kind if t.kind != KIND_UNKNOWN else "?")
    if size is not None and len(data) < size and t.kind not in (KIND_ARRAY, KIND_STRUCT,
                                                                KIND_UNION):
        return "<unavailable>"
    if t.kind == KIND_BASE:
        enc = t.encoding
        if enc == ENC_FLOAT:
            return _fmt_float(data, size or len(data))
        if enc == ENC_COMPLEX and size:
            h = size // 2
            return "%s + %si" % (_fmt_float(data[:h], h), _fmt_float(data[h:size], h))
        v = _fmt_int(t, data)
        if enc == ENC_BOOL:
            return {0: "false", 1: "true"}.get(v, str(v))
        if enc == ENC_CHAR:
            b = data[0]
            return "%d '%s'" % (v, _escape_byte(b, "'"))
        return str(v)
    if t.kind == KIND_POINTER:
        return "0x%x" % int.from_bytes(data[:size or 8], "little")
    if t.kind == KIND_ENUM:
        v = _fmt_int(t, data)
        for n, ev in t.enumerators:
            if ev == v:
                return n
        return str(v)
    if depth <= 0:
        return "{...}"
    if t.kind == KIND_ARRAY:
        elem = t.target
        if elem is None:
            return "{...}"
        if t.is_char_array:
            n = len(data) if t.count is None else min(len(data), t.count * (elem.size or 1))
            return _c_string(data[:n], budget)
        esz = elem.size or 0
        if esz <= 0:
            return "{...}"
        count = t.count if t.count is not None else 0
        items: list[str] = []
        used = 0
        for i in range(count):
            if i >= max_elements or used > budget:
                items.append("...")
                break
            chunk = data[i * esz:(i + 1) * esz]
            if len(chunk) < esz:
                items.append("<unavailable>")
                break
            s = _format(elem, chunk, budget - used, max_elements, depth - 1)
            items.append(s)
            used += len(s) + 2
        return "{" + ", ".join(items) + "}"
    if t.kind in (KIND_STRUCT, KIND_UNION):
        if t.shallow:
            return "{...}"
        items = []
        used = 0
        for m in t.members:
            if used > budget:
                items.append("...")
                break
            msz = m.type.size or 0
            chunk = data[m.offset:m.offset + msz] if m.bit_size is None else \
                data[m.offset:m.offset + max(msz, (m.bit_offset or 0) // 8 + m.bit_size // 8 + 2)]
            if m.bit_size is not None:
                raw = int.from_bytes(chunk, "little") >> (m.bit_offset or 0)
                raw &= (1 << m.bit_size) - 1
                if m.type.is_signed or m.type.encoding == ENC_SIGNED:
                    if raw >> (m.bit_size - 1):
                        raw -= 1 << m.bit_size
                if m.type.kind == KIND_ENUM:
                    s = next((n for n, ev in m.type.enumerators if ev == raw), str(raw))
                elif m.type.encoding == ENC_BOOL:
                    s = {0: "false", 1: "true"}.get(raw, str(raw))
                else:
                    s = str(raw)
            else:
                s = _format(m.type, chunk, budget - used, max_elements, depth - 1)
            item = (".%s = %s" % (m.name, s)) if m.name else s
            items.append(item)
            used += len(item) + 2
        return "{" + ", ".join(items) + "}"
    return "<?>"


def format_value(type: TypeInfo, data: bytes, max_len: int = 200, *,
                 max_elements: int = 16, max_depth: int = 4) -> str:
    """Format the bytes of one value of `type` (little-endian x86-64) as C would show it.

    Integers in decimal, floats shortest-round-trip, `_Bool` as true/false, a char as
    `65 'A'`, char arrays as escaped C strings (cut at the NUL or `max_len`, with `...`
    when cut), pointers as `0x...`, arrays as `{1, 2, 3}` (cut after `max_elements`
    with `...`), structs/unions as `{.x = 1, .y = 2.5}` (nesting beyond `max_depth` is
    `{...}`), enums by enumerator name (the number when none matches).  Bytes missing
    from `data` show as `<unavailable>`.  The result is at most about `max_len`
    characters (longer text is cut and ends with `...`).  Never raises on odd input.
    """
    try:
        s = _format(type, bytes(data), max_len, max_elements, max_depth)
    except Exception:  # a malformed type tree must not break a hover
        return "<?>"
    if len(s) > max_len + 3:
        s = s[:max_len] + "..."
    return s
