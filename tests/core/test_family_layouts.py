"""The token layouts of InternVL, Mistral 3 and SmolVLM / Idefics3 (``Adapter.layout``, what ``adsc
schedule`` / ``adsc profile --layout`` count from a config alone) against what the family's own image
processor and tiny model produce for an image of the same size.

SmolVLM / Idefics3 run the real ``Idefics3Processor`` (text and images). The InternVL and Pixtral
processors cannot be built without torchvision here, so for those the real *image* processors
(``GotOcr2ImageProcessorPil``, ``PixtralImageProcessorPil``) size the image -- tile count, resized
height x width -- and the prompt is written as the processor writes it (the oracle cases' helpers);
the layout is then compared with the spans the engine finds in the tiny model's forward on them.
"""

from functools import cache
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

import adsc
from adsc.adapters import adapter_for
from adsc.layouts import layout, on_layout
from adsc.tiny_idefics3 import tiny_idefics3, tiny_idefics3_processor
from adsc.tiny_internvl import tiny_internvl
from adsc.tiny_mistral3 import tiny_mistral3

from .families.internvl import internvl_ids
from .families.mistral3 import image_ids as mistral3_ids
from .span_checks import compressed_trace

CFG = adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.5)
SIZES = [(40, 70), (32, 32), (100, 30), (128, 128), (33, 65)]  # (height, width): split, small, tall, upscaled, odd


@cache
def _model(build, *args):
    return build(*args, layers=6)


def _image(size):
    height, width = size
    return Image.fromarray(torch.randint(0, 255, (height, width, 3), generator=torch.Generator().manual_seed(height * width),
                                         dtype=torch.uint8).numpy())


def _shape(span, start):
    return span.grid, span.frames, (span.token_positions() - start).tolist(), tuple(p - start for p in span.extra)


def _assert_layout_is_the_engines(model, inputs, size, adjacent_runs=True):
    """The layout (from the config alone) is the spans the engine finds -- each span's grid, frames and
    token / extra positions inside it; with ``adjacent_runs`` also where each span starts, counted from
    the image's first token -- and the per-layer counts on it are the compressed forward's."""
    spans = adapter_for(model).layout(SimpleNamespace(config=model.config), size)
    config = CFG.replace(vision_tokens=sum(s.length for s in spans))  # as the CLIs set it
    trace = compressed_trace(model, config, inputs)
    found = trace.seq.spans[0]
    assert [_shape(s, s.start) for s in found] == [_shape(s, s.start) for s in spans]
    if adjacent_runs:
        assert [s.start - found[0].start for s in found] == [s.start for s in spans]
    assert on_layout(config, config.schedule(6), spans).tokens_per_layer() == trace.vision_tokens(0)
    return spans


@pytest.fixture(scope="module")
def idefics3_processor():
    return tiny_idefics3_processor(longest_edge=4)


@pytest.mark.parametrize("family", ["smolvlm", "idefics3"])
@pytest.mark.parametrize("size", SIZES)
def test_idefics3_layout_is_the_processors_split(family, size, idefics3_processor):
    model = _model(tiny_idefics3, family)
    out = idefics3_processor(text="a photo <image> of", images=[_image(size)], return_tensors="pt")
    inputs = {k: out[k] for k in ("input_ids", "pixel_values", "pixel_attention_mask")}
    # the processor's <fake_token_around_image><row_i_col_j> text sits between the runs: not part of the layout
    spans = _assert_layout_is_the_engines(model, inputs, size, adjacent_runs=False)
    assert len(spans) == out["pixel_values"].shape[1]  # one span per sub-image the processor cut, global image included
    split = idefics3_processor.image_processor(images=[_image(size)], return_row_col_info=True)
    assert adapter_for(model).split_of(model, size) == (split["rows"][0][0], split["cols"][0][0])


def test_smolvlm_video_is_one_image_per_frame():
    model = tiny_idefics3("smolvlm", layers=6)
    assert [s.grid for s in adapter_for(model).layout(model, None, 3)] == [(4, 4)] * 3
    with pytest.raises(ValueError, match="Idefics3 takes images only"):
        adapter_for(model).layout(tiny_idefics3("idefics3", layers=2), None, 3)


@pytest.mark.parametrize("size", SIZES)
def test_internvl_layout_is_the_image_processors_tiles(size):
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    model = _model(tiny_internvl)
    images = GotOcr2ImageProcessorPil(crop_to_patches=True, size={"height": 32, "width": 32}, min_patches=1,
                                      max_patches=adapter_for(model).max_tiles)
    out = images(images=[_image(size)], return_tensors="pt")
    tiles = int(out["num_patches"][0])
    inputs = {"input_ids": torch.tensor([internvl_ids([1, 5], [tiles])]), "pixel_values": out["pixel_values"]}
    spans = _assert_layout_is_the_engines(model, inputs, size)
    assert len(spans) == tiles


def test_internvl_video_is_one_tile_per_frame():
    model = tiny_internvl(layers=6)
    assert [s.grid for s in adapter_for(model).layout(model, None, 4)] == [(4, 4)] * 4


@pytest.mark.parametrize("size", SIZES)
def test_mistral3_layout_is_the_image_processors_resize(size):
    from transformers.models.pixtral.image_processing_pil_pixtral import PixtralImageProcessorPil

    model = _model(tiny_mistral3)  # 64 px tower, 16 px per token
    images = PixtralImageProcessorPil(size={"longest_edge": 64}, patch_size={"height": 16, "width": 16})
    out = images(images=[_image(size)], return_tensors="pt")
    height, width = out["image_sizes"][0].tolist()
    inputs = {"input_ids": torch.tensor([[1, 5] + mistral3_ids(height, width) + [9]]), "pixel_values": out["pixel_values"],
              "image_sizes": out["image_sizes"]}
    spans = _assert_layout_is_the_engines(model, inputs, size)
    assert spans[0].grid == (height // 16, width // 16) and len(spans[0].extra) == height // 16


@pytest.mark.parametrize("spec, frames, tokens, extra, grids", [
    ("internvl:448x448", None, 256, 0, [(16, 16)]),  # one tile, no thumbnail
    ("internvl:448x896", None, 3 * 256, 0, [(16, 16)] * 3),  # 1 x 2 tiles + thumbnail
    ("internvl:1000x1500", None, 7 * 256, 0, [(16, 16)] * 7),  # 2 x 3 tiles + thumbnail
    ("internvl", 8, 8 * 256, 0, [(16, 16)] * 8),
    ("mistral3:1000x500", None, 36 * 18, 36, [(36, 18)]),  # inside 1540 px: sides rounded up to 28 px
    ("mistral3:3080x1540", None, 55 * 28, 55, [(55, 28)]),  # scaled down by 2 to fit 1540 px
    ("smolvlm:512x512", None, 17 * 64, 0, [(8, 8)] * 17),  # scaled up to 2048 px: 4 x 4 sub-images + global
    ("smolvlm:1000x1500", None, 13 * 64, 0, [(8, 8)] * 13),  # 2048 x 1366 -> 3 x 4 sub-images + global
    ("smolvlm", 8, 8 * 64, 0, [(8, 8)] * 8),
    ("idefics3:364x728", None, 9 * 169, 0, [(13, 13)] * 9),  # 728 x 1456: 2 x 4 + global
])
def test_released_layouts(spec, frames, tokens, extra, grids):
    found = layout(spec, frames)
    assert (found.vision_tokens, found.extra_tokens) == (tokens, extra)
    assert [s.grid for s in found.spans] == grids
