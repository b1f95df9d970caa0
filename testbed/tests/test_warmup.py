"""The vision warm-ups' per-patch labels on a hand-built scene, and what the reading warm-up trains."""

import numpy as np
import torch

from adsc_testbed.dataset import TestbedConfig, generate
from adsc_testbed.facts import GRID, PATCH
from adsc_testbed.model import build_model, build_processor, vocabulary
from adsc_testbed.warmup import NO_WORD, TEXT, PatchData, patch_labels, patch_words, read_warm_up
from adsc_testbed.world import CATEGORIES, VOCAB, GridSpec
from testbed_scenes import SPEC, scene_one


def _patch_of(bbox):
    """(row, col) of the patch holding a box's centre."""
    x0, y0, x1, y1 = bbox
    return (y0 + y1) // 2 // SPEC.patch_size, (x0 + x1) // 2 // SPEC.patch_size


def test_patch_labels_and_words_of_a_hand_built_scene():
    scene = scene_one()
    grid = SPEC.grid
    labels = patch_labels(scene.to_dict(), grid, SPEC.patch_size).reshape(grid, grid)
    words = patch_words(scene.to_dict(), grid, SPEC.patch_size).reshape(grid, grid)
    blue_square, cat, milk = scene.objects[1], scene.texts[0], scene.texts[1]
    # a large object fills its 2 x 2 patches of the cell: layout (2, 6) -> patches rows 4-5, cols 12-13
    assert (labels[4:6, 12:14] == 2 + CATEGORIES.index(("blue", "square"))).all()
    assert labels[_patch_of(blue_square.bbox)] == 2 + CATEGORIES.index(("blue", "square"))
    assert labels[_patch_of(cat.bbox)] == TEXT and words[_patch_of(cat.bbox)] == VOCAB.index("CAT")
    assert labels[_patch_of(milk.bbox)] == TEXT and words[_patch_of(milk.bbox)] == VOCAB.index("MILK")
    # a word exactly where the class is "text", nowhere else
    assert ((words != NO_WORD) == (labels == TEXT)).all()
    assert set(np.unique(words)) == {NO_WORD, VOCAB.index("CAT"), VOCAB.index("MILK")}


def test_read_warm_up_trains_the_projector_only(tmp_path):
    data = tmp_path / "data"
    generate(data, TestbedConfig(seed=0, num_images=2, num_train=8, spec=GridSpec(168, 14, 2)))
    processor = build_processor(vocabulary(data / "train" / "llava_instruct_synthetic.json"))
    model = build_model(len(processor.tokenizer), layers=2, hidden=32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    losses = read_warm_up(model, PatchData(data, processor, GRID, PATCH, words=True), steps=3, batch_size=4)
    assert len(losses) == 3 and all(np.isfinite(losses))
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("model.multi_modal_projector.") for k in changed)
    assert not model.model.multi_modal_projector.training and not model.model.vision_tower.training
