"""The synthetic-testbed experiment: the paper's Tables I-IV and Figure 2 on a CPU-sized model.

Starts from the committed pretrained checkpoint (``adsc_testbed/checkpoint``), never from scratch.
Every step writes its own folder under ``out/runs`` and is skipped when finished, so a killed
experiment resumes (``adsc.training.train`` and ``adsc.evaluation.evaluate`` both resume too).

Controls the issue asks for:
- every fine-tune with dropping has a twin trained for the same steps on the same data with no
  dropping (one twin serves all budgets: with nothing dropped the budget plays no part);
  "recovery" is the gap between the twins at the same budget;
- untrained uniform dropping is run at several spatial phases and reported as mean and spread.
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
from adsc.methods import get_method

from .dataset import TestbedConfig, generate
from .facts import ADSC_LAYERS, CHECKPOINT, IMAGE_SIZE, PATCH, VISION_TOKENS
from .formats.instruct import INSTRUCT_FILE
from .questions.mme import SUBTASKS as MME_SUBTASKS
from .report import write_report
from .runs import TWIN, Results, Run
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
    batch_size: int = 16
    lora_r: int = 16
    lr: float = 5e-4
    notes: list[str] = field(default_factory=list)


PRESETS = {
    "smoke": Preset("smoke", 4, 12, (16.0,), ("fastv",), 1, (0.5,), False, batch_size=4,
                    notes=["smoke: a wiring check for the tests, its numbers mean nothing"]),
    "quick": Preset("quick", 60, 400, (16.0,), ("tome", "fastv", "pyramiddrop", "random"), 60, (0.0, 0.5), False,
                    notes=["quick: one budget (16 = 1/9 of 144), 60 questions per benchmark, 60 fine-tuning steps, "
                           "no Table II/III ablations; run --preset full for the real experiment"]),
    "full": Preset("full", 300, 1500, (48.0, 32.0, 16.0), ("tome", "fastv", "pyramiddrop", "random"), 300,
                   (0.0, 0.25, 0.5, 0.75), True),
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


def _adsc(budget: float, **options) -> CompressionConfig:
    """ADSC at ``budget`` on the testbed model's pruning layers."""
    return CompressionConfig(layers=ADSC_LAYERS, budget=budget, vision_tokens=VISION_TOKENS, **options)


class Experiment:
    def __init__(self, out: str | Path, preset: Preset, checkpoint: str | Path = CHECKPOINT, seed: int = 0, progress=True):
        self.out, self.preset, self.checkpoint, self.seed = Path(out), preset, Path(checkpoint), seed
        self.data = self.out / "data"
        self.runs = self.out / "runs"
        self.progress = progress
        if not (self.checkpoint / "model.safetensors").exists():
            raise FileNotFoundError(
                f"no pretrained testbed model at {self.checkpoint}; the committed one is {CHECKPOINT} "
                "(or make one with `adsc experiment --pretrain`)"
            )

    # ------------------------------------------------------------------ data
    def generate(self) -> None:
        if (self.data / "manifest.json").exists():
            return
        cfg = TestbedConfig(seed=self.seed, num_images=eval_images(self.preset.questions), num_train=self.preset.train_images,
                            spec=GridSpec(IMAGE_SIZE, PATCH, 2))
        generate(self.data, cfg)

    # ------------------------------------------------------------------ models
    def _pretrained(self):
        model, processor = load_model(str(self.checkpoint), dtype="float32")
        _enable_cache(model)
        return model, processor

    def evaluate(self, label: str, model, processor, compression: CompressionConfig | None) -> dict:
        target = self.runs / label
        if (target / "results.json").exists():
            return json.loads((target / "results.json").read_text())
        names = [EVAL_NAMES.get(b, b) for b in BENCHMARKS]
        # The testbed's MME has five perception subtasks (questions/mme.py): declared, as the reader asks.
        return evaluate(model, processor, names, str(self.data), str(target), compression=compression,
                        model_name=label, batch_size=16, max_new_tokens=8, progress=self.progress, label=label,
                        benchmark_options={"mme": {"subtasks": MME_SUBTASKS}})

    def finetune(self, label: str, *, budget: float, layers=ADSC_LAYERS, curriculum: str = "reverse", mode: str = "lora"):
        from adsc.training import TrainConfig, load_trained, train  # lazy: transformers' Trainer and peft (seconds)

        p = self.preset
        target = self.runs / f"train-{label}"
        cfg = TrainConfig.from_settings(
            model=str(self.checkpoint), data=str(self.data / "train" / INSTRUCT_FILE),
            image_folder=str(self.data / "train"), output_dir=str(target), mode=mode, lora_r=p.lora_r,
            lora_alpha=2 * p.lora_r, lora_dropout=0.0, learning_rate=p.lr, projector_lr=p.lr, global_batch_size=p.batch_size,
            per_device_train_batch_size=p.batch_size, max_steps=p.train_steps, max_length=512, layers=tuple(layers),
            budget=budget, vision_tokens=VISION_TOKENS, curriculum=curriculum, template="chat_template",
            pad_to_square=False, gradient_checkpointing=False, bf16=False, dataloader_num_workers=0,
            save_steps=max(10, p.train_steps // 3), save_total_limit=1, seed=self.seed, logging_steps=10,
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

        def score(run: Run, model, processor, compression: CompressionConfig | None) -> None:
            results.scored[run] = self.evaluate(run.label, model, processor, compression)

        model, processor = self._pretrained()
        score(Run("full"), model, processor, None)
        for b in p.budgets:
            for method in p.baselines:
                layers = get_method(method).layers_like(ADSC_LAYERS)  # fastv, tome: (1,); the rest: ADSC's
                cfg = CompressionConfig(method=method, layers=layers, budget=b, vision_tokens=VISION_TOKENS)
                try:
                    score(Run(method, budget=b), model, processor, cfg)
                except ConfigError as err:  # e.g. ToMe halves at most per layer: 1/9 is out of its reach here
                    results.skipped[Run(method, budget=b)] = str(err)
            for phase in p.phases:
                score(Run("adsc", budget=b, phase=phase), model, processor, _adsc(b, phase=phase))
        del model
        # The twin: same steps, same data, same seed, nothing dropped during training. With nothing
        # dropped the budget plays no part, so one twin serves every budget.
        twin, twin_proc = self.finetune("twin", budget=VISION_TOKENS, layers=(), curriculum="direct")
        score(Run("full", TWIN), twin, twin_proc, None)
        for b in p.budgets:
            score(Run("adsc", TWIN, b), twin, twin_proc, _adsc(b))
            m, proc = self.finetune(f"adsc-reverse@{Run('adsc', budget=b).tag}", budget=b)
            score(Run("adsc", "lora-reverse", b), m, proc, _adsc(b))
        del twin
        if p.ablations:
            b = p.budgets[-1]
            tag = Run("adsc", budget=b).tag
            for curriculum in ("direct", "standard"):
                m, proc = self.finetune(f"adsc-{curriculum}@{tag}", budget=b, curriculum=curriculum)
                score(Run("adsc", f"lora-{curriculum}", b), m, proc, _adsc(b))
            m, proc = self.finetune(f"adsc-fullft@{tag}", budget=b, mode="full")
            score(Run("adsc", "full-reverse", b), m, proc, _adsc(b))
        # time adds up over invocations: a resumed or re-rendered run reports the compute of all of them
        elapsed = self.out / "elapsed.json"
        before = json.loads(elapsed.read_text())["seconds"] if elapsed.exists() else 0.0
        seconds = before + time.time() - start
        elapsed.write_text(json.dumps({"seconds": round(seconds, 1)}))
        summary = write_report(self.out, self.preset, results, seconds=seconds, seed=self.seed, checkpoint=self.checkpoint)
        return summary


def _enable_cache(model) -> None:
    """Training saves configs with use_cache=False; generation wants the (compressed) cache."""
    for cfg in {id(c): c for c in (model.config, model.config.get_text_config())}.values():
        cfg.use_cache = True
