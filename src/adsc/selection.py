"""Which vision tokens survive each stage, for score-free methods (ADSC, random).

The selection depends only on an image's token grid and the keep counts, never on content,
so it is computed once per (grid, counts, pattern) and cached. Every stage selects from the
survivors of the previous one, so the kept sets are nested.

Survivors are held as *ragged rows*: a list of rows, each a list of raster indices into the
image's token grid. "grid2d" picks rows evenly, then columns evenly inside each picked row;
"stride1d" flattens everything to one row (an even stride over raster order).
"""

from __future__ import annotations

import math
import random
from functools import lru_cache

import torch

PATTERNS = ("grid2d", "stride1d", "random")


def even_indices(n: int, k: int, phase: float = 0.5) -> list[int]:
    """k strictly increasing indices spread evenly over range(n): floor((j + phase) * n / k)."""
    if not 0 <= k <= n:
        raise ValueError(f"cannot pick {k} of {n}")
    return [int((j + phase) * n / k) for j in range(k)]


def _split_evenly(k: int, lengths: list[int]) -> list[int]:
    """Share k among rows in proportion to their lengths, spreading remainders evenly."""
    total = sum(lengths)
    counts, cum, given = [], 0, 0
    for length in lengths:
        cum += length
        target = int(math.floor(k * cum / total + 0.5))
        counts.append(target - given)
        given = target
    return counts


def _grid2d(rows: list[list[int]], k: int, phase: float) -> list[list[int]]:
    n = sum(len(r) for r in rows)
    if k >= n:
        return rows
    if k == 0:
        return []
    # keep sqrt(k/n) of the rows and of the columns, so the survivors stay roughly isotropic
    kept_rows = min(len(rows), max(1, round(len(rows) * math.sqrt(k / n))))
    while True:
        chosen = [rows[i] for i in even_indices(len(rows), kept_rows, phase)]
        if sum(len(r) for r in chosen) >= k:
            break
        kept_rows += 1
    counts = _split_evenly(k, [len(r) for r in chosen])
    return [[row[i] for i in even_indices(len(row), c, phase)] for row, c in zip(chosen, counts) if c > 0]


def _stride1d(rows: list[list[int]], k: int, phase: float) -> list[list[int]]:
    flat = [i for r in rows for i in r]
    return [[flat[i] for i in even_indices(len(flat), k, phase)]] if k else []


def _random(rows: list[list[int]], k: int, rng: random.Random) -> list[list[int]]:
    flat = [i for r in rows for i in r]
    return [sorted(rng.sample(flat, k))] if k else []


@lru_cache(maxsize=256)
def nested_selection(
    grid: tuple[int, int], keep_counts: tuple[int, ...], pattern: str = "grid2d", phase: float = 0.5, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    """Raster indices (into a ``rows x cols`` token grid) kept at each stage, sorted.

    ``keep_counts[s]`` tokens survive stage ``s``; each stage's set is a subset of the last.
    """
    if pattern not in PATTERNS:
        raise ValueError(f"unknown selection pattern {pattern!r}; choose one of {PATTERNS}")
    n_rows, n_cols = grid
    rows = [[r * n_cols + c for c in range(n_cols)] for r in range(n_rows)]
    rng = random.Random(f"{seed}-{n_rows}x{n_cols}")
    out = []
    for k in keep_counts:
        k = min(k, sum(len(r) for r in rows))
        if pattern == "grid2d":
            rows = _grid2d(rows, k, phase)
        elif pattern == "stride1d":
            rows = _stride1d(rows, k, phase)
        else:
            rows = _random(rows, k, rng)
        out.append(torch.tensor(sorted(i for r in rows for i in r), dtype=torch.long))
    return tuple(out)
