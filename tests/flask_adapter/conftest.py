import sys
from pathlib import Path

# The shared adapter scenarios live in tests/scenarios (imported as ``scenarios``).
# Appended, not prepended: nothing in tests/ may shadow an installed package.
_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.append(_TESTS)
