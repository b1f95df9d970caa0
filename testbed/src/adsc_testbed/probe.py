"""Does the model read the image? Answer loss with the right images against shuffled and blank ones.

A model that answers from the question text alone (a language prior, or a shortcut in the
training records) scores the same with every image in the batch swapped for another scene's. One
that reads pixels loses accuracy when the images are swapped. This is the control that caught the
first testbed model (docs/testbed.md); it runs on held-out records in the 665K format.

Three conditions, same records, same batches:
- ``matched``: each question with its own image;
- ``shuffled``: the batch's images rolled by one, so each question sees another scene;
- ``blank``: a mid-grey image (what is left when the question alone must decide).

``python3 -m adsc_testbed.probe MODEL HELDOUT`` runs it on a held-out dataset's QA records and
on its reading and counting drills (the numbers docs/testbed.md quotes).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch
from PIL import Image

from adsc.evaluation.generation import load_model

from .formats.instruct import DRILL_FILES, INSTRUCT_FILE, family_of

CONDITIONS = ("matched", "shuffled", "blank")
# what the command line probes in a held-out dataset's train/ folder: file, records at most, one family
# of it or None (ScienceQA alone: 1024 mixed records hold about 40 of its records, too few to judge it)
HELDOUT_FILES = {"qa": (INSTRUCT_FILE, 1024, None), "read": (DRILL_FILES["drill_read"], 200, None),
                 "count": (DRILL_FILES["drill_count"], 200, None), "scienceqa": (INSTRUCT_FILE, 200, "scienceqa")}


@torch.no_grad()
def image_dependence(model, processor, data: str, image_folder: str, n: int = 256, batch_size: int = 32,
                     seed: int = 0, template: str = "chat_template", family: str | None = None) -> dict:
    """{condition: {"loss", "answer_acc", "families": {family: {"loss", "answer_acc"}}}} over ``n``
    records drawn (seeded) from ``data`` (only ``family``'s, when given); the family is the second
    field of a testbed record id (``<image>-<family>-<k>``), "other" for other ids.

    ``answer_acc`` is the share of records whose every answer token is the model's argmax.
    """
    from adsc.training.data import IGNORE, Collator, Encoder  # lazy: adsc.training imports the Trainer and peft
    from adsc.training.records import load_json, parse_records  # lazy: as above

    records, _ = parse_records(load_json(data), skip_malformed=False)
    if family is not None:
        records = [r for r in records if family_of(r.id) == family]
    if not records:
        raise ValueError(f"{data} holds no {family + ' ' if family else ''}records: point the probe at a dataset "
                         "with questions of this kind")
    records = random.Random(seed).sample(records, min(n, len(records)))
    encoder = Encoder.for_model(model, processor, template, 4096, image_folder, pad_to_square=False)
    collate = Collator(processor.tokenizer.pad_token_id)
    blank = Image.new("RGB", (8, 8), (128, 128, 128))
    grey = processor.image_processor(images=[blank], return_tensors="pt")["pixel_values"].to(model.device)
    model.eval()
    totals: dict = {}
    for start in range(0, len(records), batch_size):
        chunk = records[start:start + batch_size]
        batch = collate([encoder(r) for r in chunk])
        batch.pop("adsc_meta")
        batch = {k: v.to(model.device) for k, v in batch.items()}
        if batch["input_ids"].shape[0] != len(chunk):
            raise ValueError(f"records {[r.id for r in chunk]}: some could not be encoded (missing image or too long)")
        families = [family_of(r.id) for r in chunk]
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
            token_loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target.clamp(min=0), reduction="none")
            right = ((logits.argmax(-1) == target) | ~mask).all(-1)
            for i, family in enumerate(families):
                for key in ((cond, "*"), (cond, family)):
                    t = totals.setdefault(key, {"loss": 0.0, "tokens": 0, "right": 0, "records": 0})
                    t["loss"] += float((token_loss[i] * mask[i]).sum())
                    t["tokens"] += int(mask[i].sum())
                    t["right"] += int(right[i])
                    t["records"] += 1

    def summary(t):
        return {"loss": t["loss"] / max(t["tokens"], 1), "answer_acc": t["right"] / max(t["records"], 1)}

    return {c: {**summary(totals[(c, "*")]),
                "families": {f: summary(t) for (cc, f), t in sorted(totals.items()) if cc == c and f != "*"}}
            for c in CONDITIONS}


def table(result: dict) -> str:
    """Loss / answers right per condition, for all records and per family."""
    families = list(result["matched"].get("families", {}))
    head = "| images | all | " + " | ".join(families) + " |"
    rows = [head, "|---" * (2 + len(families)) + "|"]
    for c, v in result.items():
        cells = [v] + [v["families"][f] for f in families]
        rows.append(f"| {c} | " + " | ".join(f"{x['loss']:.3f} / {100 * x['answer_acc']:.0f} %" for x in cells) + " |")
    return "\n".join(rows) + "\n\n(answer loss per token / share of records answered right, teacher-forced)"


def load_for_probing(path: str):
    """(model, processor) of a testbed model in fp32, on the GPU when there is one."""
    return load_model(str(path), dtype="float32", device="cuda" if torch.cuda.is_available() else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m adsc_testbed.probe", description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a testbed model folder (e.g. adsc_testbed/checkpoint)")
    parser.add_argument("heldout", help="a generated dataset the model never trained on (e.g. runs/testbed_cpu/heldout)")
    parser.add_argument("--out", help="write the results here as JSON")
    args = parser.parse_args(argv)
    model, processor = load_for_probing(args.model)
    results = {}
    for name, (file, n, family) in HELDOUT_FILES.items():
        results[name] = image_dependence(model, processor, f"{args.heldout}/train/{file}", f"{args.heldout}/train", n=n,
                                         family=family)
        print(f"{name} ({file}{', ' + family + ' only' if family else ''}, {n} records at most)\n{table(results[name])}\n",
              flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
