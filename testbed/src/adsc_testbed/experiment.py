"""The synthetic-testbed experiment: the paper's Tables I-IV and Figure 2 on a CPU-sized model.

Starts from the committed pretrained checkpoint (``adsc_testbed/checkpoint``), never from scratch.
Every step writes its own folder under ``out/runs`` and is skipped when finished, so a killed
experiment resumes (``adsc.training.train`` and ``adsc.evaluation.evaluate`` both resume too).

Controls the issue asks for:
- every fine-tune with dropping has a twin trained for the same steps on the same data with no
  dropping (one twin serves all budgets: with nothing dropped the budget plays no part);
  "recovery" is the gap between the twins at the same budget;
- untrained uniform dropping is run at several spatial phases and reported as mean and spread;
- every method's free parameters, ADSC's pruning layers included, are chosen on a validation split
  of its own (``split_configs``, ``tuning.py``), the untuned rows kept beside the tuned ones;
- every fine-tune runs at ``Preset.finetune_seeds`` training seeds (same checkpoint, same data),
  reported as mean and min..max.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from adsc.config import CompressionConfig, ConfigError
from adsc.evaluation.generation import load_model
from adsc.evaluation.run import evaluate
from adsc.loading import load_processor

from .dataset import VALIDATION_IDS, TestbedConfig, generate, shared_between
from .facts import ADSC_LAYERS, CHECKPOINT, IMAGE_SIZE, PATCH, VISION_TOKENS
from .formats.instruct import INSTRUCT_FILE
from .questions.mme import SUBTASKS as MME_SUBTASKS
from .report import adsc_setting, headlines, rel_base, relative_score, write_report
from .runs import PRETRAINED, TWIN, VALIDATION, Results, Run, Tuning
from .tuning import Setting, candidates, default_setting, fastv_grid, layer_sets, same_compression, seeds
from .world import GridSpec

BENCHMARKS = ("gqa", "mme", "pope", "scienceqa", "textvqa", "vqav2")
EVAL_NAMES = {"scienceqa": "sqa"}  # generator folder name -> evaluation package name


@dataclass
class Preset:
    name: str
    questions: int  # about this many test questions per benchmark, all of them scored
    train_images: int  # fine-tuning images (665K-format records, several per image)
    budgets: tuple[float, ...]
    baselines: tuple[str, ...]
    train_steps: int
    phases: tuple[float, ...]  # spatial phases of untrained uniform dropping
    ablations: bool  # Table II (LoRA vs full) and Table III (curricula)
    val_questions: int = 4  # about this many validation questions per benchmark (settings are chosen on them)
    # method -> the settings it is tuned among (tuning.py; "adsc": its pruning layers, for every ADSC run)
    grid: dict[str, tuple[Setting, ...]] = field(default_factory=dict)
    finetune_seeds: int = 1  # every fine-tune (twin included) is run at this many seeds: same checkpoint, same data
    batch_size: int = 16
    lora_r: int = 16
    lr: float = 5e-4
    notes: list[str] = field(default_factory=list)


# The grids are stated here, small (quick: smaller), each listing the untuned default first so a tie keeps it.
QUICK_GRID = {"fastv": fastv_grid((1, 2, 3)), "pyramiddrop": layer_sets(ADSC_LAYERS, (1, 2, 4, 8), (1, 2, 3)),
              "tome": layer_sets((1,), (2,)), "random": seeds(2),
              "adsc": layer_sets(ADSC_LAYERS, (1, 2, 4, 8), (1, 2, 3, 4))}
FULL_GRID = {"fastv": fastv_grid((1, 2, 3, 4)),
             "pyramiddrop": layer_sets(ADSC_LAYERS, (1, 2, 4, 8), (1, 4, 7, 10), (1, 2, 3), (2, 4, 6, 8)),
             "tome": layer_sets((1,), (2,), (3,)), "random": seeds(3),
             "adsc": layer_sets(ADSC_LAYERS, (1, 2, 4, 8), (1, 4, 7, 10), (1, 2, 3, 4))}

PRESETS = {
    "smoke": Preset("smoke", 4, 12, (16.0,), ("fastv",), 1, (0.5,), False, val_questions=2,
                    grid={"fastv": fastv_grid((1,)), "adsc": layer_sets(ADSC_LAYERS, (1, 2, 3, 4))}, finetune_seeds=2,
                    batch_size=4, notes=["smoke: a wiring check for the tests, its numbers mean nothing"]),
    "quick": Preset("quick", 60, 400, (16.0,), ("tome", "fastv", "pyramiddrop", "random"), 60, (0.0, 0.5), False,
                    val_questions=30, grid=QUICK_GRID, finetune_seeds=1,
                    notes=["quick: one budget (16 = 1/9 of 144), 60 questions per benchmark, 60 fine-tuning steps, "
                           "settings chosen on 30 validation questions per benchmark among a smaller grid, one "
                           "fine-tuning seed (no spread), no Table II/III ablations; run --preset full for the real "
                           "experiment"]),
    "full": Preset("full", 300, 1500, (48.0, 32.0, 16.0), ("tome", "fastv", "pyramiddrop", "random"), 300,
                   (0.0, 0.25, 0.5, 0.75), True, val_questions=100, grid=FULL_GRID, finetune_seeds=3),
}


def with_overrides(preset: Preset, **overrides) -> Preset:
    """The preset with some fields replaced (None: keep); the change is added to its notes, which the
    report prints, so a reduced run is never mistaken for the preset as defined."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if not overrides:
        return preset
    bad = {k: v for k, v in overrides.items() if k not in ("questions", "train_steps") or v < 1}
    if bad:
        raise ValueError(f"cannot override {bad}: only questions and train_steps, each >= 1")
    said = ", ".join(f"{k} {getattr(preset, k)} -> {v}" for k, v in overrides.items())
    return replace(preset, **overrides, notes=[*preset.notes, f"{preset.name} with overrides: {said}"])


# Questions the generator writes per test image (POPE: 3 splits x 3 pairs); images are sized from
# these so every split and subtask is in the set -- a prefix of the files would keep POPE's first
# split and MME's first subtask only.
QUESTIONS_PER_IMAGE = {"gqa": 4, "mme": 2, "pope": 18, "scienceqa": 1, "textvqa": 1.8, "vqav2": 3}


def eval_images(questions: int) -> dict[str, int]:
    n = {b: max(1, math.ceil(questions / q)) for b, q in QUESTIONS_PER_IMAGE.items()}
    n["mme"] = 5 * math.ceil(n["mme"] / 5)  # images cycle through MME's five subtasks: equal shares
    return n


def _adsc(budget: float, layers=ADSC_LAYERS, **options) -> CompressionConfig:
    """ADSC at ``budget`` on the testbed model's pruning layers (or the ones chosen on validation)."""
    return CompressionConfig(layers=tuple(layers), budget=budget, vision_tokens=VISION_TOKENS, **options)


# The validation split's generation seed is the test seed plus this (pretraining's held-out scenes
# use seed + 1); with its own ids (dataset.VALIDATION_IDS) it shares no question, image or scene seed.
VALIDATION_SEED = 1000


def split_configs(preset: Preset, seed: int) -> tuple[TestbedConfig, TestbedConfig]:
    """(test + fine-tuning data, validation data) of the preset: two generation seeds, two id ranges."""
    spec = GridSpec(IMAGE_SIZE, PATCH, 2)
    test = TestbedConfig(seed=seed, num_images=eval_images(preset.questions), num_train=preset.train_images, spec=spec)
    val = TestbedConfig(seed=seed + VALIDATION_SEED, num_images=eval_images(preset.val_questions), num_train=0,
                        spec=spec, id_start=VALIDATION_IDS)
    return test, val


class Experiment:
    def __init__(self, out: str | Path, preset: Preset, checkpoint: str | Path = CHECKPOINT, seed: int = 0, progress=True):
        self.out, self.preset, self.checkpoint, self.seed = Path(out), preset, Path(checkpoint), seed
        self.data = self.out / "data"
        self.val_data = self.out / "val_data"
        self.runs = self.out / "runs"
        self.progress = progress
        if not (self.checkpoint / "model.safetensors").exists():
            raise FileNotFoundError(
                f"no pretrained testbed model at {self.checkpoint}; the committed one is {CHECKPOINT} "
                "(or make one with `adsc experiment --pretrain`)"
            )

    # ------------------------------------------------------------------ data
    def generate(self) -> None:
        for folder, cfg in zip((self.data, self.val_data), split_configs(self.preset, self.seed)):
            if not (folder / "manifest.json").exists():
                generate(folder, cfg)
        shared = {kind: items for kind, items in shared_between(self.data, self.val_data).items() if items}
        if shared:  # a scene drawn twice by chance under two seeds: tuning on it would peek at the test
            said = "; ".join(f"{len(v)} {k} (e.g. {v[0][:80]})" for k, v in shared.items())
            raise RuntimeError(f"{self.val_data} shares {said} with {self.data}: choose another --seed")

    # ------------------------------------------------------------------ models
    def _pretrained(self):
        model, processor = load_model(str(self.checkpoint), dtype="float32")
        _enable_cache(model)
        return model, processor

    def evaluate(self, run: Run, model, processor, compression: CompressionConfig | None) -> dict:
        target = self.runs / run.label
        if (target / "results.json").exists():
            return json.loads((target / "results.json").read_text())
        names = [EVAL_NAMES.get(b, b) for b in BENCHMARKS]
        data, label = self.val_data if run.split == VALIDATION else self.data, run.label
        # The testbed's MME has five perception subtasks (questions/mme.py): declared, as the reader asks.
        return evaluate(model, processor, names, str(data), str(target), compression=compression,
                        model_name=label, batch_size=16, max_new_tokens=8, progress=self.progress, label=label,
                        benchmark_options={"mme": {"subtasks": MME_SUBTASKS}})

    def finetune(self, label: str, *, budget: float, layers=ADSC_LAYERS, curriculum: str = "reverse", mode: str = "lora",
                 seed: int = 0):
        """Fine-tune the checkpoint on the fine-tuning data; ``seed`` (0, 1, ...) changes only the
        training seed (LoRA init, data order), never the data."""
        from adsc.training import TrainConfig, load_trained, train  # lazy: transformers' Trainer and peft (seconds)

        p = self.preset
        target = self.runs / (f"train-{label}" + (f"-seed{seed}" if seed else ""))
        cfg = TrainConfig.from_settings(
            model=str(self.checkpoint), data=str(self.data / "train" / INSTRUCT_FILE),
            image_folder=str(self.data / "train"), output_dir=str(target), mode=mode, lora_r=p.lora_r,
            lora_alpha=2 * p.lora_r, lora_dropout=0.0, learning_rate=p.lr, projector_lr=p.lr, global_batch_size=p.batch_size,
            per_device_train_batch_size=p.batch_size, max_steps=p.train_steps, max_length=512, layers=tuple(layers),
            budget=budget, vision_tokens=VISION_TOKENS, curriculum=curriculum, template="chat_template",
            pad_to_square=False, gradient_checkpointing=False, bf16=False, dataloader_num_workers=0,
            save_steps=max(10, p.train_steps // 3), save_total_limit=1, seed=self.seed + seed, logging_steps=10,
        )
        train(cfg)
        model = load_trained(str(target), compressed=False)
        _enable_cache(model)
        return model, load_processor(str(target))

    # ------------------------------------------------------------------ the experiment
    def run(self) -> dict:
        start = time.time()
        self.generate()
        p, results = self.preset, Results()
        tested: list[tuple[CompressionConfig, dict]] = []  # the pretrained model's test runs, to reuse a repeat

        def score(run: Run, model, processor, compression: CompressionConfig | None) -> None:
            reusable = run.weights == PRETRAINED and run.split != VALIDATION
            same = [r for c, r in tested if same_compression(c, compression)] if reusable else []
            results.scored[run] = same[0] if same else self.evaluate(run, model, processor, compression)
            if reusable:
                tested.append((compression, results.scored[run]))

        model, processor = self._pretrained()
        score(Run("full"), model, processor, None)
        for b in p.budgets:
            for method in p.baselines:  # untuned: the published default scaled to this depth
                try:
                    score(Run(method, budget=b), model, processor, default_setting(method).config(method, b))
                except ConfigError as err:  # e.g. ToMe halves at most per layer: 1/9 is out of its reach here
                    results.skipped[Run(method, budget=b)] = str(err)
            for phase in p.phases:
                score(Run("adsc", budget=b, phase=phase), model, processor, _adsc(b, phase=phase))
        self.tune(results, model, processor, score)
        del model
        layers = {b: self.adsc_layers(results, b) for b in p.budgets}
        for seed in range(p.finetune_seeds):
            # The twin: same steps, same data, same seed, nothing dropped during training. With nothing
            # dropped the budget plays no part, so one twin serves every budget.
            twin, twin_proc = self.finetune("twin", budget=VISION_TOKENS, layers=(), curriculum="direct", seed=seed)
            score(Run("full", TWIN, seed=seed), twin, twin_proc, None)
            for b in p.budgets:
                setting = adsc_setting(results, b)
                score(Run("adsc", TWIN, b, setting=setting, seed=seed), twin, twin_proc, _adsc(b, layers[b]))
                tag = Run("adsc", budget=b).tag + (f"-{setting}" if setting else "")
                m, proc = self.finetune(f"adsc-reverse@{tag}", budget=b, layers=layers[b], seed=seed)
                score(Run("adsc", "lora-reverse", b, setting=setting, seed=seed), m, proc, _adsc(b, layers[b]))
            del twin
            if p.ablations:
                b = p.budgets[-1]
                setting = adsc_setting(results, b)
                tag = Run("adsc", budget=b).tag + (f"-{setting}" if setting else "")
                for curriculum in ("direct", "standard"):
                    m, proc = self.finetune(f"adsc-{curriculum}@{tag}", budget=b, layers=layers[b], curriculum=curriculum,
                                            seed=seed)
                    score(Run("adsc", f"lora-{curriculum}", b, setting=setting, seed=seed), m, proc, _adsc(b, layers[b]))
                m, proc = self.finetune(f"adsc-fullft@{tag}", budget=b, layers=layers[b], mode="full", seed=seed)
                score(Run("adsc", "full-reverse", b, setting=setting, seed=seed), m, proc, _adsc(b, layers[b]))
        # time adds up over invocations: a resumed or re-rendered run reports the compute of all of them
        elapsed = self.out / "elapsed.json"
        before = json.loads(elapsed.read_text())["seconds"] if elapsed.exists() else 0.0
        seconds = before + time.time() - start
        elapsed.write_text(json.dumps({"seconds": round(seconds, 1)}))
        summary = write_report(self.out, self.preset, results, seconds=seconds, seed=self.seed, checkpoint=self.checkpoint)
        return summary

    def tune(self, results: Results, model, processor, score) -> None:
        """Every method's setting at every budget, chosen on the validation split (eval only, the
        loaded model reused), then the chosen one scored on the test split."""
        p = self.preset
        score(Run("full", split=VALIDATION), model, processor, None)
        base, _ = rel_base(headlines(results[Run("full", split=VALIDATION)]))
        depth = json.loads((self.checkpoint / "config.json").read_text())["text_config"]["num_hidden_layers"]
        for b in p.budgets:
            for method in (*p.baselines, "adsc"):
                grid = candidates(p.grid.get(method, ()), method, b, depth)
                if not grid:
                    if method in p.grid:
                        results.skipped[Run(method, budget=b, setting="tuned")] = (
                            f"{method}: none of {[s.name for s in p.grid[method]]} reaches budget {b:g} on this model")
                    continue
                validation = {}
                for s in grid:
                    run = Run(method, budget=b, setting=s.name, split=VALIDATION)
                    score(run, model, processor, s.config(method, b))
                    validation[s.name] = relative_score(headlines(results[run]), base)
                tuning = results.tuned[(method, b)] = Tuning(method, b, validation)
                chosen = next(s for s in grid if s.name == tuning.chosen)
                score(Run(method, budget=b, setting=chosen.name), model, processor, chosen.config(method, b))

    def adsc_layers(self, results: Results, budget: float) -> tuple[int, ...]:
        """The layer set every ADSC fine-tune and its evaluation use at ``budget`` (chosen on validation)."""
        name = adsc_setting(results, budget)
        return next(s.layers for s in self.preset.grid["adsc"] if s.name == name) if name else ADSC_LAYERS


def _enable_cache(model) -> None:
    """Training saves configs with use_cache=False; generation wants the (compressed) cache."""
    for cfg in {id(c): c for c in (model.config, model.config.get_text_config())}.values():
        cfg.use_cache = True
