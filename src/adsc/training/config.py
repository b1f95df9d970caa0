"""``TrainConfig``: every setting of a training run, with the paper's defaults (SPEC section 2).

The defaults are those LLaVA-1.5's public LoRA fine-tuning script uses and the ADSC paper
inherits: LoRA r 128 / alpha 256 on all linear layers of the LLM, lr 2e-4 (projector 2e-5),
global batch 128, one epoch, 3 % warmup, cosine decay, bf16, max length 2048.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from ..config import unknown_keys

CURRICULA = {
    # multiples of the target budget, one per phase, in training order (paper Table III)
    "reverse": (0.8, 0.9, 1.0),
    "standard": (1.2, 1.1, 1.0),
    "direct": (1.0,),
}
MODES = ("lora", "full")
TEMPLATES = ("auto", "vicuna_v1", "chat_template")

# Settings that decide which sample lands in which step. A rerun into an output directory that
# holds checkpoints must match them, or "resume" would silently train on a different order.
ORDER_KEYS = (
    "model", "data", "mode", "seed", "global_batch_size", "per_device_batch_size", "epochs",
    "max_steps", "max_length", "curriculum", "budget", "layers", "phase_fractions", "phase_steps",
    "template", "skip_malformed",
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
        self.layers = tuple(int(x) for x in self.layers)
        if self.phase_fractions is not None:
            self.phase_fractions = tuple(float(x) for x in self.phase_fractions)
        if self.phase_steps is not None:
            self.phase_steps = tuple(int(x) for x in self.phase_steps)
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.curriculum not in CURRICULA:
            raise ValueError(f"curriculum must be one of {tuple(CURRICULA)}, got {self.curriculum!r}")
        if self.template not in TEMPLATES:
            raise ValueError(f"template must be one of {TEMPLATES}, got {self.template!r}")
        n = len(CURRICULA[self.curriculum])
        for name in ("phase_fractions", "phase_steps"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} needs {n} values for the {self.curriculum!r} curriculum, got {len(value)}")
        if self.phase_fractions is not None and self.phase_steps is not None:
            raise ValueError("give phase_fractions or phase_steps, not both")
        if self.global_batch_size % self.per_device_batch_size:
            raise ValueError(
                f"global_batch_size {self.global_batch_size} is not a multiple of per_device_batch_size "
                f"{self.per_device_batch_size}"
            )
        if not 0.0 <= self.max_bad_share <= 1.0:
            raise ValueError(f"max_bad_share must lie in [0, 1], got {self.max_bad_share}")

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

    def order_mismatch(self, saved: dict) -> list[str]:
        """Order-deciding settings that differ from a saved run (see ORDER_KEYS)."""
        mine = json.loads(json.dumps(self.to_dict()))
        return [k for k in ORDER_KEYS if k in saved and saved[k] != mine.get(k)]
