"""Bootstrap intervals over questions, from the prediction files a finished run already wrote.

The seed spreads of the report say how much fine-tuning noise moves a number; this says how much
the choice of test questions does. Every benchmark's headline is a function of additive counts
over *images* (the resampled unit: questions about one image are correlated -- POPE asks 18 about
each, MME 2, GQA up to 4): accuracy is (points, questions), POPE's F1 per split is
(tp, fp, tn, fn), MME's acc+ is (images with both answers right, images). A resample draws images
with replacement (MME within its subtask: the perception score sums subtasks, each must stay
present), adds their counts with the draw's multiplicities and computes the headline from the
sums exactly as ``adsc.evaluation.benchmarks`` computes it on the whole set; the identity draw
gives results.json's numbers back (tested).

All rows evaluated on the test split share one draw per resample (same images, same seed), so a
difference between two rows -- or a row relative to the full model -- is paired over questions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adsc.evaluation.benchmarks import ORDER, load_benchmark
from adsc.evaluation.benchmarks.gqa import gqa_answer
from adsc.evaluation.benchmarks.mme import PERCEPTION, mme_answer
from adsc.evaluation.benchmarks.pope import pope_answer
from adsc.evaluation.benchmarks.sqa import OPTIONS, sqa_letter
from adsc.evaluation.normalize import textvqa_accuracy, vqav2_accuracy
from adsc.evaluation.predictions import read_predictions

from .questions.mme import SUBTASKS as MME_SUBTASKS

RESAMPLES = 1000  # B
SEED = 0  # numpy.random.default_rng(SEED): the same draws on every render
LEVEL = 95.0  # percent; the interval is the (2.5, 97.5) percentiles of the B resampled values
OPTIONS_OF = {"mme": {"subtasks": MME_SUBTASKS}}  # what the experiment passes evaluate() (its MME subset)
UNIT = {"gqa": "image (up to 4 questions)", "mme": "image (its 2 questions), drawn within its subtask",
        "pope": "image (its 18 questions, all three splits)", "sqa": "image (1 question)",
        "textvqa": "image (up to 2 questions)", "vqav2": "image (3 questions)"}


@dataclass
class Units:
    """One benchmark's resampling units over a question set: the images in sample order, the
    stratum each is drawn within, and which sample belongs to which."""

    keys: list[str]
    strata: np.ndarray  # units, int: a resample keeps each stratum's number of units
    of_sample: dict[str, int]  # sample id -> unit index


def units_of(bench) -> Units:
    keys: dict[str, int] = {}
    of_sample, stratum_names = {}, []
    for s in bench.samples:
        key = s.image or f"question:{s.id}"  # a text-only question is its own unit
        if key not in keys:
            keys[key] = len(keys)
            stratum_names.append(bench.subtask[s.id] if bench.name == "mme" else "")
        of_sample[s.id] = keys[key]
    names = list(dict.fromkeys(stratum_names))
    return Units(list(keys), np.array([names.index(n) for n in stratum_names]), of_sample)


# ---------------------------------------------------------------- counts per unit, and the headline from their sums
def _accuracy_counts(bench, units: Units, points: dict[str, float]) -> np.ndarray:
    """Columns (points, questions counted) per unit; ``points`` holds the counted questions only."""
    counts = np.zeros((len(units.keys), 2))
    for sid, p in points.items():
        counts[units.of_sample[sid]] += (p, 1.0)
    return counts


def _accuracy(sums: np.ndarray) -> np.ndarray:
    return 100.0 * sums[..., 0] / sums[..., 1]


def _pope_counts(bench, units: Units, preds: dict[str, str]) -> np.ndarray:
    """Columns (tp, fp, tn, fn) per split, splits in sample order (as POPE.score)."""
    splits = list(dict.fromkeys(bench.split_of[s.id] for s in bench.samples))
    counts = np.zeros((len(units.keys), 4 * len(splits)))
    for s in bench.samples:
        said, truth = pope_answer(preds[s.id]), bench.labels[s.id]
        cell = {("yes", "yes"): 0, ("yes", "no"): 1, ("no", "no"): 2, ("no", "yes"): 3}[(said, truth)]
        counts[units.of_sample[s.id], 4 * splits.index(bench.split_of[s.id]) + cell] += 1
    return counts


def _pope_f1_mean(sums: np.ndarray) -> np.ndarray:
    """pope.binary_metrics' F1 (0 where upstream divides by zero), averaged over the splits."""
    total = 0.0
    splits = sums.shape[-1] // 4
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in range(splits):
            tp, fp, fn = sums[..., 4 * k], sums[..., 4 * k + 1], sums[..., 4 * k + 3]
            precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
            recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
            total = total + 100.0 * f1
    return total / splits


def _mme_counts(bench, units: Units, preds: dict[str, str]) -> np.ndarray:
    """Columns (right, questions, images with every answer right, images) per perception subtask
    present, in PERCEPTION order (the order MME.score sums them in)."""
    tasks = [t for t in PERCEPTION if t in set(bench.subtask.values())]
    counts = np.zeros((len(units.keys), 4 * len(tasks)))
    every_right: dict[int, bool] = {}
    col_of: dict[int, int] = {}
    for s in bench.samples:
        u, col = units.of_sample[s.id], 4 * tasks.index(bench.subtask[s.id])
        right = mme_answer(preds[s.id].replace("\n", " ").replace("\t", " ")) == bench.truth[s.id]
        counts[u, col:col + 2] += (right, 1)
        every_right[u], col_of[u] = every_right.get(u, True) and right, col
    for u, right in every_right.items():
        counts[u, col_of[u] + 2:col_of[u] + 4] = (right, 1)
    return counts


def _mme_perception(sums: np.ndarray) -> np.ndarray:
    total = 0.0
    for k in range(sums.shape[-1] // 4):
        right, questions, every, images = (sums[..., 4 * k + j] for j in range(4))
        total = total + (100.0 * right / questions + 100.0 * every / images)
    return total


def _sqa_points(bench, preds: dict[str, str]) -> dict[str, float]:
    out = {}
    for s in bench.samples:
        if s.image is None:  # the headline is ScienceQA-IMG
            continue
        valid, letter = OPTIONS[: len(bench.problems[s.id]["choices"])], sqa_letter(preds[s.id])
        out[s.id] = float(letter in valid and valid.index(letter) == bench.problems[s.id]["answer"])
    return out


def counts_of(bench, units: Units, preds: dict[str, str], memo: dict | None = None) -> np.ndarray:
    """The units x K counts whose column sums determine ``bench``'s headline (see ``headline_from``).
    ``memo``: (question id, prediction) -> VQA points, kept across runs: the VQA metrics normalise
    ten answers per call (most of the time of a report), and most runs repeat most answers."""
    name, memo = bench.name, {} if memo is None else memo

    def vqa(metric, sid):
        key = (sid, preds[sid])
        if key not in memo:
            memo[key] = metric(preds[sid], bench.answers[sid])
        return memo[key]

    if name == "pope":
        return _pope_counts(bench, units, preds)
    if name == "mme":
        return _mme_counts(bench, units, preds)
    if name == "gqa":
        points = {s.id: float(gqa_answer(preds[s.id]) == bench.answers[s.id]) for s in bench.samples if s.id in bench.balanced}
    elif name == "sqa":
        points = _sqa_points(bench, preds)
    elif name == "textvqa":
        points = {s.id: vqa(textvqa_accuracy, s.id) for s in bench.samples}
    elif name == "vqav2":
        points = {s.id: vqa(vqav2_accuracy, s.id) for s in bench.samples}
    else:
        raise ValueError(f"no per-question counts for benchmark {name!r}; known: {', '.join(ORDER)}")
    return _accuracy_counts(bench, units, points)


def headline_from(name: str, sums: np.ndarray) -> np.ndarray:
    """The headline from summed counts (any leading shape: one value per resample)."""
    return {"pope": _pope_f1_mean, "mme": _mme_perception}.get(name, _accuracy)(sums)


# ---------------------------------------------------------------- the draws, and every run's resampled headlines
def draws(strata: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """resamples x units multiplicities: each row draws every stratum's units with replacement."""
    weights = np.zeros((resamples, len(strata)))
    for s in np.unique(strata):
        members = np.flatnonzero(strata == s)
        picks = rng.integers(0, len(members), size=(resamples, len(members)))
        # row r's picks offset by r * n: one bincount counts every row at once
        flat = (picks + len(members) * np.arange(resamples)[:, None]).ravel()
        weights[:, members] = np.bincount(flat, minlength=resamples * len(members)).reshape(resamples, len(members))
    return weights


class QuestionBootstrap:
    """Resampled headlines of the runs evaluated on one question set (``data``, the runs' folders
    under ``runs``). ``scores(result)``: benchmark -> B values, None where the run's prediction
    files are not there (a report from made-up results)."""

    def __init__(self, data: str | Path, runs: str | Path, resamples: int = RESAMPLES, seed: int = SEED):
        self.data, self.runs, self.resamples, self.seed = Path(data), Path(runs), resamples, seed
        self._benches: dict[str, tuple] = {}  # name -> (benchmark, units, weights)
        self._memo: dict[str, dict] = {}  # name -> counts_of's memo
        self._scores: dict[str, dict | None] = {}  # run folder name -> benchmark -> B values

    def _bench(self, name: str):
        if name not in self._benches:
            bench = load_benchmark(name, str(self.data), **OPTIONS_OF.get(name, {}))
            units = units_of(bench)
            # one generator per benchmark, seeded by its name's place: a benchmark's draws do not
            # depend on which others the run has
            rng = np.random.default_rng([self.seed, ORDER.index(name)])
            self._benches[name] = (bench, units, draws(units.strata, self.resamples, rng))
        return self._benches[name]

    def counts(self, folder: Path, name: str) -> np.ndarray | None:
        path = folder / f"{name}.predictions.jsonl"
        if not path.exists():
            return None
        bench, units, _ = self._bench(name)
        _, records = read_predictions(str(path))
        preds = bench.predictions_for({k: r["text"] for k, r in records.items()})  # every question, no stranger
        return counts_of(bench, units, preds, self._memo.setdefault(name, {}))

    def identity(self, result: dict) -> dict[str, float] | None:
        """The headlines from the counts with every unit drawn once: results.json's, recomputed."""
        folder = self._folder(result)
        if folder is None:
            return None
        out = {}
        for name in result["benchmarks"]:
            c = self.counts(folder, name)
            if c is None:
                return None
            out[name] = float(headline_from(name, c.sum(axis=0)))
        return out

    def scores(self, result: dict) -> dict[str, np.ndarray] | None:
        folder = self._folder(result)
        if folder is None:
            return None
        if folder.name not in self._scores:
            out = {}
            for name in result["benchmarks"]:
                c = self.counts(folder, name)
                if c is None:
                    out = None
                    break
                out[name] = headline_from(name, self._bench(name)[2] @ c)
            self._scores[folder.name] = out
        return self._scores[folder.name]

    def _folder(self, result: dict) -> Path | None:
        # results.json names the folder it was written to: a run the experiment reused (same
        # compression as one already scored) shares that run's result and so its folder
        label = result.get("label")
        folder = self.runs / label if isinstance(label, str) else None
        return folder if folder is not None and (folder / "results.json").exists() else None

    def rel(self, runs: list[dict], base: dict, kept: list[str]) -> np.ndarray | None:
        """Avg. rel. % per resample: the mean of the runs (seeds, phases) against the full model
        ``base`` on the same draw, over the benchmarks ``kept`` (report.rel_base), as
        adsc.evaluation.report.relative averages them."""
        base_s = self.scores(base)
        each = [self.scores(r) for r in runs]
        if base_s is None or not each or any(s is None for s in each):
            return None
        shared = [b for b in ORDER if b in kept and all(b in s for s in each)]
        if not shared:
            return None
        with np.errstate(invalid="ignore", divide="ignore"):  # a draw where the full model scores 0: undefined
            per_run = [100.0 * sum(s[b] / base_s[b] for b in shared) / len(shared) for s in each]
        return np.mean(per_run, axis=0)


def interval(values: np.ndarray | None) -> dict | None:
    """The 95 % percentile interval of resampled values (draws where it is undefined left out)."""
    if values is None:
        return None
    ok = values[np.isfinite(values)]
    if not len(ok):
        return None
    tail = (100.0 - LEVEL) / 2
    low, high = np.percentile(ok, [tail, 100.0 - tail])
    return {"low": float(low), "high": float(high), "resamples": int(len(ok))}


def describe() -> str:
    """The method in one paragraph, for the report."""
    units = "; ".join(f"{b} {UNIT[b]}" for b in ORDER)
    return (f"Intervals over questions: {LEVEL:g} % percentile bootstrap, B = {RESAMPLES} resamples, "
            f"numpy.random.default_rng([{SEED}, benchmark index]); the resampled unit is the image ({units}); each "
            "headline is recomputed from the resampled counts as the evaluation computes it (POPE F1 from tp/fp/tn/fn, "
            "MME acc+ per image). Every test row is resampled on the same draws as the full model, so relative scores "
            "and differences are paired; fine-tuning seeds (and untrained phases) are averaged inside each resample.")
