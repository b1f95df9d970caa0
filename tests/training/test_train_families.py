"""`adsc train` on the families beyond LLaVA-1.5: the adapter tells training the parts to train,
the prompt format and the reference token count; the family's own processor outputs
(image_sizes, image_grid_thw) go through the collator into the compressed forward."""

from __future__ import annotations

import math
import os

import pytest
import torch
from fixtures import make_dataset
from tests.families_io import params, save_family
from transformers import TrainerCallback

import adsc
from adsc.evaluation.generation import load_model
from adsc.training import TrainConfig, train
from adsc.training.export import MERGED, load_trained

# images of several sizes and shapes in one batch: tile / sub-image counts and canvases differ between samples
SIZES = {"red": (60, 40), "green": (40, 60), "blue": (100, 100), "yellow": (30, 30)}


class Dropped(TrainerCallback):
    """Whether a training step ran with vision tokens dropped at the pruning layers."""

    def __init__(self):
        self.seen = []

    def on_step_end(self, args, state, control, model=None, **kw):
        trace = adsc.get_handle(model).last_trace
        if trace is not None:
            self.seen += [trace.vision_tokens(b) for b in range(trace.batch_size)]


@pytest.mark.parametrize("family", params())
def test_lora_training_runs_compressed_on_the_familys_inputs(family, tmp_path):
    model_dir = save_family(family, str(tmp_path / "model"))
    data, images = make_dataset(str(tmp_path), n=8, sizes=SIZES)
    probe = Dropped()
    cfg = TrainConfig.from_settings(
        model=model_dir, data=data, image_folder=images, output_dir=str(tmp_path / "out"),
        layers=(2, 4), budget=40, vision_tokens=100,
        curriculum="direct", global_batch_size=4, per_device_train_batch_size=4, max_steps=2, lora_r=4, lora_alpha=8,
        learning_rate=1e-3, warmup_steps=0.0, dataloader_num_workers=0, save_steps=100, logging_steps=1, merge=True,
    )
    summary = train(cfg, callbacks=[probe])
    assert summary["steps"] == 2 and all(math.isfinite(x) for x in summary.get("losses", [0.0]))
    with_images = [counts for counts in probe.seen if counts[0] > 0]
    assert with_images and all(c[-1] < c[0] for c in with_images)  # compressed in training, image by image
    assert os.path.exists(os.path.join(cfg.output_dir, "adapter_model.safetensors"))
    _merged_equals_adapter(cfg.output_dir)


def _merged_equals_adapter(out: str) -> None:
    """The merge export loads back (model and processor, as evaluation loads them) and computes what
    the base model with the trained adapter computes."""
    merged_dir = os.path.join(out, MERGED)
    merged, processor = load_model(merged_dir, "float32", "cpu")
    ids = processor.tokenizer("what color is the image ?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        want = load_trained(out, compressed=False)(input_ids=ids).logits
        torch.testing.assert_close(merged(input_ids=ids).logits, want, rtol=1e-4, atol=1e-4)
