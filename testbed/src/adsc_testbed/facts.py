"""Fixed facts of the testbed model that the experiment, its report and pretraining all use."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

IMAGE_SIZE, PATCH = 168, 14
GRID = IMAGE_SIZE // PATCH  # 12 tokens per side
VISION_TOKENS = GRID * GRID  # 144: budgets 48 / 32 / 16 are 1/3, 2/9, 1/9 of it, as of LLaVA-1.5's 576
ADSC_LAYERS = (1, 3, 6, 9)  # (2, 8, 16, 24) of 32 scaled to 12 layers

# The committed pretrained model is package data (installed with the package, editable or not), so
# the experiment finds it from any working directory; docs/testbed.md says how it was made.
CHECKPOINT = Path(str(files("adsc_testbed") / "checkpoint"))
