"""noxlib's own test entrypoint: it dogfoods register_sessions() for its own groups."""

import sys
from pathlib import Path

# Run from a fresh clone, before noxlib is installed anywhere: import it from this checkout.
sys.path.insert(0, str(Path(__file__).parent))

import noxlib

noxlib.register_sessions()
