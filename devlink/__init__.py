"""devlink: live editing for C programs on Linux x86-64.

An incremental ELF linker with a stub + GOT cell for every function, so the running
program can be hot-patched by flipping one 8-byte cell.
"""

__version__ = "0.1.0"
