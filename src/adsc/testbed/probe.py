"""Does the model read the image? Answer loss with the right images against shuffled and blank ones.

A model that answers from the question text alone (a language prior, or a shortcut in the
training records) scores the same with every image in the batch swapped for another scene's. One
that reads pixels loses accuracy when the images are swapped. This is the control that caught the
first testbed model (docs/testbed.md); it runs on held-out records in the 665K format.

Three conditions, same records, same batches:
- ``matched``: each question with its own image;
- ``shuffled``: the batch's images rolled by one, so each question sees another scene;
- ``blank``: a mid-grey image (what is left when the question alone must decide).
"""

from __future__ import annotations

import random

import torch
from PIL import Image

CONDITIONS = ("matched", "shuffled", "blank")


@torch.no_grad()
def image_dependence(model, processor, data: str, image_folder: str, n: int = 256, batch_size: int = 32,
                     seed: int = 0, template: str = "chat_template") -> dict:
    """{condition: {"loss", "answer_acc"}} over ``n`` records drawn (seeded) from ``data``.

    ``answer_acc`` is the share of records whose every answer token is the model's argmax.
    """
    from ..training.data import IGNORE, Collator, Encoder
    from ..training.records import load_json, parse_records

    records, _ = parse_records(load_json(data), skip_malformed=False)
    records = random.Random(seed).sample(records, min(n, len(records)))
    encoder = Encoder(processor, template, max_length=4096, image_folder=image_folder, pad_to_square=False)
    collate = Collator(processor.tokenizer.pad_token_id)
    blank = Image.new("RGB", (8, 8), (128, 128, 128))
    grey = processor.image_processor(images=[blank], return_tensors="pt")["pixel_values"]
    model.eval()
    totals = {c: {"loss": 0.0, "tokens": 0, "right": 0, "records": 0} for c in CONDITIONS}
    for start in range(0, len(records), batch_size):
        batch = collate([encoder(r) for r in records[start:start + batch_size]])
        batch.pop("adsc_meta")
        labels = batch.pop("labels")
        for cond in CONDITIONS:
            pixels = batch["pixel_values"]
            if cond == "shuffled":
                pixels = pixels.roll(1, dims=0)
            elif cond == "blank":
                pixels = grey.expand_as(pixels)
            logits = model(**{**batch, "pixel_values": pixels}).logits[:, :-1].float()
            target = labels[:, 1:]
            mask = target != IGNORE
            loss = torch.nn.functional.cross_entropy(logits[mask], target[mask], reduction="sum")
            right = ((logits.argmax(-1) == target) | ~mask).all(-1)
            t = totals[cond]
            t["loss"] += loss.item()
            t["tokens"] += int(mask.sum())
            t["right"] += int(right.sum())
            t["records"] += len(right)
    return {c: {"loss": t["loss"] / max(t["tokens"], 1), "answer_acc": t["right"] / max(t["records"], 1)}
            for c, t in totals.items()}


def table(result: dict) -> str:
    rows = ["| images | answer loss | answers right |", "|---|---|---|"]
    rows += [f"| {c} | {v['loss']:.3f} | {100 * v['answer_acc']:.1f} % |" for c, v in result.items()]
    return "\n".join(rows)
