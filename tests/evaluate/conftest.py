"""Make the known-cause helpers in tests/saliency importable here."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "saliency"))
