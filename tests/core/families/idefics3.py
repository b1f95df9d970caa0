"""SmolVLM / Idefics3: per sub-image <fake><row_i_col_j> + 16 image tokens, then <fake><global-img> + 16 + <fake>."""

import torch

from adsc.tiny import IMAGE_TOKEN
from adsc.tiny_idefics3 import tiny_idefics3

from . import FamilyCase

FAKE, GLOBAL, NEWLINE = 20, 21, 11  # <fake_token_around_image>, <global-img>, "\n": text between the runs
ROW_COL = 40  # <row_1_col_1>, <row_1_col_2>, ... take ids 40, 41, ...
TOKENS = 16  # image_seq_len of the tiny models: 32 px / patch 4 / scale 2 = 4 x 4


def image_ids(rows, cols):
    """The processor's prompt for an image split into rows x cols sub-images (0 x 0: not split) + the global image."""
    ids = []
    for r in range(rows):
        for c in range(cols):
            ids += [FAKE, ROW_COL + r * cols + c] + [IMAGE_TOKEN] * TOKENS
        ids.append(NEWLINE)
    return ids + ([NEWLINE] if rows else []) + [FAKE, GLOBAL] + [IMAGE_TOKEN] * TOKENS + [FAKE]


def idefics3_sample(prefix, splits, seed, suffix=(9, 10)):
    ids = list(prefix)
    for rows, cols in splits:
        ids += image_ids(rows, cols)
    count = sum(r * c + 1 for r, c in splits)  # sub-images + the global image, per image
    pixels = torch.randn(1, count, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    return {"input_ids": torch.tensor([ids + list(suffix)]), "pixel_values": pixels}


def samples():
    return [idefics3_sample([1, 5, 6], [(1, 2), (0, 0)], 1),  # a split image (2 sub-images + global), a small one
            idefics3_sample([1, 9], [(0, 0)], 2),
            {"input_ids": torch.tensor([[1, 5, 6, 7]])}]


_PLAIN = FamilyCase("plain", build=None, samples=None)


def collate(samples, side):
    """pixel_values are (batch, images, 3, H, W): samples with fewer images are padded with all-zero
    images, which the model drops (it treats an all-zero image as padding)."""
    batch = _PLAIN.batch([{k: v for k, v in s.items() if k != "pixel_values"} for s in samples], side)
    most = max((s["pixel_values"].shape[1] for s in samples if "pixel_values" in s), default=0)
    if most:
        pixels = torch.zeros(len(samples), most, 3, 32, 32)
        for b, s in enumerate(samples):
            if "pixel_values" in s:
                pixels[b, : s["pixel_values"].shape[1]] = s["pixel_values"][0]
        batch["pixel_values"] = pixels
    return batch


CASES = [FamilyCase(family, build=lambda attn, family=family: tiny_idefics3(family, layers=6, attn=attn), samples=samples,
                    lora_targets=r".*text_model.*\.(q|k|v|o|gate|up|down)_proj", collate=collate)
         for family in ("smolvlm", "idefics3")]
