"""LLaVA-NeXT-Video facts beyond the oracle suite: videos are frames of the resampler's pooled grid
(no newline tokens), images are LLaVA-NeXT's, the kept set per frame is the documented one."""

from types import SimpleNamespace

import pytest
import torch

import adsc
from adsc.adapters import adapter_for, adapter_for_config
from adsc.methods.adsc import UniformSelector
from adsc.tiny import IMAGE_TOKEN, VIDEO_TOKEN
from adsc.tiny_llava_video import tiny_llava_next_video

from .families import CASES
from .families.llava_next_video import FRAMES, VIDEO, next_video_sample
from .family_checks import model_fixture
from .frames import kept_cells_per_frame
from .span_checks import compressed_trace

CASE = next(c for c in CASES if c.name == "llava_next_video")
CFG = adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.5)


model = model_fixture(tiny_llava_next_video)


def test_layout_matches_the_models_features_and_generate_sees_the_same(model):
    inputs = CASE.batch(CASE.samples()[:2])
    with torch.no_grad():
        images = model.model.get_image_features(inputs["pixel_values"], inputs["image_sizes"], return_dict=True)
        videos = model.model.get_video_features(inputs["pixel_values_videos"], return_dict=True)
    assert videos.pooler_output.shape[1] == VIDEO and int((inputs["input_ids"] == VIDEO_TOKEN).sum()) == 3 * VIDEO
    assert sum(len(f) for f in images.pooler_output) == int((inputs["input_ids"] == IMAGE_TOKEN).sum())
    adapter = adapter_for(model)
    spans = adapter.vision_spans(model, inputs["input_ids"], inputs)
    assert [[(s.grid, s.frames, len(s.extra)) for s in sample] for sample in spans] == [
        [((6, 6), 1, 0), ((8, 12), 1, 8), ((3, 3), FRAMES, 0)],  # base grid, tile map + newlines, a video
        [((3, 3), FRAMES, 0), ((3, 3), FRAMES, 0)],
    ]
    encoded = {"image": images, "video": videos}  # what generate hands the core instead of pixels and sizes
    assert adapter.vision_spans(model, inputs["input_ids"], {"mm_encoder_outputs": encoded}) == spans


def test_the_kept_set_per_frame_is_the_documented_one(model):
    inputs = next_video_sample([1, 9], videos=2)
    trace = compressed_trace(model, CFG, inputs)
    rule = UniformSelector(0.5, 2, "grid2d", 0.5)
    for video in trace.seq.spans[0]:
        for stage, layer in enumerate((2, 4)):
            assert kept_cells_per_frame(trace, video, layer) == [rule.kept_in_grid((3, 3), stage).tolist()] * FRAMES
    assert trace.vision_tokens(0) == [2 * 36] * 2 + [2 * 16] * 2 + [2 * 8] * 2


def test_family_facts(model):
    from transformers import LlavaNextVideoConfig

    adapter = adapter_for(model)
    assert (adapter.name, adapter.pooled_side(model)) == ("llava_next_video", 3)
    for part in ("llm", "projector", "vision"):
        assert isinstance(model.get_submodule(adapter.training_parts[part]), torch.nn.Module)
    config = LlavaNextVideoConfig()  # released defaults: LLaVA-NeXT's 336 px CLIP tower and pinpoints
    assert adapter_for_config(config).reference_vision_tokens(SimpleNamespace(config=config)) == 2880
    with pytest.raises(ValueError, match="pass the processor's pixel_values_videos"):
        adapter.vision_spans(model, next_video_sample([1], videos=1)["input_ids"], {})
