"""Make the known-cause helpers importable from both test folders."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
