"""Turn records into (input_ids, labels, image inputs), and batches of them.

Over-long samples (the rule, also in docs/training.md): a sample longer than ``max_length``
tokens loses whole trailing rounds (question + answer) until it fits; tokens are never cut,
so image tokens and answers stay whole. If even the first round does not fit, the sample is
skipped and counted as ``too_long``.

Samples whose image is missing or unreadable are skipped with a warning and counted; the
collator drops them from the batch. Skips travel with the batch (``adsc_meta``) because the
dataset may run in DataLoader worker processes, where counters would be lost.
"""

from __future__ import annotations

import logging
import os

import torch
from PIL import Image
from torch.utils.data import Dataset

from ..adapters import adapter_for
from ..adapters.base import Adapter
from ..images import pad_to_square
from .prompts import render_chat_template, render_vicuna_v1, supervised_mask
from .records import IMAGE_TAG, Record

logger = logging.getLogger("adsc.training")
IGNORE = -100
META = "adsc_meta"


class Encoder:
    """Record -> {"input_ids", "labels", image inputs}, or a skip reason.

    ``image_placeholder``: the text that stands for the image in a vicuna_v1 prompt, the model's
    adapter's ``image_placeholder(processor)`` (what evaluation's default prompt writes: Qwen2/3-VL
    wrap ``<|image_pad|>`` in the vision start / end tokens, Gemma 3 writes its boi token). None: the
    base adapter's rule (``processor.image_token``), right for LLaVA but not for every family, so
    ``adsc train`` always passes the adapter's. The chat-template path needs none: the template
    writes the image the family's way.
    """

    def __init__(self, processor, template: str, max_length: int, image_folder: str | None, pad_to_square: bool,
                 image_placeholder: str | None = None):
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.template = template
        self.max_length = max_length
        self.image_folder = image_folder
        self.pad_to_square = pad_to_square
        self.image_placeholder = image_placeholder or Adapter().image_placeholder(processor)

    @classmethod
    def for_model(cls, model, processor, template: str, max_length: int, image_folder: str | None,
                  pad_to_square: bool | None = None) -> Encoder:
        """The encoder ``adsc train`` uses: the prompt format of template "auto" (vicuna_v1 for LLaVA-1.5, the
        chat template otherwise), the image padding (None: the family's own) and the image placeholder, all
        from the model's adapter, the one home of such facts."""
        adapter = adapter_for(model)
        return cls(processor, adapter.train_template if template == "auto" else template, max_length, image_folder,
                   adapter.pad_to_square if pad_to_square is None else pad_to_square, adapter.image_placeholder(processor))

    # ------------------------------------------------------------------ text
    def render(self, rounds, has_image: bool):
        if self.template == "vicuna_v1":
            if self.image_placeholder != IMAGE_TAG:
                rounds = [(q.replace(IMAGE_TAG, self.image_placeholder), a) for q, a in rounds]
            return render_vicuna_v1(rounds)
        return render_chat_template(self.processor, rounds, IMAGE_TAG, has_image)

    def tokenize(self, rendered):
        # Special tokens (the BOS) added exactly as evaluation's processor call adds them: a chat
        # template that does not write the BOS itself (llava-hf's, the testbed's) otherwise trains
        # on prompts one token shorter than the ones it is evaluated on (docs/testbed.md).
        enc = self.tokenizer(rendered.text, return_offsets_mapping=True, add_special_tokens=True)
        mask = supervised_mask(enc["offset_mapping"], rendered.answers)
        labels = [t if m else IGNORE for t, m in zip(enc["input_ids"], mask)]
        return enc["input_ids"], labels

    # ------------------------------------------------------------------ images
    def load_image(self, record: Record):
        """The PIL image, or (reason, detail) when it cannot be used."""
        path = record.image if self.image_folder is None else os.path.join(self.image_folder, record.image)
        if not os.path.isfile(path):
            return ("missing_image", path)
        try:
            with Image.open(path) as img:
                img.load()  # decode now: a truncated file must fail here, not inside the model
                image = img.convert("RGB")
        except Exception as err:  # PIL raises many types for broken files
            return ("unreadable_image", f"{path}: {type(err).__name__}: {err}")
        if self.pad_to_square:
            image = pad_to_square(image, self.processor.image_processor.image_mean)
        return image

    # ------------------------------------------------------------------ both
    def __call__(self, record: Record) -> dict:
        image = None
        if record.image is not None:
            image = self.load_image(record)
            if isinstance(image, tuple):
                reason, detail = image
                logger.warning("skipping record %s: %s (%s)", record.id, reason.replace("_", " "), detail)
                return {"id": record.id, "skip": reason}
        rounds = list(record.rounds)
        has_image = image is not None
        rendered = self.render(rounds, has_image)
        ids, labels = self.tokenize(rendered)
        extra, grown = None, 0
        if has_image:
            extra = self._process(rendered.text, image)
            grown = extra["input_ids"].shape[-1] - len(ids)  # tokens the image adds; independent of the text
        if len(ids) + grown > self.max_length:
            while len(ids) + grown > self.max_length and len(rounds) > 1:
                rounds.pop()  # the documented rule: drop whole trailing rounds, never cut tokens
                rendered = self.render(rounds, has_image)
                ids, labels = self.tokenize(rendered)
            if len(ids) + grown > self.max_length:
                return {"id": record.id, "skip": "too_long"}
            if has_image:
                extra = self._process(rendered.text, image)
        if all(x == IGNORE for x in labels):
            return {"id": record.id, "skip": "no_answer_tokens"}
        out = {"id": record.id}
        if has_image:
            ids, labels = self._expand(ids, labels, extra.pop("input_ids")[0].tolist(), record.id)
            out.update({k: v for k, v in extra.items() if isinstance(v, torch.Tensor) and k != "attention_mask"})
        out["input_ids"], out["labels"] = torch.tensor(ids), torch.tensor(labels)
        return out

    def _process(self, text, image):
        return self.processor(text=[text], images=[image], return_tensors="pt", add_special_tokens=True)  # as tokenize()

    def _expand(self, ids, labels, expanded, rid):
        """Labels for the processor's ids, which differ from the tokenizer's where the image marker was.

        Families rewrite the marker differently: LLaVA repeats one token over the grid, InternVL
        writes ``<img>`` + context tokens + ``</img>``, Gemma 3 adds blank lines around the image,
        Idefics3 / SmolVLM write row / column tokens, Mistral 3 row breaks. The image sits in the
        first question, so the two id lists share a head before the rewrite and a tail after it;
        every supervised token must lie in them (labels copied), the rewritten middle is prompt.
        """
        head = 0
        while head < min(len(ids), len(expanded)) and ids[head] == expanded[head]:
            head += 1
        tail = 0
        while tail < min(len(ids), len(expanded)) - head and ids[-1 - tail] == expanded[-1 - tail]:
            tail += 1
        if any(lab != IGNORE for lab in labels[head : len(ids) - tail]):
            raise RuntimeError(f"record {rid}: the processor's token ids do not match the tokenizer's around the image "
                               "(an answer token changed); the processor must rewrite only its image marker")
        return expanded, labels[:head] + [IGNORE] * (len(expanded) - head - tail) + labels[len(ids) - tail :]


class InstructDataset(Dataset):
    def __init__(self, records: list[Record], encoder: Encoder):
        self.records, self.encoder = records, encoder

    def __len__(self):
        return len(self.records)

    def __getitem__(self, index):
        return self.encoder(self.records[index])


PER_TOKEN = ("mm_token_type_ids", "token_type_ids")  # processor outputs padded like input_ids (0: text)


def concat_padded(tensors: list[torch.Tensor]) -> torch.Tensor:
    """``tensors`` concatenated along dim 0, each first zero-padded at the end of every other dim to the largest.

    What the families' processors do for a batch of several images, so the models know the
    padding: LLaVA-NeXT / OneVision tile counts (the real ones read from ``image_sizes``), Idefics3 /
    SmolVLM sub-image counts and canvases (all-zero images dropped, ``pixel_attention_mask``),
    Mistral 3 canvases (cropped by ``image_sizes``). Equal shapes are concatenated as they are.
    """
    shape = [max(sizes) for sizes in zip(*(t.shape[1:] for t in tensors))]
    padded = []
    for t in tensors:
        pad = [(0, want - have) for have, want in zip(t.shape[1:], shape)]
        padded.append(torch.nn.functional.pad(t, [n for pair in reversed(pad) for n in pair]) if any(p for _, p in pad) else t)
    return torch.cat(padded, dim=0)


class Collator:
    """Right-pads input_ids (pad id), labels (-100) and per-token type ids (0); concatenates image
    tensors along dim 0 (:func:`concat_padded`).

    Concatenation fits LLaVA (pixel_values per image) and Qwen2-VL (patches + image_grid_thw).
    An all-skipped batch becomes one padding token with no labels, so that every process still
    runs forward and backward (a process that skips them would stall DDP's gradient all-reduce).
    """

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, items: list[dict]) -> dict:
        meta = {"ids": [], "skipped": [], "tokens": 0, "answer_tokens": 0}
        good = []
        for item in items:
            if "skip" in item:
                meta["skipped"].append((item["id"], item["skip"]))
            else:
                good.append(item)
                meta["ids"].append(item["id"])
        if not good:
            good = [{"input_ids": torch.tensor([self.pad_id]), "labels": torch.tensor([IGNORE])}]
        length = max(len(x["input_ids"]) for x in good)
        batch = {
            "input_ids": torch.full((len(good), length), self.pad_id, dtype=torch.long),
            "labels": torch.full((len(good), length), IGNORE, dtype=torch.long),
            "attention_mask": torch.zeros((len(good), length), dtype=torch.long),
        }
        for i, x in enumerate(good):
            n = len(x["input_ids"])
            batch["input_ids"][i, :n] = x["input_ids"]
            batch["labels"][i, :n] = x["labels"]
            batch["attention_mask"][i, :n] = 1
        for key in PER_TOKEN:  # one value per token (Qwen2-VL's mm_token_type_ids, Gemma 3's token_type_ids)
            if any(key in x for x in good):
                batch[key] = torch.zeros((len(good), length), dtype=torch.long)
                for i, x in enumerate(good):
                    if key in x:
                        batch[key][i, : len(x["input_ids"])] = x[key].reshape(-1)
        keys = sorted({k for x in good for k in x} - {"id", "input_ids", "labels", *PER_TOKEN})
        for key in keys:
            batch[key] = concat_padded([x[key] for x in good if key in x])
        meta["tokens"] = int(batch["attention_mask"].sum()) if meta["ids"] else 0
        meta["answer_tokens"] = int((batch["labels"] != IGNORE).sum())
        batch[META] = meta
        return batch
