"""A training run's settings: what adsc adds, the compression, and transformers' own TrainingArguments.

    TrainConfig(adsc=AdscArguments(model=..., data=...), compression=CompressionConfig(budget=192),
                training=AdscTrainingArguments(output_dir="runs/adsc192"))
    TrainConfig.from_settings(model=..., data=..., output_dir=..., budget=192, learning_rate=2e-4)

``AdscArguments`` holds only what ``TrainingArguments`` has no field for (model, data, LoRA,
curriculum, ...); everything transformers already has (learning rate, epochs, batch size, seed,
logging and saving) stays a ``TrainingArguments`` field under its own name, so ``adsc train``
takes the same flags as any Hugging Face training script (``HfArgumentParser``, training/cli.py).
``AdscTrainingArguments`` is ``TrainingArguments`` with the paper's defaults (SPEC section 2):
those of LLaVA-1.5's public LoRA script, which the ADSC paper inherits: LoRA r 128 / alpha 256 on
all linear layers of the LLM, lr 2e-4 (projector 2e-5), global batch 128, one epoch, 3 % warmup,
cosine decay, bf16, max length 2048.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from dataclasses import dataclass, field
from typing import Literal

from transformers import TrainingArguments

from ..checks import real, whole
from ..config import CompressionConfig, ConfigError
from .model import default_bf16

CURRICULA = {
    # multiples of the target budget, one per phase, in training order (paper Table III)
    "reverse": (0.8, 0.9, 1.0),
    "standard": (1.2, 1.1, 1.0),
    "direct": (1.0,),
}
ATTENTION = ("sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")
PAPER_LAYERS = (2, 8, 16, 24)
PAPER_BUDGET = 192.0

# The settings that do not change what a run computes: a rerun into an output directory may change
# these (resume, or "nothing to do" for a finished run). Every other setting decides the trained
# weights, and a rerun that changes one is refused (see rerun.py, docs/training.md).
RESULT_FREE = {
    "output_dir": "the folder itself, however it is spelled",
    "max_bad_share": "when to stop over bad images (a guard; the samples trained on do not change)",
    "allow_outside_image_folder": "a permission: the records trained on are the same when it is not needed",
    "merge": "whether merged/ is also written (a finished run writes it on a rerun with --merge)",
    "save_steps": "how often checkpoints are written",
    "save_total_limit": "how many checkpoints are kept",
    "save_strategy": "when checkpoints are written",
    "dataloader_num_workers": "DataLoader worker processes (the order is fixed by the seeded sampler)",
    "report_to": "where logs go",
}
# TrainingArguments of logging, progress and data-loading speed: result-free as well
RESULT_FREE_PREFIXES = ("logging_", "log_", "hub_", "trackio_")
RESULT_FREE_TRAINING = {
    "disable_tqdm", "run_name", "project", "push_to_hub", "dataloader_pin_memory", "dataloader_persistent_workers",
    "dataloader_prefetch_factor", "skip_memory_metrics", "include_num_input_tokens_seen", "local_rank",
    "resume_from_checkpoint", "ddp_timeout",
}


@dataclass
class AdscArguments:
    """What a run needs beyond ``TrainingArguments``; each field is an ``adsc train`` flag."""

    model: str = field(metadata={"help": "hub id or local folder of a supported model"})
    data: str = field(metadata={"help": "LLaVA-Instruct JSON (list of {id, image?, conversations})"})
    image_folder: str | None = field(default=None, metadata={"help": "folder the records' image paths are relative to"})
    # --- what is trained
    mode: Literal["lora", "full"] = field(default="lora", metadata={"help": "LoRA adapter or full fine-tuning"})
    lora_r: int = 128
    lora_alpha: float = 256
    lora_dropout: float = 0.05
    projector_lr: float | None = field(default=None, metadata={"help": "default 2e-5 (LoRA) / --learning_rate (full)"})
    global_batch_size: int | None = field(default=None, metadata={
        "help": "samples per optimizer step over all processes; sets --gradient_accumulation_steps "
                "(default: per-device batch x accumulation x processes)"})
    max_length: int = 2048
    # --- curriculum over the compression budget
    curriculum: Literal["reverse", "standard", "direct"] = field(default="reverse", metadata={
        "help": "budget phases: reverse 0.8/0.9/1.0, standard 1.2/1.1/1.0 or direct 1.0 times --budget"})
    phase_fractions: list[float] | None = field(default=None, metadata={"help": "share of the steps per phase (default equal)"})
    phase_steps: list[int] | None = field(default=None, metadata={"help": "optimizer steps per phase (must add up to the total)"})
    # --- data
    template: Literal["auto", "vicuna_v1", "chat_template"] = field(default="auto", metadata={
        "help": "auto: vicuna_v1 for LLaVA, the processor's chat template otherwise"})
    pad_to_square: bool | None = field(default=None, metadata={
        "help": "default: true for LLaVA (its 'pad' aspect ratio)", "nargs": "?", "const": True})
    skip_malformed: bool = field(default=False, metadata={"help": "leave malformed records out instead of stopping"})
    allow_outside_image_folder: bool = field(default=False, metadata={
        "help": "let image paths be absolute or climb out of --image_folder with ../ (refused by default)"})
    max_bad_share: float = field(default=0.01, metadata={
        "help": "stop when samples with missing/unreadable images exceed this share of the data"})
    attn_implementation: str | None = field(default=None, metadata={"help": f"one of {', '.join(ATTENTION)}"})
    merge: bool = field(default=False, metadata={"help": "also write output_dir/merged with the adapter folded in"})

    def __post_init__(self):
        for name in ("model", "data"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty path or hub id, got {getattr(self, name)!r}")
        if self.image_folder is not None and (not isinstance(self.image_folder, str) or not self.image_folder):
            raise ValueError(f"image_folder must be a path or None, got {self.image_folder!r} (fix --image_folder)")
        for name in ("phase_fractions", "phase_steps"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (list, tuple)):
                raise ValueError(f"{name} must be a list of numbers, got {value!r}")
        _choice("mode", self.mode, ("lora", "full"))
        _choice("curriculum", self.curriculum, tuple(CURRICULA))
        _choice("template", self.template, ("auto", "vicuna_v1", "chat_template"))
        if self.attn_implementation is not None:
            _choice("attn_implementation", self.attn_implementation, ATTENTION)
        _whole("lora_r", self.lora_r, 1)
        _real("lora_alpha", self.lora_alpha, 0.0, strict=True)
        _real("lora_dropout", self.lora_dropout, 0.0, 1.0, high_open=True)
        if self.projector_lr is not None:
            _real("projector_lr", self.projector_lr, 0.0, strict=True)
        if self.global_batch_size is not None:
            _whole("global_batch_size", self.global_batch_size, 1)
        _whole("max_length", self.max_length, 1)
        _real("max_bad_share", self.max_bad_share, 0.0, 1.0)
        for name in ("skip_malformed", "allow_outside_image_folder", "merge"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.pad_to_square is not None and not isinstance(self.pad_to_square, bool):
            raise ValueError(f"pad_to_square must be True, False or None (automatic), got {self.pad_to_square!r}")
        if self.phase_fractions is not None:
            self.phase_fractions = [_real(f"phase_fractions[{i}]", x, 0.0) for i, x in enumerate(self.phase_fractions)]
        if self.phase_steps is not None:
            self.phase_steps = [_whole(f"phase_steps[{i}]", x, 0) for i, x in enumerate(self.phase_steps)]
        n = len(CURRICULA[self.curriculum])
        for name in ("phase_fractions", "phase_steps"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} needs {n} values for the {self.curriculum!r} curriculum, got {len(value)}")
        if self.phase_fractions is not None and self.phase_steps is not None:
            raise ValueError("give phase_fractions or phase_steps, not both")
        if self.phase_fractions is not None and abs(sum(self.phase_fractions) - 1.0) > 1e-6:
            raise ValueError(f"phase_fractions must add up to 1, got {list(self.phase_fractions)}")


@dataclass
class AdscTrainingArguments(TrainingArguments):
    """``TrainingArguments`` with the paper's defaults; every other field is transformers' own.

    ``learning_rate`` None: 2e-4 for LoRA, 2e-5 for full fine-tuning (set by ``TrainConfig``);
    ``bf16`` None: when the GPU supports it. Activation checkpointing is on unless turned off.
    """

    output_dir: str = field(metadata={"help": "checkpoints and the trained model; rerun to resume"})
    per_device_train_batch_size: int = 16
    gradient_accumulation_steps: int = 8
    num_train_epochs: float = 1.0
    learning_rate: float | None = field(default=None, metadata={"help": "default 2e-4 (LoRA) / 2e-5 (full)"})
    warmup_steps: float = field(default=0.03, metadata={"help": "steps, or a share of them when below 1"})
    lr_scheduler_type: str = "cosine"
    bf16: bool | None = field(default=None, metadata={"help": "default: when the GPU supports it", "nargs": "?", "const": True})
    logging_steps: float = 10
    logging_first_step: bool = True
    save_total_limit: int | None = 2
    dataloader_num_workers: int = 4
    remove_unused_columns: bool = field(default=False, metadata={"help": "must stay false: the collator's batch is model input"})
    # a batch without images leaves the projector without gradients; DDP must tolerate that
    ddp_find_unused_parameters: bool | None = True

    def __post_init__(self):
        # transformers sets DeepSpeed up here and fails without a clear word when the file or package is missing
        if isinstance(self.deepspeed, str) and not os.path.isfile(self.deepspeed):
            raise FileNotFoundError(f"--deepspeed {self.deepspeed}: no such file; pass a JSON config file")
        if self.deepspeed and importlib.util.find_spec("deepspeed") is None:
            raise ValueError("--deepspeed needs the deepspeed package; install it, or use an accelerate config")
        if self.bf16 is None:
            self.bf16 = default_bf16()
        elif self.bf16 and not self.use_cpu and not default_bf16():
            raise ValueError("--bf16 needs a CUDA GPU with bf16 support and none is available here; "
                             "pass --bf16 false (fp32), or run on such a GPU")
        # transformers 5.2x renamed gradient_checkpointing to activation_checkpointing: use what exists
        name = "activation_checkpointing" if hasattr(self, "activation_checkpointing") else "gradient_checkpointing"
        if getattr(self, name) is None and getattr(self, "gradient_checkpointing", None) is None:
            setattr(self, name, True)
        if getattr(self, f"{name}_kwargs") is None and getattr(self, "gradient_checkpointing_kwargs", None) is None:
            # non-reentrant checkpointing needs no inputs that require grad (frozen embeddings under LoRA)
            setattr(self, f"{name}_kwargs", {"use_reentrant": False})
        super().__post_init__()


def training_arguments(values: dict) -> AdscTrainingArguments:
    """AdscTrainingArguments(**values); a value transformers' own checks trip over is a ValueError naming it."""
    try:
        return AdscTrainingArguments(**values)
    except (TypeError, AttributeError, OverflowError) as err:  # its checks assume each field's type and range
        raise ValueError(f"TrainingArguments: a setting of the wrong type or out of range ({err}); "
                         "check the values given") from None


def training_field_names() -> set[str]:
    return {f.name for f in dataclasses.fields(AdscTrainingArguments) if f.init}


@dataclass
class TrainConfig:
    """One training run: adsc's arguments, the target compression and transformers' TrainingArguments.

    ``compression`` None: ADSC at the paper's layers (2, 8, 16, 24) and budget 192. The budget is
    where the curriculum ends. ``vision_tokens_from_model``: the budget refers to the model's own
    vision tokens per image (576 for LLaVA-1.5), read once it is loaded, instead of
    ``compression.vision_tokens`` (the CLI sets it when --vision_tokens is not given).
    """

    adsc: AdscArguments
    training: TrainingArguments
    compression: CompressionConfig | None = None
    vision_tokens_from_model: bool = False

    def __post_init__(self):
        if not isinstance(self.adsc, AdscArguments):
            raise ValueError(f"adsc must be an AdscArguments, got {type(self.adsc).__name__}")
        if not isinstance(self.training, TrainingArguments):
            raise ValueError(f"training must be a transformers TrainingArguments, got {type(self.training).__name__}")
        if self.compression is None:
            self.compression = CompressionConfig(layers=PAPER_LAYERS, budget=PAPER_BUDGET)
            self.vision_tokens_from_model = True
        if not isinstance(self.compression, CompressionConfig):
            raise ValueError(f"compression must be a CompressionConfig, got {type(self.compression).__name__}")
        if self.compression.budget is None:
            raise ValueError("training needs a budget (--budget): the curriculum's phases are multiples of it")
        if self.training.learning_rate is None:  # the default depends on the mode
            lr = 2e-4 if self.adsc.mode == "lora" else 2e-5
            self.training = dataclasses.replace(self.training, learning_rate=lr)
        _check_training(self.training)
        if self.adsc.global_batch_size is not None and self.adsc.global_batch_size % self.training.per_device_train_batch_size:
            raise ValueError(
                f"global_batch_size {self.adsc.global_batch_size} is not a multiple of per_device_train_batch_size "
                f"{self.training.per_device_train_batch_size}; pick a per-device batch that divides it"
            )
        if not self.vision_tokens_from_model and self.compression.budget > self.compression.vision_tokens:
            raise ValueError(f"budget {self.compression.budget} is above the {self.compression.vision_tokens} vision "
                             "tokens per image; lower --budget")

    @classmethod
    def from_settings(cls, **settings) -> "TrainConfig":
        """Every setting by its flag name: an AdscArguments, CompressionConfig or TrainingArguments field.

        Compression fields not given keep the paper's (layers 2 8 16 24, budget 192) and the
        vision tokens per image are read from the model unless ``vision_tokens`` is given.
        """
        adsc_names = {f.name for f in dataclasses.fields(AdscArguments)}
        # a name both have (seed) is the run's; a compression seed comes with a CompressionConfig
        comp_names = {f.name for f in dataclasses.fields(CompressionConfig)} - training_field_names()
        unknown = sorted(set(settings) - adsc_names - comp_names - training_field_names())
        if unknown:
            raise ValueError(f"unknown training settings {unknown}: not a field of AdscArguments, "
                             "CompressionConfig or transformers' TrainingArguments")
        comp = {k: v for k, v in settings.items() if k in comp_names}
        for key, value in (("layers", PAPER_LAYERS), ("budget", PAPER_BUDGET)):
            if key not in comp and not (key == "budget" and "drop_ratio" in comp):
                comp[key] = value
        try:
            compression = CompressionConfig(**comp)
        except ConfigError as err:
            raise ValueError(f"compression: {err}") from None
        adsc = AdscArguments(**{k: v for k, v in settings.items() if k in adsc_names})
        training = training_arguments({k: v for k, v in settings.items() if k in training_field_names()})
        return cls(adsc=adsc, training=training, compression=compression, vision_tokens_from_model="vision_tokens" not in comp)

    @property
    def output_dir(self) -> str:
        return self.training.output_dir

    @property
    def projector_learning_rate(self) -> float:
        if self.adsc.projector_lr is not None:
            return self.adsc.projector_lr
        return 2e-5 if self.adsc.mode == "lora" else self.training.learning_rate

    def phase_budgets(self) -> list[float]:
        return [round(f * self.compression.budget, 6) for f in CURRICULA[self.adsc.curriculum]]

    def to_dict(self) -> dict:
        """JSON values: {"adsc": ..., "compression": ..., "training": ...} (tokens masked by transformers)."""
        return json.loads(json.dumps({
            "adsc": dataclasses.asdict(self.adsc), "compression": self.compression.to_dict(),
            "vision_tokens_from_model": self.vision_tokens_from_model, "training": self.training.to_dict(),
        }, default=str))

    def result_settings(self) -> dict:
        """The settings that decide the trained weights, flat by name (all but the result-free ones)."""
        return result_settings(self.to_dict())


def result_settings(saved: dict) -> dict:
    """``TrainConfig.to_dict()`` output, flattened, without the result-free settings; effective learning rates."""
    flat = {**saved.get("training", {}), **saved.get("adsc", {})}
    # compression fields by their own name, unless another holds it (seed: the random method's, not the run's)
    flat.update({k if k not in flat else f"compression.{k}": v for k, v in saved.get("compression", {}).items()})
    if "vision_tokens_from_model" in saved:
        flat["vision_tokens_from_model"] = saved["vision_tokens_from_model"]
    if flat.get("projector_lr") is None and "mode" in flat:  # leaving it out and passing its default is one run
        flat["projector_lr"] = 2e-5 if flat["mode"] == "lora" else flat.get("learning_rate")
    return {k: v for k, v in flat.items() if not _result_free(k)}


def _result_free(name: str) -> bool:
    return name in RESULT_FREE or name in RESULT_FREE_TRAINING or name.startswith(RESULT_FREE_PREFIXES)


def _check_training(t: TrainingArguments) -> None:
    """The TrainingArguments adsc relies on, each in its range; the message names the flag to fix."""
    if not isinstance(t.output_dir, str) or not t.output_dir:
        raise ValueError(f"output_dir must be a non-empty path, got {t.output_dir!r} (fix --output_dir)")
    _real("learning_rate", t.learning_rate, 0.0, strict=True)
    _real("weight_decay", t.weight_decay, 0.0)
    _real("warmup_steps", t.warmup_steps, 0.0)
    _real("max_grad_norm", t.max_grad_norm, 0.0)
    _whole("per_device_train_batch_size", t.per_device_train_batch_size, 1)
    _whole("gradient_accumulation_steps", t.gradient_accumulation_steps, 1)
    _whole("max_steps", t.max_steps, -1)
    if t.max_steps == 0:
        raise ValueError("max_steps must be > 0 (or -1 to train for --num_train_epochs), got 0 (fix --max_steps)")
    if t.max_steps < 0:
        _real("num_train_epochs", t.num_train_epochs, 0.0, strict=True)
    _whole("seed", t.seed, 0, 2**32 - 1)
    _whole("dataloader_num_workers", t.dataloader_num_workers, 0)
    _real("logging_steps", t.logging_steps, 0.0, strict=True)
    _real("save_steps", t.save_steps, 0.0, strict=True)
    if t.save_total_limit is not None:
        _whole("save_total_limit", t.save_total_limit, 1)
    if t.remove_unused_columns:
        raise ValueError("remove_unused_columns must be false: adsc's collator already returns model input "
                         "(fix --remove_unused_columns)")


def _flag(name: str) -> str:
    return "--" + name.split("[")[0]


def _choice(name: str, value, options: tuple) -> None:
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(options)}; got {value!r} (fix {_flag(name)})")


def _whole(name: str, value, low: int, high: int | None = None) -> int:
    return whole(name, value, low, high, fix=f" (fix {_flag(name)})")


def _real(name: str, value, low: float, high: float | None = None, strict: bool = False, high_open: bool = False) -> float:
    return real(name, value, low, high, strict, high_open, fix=f" (fix {_flag(name)})")
