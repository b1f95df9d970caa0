"""Scenes: objects and strings on a grid-aligned layout, their annotation, and the seeded sampler."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np
from PIL import ImageFont

from .world import TEXT_COLORS, GridSpec, SceneConfig, World

TEXT_HEIGHT = 11  # the bitmap font's line height in pixels


@lru_cache(maxsize=1)
def font() -> ImageFont.ImageFont:
    # The bitmap font renders the same pixels on every machine; the FreeType default that
    # ImageFont.load_default() returns on Pillow >= 10.1 depends on the FreeType build.
    loader = getattr(ImageFont, "load_default_imagefont", ImageFont.load_default)
    return loader()


def text_width(word: str) -> int:
    return int(font().getbbox(word)[2])


@dataclass
class Obj:
    id: int
    shape: str
    color: str
    size: str  # "small" (one patch) or "large" (a whole layout cell)
    row: int  # layout cell
    col: int
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1/y1 exclusive

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"

    @property
    def category(self) -> tuple[str, str]:
        return (self.color, self.shape)


@dataclass
class Text:
    id: int
    word: str
    color: str
    row: int
    col: int  # first layout cell; the string spans ``span`` cells to the right
    span: int
    bbox: tuple[int, int, int, int]
    under: int | None = None  # id of the object directly above it (a label), if any


@dataclass
class Scene:
    image_id: str
    spec: GridSpec
    objects: list[Obj] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    theme: int = -1

    # -- queries used by every question family -------------------------------------------------
    def matching(self, color: str | None = None, shape: str | None = None, size: str | None = None) -> list[Obj]:
        return [o for o in self.objects
                if (color is None or o.color == color) and (shape is None or o.shape == shape)
                and (size is None or o.size == size)]

    def categories(self) -> set[tuple[str, str]]:
        return {o.category for o in self.objects}

    def unique_objects(self) -> list[Obj]:
        """Objects that "the <colour> <shape>" names unambiguously."""
        return [o for o in self.objects if len(self.matching(o.color, o.shape)) == 1]

    def object(self, obj_id: int) -> Obj:
        return next(o for o in self.objects if o.id == obj_id)

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "image_id": self.image_id,
            "width": self.spec.image_size,
            "height": self.spec.image_size,
            "patch_size": self.spec.patch_size,
            "cell_patches": self.spec.cell_patches,
            "grid": self.spec.grid,
            "layout": self.spec.layout,
            "theme": self.theme,
            "objects": [asdict(o) for o in self.objects],
            "texts": [asdict(t) for t in self.texts],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Scene:
        spec = GridSpec(d["width"], d["patch_size"], d["cell_patches"])
        objs = [Obj(**{**o, "bbox": tuple(o["bbox"])}) for o in d["objects"]]
        texts = [Text(**{**t, "bbox": tuple(t["bbox"])}) for t in d["texts"]]
        return cls(d["image_id"], spec, objs, texts, d.get("theme", -1))


# -- placement helpers (also used to build hand-checked scenes in the tests) ------------------------
def object_bbox(spec: GridSpec, row: int, col: int, size: str, sub: tuple[int, int] = (0, 0)) -> tuple[int, int, int, int]:
    """A large object fills its cell; a small one fills the patch ``sub`` (row, col) inside it."""
    x0, y0 = col * spec.cell_px, row * spec.cell_px
    if size == "large":
        return (x0, y0, x0 + spec.cell_px, y0 + spec.cell_px)
    p = spec.patch_size
    return (x0 + sub[1] * p, y0 + sub[0] * p, x0 + (sub[1] + 1) * p, y0 + (sub[0] + 1) * p)


def text_span(spec: GridSpec, word: str) -> int:
    return max(1, math.ceil((text_width(word) + 2) / spec.cell_px))


def text_bbox(spec: GridSpec, row: int, col: int, word: str) -> tuple[int, int, int, int]:
    x0 = col * spec.cell_px + 1
    y0 = row * spec.cell_px + (spec.cell_px - TEXT_HEIGHT) // 2
    return (x0, y0, x0 + text_width(word), y0 + TEXT_HEIGHT)


def make_text(spec: GridSpec, tid: int, word: str, color: str, row: int, col: int, under: int | None = None) -> Text:
    return Text(tid, word, color, row, col, text_span(spec, word), text_bbox(spec, row, col, word), under)


# -- the sampler -------------------------------------------------------------------------------
def sample_scene(image_id: str, rng: np.random.Generator, world: World, spec: GridSpec, cfg: SceneConfig) -> Scene:
    if spec.cell_px < TEXT_HEIGHT + 1:
        raise ValueError(f"layout cells of {spec.cell_px}px cannot hold {TEXT_HEIGHT}px text; raise cell_patches")
    n = spec.layout
    free = np.ones((n, n), dtype=bool)
    scene = Scene(image_id, spec, theme=int(rng.integers(len(world.themes))))

    for oid in range(int(rng.integers(cfg.min_objects, cfg.max_objects + 1))):
        cells = np.argwhere(free)
        if len(cells) == 0:
            break
        row, col = (int(v) for v in cells[rng.integers(len(cells))])
        color, shape = world.sample_category(rng, scene.theme)
        size = "small" if rng.random() < cfg.small_prob else "large"
        sub = (int(rng.integers(spec.cell_patches)), int(rng.integers(spec.cell_patches)))
        scene.objects.append(Obj(oid, shape, color, size, row, col, object_bbox(spec, row, col, size, sub)))
        free[row, col] = False

    n_texts = int(rng.integers(cfg.min_texts, cfg.max_texts + 1))
    words = rng.choice(len(cfg.vocab), size=min(n_texts, len(cfg.vocab)), replace=False)
    colors = rng.choice(len(TEXT_COLORS), size=min(n_texts, len(TEXT_COLORS)), replace=False)
    for tid, (wi, ci) in enumerate(zip(words, colors)):  # distinct colours: "the red text" is unique
        word, color = cfg.vocab[int(wi)], list(TEXT_COLORS)[int(ci)]
        span = text_span(spec, word)
        slot = _text_slot(rng, free, span, scene.objects, cfg.label_prob)
        if slot is None:
            continue
        row, col, under = slot
        free[row, col:col + span] = False
        scene.texts.append(make_text(spec, tid, word, color, row, col, under))
    return scene


def _text_slot(rng, free, span, objects, label_prob):
    """A label goes in the cells right under an object; otherwise any free horizontal run."""
    n = free.shape[0]
    if rng.random() < label_prob:
        spots = [(o.row + 1, o.col, o.id) for o in objects
                 if o.row + 1 < n and o.col + span <= n and free[o.row + 1, o.col:o.col + span].all()]
        if spots:
            return spots[int(rng.integers(len(spots)))]
    runs = [(r, c, None) for r in range(n) for c in range(n - span + 1) if free[r, c:c + span].all()]
    # A free-standing string right under an object would read as its label; keep those apart.
    taken = {(o.row + 1, o.col) for o in objects}
    runs = [s for s in runs if not any((s[0], c) in taken for c in range(s[1], s[1] + span))]
    return runs[int(rng.integers(len(runs)))] if runs else None

