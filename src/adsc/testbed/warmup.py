"""A dense warm-up objective for the vision tower, before any question is asked.

Trained from scratch on question answering alone, a small LLaVA stays near chance for a long
time: the language model cannot learn to read vision tokens that do not yet carry anything,
and the vision tower gets its signal only through a single answer word. This warm-up gives
every vision token its own label -- what covers that patch (background, text, or one of the 36
colour-shape categories) -- so the tower's tokens become informative in a few hundred steps.
The linear head is thrown away afterwards; only the tower keeps what it learnt.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from .world import CATEGORIES

BACKGROUND, TEXT = 0, 1
NUM_CLASSES = 2 + len(CATEGORIES)


def patch_labels(scene: dict, grid: int, patch: int) -> np.ndarray:
    """(grid*grid,) class of each patch: the thing covering most of it (objects over text)."""
    cover = np.zeros((NUM_CLASSES, grid, grid), dtype=np.float32)
    for kind, items in (("text", scene.get("texts", [])), ("object", scene.get("objects", []))):
        for item in items:
            cls = TEXT if kind == "text" else 2 + CATEGORIES.index((item["color"], item["shape"]))
            x0, y0, x1, y1 = item["bbox"]
            for r in range(y0 // patch, min(grid, (y1 - 1) // patch + 1)):
                for c in range(x0 // patch, min(grid, (x1 - 1) // patch + 1)):
                    h = min(y1, (r + 1) * patch) - max(y0, r * patch)
                    w = min(x1, (c + 1) * patch) - max(x0, c * patch)
                    cover[cls, r, c] = max(cover[cls, r, c], h * w / patch**2)
    cover[BACKGROUND] = 0.15  # a patch is background unless something covers 15 % of it
    return cover.reshape(NUM_CLASSES, -1).argmax(0)


class PatchData(torch.utils.data.Dataset):
    """Training images of a generated testbed with their per-patch labels."""

    def __init__(self, root: str | Path, processor, grid: int, patch: int):
        root = Path(root)
        self.images = root / "train" / "images"
        self.scenes = [json.loads(line) for line in (root / "annotations" / "train.jsonl").read_text().splitlines()]
        self.processor, self.grid, self.patch = processor, grid, patch

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, i):
        scene = self.scenes[i]
        image = Image.open(self.images / f"{scene['image_id']}.png").convert("RGB")
        pixels = self.processor.image_processor(images=[image], return_tensors="pt")["pixel_values"][0]
        return pixels, torch.from_numpy(patch_labels(scene, self.grid, self.patch))


def warm_up_vision(model, data: PatchData, steps: int, batch_size: int = 32, lr: float = 2e-3, seed: int = 0) -> list[float]:
    """Train the vision tower (and a throw-away linear head) on per-patch classes; returns losses."""
    tower = model.model.vision_tower
    # on a GPU when there is one (a lease measured 3-6 s per step for this loop left on its CPU)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    home = next(tower.parameters()).device
    tower.to(device)
    head = torch.nn.Linear(tower.config.hidden_size, NUM_CLASSES, device=device)
    params = list(tower.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lr)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed), drop_last=True)
    losses, step = [], 0
    tower.train()
    with tqdm(total=steps, desc="vision warm-up") as bar:
        while step < steps:
            for pixels, labels in loader:
                pixels, labels = pixels.to(device), labels.to(device)
                feats = tower(pixels).last_hidden_state[:, 1:]  # drop CLS, as the "default" strategy does
                loss = F.cross_entropy(head(feats).flatten(0, 1), labels.flatten())
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
                if step >= steps:
                    break
    tower.eval()
    tower.to(home)  # the caller saves the whole model from where it built it
    return losses
