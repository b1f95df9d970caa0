"""``train(config)``: the whole run, from a model id and a JSON file to a trained output folder.

Rerunning the same command resumes: the last complete checkpoint in the output folder is picked
up, with its step, optimizer, random state and data position; the curriculum phase follows from
the step. A finished run (``train_summary.json`` present) is not trained again. A rerun that asks
for another result than the folder holds is refused (``rerun.py``), so is a second trainer in the
same folder (``lock.py``); every check runs before the folder is written (docs/training.md).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

import torch

from ..adapters import adapter_for, unwrap
from ..api import compress
from ..config import CompressionConfig
from ..files import write_json_atomic
from .checkpoints import clean_litter, last_checkpoint
from .config import TrainConfig
from .curriculum import CurriculumCallback, phase_starts
from .data import Collator, Encoder, InstructDataset
from .export import MERGED, save_output, write_merged
from .lock import output_lock
from .model import count_parameters, default_bf16, load_model, load_processor, prepare
from .preflight import check_environment
from .records import DataFileError, check_image_paths, load_json, parse_records
from .rerun import RUN_ARGS, check_rerun, identity, run_record
from .trainer import ADSCTrainer

logger = logging.getLogger("adsc.training")
SUMMARY = "train_summary.json"


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _setup_logging() -> None:
    logger.setLevel(logging.INFO if _rank() == 0 else logging.WARNING)  # skip warnings stay visible on every rank
    # Print through our own handler only when the application configured no logging; otherwise
    # propagate to its handlers (and to pytest's capture) instead of printing twice.
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[adsc] %(message)s"))
    logger.addHandler(handler)


def vision_tokens_of(model) -> int:
    """Vision tokens per image the budget refers to: the adapter's reference (576 for LLaVA-1.5)."""
    return adapter_for(model).reference_vision_tokens(unwrap(model))


def train(cfg: TrainConfig, callbacks: list | None = None) -> dict:
    """Train; returns the run summary (also written to ``<output_dir>/train_summary.json``).

    ``callbacks``: extra transformers ``TrainerCallback`` objects (``adsc.get_handle(model)`` inside
    one gives the compression handle).
    """
    _setup_logging()
    check_environment(cfg)
    # Everything that can be refused is checked before the output directory is touched
    records, malformed = parse_records(load_json(cfg.data), cfg.skip_malformed, cfg.data)
    if not records:
        raise DataFileError(f"{cfg.data} holds no usable records; add LLaVA-Instruct records ({{id, image?, conversations}})")
    if not cfg.allow_outside_image_folder:
        check_image_paths(records, cfg.image_folder, cfg.data)
    with output_lock(cfg.output_dir, take=_rank() == 0):
        return _train_locked(cfg, records, malformed, callbacks)


def _train_locked(cfg: TrainConfig, records: list, malformed: list, callbacks: list | None) -> dict:
    from transformers import TrainingArguments, set_seed

    out = cfg.output_dir
    summary_path = os.path.join(out, SUMMARY)
    ident = identity(cfg)
    finished = os.path.isfile(summary_path)
    checkpoint = None if finished else last_checkpoint(out)
    check_rerun(cfg, ident, out, finished=finished, resuming=checkpoint is not None)
    if finished:
        if cfg.merge and _rank() == 0 and not os.path.isdir(os.path.join(out, MERGED)):
            write_merged(out)  # the one result-free setting a finished run can still act on
        logger.info("%s is a finished run with these settings (%s exists); nothing to do", out, SUMMARY)
        with open(summary_path) as fh:
            return json.load(fh)

    set_seed(cfg.seed)  # LoRA initialisation: the same on every rerun, so a fresh start is reproducible too
    bf16 = default_bf16() if cfg.bf16 is None else cfg.bf16
    model = load_model(cfg.model, bf16, cfg.attn_implementation)
    processor = load_processor(cfg.model)
    adapter = adapter_for(model)
    template = cfg.template if cfg.template != "auto" else adapter.train_template
    if template == "chat_template" and not getattr(processor, "chat_template", None):
        raise ValueError(f"{cfg.model} has no chat template; pass --template vicuna_v1")
    pad_square = adapter.pad_to_square if cfg.pad_to_square is None else cfg.pad_to_square
    encoder = Encoder(processor, template, cfg.max_length, cfg.image_folder, pad_square)
    dataset = InstructDataset(records, encoder)
    pad_id = processor.tokenizer.pad_token_id
    collator = Collator(pad_id if pad_id is not None else 0)

    comp = CompressionConfig(
        layers=cfg.layers, budget=cfg.budget, vision_tokens=cfg.vision_tokens or vision_tokens_of(model),
        pattern=cfg.pattern, drop_position=cfg.drop_position,
    )
    if max(cfg.phase_budgets()) > comp.vision_tokens:
        raise ValueError(f"the {cfg.curriculum} curriculum reaches a budget of {max(cfg.phase_budgets())} vision tokens, "
                         f"above the {comp.vision_tokens} per image of {cfg.model}; lower --budget")
    model = prepare(model, cfg.mode, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout)
    handle = compress(model, comp)
    curriculum = CurriculumCallback(handle, comp, cfg.phase_budgets(), cfg.phase_fractions, cfg.phase_steps)
    curriculum.check(handle.num_layers)
    trainable, total = count_parameters(model)
    logger.info("model %s (%s): %d of %d parameters train; template %s", cfg.model, cfg.mode, trainable, total, template)

    world = int(os.environ.get("WORLD_SIZE", "1"))
    per_step = cfg.per_device_batch_size * world
    if cfg.global_batch_size % per_step:
        raise ValueError(
            f"global batch {cfg.global_batch_size} is not a multiple of per-device batch {cfg.per_device_batch_size} "
            f"x {world} processes"
        )
    args = TrainingArguments(
        output_dir=out,
        per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.global_batch_size // per_step,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,  # a float < 1 is a share of the total steps in transformers 5
        lr_scheduler_type=cfg.lr_scheduler,
        max_grad_norm=cfg.max_grad_norm,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        bf16=bf16,
        **_checkpointing_args(TrainingArguments, cfg.gradient_checkpointing),
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        seed=cfg.seed,
        data_seed=cfg.seed,
        remove_unused_columns=False,  # the collator's batch is already model input
        dataloader_num_workers=cfg.num_workers,
        # a batch without images leaves the projector without gradients; DDP must tolerate that
        ddp_find_unused_parameters=True,
        report_to=cfg.report_to,
        deepspeed=cfg.deepspeed,
        # several processes without a GPU (CPU tests, gloo): accelerate only goes multi-CPU when told so
        use_cpu=world > 1 and not torch.cuda.is_available(),
        **cfg.extra,
    )
    if _rank() == 0:
        # only now, with every check passed, does the run change the output directory
        clean_litter(out)
        write_json_atomic(os.path.join(out, RUN_ARGS), run_record(cfg, ident))
    trainer = ADSCTrainer(
        model=model, args=args, train_dataset=dataset, data_collator=collator, processing_class=processor,
        callbacks=[curriculum, *(callbacks or [])], projector_lr=cfg.projector_learning_rate, curriculum=curriculum,
        max_bad_share=cfg.max_bad_share, dataset_size=len(dataset),
    )
    if checkpoint is not None:
        logger.info("resuming from %s", checkpoint)
        trainer.restore_counters(checkpoint)
    start = time.time()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    counters = _sum_over_processes(trainer.counters)

    save_output(trainer, out, comp, cfg, merge=cfg.merge)
    state = trainer.state
    starts = phase_starts(state.max_steps, len(curriculum.budgets), cfg.phase_fractions, cfg.phase_steps)
    summary = {
        "steps": state.global_step,
        "max_steps": state.max_steps,
        "resumed_from": checkpoint,
        "processes": world,
        "samples_seen": counters["samples"],
        "samples_trained": counters["samples"] - counters["skipped"],
        "tokens": counters["tokens"],
        "answer_tokens": counters["answer_tokens"],
        "skipped": {k: counters[k] for k in ("missing_image", "unreadable_image", "too_long", "no_answer_tokens") if counters[k]},
        "malformed_records_left_out": len(malformed),
        "curriculum": {"kind": cfg.curriculum, "phase_starts": starts, "budgets": curriculum.budgets},
        "final_loss": next((h["loss"] for h in reversed(state.log_history) if "loss" in h), None),
        "train_loss": result.training_loss,
        "seconds_this_process": round(time.time() - start, 2),
        "log_history": state.log_history,
    }
    if trainer.args.should_save:
        write_json_atomic(summary_path, summary)  # written last: its presence means "finished"
    trainer.accelerator.wait_for_everyone()
    logger.info(
        "done: %d steps, %d samples trained, %d tokens, skipped %s; output in %s",
        summary["steps"], summary["samples_trained"], summary["tokens"], summary["skipped"] or "none", out,
    )
    return summary


def _checkpointing_args(cls, enabled: bool) -> dict:
    """transformers 5.2x renamed gradient_checkpointing to activation_checkpointing; use what exists."""
    name = "activation_checkpointing" if "activation_checkpointing" in cls.__dataclass_fields__ else "gradient_checkpointing"
    # non-reentrant checkpointing needs no inputs that require grad (frozen embeddings under LoRA)
    return {name: enabled, f"{name}_kwargs": {"use_reentrant": False}}


def _sum_over_processes(counters: dict) -> dict:
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return dict(counters)
    keys = sorted(counters)
    t = torch.tensor([counters[k] for k in keys], dtype=torch.float64)
    if torch.distributed.get_backend() == "nccl":
        t = t.cuda()
    torch.distributed.all_reduce(t)
    return {k: int(v) for k, v in zip(keys, t.tolist())}
