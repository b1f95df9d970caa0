#!/usr/bin/env bash
# The command that produced checkpoints/testbed (seed 0).
set -e
PYTHONPATH=src python -m adsc experiment --generate-only --out runs/testbed_data --seed 0 --num-images 100 --num-train 3000 --image-size 168 --patch-size 14
PYTHONPATH=src python -c "
from adsc.testbed.pretrain import pretrain
pretrain('runs/testbed_data', 'runs/testbed_pretrain', warmup_steps=600, qa_steps=800, batch_size=32, lr=1e-3, seed=0, save_steps=100)
"
