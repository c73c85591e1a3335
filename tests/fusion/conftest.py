"""The known-cause helpers live in tests/saliency; make them importable here."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "saliency"))
