"""Input builders shared by the engine tests (tiny random models, hand-made token layouts)."""

from __future__ import annotations

import torch

from adsc.tiny import IMAGE_TOKEN, PAD, VISION_START

GRID = 36  # tiny_llava default: 48 px / patch 8 -> 6 x 6


def llava_ids(prefix, n_images=1, suffix=(7, 8, 9, 10)):
    ids = list(prefix)
    for _ in range(n_images):
        ids += [IMAGE_TOKEN] * GRID + [5]
    return ids + list(suffix)


def pad_batch(rows, side="left"):
    """(input_ids, attention_mask, position_ids) of rows padded on one side."""
    width = max(len(r) for r in rows)
    ids, mask = [], []
    for r in rows:
        pad = [PAD] * (width - len(r))
        ids.append(pad + r if side == "left" else r + pad)
        m = [0] * len(pad) + [1] * len(r) if side == "left" else [1] * len(r) + [0] * len(pad)
        mask.append(m)
    ids, mask = torch.tensor(ids), torch.tensor(mask)
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    return ids, mask, pos


def qwen_sample(grids_thw, text=(40, 41, 42), tail=(43, 44)):
    """input_ids for Qwen2-VL with one image per (t, h, w) patch grid, and matching pixel_values."""
    ids = list(text)
    for t, h, w in grids_thw:
        ids += [VISION_START] + [IMAGE_TOKEN] * (t * h * w // 4) + [45]
    ids += list(tail)
    pixels = torch.randn(sum(t * h * w for t, h, w in grids_thw), 3 * 2 * 14 * 14)
    return ids, pixels


def valid_text_positions(input_ids, attention_mask=None):
    keep = input_ids != IMAGE_TOKEN
    if attention_mask is not None:
        keep &= attention_mask.bool()
    return keep


def mm_types(input_ids):
    """Qwen2-VL's mm_token_type_ids: 1 on image tokens, 0 elsewhere."""
    return (input_ids == IMAGE_TOKEN).long()


# LLaVA-NeXT (tiny_llava_next)
# (height, width) -> tile map (rows, cols) in the tiny model (tower 48 px / patch 8 = 6 x 6 base grid,
# pinpoints 48x96 / 96x48 / 96x96): a square image gets 2 x 2 tiles = 12 x 12; a wide one is cropped in rows
NEXT_SIZES = {(96, 96): (12, 12), (60, 90): (8, 12), (90, 60): (12, 8), (48, 48): (6, 6)}
NEXT_BASE = 36


def image_tokens(size):
    rows, cols = NEXT_SIZES[size]
    return NEXT_BASE + rows * (cols + 1)  # each map row ends in one image-newline token


def next_sample(prefix, sizes, between=(7, 8), suffix=(9, 10)):
    ids = list(prefix)
    for i, size in enumerate(sizes):
        ids += [IMAGE_TOKEN] * image_tokens(size) + (list(between) if i + 1 < len(sizes) else [])
    return ids + list(suffix)


def anyres_pixels(sizes, seed=0):
    """Crops per image in batch order: the base image + the tiles of its best pinpoint (flat, 4-D)."""
    tiles = sum(1 + (2 if size == (48, 48) else 4) for size in sizes)
    return torch.randn(tiles, 3, 48, 48, generator=torch.Generator().manual_seed(seed))
