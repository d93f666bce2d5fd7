"""Where dlhub keeps what it derives once: converted pretrained weights, cached features (DLHUB_CACHE to move it)."""

import os
from pathlib import Path

CACHE_DIR = Path(os.environ.get("DLHUB_CACHE", Path.home() / ".cache" / "dlhub"))
