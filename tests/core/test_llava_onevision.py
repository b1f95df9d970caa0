"""LLaVA-OneVision facts beyond the oracle suite: the layout is the model's own (anyres-max shrink,
single-crop images, video frames + one newline), the kept set per frame, refusals with their fix."""

import pytest
import torch

import adsc
from adsc.adapters import adapter_for, adapter_for_config
from adsc.methods.adsc import UniformSelector
from adsc.tiny import IMAGE_TOKEN, VIDEO_TOKEN
from adsc.tiny_llava_video import tiny_llava_onevision

from .families import CASES
from .families.llava_onevision import FRAMES, onevision_sample
from .family_checks import model_fixture
from .frames import kept_cells_per_frame
from .span_checks import compressed_trace

CASE = next(c for c in CASES if c.name == "llava_onevision")
CFG = adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.5)


model = model_fixture(tiny_llava_onevision)


def embedded(model, inputs):
    """(B, T, d) with the model's own image and video features where their tokens are, zeros elsewhere."""
    ids = inputs["input_ids"]
    out = torch.zeros(*ids.shape, model.config.text_config.hidden_size)
    with torch.no_grad():
        images = model.model.get_image_features(inputs["pixel_values"], inputs["image_sizes"],
                                                batch_num_images=inputs["batch_num_images"], return_dict=True)
        videos = model.model.get_video_features(inputs["pixel_values_videos"], return_dict=True)
    out[ids == IMAGE_TOKEN] = torch.cat(images.pooler_output)
    out[ids == VIDEO_TOKEN] = videos.pooler_output.flatten(0, 1)
    return out, {"image": images, "video": videos}


def test_layout_matches_the_models_packed_features(model):
    """Grids and token counts as the model packs them; every extra token is where the model wrote its
    image_newline, and no grid token is one."""
    inputs = CASE.batch(CASE.samples()[:3])
    embeds, _ = embedded(model, inputs)
    spans = adapter_for(model).vision_spans(model, inputs["input_ids"], inputs)
    assert [[(s.grid, s.frames, len(s.extra)) for s in sample] for sample in spans] == [
        [((6, 6), 1, 0), ((8, 8), 1, 8)],  # 96 x 96: the 12 x 12 map shrunk by anyres_max_2, a newline per row
        [((6, 6), 1, 1), ((6, 6), 1, 1), ((3, 3), FRAMES, 1)],  # two single-crop images, then the video
        [((3, 3), FRAMES, 1)],
    ]
    newline = model.model.image_newline
    for b, sample in enumerate(spans):
        for span in sample:
            assert bool((embeds[b, list(span.extra)] == newline).all())
            assert not bool((embeds[b, span.token_positions()] == newline).all(-1).any())


def test_a_wide_image_is_shrunk_as_the_model_shrinks_it(model):
    inputs = onevision_sample([1], [(60, 90)])
    with torch.no_grad():
        packed = model.model.get_image_features(inputs["pixel_values"], inputs["image_sizes"], return_dict=True).pooler_output
    span = adapter_for(model).vision_spans(model, inputs["input_ids"], inputs)[0][1]
    assert span.grid == (6, 10) and len(packed[0]) == 36 + 6 * 11  # unpadded 8 x 12, over 1.1 x sqrt(2) base grids


def test_generate_inputs_give_the_same_spans(model):
    """generate encodes images and videos first (image_sizes, batch_num_images and the video pixels
    dropped): the layout read off the encoded features is the one the inputs give."""
    inputs = CASE.batch(CASE.samples()[:3])
    _, encoded = embedded(model, inputs)
    adapter = adapter_for(model)
    from_inputs = adapter.vision_spans(model, inputs["input_ids"], inputs)
    assert adapter.vision_spans(model, inputs["input_ids"], {"mm_encoder_outputs": encoded}) == from_inputs


def test_the_kept_set_per_frame_is_the_documented_one(model):
    """Each video frame keeps the cells ADSC keeps on one frame's 3 x 3 grid, the same in every frame;
    the newline after the video stays at every layer and is not counted."""
    inputs = onevision_sample([1, 4], video=True)
    trace = compressed_trace(model, CFG, inputs)
    (video,) = trace.seq.spans[0]
    rule = UniformSelector(0.5, 2, "grid2d", 0.5)
    for stage, layer in enumerate((2, 4)):
        assert kept_cells_per_frame(trace, video, layer) == [rule.kept_in_grid((3, 3), stage).tolist()] * FRAMES
    for layer in range(6):
        assert set(video.extra) <= set(trace.positions(layer, 0).tolist())
    assert trace.vision_tokens(0) == [36] * 2 + [16] * 2 + [8] * 2  # 4 frames x (9 -> 4 -> 2)


def test_family_facts_and_the_released_reference_count(model):
    from types import SimpleNamespace

    from transformers import LlavaOnevisionConfig

    adapter = adapter_for(model)
    assert adapter.name == "llava_onevision"
    assert adapter.reference_vision_tokens(model) == 36 + 8 * 8  # the largest pinpoint's map, shrunk; no newlines
    for part in ("llm", "projector", "vision"):
        assert isinstance(model.get_submodule(adapter.training_parts[part]), torch.nn.Module)
    # released defaults: SigLIP 384 / 14 = 27 x 27 base, pinpoints up to 2304 x 2304 (162 x 162) shrunk to 81 x 81
    config = LlavaOnevisionConfig()
    assert adapter_for_config(config).reference_vision_tokens(SimpleNamespace(config=config)) == 729 + 81 * 81


def test_refusals_name_the_fix(model):
    inputs = onevision_sample([1, 4], video=True)
    handle = adsc.compress(model, CFG)
    try:
        with pytest.raises(ValueError, match="pass the processor's pixel_values_videos"):
            adapter_for(model).vision_spans(model, inputs["input_ids"], {})
        short = {**inputs, "pixel_values_videos": inputs["pixel_values_videos"][:, :2]}
        with pytest.raises(ValueError, match="video tokens but the 1 video.*pixel_values_videos of one processor call"):
            adapter_for(model).vision_spans(model, inputs["input_ids"], short)
    finally:
        handle.remove()
    model.config.vision_feature_select_strategy = "default"  # would drop a SigLIP patch, not a CLS token
    try:
        with pytest.raises(ValueError, match="vision_feature_select_strategy='full' for a siglip_vision_model"):
            adapter_for(model).reference_vision_tokens(model)
    finally:
        model.config.vision_feature_select_strategy = "full"
