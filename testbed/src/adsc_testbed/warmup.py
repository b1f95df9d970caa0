"""A dense warm-up objective for the vision tower, before any question is asked.

Trained from scratch on question answering alone, a small LLaVA stays near chance for a long
time: the language model cannot learn to read vision tokens that do not yet carry anything,
and the vision tower gets its signal only through a single answer word. This warm-up gives
every vision token its own label -- what covers that patch (background, text, or one of the 36
colour-shape categories) -- so the tower's tokens become informative in a few hundred steps.
The linear head is thrown away afterwards; only the tower keeps what it learnt.

``read_warm_up`` is an optional later pass, for a model whose language model has not learnt to
read: it teaches the projector's output on each text patch the word of its string (one of the
38), holding every output near where it was so the language model trained on them still fits.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from .world import CATEGORIES, VOCAB

BACKGROUND, TEXT = 0, 1
NUM_CLASSES = 2 + len(CATEGORIES)
NO_WORD = -100  # cross_entropy's ignore_index: a patch no string covers


def _covers(bbox, grid: int, patch: int):
    """(row, col, share of the patch) for every patch a pixel box touches."""
    x0, y0, x1, y1 = bbox
    for r in range(y0 // patch, min(grid, (y1 - 1) // patch + 1)):
        for c in range(x0 // patch, min(grid, (x1 - 1) // patch + 1)):
            h = min(y1, (r + 1) * patch) - max(y0, r * patch)
            w = min(x1, (c + 1) * patch) - max(x0, c * patch)
            yield r, c, h * w / patch**2


def patch_labels(scene: dict, grid: int, patch: int) -> np.ndarray:
    """(grid*grid,) class of each patch: the thing covering most of it (objects over text)."""
    cover = np.zeros((NUM_CLASSES, grid, grid), dtype=np.float32)
    for kind, items in (("text", scene.get("texts", [])), ("object", scene.get("objects", []))):
        for item in items:
            cls = TEXT if kind == "text" else 2 + CATEGORIES.index((item["color"], item["shape"]))
            for r, c, share in _covers(item["bbox"], grid, patch):
                cover[cls, r, c] = max(cover[cls, r, c], share)
    cover[BACKGROUND] = 0.15  # a patch is background unless something covers 15 % of it
    return cover.reshape(NUM_CLASSES, -1).argmax(0)


def patch_words(scene: dict, grid: int, patch: int) -> np.ndarray:
    """(grid*grid,) index in VOCAB of the string covering each text patch (most cover wins), NO_WORD elsewhere."""
    best = np.zeros((grid, grid), dtype=np.float32)
    words = np.full((grid, grid), NO_WORD, dtype=np.int64)
    for text in scene.get("texts", []):
        for r, c, share in _covers(text["bbox"], grid, patch):
            if share > best[r, c]:
                best[r, c], words[r, c] = share, VOCAB.index(text["word"])
    words = words.reshape(-1)
    words[patch_labels(scene, grid, patch) != TEXT] = NO_WORD  # only where text is what the patch shows
    return words


class PatchData(torch.utils.data.Dataset):
    """Training images of a generated testbed with their per-patch labels."""

    def __init__(self, root: str | Path, processor, grid: int, patch: int, words: bool = False):
        root = Path(root)
        self.images = root / "train" / "images"
        self.scenes = [json.loads(line) for line in (root / "annotations" / "train.jsonl").read_text().splitlines()]
        self.processor, self.grid, self.patch, self.words = processor, grid, patch, words

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, i):
        scene = self.scenes[i]
        image = Image.open(self.images / f"{scene['image_id']}.png").convert("RGB")
        pixels = self.processor.image_processor(images=[image], return_tensors="pt")["pixel_values"][0]
        labels = patch_words if self.words else patch_labels
        return pixels, torch.from_numpy(labels(scene, self.grid, self.patch))


def warm_up_vision(model, data: PatchData, steps: int, batch_size: int = 32, lr: float = 2e-3, seed: int = 0) -> list[float]:
    """Train the vision tower (and a throw-away linear head) on per-patch classes; returns losses."""
    tower = model.model.vision_tower
    head = torch.nn.Linear(tower.config.hidden_size, NUM_CLASSES)

    def loss(pixels, labels):
        return F.cross_entropy(head(_patch_features(tower, pixels)).flatten(0, 1), labels.flatten())

    return _train([tower, head], loss, data, steps, batch_size, lr, seed, "vision warm-up")


def read_warm_up(model, data: PatchData, steps: int, batch_size: int = 32, lr: float = 2e-3, seed: int = 0,
                 keep: float = 0.3) -> list[float]:
    """Teach the projector's output the word on each text patch (``data`` built with ``words=True``).

    Why the projector: measured on the committed model (held-out strings, a linear probe on the
    mean over a string's patches), the tower's features name the word 97 % of the time, the
    projector's outputs 45 %: trained on listings and questions that never needed the word, the
    projector dropped it. Loss: word cross-entropy of a throw-away linear head over text patches
    + ``keep`` x the squared distance of every patch's projector output to the starting
    projector's, relative to its variance (the drift the language model sees). Tower frozen.
    """
    tower, projector = model.model.vision_tower, model.model.multi_modal_projector
    reference = copy.deepcopy(projector).eval().requires_grad_(False)
    torch.manual_seed(seed)  # the head's initial weights
    head = torch.nn.Linear(model.config.text_config.hidden_size, len(VOCAB))

    def loss(pixels, words):
        with torch.no_grad():
            feats = _patch_features(tower, pixels)
            ref = reference(feats)
        out = projector(feats)
        drift = (out - ref).pow(2).mean() / ref.var()
        return F.cross_entropy(head(out).flatten(0, 1), words.flatten(), ignore_index=NO_WORD) + keep * drift

    tower.eval()
    return _train([projector, head, reference, tower], loss, data, steps, batch_size, lr, seed, "reading warm-up",
                  trainable=[projector, head])


def _patch_features(tower, pixels):
    return tower(pixels).last_hidden_state[:, 1:]  # drop CLS, as the "default" strategy does


def _train(modules, loss_fn, data, steps, batch_size, lr, seed, desc, trainable=None) -> list[float]:
    """AdamW on ``trainable`` (default: all ``modules``) for ``steps`` batches; returns the losses."""
    trainable = modules if trainable is None else trainable
    # on a GPU when there is one (a lease measured 3-6 s per step for this loop left on its CPU)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    home = next(modules[0].parameters()).device
    for module in modules:
        module.to(device)
    opt = torch.optim.AdamW([q for module in trainable for q in module.parameters()], lr=lr)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed), drop_last=True)
    losses, step = [], 0
    for module in trainable:
        module.train()
    with tqdm(total=steps, desc=desc) as bar:
        while step < steps:
            for pixels, labels in loader:
                loss = loss_fn(pixels.to(device), labels.to(device))
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
                if step >= steps:
                    break
    for module in modules:
        module.eval()
        module.to(home)  # the caller saves the whole model from where it built it
    return losses
