"""pytest configuration shared by all tests: make `import devlink` use this checkout
and `import helpers` (tests/helpers.py) work from any test module."""

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parent
for _p in (str(_TESTS.parent), str(_TESTS)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

# devlink's pytest plugin (entry point) may have imported an installed devlink from
# another checkout before this file ran: forget it, so this checkout's is imported.
for _name in [n for n in sys.modules if n == "devlink" or n.startswith("devlink.")]:
    if not str(getattr(sys.modules[_name], "__file__", "") or "").startswith(str(_TESTS.parent) + "/"):
        del sys.modules[_name]

# Subprocesses (`python -m devlink ...`) must run this checkout too, whatever devlink
# is installed in site-packages.
import os  # noqa: E402

os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(_TESTS.parent)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
