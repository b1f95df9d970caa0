import numpy as np
import pytest

from adsc_testbed.render import png_bytes, render
from adsc_testbed.scene import Scene, sample_scene
from adsc_testbed.world import BACKGROUND, COLORS, GridSpec, SceneConfig, default_world
from testbed_scenes import scene_one


def draw(seed, spec=GridSpec()):
    return sample_scene("x", np.random.default_rng(seed), default_world(), spec, SceneConfig())


@pytest.mark.parametrize("size,patch,grid", [(336, 14, 24), (168, 14, 12), (96, 8, 12)])
def test_grid_is_square_token_grid(size, patch, grid):
    spec = GridSpec(size, patch)
    assert spec.grid == grid and spec.tokens == grid * grid
    assert render(draw(0, spec)).size == (size, size)


def test_bad_specs_rejected():
    with pytest.raises(ValueError):
        GridSpec(100, 14)
    with pytest.raises(ValueError):
        GridSpec(14 * 25, 14, 2)  # 25 patches do not split into 2-patch cells


def test_same_seed_same_bytes_other_seed_other_scene():
    assert png_bytes(render(draw(7))) == png_bytes(render(draw(7)))
    assert draw(7).to_dict() == draw(7).to_dict()
    assert draw(7).to_dict() != draw(8).to_dict()


@pytest.mark.parametrize("seed", range(30))
def test_layout_invariants(seed):
    spec = GridSpec(96, 8) if seed % 2 else GridSpec()
    s = draw(seed, spec)
    cells = [(o.row, o.col) for o in s.objects]
    assert len(cells) == len(set(cells))  # one object per layout cell
    for o in s.objects:
        x0, y0, x1, y1 = o.bbox
        side = spec.patch_size if o.size == "small" else spec.cell_px
        assert x1 - x0 == side == y1 - y0
        assert x0 % spec.patch_size == 0 and y0 % spec.patch_size == 0  # patch-aligned
        assert o.col * spec.cell_px <= x0 and x1 <= (o.col + 1) * spec.cell_px
    text_cells = [(t.row, c) for t in s.texts for c in range(t.col, t.col + t.span)]
    assert not set(text_cells) & set(cells) and len(text_cells) == len(set(text_cells))
    assert len({t.color for t in s.texts}) == len(s.texts) and len({t.word for t in s.texts}) == len(s.texts)
    above = {(o.row + 1, o.col): o.id for o in s.objects}
    for t in s.texts:
        assert t.bbox[2] <= spec.image_size
        if t.under is not None:  # a label sits in the cell right under its object
            assert above[(t.row, t.col)] == t.under
        else:  # a free string never sits under an object (it would read as a label)
            assert not any((t.row, c) in above for c in range(t.col, t.col + t.span))


def test_render_puts_object_colour_in_its_box():
    s = scene_one()
    img = np.asarray(render(s))
    for o in s.objects:
        x0, y0, x1, y1 = o.bbox
        centre = img[(y0 + y1) // 2, (x0 + x1) // 2]
        assert tuple(centre) == COLORS[o.color]
    assert tuple(img[0, 0]) == BACKGROUND
    # the black label is drawn inside its box
    t = s.texts[0]
    patch = img[t.bbox[1]:t.bbox[3], t.bbox[0]:t.bbox[2]]
    assert (patch.sum(axis=2) < 200).any()


def test_annotation_round_trip():
    s = draw(3)
    assert Scene.from_dict(s.to_dict()).to_dict() == s.to_dict()
