"""Evaluate a model (optionally compressed) on the six benchmarks under the LLaVA-1.5 protocol.

    adsc eval --model llava-hf/llava-1.5-7b-hf --benchmarks gqa,mme,pope,sqa,textvqa,vqav2 \\
        --data-root eval --output-dir runs/adsc192 --layers 2 8 16 24 --budget 192

Predictions go to OUTPUT_DIR/<benchmark>.predictions.jsonl as they are produced; rerunning the
same command resumes. ``--shard i/n`` runs one slice (merge with ``--merge --shards n``);
under ``accelerate launch`` every process takes its slice and the main one scores.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from ..config_cli import add_compression_arguments, compression_from_args
from . import generation  # generation.load_model looked up per call: tests stand in for it
from .benchmarks import BENCHMARKS, HEADLINES, ORDER, DataError, EvaluationInputError
from .benchmarks.mme import COGNITION, PERCEPTION
from .checks import (
    ATTN,
    DTYPES,
    check_budget,
    check_device,
    check_dtype,
    check_output_dir,
    check_run_settings,
)
from .model_facts import reference_vision_tokens
from .run import evaluate, load_benchmarks, merge_and_score


def add_arguments(p) -> None:
    p.add_argument("--model", help="hub id or local directory (LLaVA-1.5 / Qwen2-VL / any image-text-to-text model)")
    p.add_argument("--benchmarks", default=",".join(ORDER), help=f"comma-separated, from {','.join(BENCHMARKS)}")
    p.add_argument("--data-root", required=True, help="folder holding gqa/ mme/ pope/ scienceqa/ textvqa/ vqav2/ (see README)")
    p.add_argument("--output-dir", required=True, help="predictions, results.json (one folder per run)")
    add_compression_arguments(p, file=True, title="compression (none = the full model)")
    p.add_argument("--label", help="row name in `adsc report` (default: the method, or 'full')")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, help="override the protocol's 128 (ScienceQA 1024)")
    p.add_argument("--limit", type=int, help="first N questions of each benchmark (a quick look; scores are partial)")
    p.add_argument("--shard", help="i/n: run the i-th of n slices (0-based); under accelerate launch it is automatic")
    p.add_argument("--merge", action="store_true", help="merge the shards of a finished sharded run and score (no model)")
    p.add_argument("--shards", type=int, help="with --merge: the n of the shards")
    p.add_argument("--vqav2-split", default="val", choices=["val", "test-dev"], help="test-dev writes an EvalAI submission")
    p.add_argument("--template", default="auto", help="'auto' (the processor's chat template) or a string with {text}")
    p.add_argument("--no-pad-square", action="store_true", help="do not pad images to square (LLaVA-1.5 pads)")
    p.add_argument("--dtype", default="auto", choices=DTYPES, help="auto (bf16 on GPU, fp32 on CPU) | bf16 | fp16 | fp32")
    p.add_argument("--device", help="cuda, cuda:1, cpu (default: cuda if available)")
    p.add_argument("--attn", choices=ATTN, help="attention implementation: eager | sdpa | flash_attention_2")
    p.add_argument("--mme-subtasks", help=f"comma-separated MME subtasks your data has (default: the official ten "
                   f"perception ones are required); from {','.join(PERCEPTION + COGNITION)}")
    p.add_argument("--allow-outside-data-root", action="store_true",
                   help="accept image paths in data files that leave the benchmark's image folder (absolute, ../)")
    p.add_argument("--overwrite", action="store_true", help="discard existing predictions instead of resuming")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--compile", action="store_true",
                   help="compiled decode (torch.compile, CUDA graphs on a GPU) over fixed shapes: prompts padded to a "
                        "multiple of 64 tokens, one adsc.StageCache per batch shape (docs/evaluation.md)")


def run_compression(args, model_config=None):
    """The run's CompressionConfig (None: the full model).

    Without --vision-tokens (or a vision_tokens key in the --compression file) the budget refers
    to the model's own vision tokens per image, read from ``model_config`` (see
    ``model_facts.reference_vision_tokens``), so that it is solved against what the model has.
    """
    count, exact = reference_vision_tokens(model_config) if model_config is not None else (None, False)
    config = compression_from_args(args, fallback=None if count is None else {"vision_tokens": count})
    if config is not None and count is not None:
        check_budget(config, count, exact)
    return config


def parse_shard(text: str | None):
    if text is None:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return (int(os.environ.get("RANK", "0")), world) if world > 1 else None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise EvaluationInputError(f"--shard must look like 0/4, got {text!r}") from None
    if not 0 <= i < n:
        raise EvaluationInputError(f"--shard {text}: need 0 <= i < n")
    return (i, n)


def _distributed(device):
    """Join the process group accelerate launch / torchrun set up (RANK, WORLD_SIZE, LOCAL_RANK).

    torch.distributed directly rather than accelerate's state, which treats CPU processes
    without its own config as independent single runs.
    """
    cuda = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = device or f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return dist.barrier, dist.get_rank() == 0, device or "cpu"


def _options(args) -> dict:
    options = {"vqav2": {"split": args.vqav2_split}}
    if args.mme_subtasks:
        options["mme"] = {"subtasks": [t.strip() for t in args.mme_subtasks.split(",") if t.strip()]}
    return options


def _model_config(name_or_path: str):
    """The model's config (no weights), refusing pickle-only checkpoints before anything loads."""
    from transformers import AutoConfig

    generation.check_safetensors(name_or_path)
    try:
        return AutoConfig.from_pretrained(name_or_path)
    except (OSError, ValueError) as err:
        raise DataError(f"--model {name_or_path}: no model config there ({err}); pass a hub id or a folder "
                        "saved with save_pretrained") from None


def run(args) -> int:
    names = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    unknown = [b for b in names if b not in BENCHMARKS]
    if unknown or not names:
        raise DataError(f"unknown benchmark {(unknown or [''])[0]!r}; choose from {', '.join(BENCHMARKS)}")
    options = _options(args)
    check_run_settings(args.batch_size, args.limit, args.max_new_tokens)
    if args.merge:
        if not args.shards:
            raise EvaluationInputError("--merge needs --shards N")
        results = merge_and_score(args.output_dir, names, args.data_root, args.shards, args.limit, options, args.label,
                                  args.allow_outside_data_root)
        return _print(results, args.output_dir)
    if not args.model:
        raise EvaluationInputError("--model is required (hub id or local directory)")
    check_dtype(args.dtype)
    check_device(args.device)
    shard = parse_shard(args.shard)
    # Everything that can be wrong with the input is found before the model is loaded.
    compression = run_compression(args, _model_config(args.model))
    loaded = load_benchmarks(names, args.data_root, args.limit, options, args.allow_outside_data_root)
    for bench in loaded.values():
        bench.check_images()
    check_output_dir(args.output_dir)
    barrier, is_main, device = None, True, args.device
    if args.shard is None and shard is not None:  # launched by accelerate / torchrun: one slice per process
        barrier, is_main, device = _distributed(device)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model, processor = generation.load_model(args.model, args.dtype, device, args.attn)
    results = evaluate(
        model, processor, loaded, args.data_root, args.output_dir, compression=compression, model_name=args.model,
        batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, limit=args.limit, shard=shard,
        template=args.template, pad_square=False if args.no_pad_square else None, overwrite=args.overwrite,
        progress=not args.quiet, benchmark_options=options, label=args.label, is_main=is_main, barrier=barrier,
        allow_outside_root=args.allow_outside_data_root, compile=args.compile,
    )
    if barrier is not None:
        dist.barrier()  # the others wait for the main process's merge before leaving the group
        dist.destroy_process_group()
    if results is None:
        if is_main and barrier is None:
            print(f"shard {shard[0]}/{shard[1]} done; when all are, run: adsc eval --merge --shards {shard[1]} "
                  f"--output-dir {args.output_dir} --data-root {args.data_root} --benchmarks {args.benchmarks}")
        return 0
    return _print(results, args.output_dir)


def _print(results: dict, output_dir: str) -> int:
    print(f"model {results['model']}  method {results.get('method')}  vision tokens {results.get('tokens')}")
    for name, r in results["benchmarks"].items():
        title, metric, _ = HEADLINES[name]
        value = "submission " + r["submission"] if r.get("submission") else f"{r['headline']:.2f}"
        if r.get("limit"):
            value += f"   (first {r['limit']} questions only)"
        print(f"  {title:<8} {metric:<13} {value}   (n={r['n']})")
    print(f"results: {os.path.join(output_dir, 'results.json')}")
    return 0

