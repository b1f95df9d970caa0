"""Fine-tune a multimodal model under vision-token compression (LoRA or full, with a budget curriculum).

    adsc train --model llava-hf/llava-1.5-7b-hf --data llava_v1_5_mix665k.json \
        --image-folder data/ --output-dir runs/adsc192 --budget 192

Rerun the same command after a crash to resume. Multi-GPU: ``accelerate launch -m adsc train ...``.
"""

from __future__ import annotations

import argparse
import json

from ..config_cli import add_compression_arguments
from .config import CURRICULA, TrainConfig
from .run import train


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig.__dataclass_fields__
    g = p.add_argument_group("inputs and output")
    g.add_argument("--model", required=True, help="hub id or local folder of a supported model")
    g.add_argument("--data", required=True, help="LLaVA-Instruct JSON (list of {id, image?, conversations})")
    g.add_argument("--image-folder", help="folder the records' image paths are relative to")
    g.add_argument("--output-dir", required=True, help="checkpoints and the trained adapter; rerun to resume")
    g.add_argument("--merge", action="store_true", help="also write output-dir/merged with the adapter folded in")
    g = p.add_argument_group("what trains")
    g.add_argument("--mode", choices=("lora", "full"), default="lora")
    g.add_argument("--lora-r", type=int, default=d["lora_r"].default)
    g.add_argument("--lora-alpha", type=int, default=d["lora_alpha"].default)
    g.add_argument("--lora-dropout", type=float, default=d["lora_dropout"].default)
    g.add_argument("--lr", type=float, help="default 2e-4 (LoRA) / 2e-5 (full)")
    g.add_argument("--projector-lr", type=float, help="default 2e-5 (LoRA) / --lr (full)")
    g.add_argument("--weight-decay", type=float, default=0.0)
    g.add_argument("--warmup-ratio", type=float, default=d["warmup_ratio"].default)
    g.add_argument("--lr-scheduler", default="cosine")
    g = p.add_argument_group("batches")
    g.add_argument("--global-batch-size", type=int, default=d["global_batch_size"].default)
    g.add_argument("--per-device-batch-size", type=int, default=d["per_device_batch_size"].default)
    g.add_argument("--epochs", type=float, default=1.0)
    g.add_argument("--max-steps", type=int, default=-1, help="> 0 overrides --epochs")
    g.add_argument("--max-length", type=int, default=d["max_length"].default)
    # TrainConfig holds the compression fields itself (no method, no drop ratio: ADSC under a budget)
    add_compression_arguments(p, fields=("layers", "budget", "vision_tokens", "pattern", "drop_position"),
                              defaults={k: d[k].default for k in ("layers", "budget", "pattern", "drop_position")},
                              title="compression (the budget a curriculum ends at)")
    g = p.add_argument_group("curriculum")
    g.add_argument("--curriculum", choices=tuple(CURRICULA), default="reverse")
    g.add_argument("--phase-fractions", type=float, nargs="+", help="share of the steps per phase (default equal)")
    g.add_argument("--phase-steps", type=int, nargs="+", help="optimizer steps per phase (must add up to the total)")
    g = p.add_argument_group("data handling")
    g.add_argument("--template", choices=("auto", "vicuna_v1", "chat_template"), default="auto")
    g.add_argument("--no-pad-to-square", dest="pad_to_square", action="store_false", default=None)
    g.add_argument("--skip-malformed", action="store_true", help="leave malformed records out instead of stopping")
    g.add_argument("--allow-outside-image-folder", action="store_true",
                   help="let image paths be absolute or climb out of --image-folder with ../ (refused by default)")
    g.add_argument("--max-bad-share", type=float, default=d["max_bad_share"].default,
                   help="stop when samples with missing/unreadable images exceed this share of the data")
    g.add_argument("--num-workers", type=int, default=d["num_workers"].default)
    g = p.add_argument_group("runtime")
    g.add_argument("--bf16", dest="bf16", action="store_true", default=None)
    g.add_argument("--no-bf16", dest="bf16", action="store_false")
    g.add_argument("--no-gradient-checkpointing", dest="gradient_checkpointing", action="store_false")
    g.add_argument("--attn-implementation", help="sdpa (default), flash_attention_2, eager")
    g.add_argument("--seed", type=int, default=d["seed"].default)
    g.add_argument("--logging-steps", type=int, default=d["logging_steps"].default)
    g.add_argument("--save-steps", type=int, default=d["save_steps"].default)
    g.add_argument("--save-total-limit", type=int, default=d["save_total_limit"].default)
    g.add_argument("--report-to", default="none", help="none, tensorboard, wandb, ...")
    g.add_argument("--deepspeed", help="DeepSpeed JSON config (or use an accelerate config)")
    g.add_argument("--trainer-args", type=json_object, default={}, metavar="JSON",
                   help="extra transformers TrainingArguments, e.g. '{\"dataloader_pin_memory\": false}'")


def json_object(text: str) -> dict:
    """--trainer-args: a JSON object; argparse reports anything else as a usage error (exit 2)."""
    try:
        value = json.loads(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not JSON ({err}); write an object, e.g. '{{\"disable_tqdm\": true}}'") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object of TrainingArguments, got {text!r}")
    return value


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    names = set(TrainConfig.__dataclass_fields__) - {"extra"}
    values = {k: v for k, v in vars(args).items() if k in names and v is not None}
    return TrainConfig(**values, extra=args.trainer_args)


def run(args: argparse.Namespace) -> int:
    summary = train(config_from_args(args))
    print(json.dumps({k: v for k, v in summary.items() if k != "log_history"}, indent=2))
    return 0
