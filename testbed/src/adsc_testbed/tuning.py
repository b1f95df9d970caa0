"""Each method's free parameters, chosen on the validation split (issue 23).

A comparison is only as strong as the weakest baseline it beats: FastV with K=1 keeps the image
rows nearest the text on this model (layer 0's attention is mostly recency) and answers "no" to
every POPE question, while K=3 at the same budget answers nearly all. So every method, ADSC
included, gets a small stated grid (the preset's), the budget solves what is left (FastV's kept
count, PyramidDrop's lambda, ToMe's r), settings that cannot reach the budget are left out, and
the one with the best Avg. rel. % on the validation split is the one evaluated on the test split.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from adsc.config import CompressionConfig, ConfigError
from adsc.methods import get_method, resolve

from .facts import ADSC_LAYERS, VISION_TOKENS


@dataclass(frozen=True)
class Setting:
    """One choice of a method's free parameters: its pruning layers (FastV's K, ToMe's first
    merging layer, PyramidDrop's and ADSC's stage layers), options, and the random method's seed."""

    layers: tuple[int, ...]
    options: tuple[tuple[str, str | bool], ...] = ()
    seed: int = 0

    def config(self, method: str, budget: float) -> CompressionConfig:
        return CompressionConfig(method=method, layers=self.layers, budget=budget, vision_tokens=VISION_TOKENS,
                                 options=dict(self.options), seed=self.seed)

    @property
    def name(self) -> str:
        """Short and filename-safe: it names the run's folder ("L3_score-mean", "L1-3-6-9_seed2")."""
        parts = ["L" + "-".join(map(str, self.layers))] + [f"{k}-{v}" for k, v in self.options]
        return "_".join(parts + ([f"seed{self.seed}"] if self.seed else []))


def same_compression(a: CompressionConfig | None, b: CompressionConfig | None) -> bool:
    """Whether two configs run the same: options compared as the method reads them, so a default
    spelled out ({"score": "last"}) equals the default left out ({})."""
    if a is None or b is None:
        return a is b
    typed = [get_method(c.method).options(c.options) for c in (a, b)]
    return typed[0] == typed[1] and replace(a, options={}) == replace(b, options={})


def default_setting(method: str) -> Setting:
    """What the untuned rows run: the method's layers scaled from ADSC's, default options, seed 0."""
    return Setting(get_method(method).layers_like(ADSC_LAYERS))


def layer_sets(*sets: tuple[int, ...]) -> tuple[Setting, ...]:
    return tuple(Setting(tuple(s)) for s in sets)


def fastv_grid(ks: tuple[int, ...]) -> tuple[Setting, ...]:
    """K x FastV's two score variants (its code's last token, its paper's mean over the prompt)."""
    return tuple(Setting((k,), (("score", score),)) for k, score in itertools.product(ks, ("last", "mean")))


def seeds(n: int) -> tuple[Setting, ...]:
    return tuple(Setting(ADSC_LAYERS, seed=s) for s in range(n))


def reachable(method: str, setting: Setting, budget: float, num_layers: int) -> bool:
    """Whether the setting meets the budget within a token (the methods' own budget check)."""
    try:
        resolve(setting.config(method, budget), num_layers)
    except ConfigError:
        return False
    return True


def candidates(grid: tuple[Setting, ...], method: str, budget: float, num_layers: int) -> list[Setting]:
    return [s for s in grid if reachable(method, s, budget, num_layers)]
