"""``python -m bench``: see ``bench/run.py``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # devstack/ sits beside bench/

from bench.run import main

raise SystemExit(main())
