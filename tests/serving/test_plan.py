"""The serving plan (what a vLLM engine schedules with) keeps exactly what adsc's Hugging Face engine keeps."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import adsc
from adsc.adapters import LlavaAdapter, Qwen2VLAdapter
from adsc.config import ConfigError
from adsc.processors import torchvision_missing
from adsc.serving.plan import Planner
from adsc.serving.vllm import engine_kwargs, serve_flags
from adsc.serving.vllm.cli import check_request, command
from adsc.serving.vllm.layout import LayoutError, architecture, spans
from adsc.tiny import tiny_llava, tiny_llava_next, tiny_llava_next_processor, tiny_qwen2_vl

from ..core.helpers import llava_ids, qwen_sample

CONFIGS = [
    adsc.CompressionConfig(layers=(1, 3, 4), budget=14, vision_tokens=36),
    adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.6, vision_tokens=36, pattern="stride1d", drop_position="after"),
    adsc.CompressionConfig(method="random", layers=(2,), drop_ratio=0.75, vision_tokens=36, seed=3),
]


def feature(offset, length, grid_thw=None, modality="image"):
    data = None if grid_thw is None else {"image_grid_thw" if modality == "image" else "video_grid_thw":
                                          torch.tensor(grid_thw)}
    return (modality, offset, length, data)


def kept_positions(plan, length: int, stage: int) -> list[int]:
    positions = np.arange(length)
    return positions[plan.kept(stage, positions)].tolist()


@pytest.mark.parametrize("config", CONFIGS, ids=["grid2d", "stride1d-after", "random"])
def test_llava_plan_equals_the_hf_engine_trace(config):
    model = tiny_llava()
    ids = torch.tensor([llava_ids([1, 4, 5], n_images=2)])
    handle = adsc.compress(model, config)
    with torch.no_grad():
        model(input_ids=ids, pixel_values=torch.randn(2, 3, 48, 48))
    trace = handle.last_trace
    starts = [i for i in range(ids.shape[1]) if ids[0, i] == 31 and (i == 0 or ids[0, i - 1] != 31)]
    plan = Planner(config, 6).plan(spans(model.config, [feature(s, 36) for s in starts]))
    planner = Planner(config, 6)
    for layer in range(6):
        stage = planner.stage_of_layer(layer)
        assert kept_positions(plan, ids.shape[1], stage) == trace.positions(layer, 0).tolist()
        assert plan.num_kept(stage, ids.shape[1]) == trace.kv_lengths(0)[layer]


def test_qwen2_vl_plan_equals_the_hf_engine_trace():
    config = adsc.CompressionConfig(layers=(1, 3), drop_ratio=0.5, vision_tokens=16)
    model = tiny_qwen2_vl()
    grids = [(1, 8, 4), (1, 4, 6)]
    ids, pixels = qwen_sample(grids)
    ids = torch.tensor([ids])
    handle = adsc.compress(model, config)
    with torch.no_grad():
        model(input_ids=ids, pixel_values=pixels, image_grid_thw=torch.tensor(grids),
              mm_token_type_ids=(ids == 31).long())
    trace = handle.last_trace
    offsets = [i for i in range(ids.shape[1]) if ids[0, i] == 31 and ids[0, i - 1] != 31]
    feats = [feature(o, t * h * w // 4, [t, h, w]) for o, (t, h, w) in zip(offsets, grids)]
    planner = Planner(config, 6)
    plan = planner.plan(spans(model.config, feats))
    for layer in range(6):
        assert kept_positions(plan, ids.shape[1], planner.stage_of_layer(layer)) == trace.positions(layer, 0).tolist()


@pytest.mark.parametrize("config", CONFIGS[:2], ids=["grid2d", "stride1d-after"])
def test_llava_next_plan_equals_the_hf_engine_trace(config):
    """Two anyres images of different tile counts (1 x 2 tiles; 2 x 2 unpadded to a 10 x 12 map) in one prompt:
    the spans vLLM's placeholders give (base grid, tile map, newlines as extra) keep what adsc.compress keeps."""
    from PIL import Image

    config = config.replace(vision_tokens=180, **({"budget": 70} if config.budget else {}))
    model, processor = tiny_llava_next(), tiny_llava_next_processor()
    pictures = [Image.new("RGB", size, colour) for size, colour in (((96, 48), "red"), ((96, 72), "blue"))]
    inputs = processor(text="a b <image> c <image> d e", images=pictures, return_tensors="pt")
    ids = inputs["input_ids"]
    handle = adsc.compress(model, config)
    with torch.no_grad():
        model(**inputs)
    trace = handle.last_trace
    image = (ids[0] == 31).tolist()
    starts = [i for i in range(len(image)) if image[i] and (i == 0 or not image[i - 1])]
    runs = [image[s:].index(False) for s in starts]
    assert runs == [36 + 6 * 13, 36 + 10 * 13]  # base grid + map rows of cols tokens and one newline
    feats = [("image", s, n, {"image_sizes": hw}) for s, n, hw in zip(starts, runs, inputs["image_sizes"])]
    found = spans(model.config, feats)
    assert [s.grid for s in found] == [(6, 6), (6, 12), (6, 6), (10, 12)]
    assert found[1].extra == tuple(starts[0] + 36 + 13 * r + 12 for r in range(6))  # each map row's newline
    planner = Planner(config, 6)
    plan = planner.plan(found)
    for layer in range(6):
        stage = planner.stage_of_layer(layer)
        assert kept_positions(plan, ids.shape[1], stage) == trace.positions(layer, 0).tolist()
    newlines = [p for s in found for p in s.extra]
    assert plan.kept(planner.num_stages - 1, newlines).all()
    with pytest.raises(LayoutError, match=r"placeholder of 100 tokens .* 6x6 \+ 6x12 \+ 6 extra grid \(114 tokens\)"):
        spans(model.config, [("image", 3, 100, {"image_sizes": inputs["image_sizes"][0]})])


@pytest.mark.parametrize("config", CONFIGS[:2], ids=["grid2d", "stride1d-after"])
def test_mistral3_plan_equals_the_hf_engine_trace(config):
    """Two Mistral 3 images of different grids (3 x 4, 4 x 2) in one prompt: the spans vLLM's placeholders give
    (a grid from the resized pixel_values, rows closed by [IMG_BREAK] / [IMG_END] as extra) keep what
    adsc.compress keeps, separators at every stage."""
    from PIL import Image

    from adsc.tiny_mistral3 import MISTRAL3_MARKERS, tiny_mistral3, tiny_mistral3_processor

    config = config.replace(vision_tokens=16, **({"budget": 6} if config.budget else {}))
    model, processor = tiny_mistral3(), tiny_mistral3_processor()
    pictures = [Image.new("RGB", size, colour) for size, colour in (((64, 48), "red"), ((32, 64), "blue"))]
    inputs = processor(text="a b [IMG] c [IMG] d e", images=pictures, return_tensors="pt")
    ids = inputs["input_ids"][0].tolist()
    handle = adsc.compress(model, config)
    with torch.no_grad():
        model(**inputs)
    trace = handle.last_trace
    image, row_end, end = (MISTRAL3_MARKERS[k] for k in ("[IMG]", "[IMG_BREAK]", "[IMG_END]"))
    starts = [i for i in range(len(ids)) if ids[i] == image and ids[i - 1] not in (image, row_end)]
    runs = [ids.index(end, s) + 1 - s for s in starts]  # vLLM's placeholder: [IMG] ... [IMG_END]
    assert runs == [3 * 5, 4 * 3]
    cropped = [{"pixel_values": pixels[:, :h, :w]} for pixels, (h, w) in zip(inputs["pixel_values"], inputs["image_sizes"])]
    found = spans(model.config, [("image", s, n, item) for s, n, item in zip(starts, runs, cropped)])
    assert [s.grid for s in found] == [(3, 4), (4, 2)]
    assert found[0].extra == tuple(starts[0] + 5 * r + 4 for r in range(3))  # each row's [IMG_BREAK], then [IMG_END]
    planner = Planner(config, 6)
    plan = planner.plan(found)
    for layer in range(6):
        stage = planner.stage_of_layer(layer)
        assert kept_positions(plan, len(ids), stage) == trace.positions(layer, 0).tolist()
    assert plan.kept(planner.num_stages - 1, [p for s in found for p in s.extra]).all()
    with pytest.raises(LayoutError, match=r"placeholder of 12 tokens .* 3x4 \+ 3 extra grid \(15 tokens\)"):
        spans(model.config, [("image", starts[0], 12, cropped[0])])
    with pytest.raises(LayoutError, match="Mistral 3 serves images with their pixel_values"):
        spans(model.config, [("image", starts[0], 15, {})])


@pytest.mark.parametrize("config", CONFIGS[:2], ids=["grid2d", "stride1d-after"])
def test_idefics3_plan_equals_the_hf_engine_trace(config):
    """Two split Idefics3 images (1 x 2 and 2 x 2 sub-images + the global one) in one prompt: placed on the image tokens
    of vLLM's placeholders (marker text between the sub-images, is_embed marking the image tokens), the spans keep
    what adsc.compress keeps."""
    from PIL import Image

    from adsc.tiny_idefics3 import IDEFICS3_MARKERS, tiny_idefics3, tiny_idefics3_processor

    config = config.replace(vision_tokens=16, **({"budget": 6} if config.budget else {}))
    model, processor = tiny_idefics3("idefics3"), tiny_idefics3_processor("idefics3")
    pictures = [Image.new("RGB", size, colour) for size, colour in (((64, 32), "red"), ((32, 32), "blue"))]
    inputs = processor(text="a b <image> c <image> d e", images=[pictures], return_tensors="pt")
    ids = inputs["input_ids"][0]
    handle = adsc.compress(model, config)
    with torch.no_grad():
        model(**inputs)
    trace = handle.last_trace
    feats, end = [], -1
    for glob in (ids == IDEFICS3_MARKERS["<global-img>"]).nonzero().flatten().tolist():
        start = next(i for i in range(end + 1, len(ids)) if ids[i] == IDEFICS3_MARKERS["<fake_token_around_image>"])
        end = glob + 1 + 16  # the global image's tokens, then the closing <fake_token_around_image>: vLLM's placeholder
        is_embed = ids[start:end + 1] == IDEFICS3_MARKERS["<image>"]
        feats.append(("image", start, end + 1 - start, {"num_patches": torch.tensor(int(is_embed.sum()) // 16)}, is_embed))
    found = spans(model.config, feats)
    assert len(found) == 3 + 5 and all(s.grid == (4, 4) for s in found)
    image_tokens = (ids == IDEFICS3_MARKERS["<image>"]).nonzero().flatten().tolist()
    assert [p for s in found for p in s.token_positions().tolist()] == image_tokens
    planner = Planner(config, 6)
    plan = planner.plan(found)
    for layer in range(6):
        stage = planner.stage_of_layer(layer)
        assert kept_positions(plan, len(ids), stage) == trace.positions(layer, 0).tolist()
    modality, start, length, data, is_embed = feats[0]
    with pytest.raises(LayoutError, match="holds 48 image tokens, not the 2 sub-images of 4x4"):
        spans(model.config, [(modality, start, length, {"num_patches": torch.tensor(2)}, is_embed)])


def test_mistral3_decoders_adsc_compress_refuses_are_refused():
    """Ministral 3 (position-scaled queries) and a windowed Mistral are refused before vLLM starts, with the reason."""
    from adsc.tiny_mistral3 import tiny_mistral3

    ministral = tiny_mistral3(layers=2, text_type="ministral3").config
    ministral.architectures = ["Mistral3ForConditionalGeneration"]
    with pytest.raises(LayoutError, match="with layers of position-scaled queries.*adsc.compress refuses"):
        architecture(ministral)
    windowed = tiny_mistral3(layers=2).config
    windowed.architectures = ["Mistral3ForConditionalGeneration"]
    windowed.text_config.sliding_window = 24
    with pytest.raises(LayoutError, match="sliding-window layers on vLLM"):
        architecture(windowed)
    windowed.text_config.sliding_window = None
    assert architecture(windowed) == "Mistral3ForConditionalGeneration"


def test_decoded_tokens_are_kept_by_every_stage():
    config = CONFIGS[0]
    plan = Planner(config, 6).plan(spans(tiny_llava().config, [feature(3, 36)]))
    prompt = 45
    for stage in range(4):
        kept = plan.num_kept(stage, prompt)
        assert plan.num_kept(stage, prompt + 10) == kept + 10
        assert plan.kept(stage, np.arange(prompt, prompt + 10)).all()
        np.testing.assert_array_equal(plan.kept_before(stage, [prompt + 3]), [kept + 3])
    assert Planner(config, 6).plan([]).is_identity


def test_planner_refuses_score_based_methods_and_unreachable_budgets():
    with pytest.raises(ConfigError, match="needs attention scores mid-forward.*Hugging Face engine"):
        Planner(adsc.CompressionConfig(method="fastv", layers=(2,), budget=20, vision_tokens=36), 6)
    with pytest.raises(ConfigError, match="cannot be reached"):
        Planner(adsc.CompressionConfig(layers=(5,), budget=4, vision_tokens=36), 6)


def test_layout_names_what_does_not_fit():
    llava = tiny_llava().config
    with pytest.raises(LayoutError, match="does not match its 6x6 grid"):
        spans(llava, [feature(3, 30)])
    with pytest.raises(LayoutError, match="adsc serves"):
        architecture(SimpleNamespace(architectures=["Gemma3ForConditionalGeneration"]))
    with pytest.raises(LayoutError, match="does not serve LlavaOnevision.*multi-image prompt.*torchvision"):
        architecture(SimpleNamespace(architectures=["LlavaOnevisionForConditionalGeneration"]))
    windowed = tiny_llava_next().config
    windowed.architectures = ["LlavaNextForConditionalGeneration"]
    windowed.text_config.sliding_window = 24  # a LLaVA-NeXT-Mistral with a window: compact KV has none
    with pytest.raises(LayoutError, match="sliding-window layers on vLLM.*adsc.compress"):
        architecture(windowed)
    qwen = tiny_qwen2_vl().config
    with pytest.raises(LayoutError, match="image item without its image_grid_thw"):
        spans(qwen, [feature(3, 8)])
    video = spans(qwen, [feature(3, 8, [2, 4, 4], "video")])[0]
    assert (video.frames, video.grid) == (2, (2, 2))  # the Hugging Face engine's video span: frames on the merged grid


def test_adapters_give_an_items_grid_from_the_config():
    """The public grid of one item that the vLLM layout plans by: LLaVA's tower grid, Qwen2-VL's merged image_grid_thw."""
    llava, qwen = tiny_llava().config, tiny_qwen2_vl().config
    assert LlavaAdapter().item_grid(llava, "image", {}) == (1, 6, 6)
    assert LlavaAdapter()._grid(SimpleNamespace(config=llava)) == (6, 6)
    assert Qwen2VLAdapter().item_grid(qwen, "image", {"image_grid_thw": torch.tensor([[1, 8, 6]])}) == (1, 4, 3)
    with pytest.raises(ValueError, match="one row of image_grid_thw"):
        Qwen2VLAdapter().item_grid(qwen, "image", {"image_grid_thw": torch.tensor([[1, 8, 6], [1, 4, 4]])})
    with pytest.raises(ValueError, match="LLaVA takes images, not video"):
        LlavaAdapter().item_grid(llava, "video", {})


def test_engine_flags_carry_the_config():
    config = CONFIGS[1]
    kwargs = engine_kwargs(config, max_model_len=64)
    assert kwargs["additional_config"]["adsc"] == config.to_dict() and kwargs["enforce_eager"]
    assert not kwargs["enable_prefix_caching"] and kwargs["max_model_len"] == 64
    flags = serve_flags(config)
    assert json.loads(flags[flags.index("--additional-config") + 1]) == {"adsc": config.to_dict()}


def test_serve_checks_before_vllm_starts(tmp_path):
    model = tiny_llava()
    model.config.save_pretrained(tmp_path)
    check_request(str(tmp_path), CONFIGS[0], ["--port", "8000"])
    with pytest.raises(ValueError, match="--enable-prefix-caching: .*remove it"):
        check_request(str(tmp_path), CONFIGS[0], ["--enable-prefix-caching"])
    with pytest.raises(ValueError, match="cannot read the model config"):
        check_request(str(tmp_path / "missing"), CONFIGS[0], [])


@pytest.mark.skipif(not torchvision_missing(), reason="with torchvision, Qwen2-VL's videos are served")
def test_serve_turns_qwen2_vl_videos_off_without_torchvision(tmp_path):
    qwen, llava = tmp_path / "qwen", tmp_path / "llava"
    tiny_qwen2_vl().config.save_pretrained(qwen)
    tiny_llava().config.save_pretrained(llava)
    limit = ["--limit-mm-per-prompt", '{"video": 0}']
    cmd = command(str(qwen), CONFIGS[0], ["--port", "9"])
    assert cmd[-4:] == [*limit, "--port", "9"]
    assert limit[0] not in command(str(llava), CONFIGS[0], [])
    own = ["--limit-mm-per-prompt", '{"image": 3}']  # the user's own limit: the engine checks it
    assert command(str(qwen), CONFIGS[0], own)[-2:] == own and cmd.count(limit[0]) == 1


def test_step_plans_of_any_chunking_add_up_to_the_request_plan():
    """Chunked prefill: whatever the chunk sizes, each stage's kept tokens across steps are the plan's,
    each in its compact slot, and a stage's sequence length after a step counts its kept tokens."""
    import random

    from adsc.serving.plan import plan_step

    planner = Planner(CONFIGS[0], 6)
    llava = tiny_llava().config
    plans = [planner.plan(spans(llava, [feature(3, 36)])), planner.plan([]),
             planner.plan(spans(llava, [feature(2, 36), feature(40, 36)]))]
    lengths = [45, 12, 80]
    rng = random.Random(0)
    done = [0, 0, 0]
    seen = [[[] for _ in range(planner.num_stages)] for _ in plans]
    while done != lengths:
        scheduled = np.array([min(rng.randint(0, 17), n - d) for n, d in zip(lengths, done)])
        step = plan_step(plans, np.array(done), scheduled, planner.num_stages, "cpu")
        starts = np.concatenate([[0], np.cumsum(scheduled)])
        for stage in range(planner.num_stages):
            sel = step.selected[stage]
            for i, plan in enumerate(plans):
                mine = sel[(sel >= starts[i]) & (sel < starts[i + 1])]
                positions = done[i] + (mine - starts[i])
                seen[i][stage] += positions.tolist()
                q = step.query_start[stage]
                assert q[i + 1] - q[i] == len(mine)
                assert step.compact[stage][q[i]:q[i + 1]].tolist() == plan.kept_before(stage, positions).tolist()
                assert step.seq_lens[stage][i] == plan.num_kept(stage, done[i] + scheduled[i])
        done = [d + s for d, s in zip(done, scheduled)]
    for i, plan in enumerate(plans):
        for stage in range(planner.num_stages):
            assert seen[i][stage] == kept_positions(plan, lengths[i], stage)
            assert plan.kept_before(stage, seen[i][stage]).tolist() == list(range(len(seen[i][stage])))
