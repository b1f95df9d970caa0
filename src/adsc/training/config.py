"""``TrainConfig``: every setting of a training run, with the paper's defaults (SPEC section 2).

The defaults are those LLaVA-1.5's public LoRA fine-tuning script uses and the ADSC paper
inherits: LoRA r 128 / alpha 256 on all linear layers of the LLM, lr 2e-4 (projector 2e-5),
global batch 128, one epoch, 3 % warmup, cosine decay, bf16, max length 2048.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from ..checks import real, whole
from ..config import unknown_keys

CURRICULA = {
    # multiples of the target budget, one per phase, in training order (paper Table III)
    "reverse": (0.8, 0.9, 1.0),
    "standard": (1.2, 1.1, 1.0),
    "direct": (1.0,),
}
MODES = ("lora", "full")
TEMPLATES = ("auto", "vicuna_v1", "chat_template")

LR_SCHEDULERS = (
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt",
    "cosine_with_min_lr", "warmup_stable_decay",
)
ATTENTION = ("sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")

# The one list of settings that do not change what a run computes: a rerun into an output directory
# may change these (resume, or "nothing to do" for a finished run). Every other setting decides the
# trained weights, and a rerun that changes one is refused (see rerun.py, docs/training.md).
RESULT_FREE = {
    "output_dir": "the folder itself, however it is spelled",
    "logging_steps": "how often the loss is logged",
    "report_to": "where logs go",
    "num_workers": "DataLoader worker processes (the order is fixed by the seeded sampler)",
    "save_steps": "how often checkpoints are written",
    "save_total_limit": "how many checkpoints are kept",
    "max_bad_share": "when to stop over bad images (a guard; the samples trained on do not change)",
    "allow_outside_image_folder": "a permission: the records trained on are the same when it is not needed",
    "merge": "whether merged/ is also written (a finished run writes it on a rerun with --merge)",
}
# TrainingArguments passed through --trainer-args that only change logging or data loading speed
EXTRA_RESULT_FREE = (
    "disable_tqdm", "dataloader_pin_memory", "dataloader_persistent_workers", "dataloader_prefetch_factor",
    "logging_dir", "logging_strategy", "logging_first_step", "logging_nan_inf_filter", "run_name",
)


@dataclass
class TrainConfig:
    model: str
    data: str
    output_dir: str
    image_folder: str | None = None
    # --- what is trained
    mode: str = "lora"
    lora_r: int = 128
    lora_alpha: int = 256
    lora_dropout: float = 0.05
    lr: float | None = None  # None: 2e-4 for LoRA, 2e-5 for full fine-tuning
    projector_lr: float | None = None  # None: 2e-5 for LoRA, lr for full fine-tuning
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    lr_scheduler: str = "cosine"
    max_grad_norm: float = 1.0
    # --- batches and length
    global_batch_size: int = 128
    per_device_batch_size: int = 16
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    max_length: int = 2048
    # --- compression and curriculum
    layers: tuple[int, ...] = (2, 8, 16, 24)
    budget: float = 192.0
    vision_tokens: int | None = None  # None: read from the model (576 for LLaVA-1.5)
    pattern: str = "grid2d"
    drop_position: str = "before"
    curriculum: str = "reverse"
    phase_fractions: tuple[float, ...] | None = None  # None: equal shares
    phase_steps: tuple[int, ...] | None = None  # explicit optimizer steps per phase
    # --- data
    template: str = "auto"  # auto: vicuna_v1 for LLaVA, the processor's chat template otherwise
    pad_to_square: bool | None = None  # None: True for LLaVA (LLaVA-1.5 "pad" aspect ratio)
    skip_malformed: bool = False
    allow_outside_image_folder: bool = False  # image paths may leave image_folder (absolute, ../)
    max_bad_share: float = 0.01
    num_workers: int = 4
    # --- runtime
    bf16: bool | None = None  # None: when the GPU supports it
    gradient_checkpointing: bool = True
    attn_implementation: str | None = None
    seed: int = 42
    logging_steps: int = 10
    save_steps: int = 500
    save_total_limit: int = 2
    report_to: str = "none"
    deepspeed: str | None = None
    merge: bool = False
    extra: dict = field(default_factory=dict)  # passed to TrainingArguments as is

    def __post_init__(self):
        for name in ("layers", "phase_fractions", "phase_steps"):
            value = getattr(self, name)
            if (value is not None or name == "layers") and not isinstance(value, (list, tuple)):
                raise ValueError(f"{name} must be a list of numbers, got {value!r}")
        for name in ("model", "data", "output_dir"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty path or hub id, got {getattr(self, name)!r}")
        for name in ("image_folder", "deepspeed"):
            if getattr(self, name) is not None and (not isinstance(getattr(self, name), str) or not getattr(self, name)):
                raise ValueError(f"{name} must be a path or None, got {getattr(self, name)!r} (fix {_flag(name)})")
        if not isinstance(self.report_to, str):
            raise ValueError(f"report_to must be a string such as 'none' or 'tensorboard', got {self.report_to!r}")
        self.layers = tuple(_whole(f"layers[{i}]", x, 0) for i, x in enumerate(self.layers))
        if self.phase_fractions is not None:
            self.phase_fractions = tuple(_real(f"phase_fractions[{i}]", x, 0.0) for i, x in enumerate(self.phase_fractions))
        if self.phase_steps is not None:
            self.phase_steps = tuple(_whole(f"phase_steps[{i}]", x, 0) for i, x in enumerate(self.phase_steps))
        _choice("mode", self.mode, MODES)
        _choice("curriculum", self.curriculum, tuple(CURRICULA))
        _choice("template", self.template, TEMPLATES)
        _choice("lr_scheduler", self.lr_scheduler, LR_SCHEDULERS)
        _choice("pattern", self.pattern, ("grid2d", "stride1d"))
        _choice("drop_position", self.drop_position, ("before", "after"))
        if self.attn_implementation is not None:
            _choice("attn_implementation", self.attn_implementation, ATTENTION)
        self._check_ranges()
        n = len(CURRICULA[self.curriculum])
        for name in ("phase_fractions", "phase_steps"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} needs {n} values for the {self.curriculum!r} curriculum, got {len(value)}")
        if self.phase_fractions is not None and self.phase_steps is not None:
            raise ValueError("give phase_fractions or phase_steps, not both")
        if self.phase_fractions is not None and abs(sum(self.phase_fractions) - 1.0) > 1e-6:
            raise ValueError(f"phase_fractions must add up to 1, got {list(self.phase_fractions)}")
        if len(set(self.layers)) != len(self.layers):
            raise ValueError(f"pruning layers must be distinct, got {list(self.layers)}")
        if self.global_batch_size % self.per_device_batch_size:
            raise ValueError(
                f"global_batch_size {self.global_batch_size} is not a multiple of per_device_batch_size "
                f"{self.per_device_batch_size}; pick a per-device batch that divides it"
            )
        if self.vision_tokens is not None and self.budget > self.vision_tokens:
            raise ValueError(f"budget {self.budget} is above the {self.vision_tokens} vision tokens per image; lower --budget")
        if not isinstance(self.extra, dict):
            raise ValueError(f"extra (--trainer-args) must be a JSON object of TrainingArguments, got {self.extra!r}")

    def _check_ranges(self) -> None:
        """Each number in its range; the message names the flag's value to change."""
        _whole("lora_r", self.lora_r, 1)
        _real("lora_alpha", self.lora_alpha, 0.0, strict=True)
        _real("lora_dropout", self.lora_dropout, 0.0, 1.0, high_open=True)
        for name in ("lr", "projector_lr"):
            if getattr(self, name) is not None:
                _real(name, getattr(self, name), 0.0, strict=True)
        _real("weight_decay", self.weight_decay, 0.0)
        _real("warmup_ratio", self.warmup_ratio, 0.0, 1.0, high_open=True)
        _real("max_grad_norm", self.max_grad_norm, 0.0)
        _whole("global_batch_size", self.global_batch_size, 1)
        _whole("per_device_batch_size", self.per_device_batch_size, 1)
        _whole("max_steps", self.max_steps, -1)
        if self.max_steps == 0:
            raise ValueError("max_steps must be > 0 (or -1 to train for --epochs), got 0")
        if self.max_steps < 0:
            _real("epochs", self.epochs, 0.0, strict=True)
        _whole("max_length", self.max_length, 1)
        self.budget = _real("budget", self.budget, 0.0, strict=True)
        if self.vision_tokens is not None:
            _whole("vision_tokens", self.vision_tokens, 1)
        _real("max_bad_share", self.max_bad_share, 0.0, 1.0)
        _whole("num_workers", self.num_workers, 0)
        _whole("seed", self.seed, 0, 2**32 - 1)
        _whole("logging_steps", self.logging_steps, 1)
        _whole("save_steps", self.save_steps, 1)
        _whole("save_total_limit", self.save_total_limit, 1)
        for name in ("skip_malformed", "allow_outside_image_folder", "gradient_checkpointing", "merge"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("bf16", "pad_to_square"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True, False or None (automatic), got {getattr(self, name)!r}")

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return 2e-4 if self.mode == "lora" else 2e-5

    @property
    def projector_learning_rate(self) -> float:
        if self.projector_lr is not None:
            return self.projector_lr
        return 2e-5 if self.mode == "lora" else self.learning_rate

    def phase_budgets(self) -> list[float]:
        return [round(f * self.budget, 6) for f in CURRICULA[self.curriculum]]

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("layers", "phase_fractions", "phase_steps"):
            if out[key] is not None:
                out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        unknown = unknown_keys(cls, data)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}")
        return cls(**data)

    def result_settings(self) -> dict:
        """The settings that decide the trained weights, as JSON values (all but RESULT_FREE).

        Learning rates are the effective ones: leaving --lr out and passing its default is one run.
        """
        out = json.loads(json.dumps(self.to_dict(), default=str))
        out["lr"], out["projector_lr"] = self.learning_rate, self.projector_learning_rate
        out["extra"] = {k: v for k, v in out["extra"].items() if k not in EXTRA_RESULT_FREE}
        return {k: v for k, v in out.items() if k not in RESULT_FREE}


def _flag(name: str) -> str:
    return "--" + name.split("[")[0].replace("_", "-")


def _choice(name: str, value, options: tuple) -> None:
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(options)}; got {value!r} (fix {_flag(name)})")


def _whole(name: str, value, low: int, high: int | None = None) -> int:
    return whole(name, value, low, high, fix=f" (fix {_flag(name)})")


def _real(name: str, value, low: float, high: float | None = None, strict: bool = False, high_open: bool = False) -> float:
    return real(name, value, low, high, strict, high_open, fix=f" (fix {_flag(name)})")
