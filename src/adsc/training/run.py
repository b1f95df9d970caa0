"""``train(config)``: the whole run, from a model id and a JSON file to a trained output folder.

Rerunning the same command resumes: the last complete checkpoint in the output folder is picked
up, with its step, optimizer, random state and data position; the curriculum phase follows from
the step. A finished run (``train_summary.json`` present) is not trained again. A rerun that asks
for another result than the folder holds is refused (``rerun.py``), so is a second trainer in the
same folder (``lock.py``); every check runs before the folder is written (docs/training.md).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time

import torch

from .. import loading
from ..adapters import adapter_for, unwrap
from ..api import compress
from ..files import write_json_atomic
from .checkpoints import CompleteCheckpoints, clean_litter, drop_incomplete, last_checkpoint
from .config import TrainConfig
from .curriculum import CurriculumCallback, phase_starts
from .data import Collator, Encoder, InstructDataset
from .export import MERGED, save_output, write_merged
from .lock import output_lock
from .model import count_parameters, load_model, prepare
from .preflight import check_environment
from .records import DataFileError, check_image_paths, load_json, parse_records
from .rerun import RUN_ARGS, check_rerun, identity, run_record
from .resume_state import ResumeState, check_resumable, uses_own_state_files
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
    a = cfg.adsc
    records, malformed = parse_records(load_json(a.data), a.skip_malformed, a.data)
    if not records:
        raise DataFileError(f"{a.data} holds no usable records; add LLaVA-Instruct records ({{id, image?, conversations}})")
    if not a.allow_outside_image_folder:
        check_image_paths(records, a.image_folder, a.data)
    with output_lock(cfg.output_dir, take=_rank() == 0):
        return _train_locked(cfg, records, malformed, callbacks)


def _train_locked(cfg: TrainConfig, records: list, malformed: list, callbacks: list | None) -> dict:
    from transformers import set_seed

    a, out = cfg.adsc, cfg.output_dir
    summary_path = os.path.join(out, SUMMARY)
    ident = identity(cfg)
    finished = os.path.isfile(summary_path)
    checkpoint = None if finished else last_checkpoint(out)
    check_rerun(cfg, ident, out, finished=finished, resuming=checkpoint is not None)
    if finished:
        if a.merge and _rank() == 0 and not os.path.isdir(os.path.join(out, MERGED)):
            write_merged(out)  # the one result-free setting a finished run can still act on
        logger.info("%s is a finished run with these settings (%s exists); nothing to do", out, SUMMARY)
        with open(summary_path) as fh:
            return json.load(fh)

    set_seed(cfg.training.seed)  # LoRA initialisation: the same on every rerun, so a fresh start is reproducible too
    model = load_model(a.model, cfg.training.bf16, a.attn_implementation)
    processor = loading.load_processor(a.model)
    encoder = Encoder.for_model(model, processor, a.template, a.max_length, a.image_folder, a.pad_to_square)
    if encoder.template == "chat_template" and not getattr(processor, "chat_template", None):
        raise ValueError(f"{a.model} has no chat template; pass --template vicuna_v1")
    dataset = InstructDataset(records, encoder)
    pad_id = processor.tokenizer.pad_token_id
    collator = Collator(pad_id if pad_id is not None else 0)

    comp = cfg.compression
    if cfg.vision_tokens_from_model:
        comp = comp.replace(vision_tokens=vision_tokens_of(model))
    if max(cfg.phase_budgets()) > comp.vision_tokens:
        raise ValueError(f"the {a.curriculum} curriculum reaches a budget of {max(cfg.phase_budgets())} vision tokens, "
                         f"above the {comp.vision_tokens} per image of {a.model}; lower --budget")
    model = prepare(model, a.mode, a.lora_r, a.lora_alpha, a.lora_dropout)
    handle = compress(model, comp)
    curriculum = CurriculumCallback(handle, comp, cfg.phase_budgets(), a.phase_fractions, a.phase_steps)
    curriculum.check(handle.num_layers)
    trainable, total = count_parameters(model)
    logger.info("model %s (%s): %d of %d parameters train; template %s", a.model, a.mode, trainable, total,
                encoder.template)

    world = int(os.environ.get("WORLD_SIZE", "1"))
    own_state = uses_own_state_files(cfg.training)
    if checkpoint is not None and own_state:
        check_resumable(checkpoint)
    args = trainer_arguments(cfg, world, own_state)
    if _rank() == 0:
        # only now, with every check passed, does the run change the output directory
        clean_litter(out)
        drop_incomplete(out)
        write_json_atomic(os.path.join(out, RUN_ARGS), run_record(cfg, ident))
    trainer = ADSCTrainer(
        model=model, args=args, train_dataset=dataset, data_collator=collator, processing_class=processor,
        callbacks=[curriculum, *(callbacks or [])], projector_lr=cfg.projector_learning_rate, curriculum=curriculum,
        max_bad_share=a.max_bad_share, dataset_size=len(dataset),
    )
    if own_state and (trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled):  # set up by a way not seen above
        raise ValueError("DeepSpeed / FSDP were turned on by the launcher's config; pass --deepspeed / --fsdp to "
                         "adsc train as well, so their sharded checkpoints keep the optimizer state")
    writers = [trainer.save_counters]
    if own_state:
        resume_state = ResumeState(trainer, checkpoint)
        trainer.add_callback(resume_state)
        writers.append(resume_state.save)
    trainer.add_callback(CompleteCheckpoints(keep=cfg.training.save_total_limit, writers=writers))
    if checkpoint is not None:
        logger.info("resuming from %s", checkpoint)
        trainer.restore_counters(checkpoint)
    start = time.time()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    counters = _sum_over_processes(trainer.counters)

    save_output(trainer, out, comp, cfg, merge=a.merge)
    state = trainer.state
    starts = phase_starts(state.max_steps, len(curriculum.budgets), a.phase_fractions, a.phase_steps)
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
        "curriculum": {"kind": a.curriculum, "phase_starts": starts, "budgets": curriculum.budgets},
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


def trainer_arguments(cfg: TrainConfig, world: int, own_state: bool = False):
    """The TrainingArguments the Trainer gets: the run's own, with what adsc derives from them."""
    t = cfg.training
    derived = {
        # adsc rotates checkpoints itself, after the new one is complete (checkpoints.py)
        "save_total_limit": None,
        # the Trainer writes weights only; adsc writes the optimizer / RNG state without pickles (resume_state.py)
        "save_only_model": own_state or t.save_only_model,
        # the sampler's order follows the run's seed unless a data seed is given
        "data_seed": t.data_seed if t.data_seed is not None else t.seed,
        # several processes without a GPU (CPU tests, gloo): accelerate only goes multi-CPU when told so
        "use_cpu": t.use_cpu or (world > 1 and not torch.cuda.is_available()),
    }
    if cfg.adsc.global_batch_size is not None:
        per_step = t.per_device_train_batch_size * world
        if cfg.adsc.global_batch_size % per_step:
            raise ValueError(
                f"global batch {cfg.adsc.global_batch_size} is not a multiple of per-device batch "
                f"{t.per_device_train_batch_size} x {world} processes"
            )
        derived["gradient_accumulation_steps"] = cfg.adsc.global_batch_size // per_step
    return dataclasses.replace(t, **derived)


def _sum_over_processes(counters: dict) -> dict:
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return dict(counters)
    keys = sorted(counters)
    t = torch.tensor([counters[k] for k in keys], dtype=torch.float64)
    if torch.distributed.get_backend() == "nccl":
        t = t.cuda()
    torch.distributed.all_reduce(t)
    return {k: int(v) for k, v in zip(keys, t.tolist())}
