"""Token layouts by name (adsc schedule / adsc profile --layout): the adapters' own spans, and the
per-layer counts the engine keeps on them."""

import json
from types import SimpleNamespace

import pytest
import torch

import adsc
from adsc.adapters import adapter_for
from adsc.cli import main
from adsc.layouts import layout, on_layout
from adsc.tiny import tiny_llava_next
from adsc.tiny_llava_video import tiny_llava_onevision

from .families.llava_onevision import onevision_sample
from .helpers import anyres_pixels, next_sample
from .span_checks import compressed_trace


@pytest.mark.parametrize("spec, frames, tokens, extra, grids", [
    ("llava-next:672x672", None, 2880, 48, [(1, (24, 24)), (1, (48, 48))]),  # LLaVA-1.6: newlines not counted
    ("llava:1000x500", None, 576, 0, [(1, (24, 24))]),
    ("qwen2-vl:448x448", None, 256, 0, [(1, (16, 16))]),
    ("qwen2-vl:448x448", 16, 2048, 0, [(8, (16, 16))]),  # 16 frames, 2 per temporal patch
    ("llava-onevision", 8, 8 * 196, 1, [(8, (14, 14))]),  # 27 x 27 pooled to 14 x 14, one newline after the video
    ("llava-next-video", 8, 8 * 144, 0, [(8, (12, 12))]),  # 24 x 24 pooled at stride 2
])
def test_released_layouts(spec, frames, tokens, extra, grids):
    found = layout(spec, frames)
    assert (found.vision_tokens, found.extra_tokens) == (tokens, extra)
    assert [(s.frames, s.grid) for s in found.spans] == grids


@pytest.mark.parametrize("config", [adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.4),
                                    adsc.CompressionConfig(method="fastv", layers=(2,), drop_ratio=0.6)])
def test_a_layout_counts_what_the_engine_keeps(config):
    """A tiny model's layout (from its config alone) is the spans the engine finds in a real prompt,
    and the per-layer counts on it are the trace's."""
    image = {"input_ids": torch.tensor([next_sample([1, 5], [(60, 90)])]), "pixel_values": anyres_pixels([(60, 90)]),
             "image_sizes": torch.tensor([(60, 90)])}
    cases = [(tiny_llava_next(layers=6), (60, 90), None, image),
             (tiny_llava_onevision(layers=6), None, 4, onevision_sample([1, 4], video=True))]
    for model, size, frames, inputs in cases:
        spans = adapter_for(model).layout(SimpleNamespace(config=model.config), size, frames)
        on_input = config.replace(vision_tokens=sum(s.length for s in spans))  # as the CLIs set it
        trace = compressed_trace(model, on_input, inputs)
        start = trace.seq.spans[0][0].start
        found = [(s.grid, s.frames, s.token_positions().tolist(), s.extra) for s in trace.seq.spans[0]]
        assert found == [(s.grid, s.frames, (s.token_positions() + start).tolist(), tuple(p + start for p in s.extra))
                         for s in spans]
        assert on_layout(on_input, on_input.schedule(6), spans).tokens_per_layer() == trace.vision_tokens(0)


def test_schedule_and_profile_take_a_layout(capsys):
    assert main(["schedule", "--layout", "llava-next:672x672", "--layers", "2", "--drop-ratio", "0.5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["vision_tokens"], data["keep_counts"], data["layout"]["extra_tokens"]) == (2880, [1440], 48)
    assert main(["schedule", "--layout", "llava-onevision", "--video-frames", "8", "--layers", "2", "8"]) == 0
    assert "a video of 8 frames: 1568 vision tokens on 8 x 14x14 + 1 newline" in capsys.readouterr().out
    assert main(["profile", "--layout", "llava-next:672x672", "--drop-ratio", "0.5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schedule"]["keep_counts"] == [1440, 720, 360, 180]


@pytest.mark.parametrize("args, message", [
    (["--layout", "gemma9:10x10"], "unknown family 'gemma9'; choose one of llava, llava-next"),
    (["--layout", "llava-next:672"], "the size must be HEIGHTxWIDTH"),
    (["--layout", "llava-next:672x672", "--video-frames", "4"], "llava_next takes images, not videos"),
    (["--layout", "llava-next"], "needs an image size"),
    (["--video-frames", "4"], "--video-frames needs --layout"),
    (["--layout", "qwen2-vl:448x448", "--video-frames", "0"], "--video-frames must be at least 1"),
])
def test_layout_errors_are_one_line_with_the_fix(args, message, capsys):
    for command in ("schedule", "profile"):
        assert main([command, *args]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("family, why", [
    ("internvl", "its tile count follows the aspect ratio"), ("smolvlm", "its split follows the image"),
    ("idefics3", "its split follows the image"), ("mistral3", "its grid follows the image"),
    ("qwen2-vl", "its grid follows the size"), ("llava-next", "for its anyres layout"),
])
def test_a_missing_image_size_names_the_flag_that_gives_it(family, why, capsys):
    for command in ("schedule", "profile"):
        assert main([command, "--layout", family]) == 2
        err = capsys.readouterr().err
        assert why in err and f"give it as --layout {family}:HEIGHTxWIDTH in pixels" in err
        example = err.split("e.g. --layout ")[1].split()[0]  # the fix as written parses and runs
        assert main([command, "--layout", example, "--drop-ratio", "0.5"]) == 0
        capsys.readouterr()
