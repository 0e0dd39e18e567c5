"""DWARF index of objects: functions, variables, function-scope statics and C types,
keyed by ELF symbol (see index.py), with value formatting for live globals (types.py).

`import devlink.dwarf` is cheap: pyelftools is imported only when an index is built.
"""

from devlink.dwarf.index import (
    CACHE_VERSION, INDEX_VERSION, SCOPE_FILE, SCOPE_FUNCTION, SCOPE_GLOBAL,
    DwarfIndexCache, FunctionInfo, ObjectIndex, VariableInfo, build_index, content_hash,
)
from devlink.dwarf.types import Member, TypeInfo, c_decl, format_value, type_hash

__all__ = [
    "CACHE_VERSION", "INDEX_VERSION", "SCOPE_FILE", "SCOPE_FUNCTION", "SCOPE_GLOBAL",
    "DwarfIndexCache", "FunctionInfo", "ObjectIndex", "VariableInfo", "build_index",
    "content_hash", "Member", "TypeInfo", "c_decl", "format_value", "type_hash",
]
