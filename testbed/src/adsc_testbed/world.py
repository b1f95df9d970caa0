"""The fixed vocabulary of the synthetic world: shapes, colours, words, and the category statistics.

The statistics (how often each (colour, shape) category appears and which categories co-occur) are
part of the world, not of a dataset seed: train and test sets drawn with different seeds then share
them, the way COCO train and val share object frequencies. POPE's "popular" and "adversarial"
negatives only differ from "random" ones because the world is skewed like this.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SHAPES = ("circle", "square", "triangle", "star", "diamond", "cross")
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars",
           "diamond": "diamonds", "cross": "crosses"}

# Saturated, well separated RGB values: the colour of a single patch must decide the answer.
COLORS = {
    "red": (215, 40, 40),
    "green": (30, 150, 60),
    "blue": (40, 80, 215),
    "yellow": (210, 170, 0),
    "purple": (140, 50, 180),
    "orange": (240, 120, 20),
}
# Text colours are a subset (yellow/orange are hard to read on the light background) plus black.
TEXT_COLORS = {"black": (20, 20, 20), "red": COLORS["red"], "blue": COLORS["blue"],
               "green": COLORS["green"], "purple": COLORS["purple"]}
BACKGROUND = (236, 236, 232)

# Short words and numbers: none is a colour, a shape, yes/no or a size, so an answer never
# collides with another family's answer vocabulary. 3-4 characters keep a word within 24 px.
VOCAB = (
    "CAT", "DOG", "SUN", "BUS", "CAR", "OPEN", "STOP", "EXIT", "MILK", "FISH", "BIRD", "TREE",
    "BOOK", "LAMP", "DOOR", "KING", "MOON", "SHIP", "CAKE", "ROSE", "WOLF", "GOLD", "JAZZ", "ZOO",
    "PIE", "BOX", "KEY", "MAP", "PEN", "HAT", "TEA", "INK", "24", "57", "90", "316", "808", "13",
)

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

CATEGORIES = tuple((c, s) for s in SHAPES for c in COLORS)  # 36 categories, like COCO's 80

WORLD_SEED = 20260212  # fixed: the statistics below must not change with the dataset seed


def category_name(category: tuple[str, str]) -> str:
    return f"{category[0]} {category[1]}"


@dataclass(frozen=True)
class World:
    """Category prior (Zipf-like) and themes (groups of categories that co-occur)."""

    prior: np.ndarray  # (36,) probabilities
    themes: tuple[tuple[int, ...], ...]  # category indices per theme
    theme_share: float = 0.6  # share of a scene's objects drawn from its theme

    def sample_category(self, rng: np.random.Generator, theme: int) -> tuple[str, str]:
        if rng.random() < self.theme_share:
            idx = int(rng.choice(self.themes[theme]))
        else:
            idx = int(rng.choice(len(CATEGORIES), p=self.prior))
        return CATEGORIES[idx]


def default_world() -> World:
    rng = np.random.default_rng(WORLD_SEED)
    ranks = rng.permutation(len(CATEGORIES))
    weights = 1.0 / (ranks + 1.0) ** 0.9
    # A theme = 2 shapes x 3 colours: co-occurring categories share a shape or a colour with the
    # present ones, so adversarial negatives are also visually close (a red star next to red squares).
    themes = []
    for _ in range(6):
        shapes = rng.choice(len(SHAPES), size=2, replace=False)
        colors = rng.choice(len(COLORS), size=3, replace=False)
        themes.append(tuple(int(s * len(COLORS) + c) for s in sorted(shapes) for c in sorted(colors)))
    return World(prior=weights / weights.sum(), themes=tuple(themes))


@dataclass(frozen=True)
class GridSpec:
    """Image size and ViT patch size: the vision tokens form a square (size/patch)^2 grid.

    Objects live on a coarser layout grid of ``cell_patches`` x ``cell_patches`` patches per cell,
    so a "small" object covers exactly one patch and a uniform 3x3 subsampling of the token grid
    can miss it entirely.
    """

    image_size: int = 336
    patch_size: int = 14
    cell_patches: int = 2

    def __post_init__(self):
        if self.image_size % self.patch_size:
            raise ValueError(f"image size {self.image_size} is not a multiple of patch {self.patch_size}")
        if self.grid % self.cell_patches:
            raise ValueError(f"token grid {self.grid} is not a multiple of cell size {self.cell_patches}")

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def tokens(self) -> int:
        return self.grid * self.grid

    @property
    def layout(self) -> int:
        return self.grid // self.cell_patches

    @property
    def cell_px(self) -> int:
        return self.patch_size * self.cell_patches


@dataclass(frozen=True)
class SceneConfig:
    """How crowded a scene is. Defaults give 5-10 objects and 1-3 strings per image."""

    min_objects: int = 5
    max_objects: int = 10
    min_texts: int = 1
    max_texts: int = 3
    small_prob: float = 0.6  # share of one-patch objects: the fine detail the tasks depend on
    label_prob: float = 0.5  # share of strings written directly under an object
    ocr_noise: float = 0.1  # chance that a simulated OCR token has one wrong character
    vocab: tuple[str, ...] = field(default=VOCAB)
