"""Qwen2-VL / Qwen2.5-VL video: one span of t frames on the merged (h/2, w/2) grid, the same kept
cells in every frame (adsc.methods.adsc), M-RoPE positions the model's own."""

import torch

import adsc
from adsc.adapters import adapter_for
from adsc.methods.adsc import UniformSelector
from adsc.tiny import VIDEO_TOKEN, tiny_qwen2_5_vl, tiny_qwen2_vl

from .families.qwen2_vl_video import video_sample
from .family_checks import model_fixture
from .frames import kept_cells_per_frame
from .span_checks import compressed_trace

CFG = adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.5)
VIDEO = (3, 8, 4)  # 3 temporal patches (6 input frames) of 8 x 4 patches: 3 frames of a 4 x 2 grid
IMAGE = (1, 8, 8)


def an_image_and_a_video():
    return video_sample([("image", IMAGE), ("video", VIDEO)])


model = model_fixture(tiny_qwen2_vl)


def test_a_video_is_one_span_of_frames_from_the_grids_and_from_mrope_positions(model):
    inputs = an_image_and_a_video()
    adapter = adapter_for(model)
    spans = adapter.vision_spans(model, inputs["input_ids"], inputs)[0]
    video_start = inputs["input_ids"][0].tolist().index(VIDEO_TOKEN)
    assert [(s.start, s.frames, s.grid) for s in spans] == [(3, 1, (4, 4)), (video_start, 3, (4, 2))]
    # generate hands the core M-RoPE positions instead of the grids: the same spans come back
    positions, _ = model.model.get_rope_index(inputs["input_ids"], inputs["mm_token_type_ids"],
                                              image_grid_thw=inputs["image_grid_thw"], video_grid_thw=inputs["video_grid_thw"])
    assert adapter.vision_spans(model, inputs["input_ids"], {"position_ids": positions})[0] == spans


def test_frames_sharing_a_temporal_position_are_still_counted():
    """Qwen2.5-VL scales t by the frame rate: at 0.1 s per temporal patch and 4 tokens per second
    the three frames share t positions, so the frame count must not be read off t."""
    model = tiny_qwen2_5_vl(layers=2)
    inputs = an_image_and_a_video()
    positions, _ = model.model.get_rope_index(inputs["input_ids"], inputs["mm_token_type_ids"],
                                              image_grid_thw=inputs["image_grid_thw"], video_grid_thw=inputs["video_grid_thw"],
                                              second_per_grid_ts=torch.tensor([0.1]))
    video = inputs["input_ids"][0] == VIDEO_TOKEN
    assert len(set(positions[0, 0, video].tolist())) < VIDEO[0]  # frames do share t here
    span = adapter_for(model).vision_spans(model, inputs["input_ids"], {"position_ids": positions})[0][1]
    assert (span.frames, span.grid) == (3, (4, 2))


def test_the_kept_set_per_frame_is_the_documented_one(model):
    """Every frame keeps the cells ADSC keeps on one frame's grid, the same in every frame; the
    image next to it is thinned on its own grid."""
    inputs = an_image_and_a_video()
    trace = compressed_trace(model, CFG, inputs)
    rule = UniformSelector(0.5, 2, "grid2d", 0.5)
    image, video = trace.seq.spans[0]
    for stage, layer in enumerate((2, 4)):
        kept = set(trace.vision_positions(layer, 0).tolist())
        assert kept_cells_per_frame(trace, video, layer) == [rule.kept_in_grid(video.grid, stage).tolist()] * 3, stage
        expected_image = {image.start + k for k in rule.kept_in_grid(image.grid, stage).tolist()}
        assert kept - set(video.token_positions().tolist()) == expected_image
    assert trace.vision_tokens(0) == [16 + 24] * 2 + [8 + 12] * 2 + [4 + 6] * 2  # a video: 3 x a frame's count
