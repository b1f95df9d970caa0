"""Fine-tune a multimodal model under vision-token compression (LoRA or full, with a budget curriculum).

    adsc train --model llava-hf/llava-1.5-7b-hf --data llava_v1_5_mix665k.json \
        --image_folder data/ --output_dir runs/adsc192 --budget 192

The flags are adsc's own (AdscArguments), the compression ones every adsc command shares, and
every transformers TrainingArguments field under its own name (--learning_rate, --max_steps,
--per_device_train_batch_size, ...), parsed by transformers' HfArgumentParser; a dash may stand
for an underscore. Rerun the same command after a crash to resume. Multi-GPU:
``accelerate launch -m adsc train ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from transformers import HfArgumentParser

from ..config import ConfigError
from ..config_cli import add_compression_arguments, compression_from_args
from .config import (
    PAPER_BUDGET,
    AdscArguments,
    AdscTrainingArguments,
    TrainConfig,
    training_arguments,
    training_field_names,
)
from .run import train

# flags of adsc before it took TrainingArguments' own names: named in the error a user gets for them
RENAMED = {
    "--lr": "--learning_rate", "--epochs": "--num_train_epochs", "--per-device-batch-size": "--per_device_train_batch_size",
    "--lr-scheduler": "--lr_scheduler_type", "--warmup-ratio": "--warmup_steps (a float below 1 is a share of the steps)",
    "--num-workers": "--dataloader_num_workers", "--no-bf16": "--bf16 false",
    "--no-gradient-checkpointing": "--activation_checkpointing false",
    "--no-pad-to-square": "--pad_to_square false",
    "--trainer-args": "the TrainingArguments field's own flag (e.g. --disable_tqdm true)",
}
COMPRESSION_FIELDS = ("method", "layers", "budget", "drop_ratio", "vision_tokens", "pattern", "drop_position")


class _Renamed(argparse.Action):
    """An old adsc flag: a usage error that names its new spelling."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} is now {RENAMED[option_string]}")


def make_parser(prog: str = "adsc train", description: str | None = None) -> HfArgumentParser:
    """adsc's arguments, the compression flags, then every TrainingArguments field."""
    parser = HfArgumentParser((AdscArguments, AdscTrainingArguments), prog=prog, description=description,
                              usage=f"{prog} --model M --data D --output_dir O [--budget B] [flags: see --help]",
                              allow_abbrev=False)  # a prefix of one of 140 flags is too easily another's
    add_compression_arguments(parser, fields=COMPRESSION_FIELDS, file=True,
                              title=f"compression (the budget a curriculum ends at; default ADSC, budget {PAPER_BUDGET:g})")
    parser.add_argument(*RENAMED, action=_Renamed, nargs="?", help=argparse.SUPPRESS)
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of parsed ``adsc train`` flags (each dataclass takes its own fields)."""
    values = vars(args)
    adsc_args = AdscArguments(**{f.name: values[f.name] for f in dataclasses.fields(AdscArguments)})
    training = training_arguments({k: values[k] for k in training_field_names()})
    if args.budget is None and args.drop_ratio is None and not args.compression:
        args = argparse.Namespace(**{**values, "budget": PAPER_BUDGET})
    try:
        compression = compression_from_args(args)
    except ConfigError as err:
        raise ValueError(f"compression: {err}") from None
    # a saved config keeps its own vision tokens; otherwise the model's are read unless given
    from_model = args.vision_tokens is None and not args.compression
    return TrainConfig(adsc=adsc_args, training=training, compression=compression, vision_tokens_from_model=from_model)


def config_from_argv(argv: list[str]) -> TrainConfig:
    return config_from_args(make_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    summary = train(config_from_args(args))
    print(json.dumps({k: v for k, v in summary.items() if k != "log_history"}, indent=2))
    return 0
