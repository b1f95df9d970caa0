"""Pretraining the testbed's "pretrained MLLM" from scratch, at full vision tokens.

Two stages, each skipped when its output exists (a killed run resumes where it stopped):
1. ``init/``: vocabulary, processor, random model, then the dense vision warm-up (warmup.py):
   the analogue of starting LLaVA from a trained CLIP.
2. ``qa/``: full fine-tuning of projector + language model (vision tower frozen, as in LLaVA)
   on the generated 665K-format conversations with ``adsc.training`` -- the same Trainer path
   users run -- with no pruning layers, i.e. at full tokens.
The result is ``qa/`` (model.safetensors + processor), small enough to commit.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .model import GRID, PATCH, build_model, build_processor, vocabulary
from .warmup import PatchData, warm_up_vision

TRAIN_JSON = "train/llava_instruct_synthetic.json"


def pretrain(data_root: str | Path, out: str | Path, *, warmup_steps: int = 300, qa_steps: int = 3000,
             batch_size: int = 32, lr: float = 1e-3, seed: int = 0, layers: int = 12, hidden: int = 128,
             save_steps: int = 200) -> dict:
    data_root, out = Path(data_root), Path(out)
    init = out / "init"
    if not (init / "model.safetensors").exists():
        start = time.time()
        processor = build_processor(vocabulary(data_root / TRAIN_JSON))
        model = build_model(len(processor.tokenizer), layers=layers, hidden=hidden, seed=seed)
        losses = warm_up_vision(model, PatchData(data_root, processor, GRID, PATCH), warmup_steps, batch_size, seed=seed)
        model.save_pretrained(init)
        processor.save_pretrained(init)
        (init / "warmup_log.json").write_text(json.dumps(
            {"steps": warmup_steps, "loss_first": losses[0], "loss_last": losses[-1], "seconds": round(time.time() - start, 1),
             "losses": losses[:: max(1, len(losses) // 100)]}, indent=1))

    from ..training import TrainConfig, train

    cfg = TrainConfig(
        model=str(init), data=str(data_root / TRAIN_JSON), image_folder=str(data_root / "train"), output_dir=str(out / "qa"),
        mode="full", lr=lr, projector_lr=lr, warmup_ratio=0.03, global_batch_size=batch_size,
        per_device_batch_size=batch_size, max_steps=qa_steps, max_length=512,
        layers=(), budget=float(GRID * GRID), curriculum="direct",  # no pruning layers: full tokens
        template="chat_template", pad_to_square=False, gradient_checkpointing=False, bf16=False,
        num_workers=0, logging_steps=20, save_steps=save_steps, save_total_limit=1, seed=seed,
    )
    return train(cfg)
