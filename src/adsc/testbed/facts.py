"""Fixed facts of the testbed model that the experiment and its report both use."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[3]  # the checkout (src/adsc/testbed/ -> root)
CHECKPOINT = REPO / "checkpoints" / "testbed"
VISION_TOKENS = 144  # 168 px / patch 14 = 12 x 12
ADSC_LAYERS = (1, 3, 6, 9)  # (2, 8, 16, 24) of 32 scaled to 12 layers
