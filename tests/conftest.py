"""Shared test support: ``tests/support`` holds helpers more than one test area uses (a copy of the demo project,
a live uvicorn server); it is put on the import path here, once, for every test directory."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "support"))
