"""Fabricated LLaVA-Instruct data and a tiny saved model, shared by the training tests."""

from __future__ import annotations

import json
import os

COLORS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 220, 30)}
SHAPES = ("circle", "square")


def save_tiny_model(directory: str, layers: int = 6) -> str:
    from adsc.tiny import tiny_llava, tiny_llava_processor

    model = tiny_llava(layers=layers, image_size=48, patch=8)
    # Stand-in for a pretrained output layer: at random init the logits span about +-1, a range no
    # adapter on the decoder can widen, so LoRA could not fit anything (full fine-tuning could).
    model.lm_head.weight.data.mul_(10)
    model.save_pretrained(directory)
    tiny_llava_processor(image_size=48, patch=8).save_pretrained(directory)
    return directory


def make_dataset(directory: str, n: int = 16, multi_turn: bool = True, text_only: int = 2,
                 sizes: dict | None = None) -> tuple[str, str]:
    """n records: colour images (one per colour, 60 x 40 px or ``sizes[colour]``), a few multi-turn and text-only ones."""
    from PIL import Image

    images = os.path.join(directory, "images")
    os.makedirs(os.path.join(images, "coco"), exist_ok=True)
    for name, rgb in COLORS.items():
        Image.new("RGB", (sizes or {}).get(name, (60, 40)), rgb).save(os.path.join(images, "coco", f"{name}.png"))
    names = list(COLORS)
    records = []
    for i in range(n):
        color = names[i % len(names)]
        if i < text_only:
            records.append({"id": f"t{i}", "conversations": [
                {"from": "human", "value": "what is the color of the sky ?"}, {"from": "gpt", "value": "blue"}]})
            continue
        conv = [{"from": "human", "value": "what color is the image ?\n<image>"}, {"from": "gpt", "value": color}]
        if multi_turn and i % 3 == 0:
            conv += [{"from": "human", "value": "is it red ?"}, {"from": "gpt", "value": "yes" if color == "red" else "no"}]
        records.append({"id": f"r{i}", "image": f"coco/{color}.png", "conversations": conv})
    path = os.path.join(directory, "data.json")
    with open(path, "w") as fh:
        json.dump(records, fh)
    return path, images
