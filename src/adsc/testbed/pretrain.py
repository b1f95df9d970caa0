"""Pretraining the testbed's "pretrained MLLM" from scratch, at full vision tokens.

Four stages, each skipped when its output exists (a killed run resumes where it stopped):
1. ``init/``: vocabulary, processor, random model, then the dense vision warm-up (warmup.py):
   the analogue of starting LLaVA from a trained CLIP.
2. ``align/``: object listings (questions/caption.py), the analogue of LLaVA's caption stage:
   a target that depends on the image alone, so the language model learns to read vision tokens
   before it meets questions whose answers need question and image together.
3. ``drill/`` (optional, ``drill_steps``; off by default): existence drills (questions/drill.py),
   ten yes/no look-ups per image in one record, the look-up a question needs trained ten times as
   densely as single questions train it. Not in the default recipe: on the 2-core CPU 200 steps
   left held-out drill answers at chance; the committed model got its drills as copies in the
   QA mix instead (``drills_in_qa``), in a 3,400-step GPU continuation (docs/testbed.md).
4. ``qa/``: all training records (the six families plus the listings), as LLaVA's 665K mix;
   ``drills_in_qa`` adds that many copies of the existence drills to it, or per kind
   (``{"exist": 3, "read": 4, "count": 2}``: reading and counting drills, questions/drill.py). With ``more_steps``,
   ``qa2/`` continues it on the same data with a fresh schedule (the learning rate restarts,
   which stage 4 alone cannot do).
``read_warmup_steps`` adds a stage before 4, ``read/``: the projector learns the word on each
text patch (warmup.read_warm_up), for a model whose projector dropped it (docs/testbed.md).
``text_scenes_minutes`` adds another, ``text_scenes/``: reading drills on scenes that hold one
string and nothing else (generated into ``text_scenes_data/``), where the look-up from question to
string is trivial; on full scenes it did not form in the CPU steps we had (docs/testbed.md).
``text_scenes_strings`` > 1 puts 1 to that many strings in each of those scenes, so the look-up
must pick a string by its colour, still with no objects in the way.
``focus`` with ``focus_minutes`` adds ``focus/``: training on some kinds' records alone (e.g.
``{"sqa": 4}``: the ScienceQA records, four copies), for a look-up the mix does not teach in the
steps we have; the QA stage after it brings the other families back (docs/testbed.md).
``start_from`` skips stages 1 to 3 and runs stage 4 from an existing model (e.g. the committed
checkpoint): how a longer run continues a model rather than redoing its early stages.
``qa_minutes`` makes stage 4 run for that much wall-clock time, its learning rate on a cosine
over the time (``adsc.training.time_budget``), ``qa_steps`` then only a cap: one recipe for a
lease on a GPU of any speed.
Stages 2 to 4 train projector + language model (vision tower frozen, as in LLaVA) with
``adsc.training`` -- the same Trainer path users run -- with no pruning layers, i.e. at full tokens.
The result is ``qa/`` (model.safetensors + processor), small enough to commit. With ``heldout``
(a generated dataset the model never trained on), ``qa/probe.json`` records the image-dependence
control (probe.py): answer loss with matched, shuffled and blank images.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from ..evaluation.generation import load_model
from ..files import write_json_atomic
from .dataset import TestbedConfig, generate
from .formats.instruct import CAPTION_FILE, DRILL_FILES, INSTRUCT_FILE, family_of
from .model import GRID, IMAGE_SIZE, PATCH, build_model, build_processor, vocabulary
from .probe import image_dependence, load_for_probing
from .warmup import PatchData, read_warm_up, warm_up_vision
from .world import TEXT_COLORS, GridSpec, SceneConfig

TRAIN_JSON = f"train/{INSTRUCT_FILE}"
CAPTION_JSON = f"train/{CAPTION_FILE}"
# --drills-in-qa kind -> the drill file the generator writes for it (formats/instruct.py names them)
DRILL_KINDS = {kind: f"train/{DRILL_FILES[family]}" for kind, family in
               (("exist", "drill"), ("read", "drill_read"), ("count", "drill_count"))}
DRILL_JSON = DRILL_KINDS["exist"]
# --drills-in-qa / --focus kinds that are one family's records of the mix itself (ids "<image>-<family>-<k>")
MIX_KINDS = {"sqa": "scienceqa"}
# the reading stage's scenes: one string and nothing else, so "the red text" is the only thing to find
TEXT_SCENES = SceneConfig(min_objects=0, max_objects=0, min_texts=1, max_texts=1)
TEXT_SCENES_SEED_OFFSET = 7  # not the training (seed) nor the held-out (seed + 1) scenes
TEXT_SCENES_COPIES = 4  # copies of their reading drills in the stage's data (its only records)


def text_scenes(strings: int = 1) -> SceneConfig:
    """TEXT_SCENES with 1 to ``strings`` strings (each a different colour) and still no objects."""
    if not 1 <= strings <= len(TEXT_COLORS):  # one colour per string, so "the red text" names one
        raise ValueError(f"text_scenes_strings={strings}: give 1 (one string per scene) to {len(TEXT_COLORS)} "
                         "(one text colour each)")
    return dataclasses.replace(TEXT_SCENES, max_texts=strings)


def drill_copies(drills_in_qa: int | dict[str, int], what: str = "drills_in_qa") -> dict[str, int]:
    """``3`` (existence drills, as the committed recipe says it) or ``{"exist": 3, "read": 4, "sqa": 2}``."""
    copies = {"exist": drills_in_qa} if isinstance(drills_in_qa, int) else dict(drills_in_qa)
    kinds = sorted([*DRILL_KINDS, *MIX_KINDS])
    bad = {k: v for k, v in copies.items() if k not in kinds or not isinstance(v, int) or v < 0}
    if bad:
        raise ValueError(f"{what} {bad}: give copies >= 0 per kind, kinds {kinds} (e.g. read=4)")
    return {k: v for k, v in copies.items() if v}


def check_recipe(drills_in_qa: int | dict[str, int], focus: dict[str, int] | None, focus_minutes: float | None,
                 text_scenes_strings: int) -> tuple[dict[str, int], dict[str, int], SceneConfig]:
    """(drill copies, focus copies, string-scene config), or the error that names the fix: called
    before anything is generated or trained, so a typo fails at once, not after hours of stages."""
    copies = drill_copies(drills_in_qa)
    focus = drill_copies(focus or {}, "focus")
    if bool(focus) != bool(focus_minutes):
        raise ValueError("focus and focus_minutes go together: e.g. --focus sqa=4 --focus-minutes 14")
    return copies, focus, text_scenes(text_scenes_strings)


def pretrain(data_root: str | Path, out: str | Path, *, warmup_steps: int = 600, align_steps: int = 300,
             drill_steps: int = 0, qa_steps: int = 1000, batch_size: int = 32, lr: float = 1e-3, seed: int = 0, layers: int = 12,
             hidden: int = 128, save_steps: int = 100, heldout: str | Path | None = None, more_steps: int = 0,
             start_from: str | Path | None = None, drills_in_qa: int | dict[str, int] = 0, qa_minutes: float | None = None,
             read_warmup_steps: int = 0, text_scenes_minutes: float | None = None, text_scenes_images: int = 3000,
             text_scenes_strings: int = 1, focus: dict[str, int] | None = None, focus_minutes: float | None = None,
             num_workers: int = 0) -> dict:
    data_root, out = Path(data_root), Path(out)
    copies, focus, string_scenes = check_recipe(drills_in_qa, focus, focus_minutes, text_scenes_strings)
    out.mkdir(parents=True, exist_ok=True)
    init = out / "init"
    if start_from is None and not (init / "model.safetensors").exists():
        start = time.time()
        processor = build_processor(vocabulary(data_root / TRAIN_JSON))
        model = build_model(len(processor.tokenizer), layers=layers, hidden=hidden, seed=seed)
        losses = warm_up_vision(model, PatchData(data_root, processor, GRID, PATCH), warmup_steps, batch_size, seed=seed)
        model.save_pretrained(init)
        processor.save_pretrained(init)
        (init / "warmup_log.json").write_text(json.dumps(warmup_summary(losses, start), indent=1))

    # lazy: adsc.training pulls in transformers' Trainer and peft (seconds) for every `adsc` command
    from ..training import TrainConfig, train  # lazy: see above
    from ..training.time_budget import TimeBudget  # lazy: see above

    def stage(model: Path, data: Path, output: Path, steps: int, minutes: float | None = None,
              images: Path | None = None) -> dict:
        if (output / "model.safetensors").exists():
            return json.loads((output / "pretrain_stage.json").read_text())
        cfg = TrainConfig.from_settings(
            model=str(model), data=str(data), image_folder=str(images or data_root / "train"), output_dir=str(output),
            mode="full", learning_rate=lr, projector_lr=lr, warmup_steps=0.03, global_batch_size=batch_size,
            lr_scheduler_type="cosine" if minutes is None else "constant",  # constant: TimeBudget scales it
            per_device_train_batch_size=batch_size, max_steps=steps, max_length=512,
            layers=(), budget=float(GRID * GRID), curriculum="direct",  # no pruning layers: full tokens
            template="chat_template", pad_to_square=False, gradient_checkpointing=False, bf16=False,
            dataloader_num_workers=num_workers, logging_steps=20, save_steps=save_steps, save_total_limit=1, seed=seed,
        )
        clock = [TimeBudget(60 * minutes)] if minutes is not None else []
        summary = train(cfg, callbacks=clock)
        if minutes is not None:
            summary["time_budget_minutes"] = minutes
        (output / "pretrain_stage.json").write_text(json.dumps(summary, indent=1, default=str))
        return summary

    previous, summary = (init, {}) if start_from is None else (Path(start_from), {"start_from": str(start_from)})
    for name, data, steps in (("align", CAPTION_JSON, align_steps), ("drill", DRILL_JSON, drill_steps)):
        summary[name] = None
        if steps and start_from is None:
            summary[name] = stage(previous, data_root / data, out / name, steps)
            previous = out / name
    if read_warmup_steps:
        summary["read"] = read_stage(previous, data_root, out / "read", read_warmup_steps, batch_size, seed)
        previous = out / "read"
    if text_scenes_minutes:
        scenes = out / "text_scenes_data"
        if not (scenes / "manifest.json").exists():
            generate(scenes, TestbedConfig(seed=seed + TEXT_SCENES_SEED_OFFSET, num_images=2, num_train=text_scenes_images,
                                           spec=GridSpec(IMAGE_SIZE, PATCH, 2), scene=string_scenes,
                                           benchmarks=("pope",)))
        mix = write_mix(out / "text_scenes_data.json", scenes, {"read": TEXT_SCENES_COPIES})
        summary["text_scenes"] = stage(previous, mix, out / "text_scenes", 1_000_000, text_scenes_minutes, scenes / "train")
        previous = out / "text_scenes"
    if focus:
        mix = write_mix(out / "focus_data.json", data_root, focus, base=False)
        summary["focus"] = stage(previous, mix, out / "focus", 1_000_000, focus_minutes)
        previous = out / "focus"
    qa_data = write_mix(out / "qa_data.json", data_root, copies) if copies else data_root / TRAIN_JSON
    summary.update(stage(previous, qa_data, out / "qa", qa_steps, qa_minutes))
    summary["drills_in_qa"] = copies
    final = out / "qa"
    if more_steps:
        summary["qa2"] = stage(final, data_root / TRAIN_JSON, out / "qa2", more_steps)
        final = out / "qa2"
    summary["final"] = str(final)
    if heldout is not None:
        model, processor = load_for_probing(final)
        summary["probe"] = image_dependence(model, processor, str(Path(heldout) / TRAIN_JSON), str(Path(heldout) / "train"))
        (final / "probe.json").write_text(json.dumps(summary["probe"], indent=1))
    return summary


def write_mix(path: Path, root: Path, copies: dict[str, int], base: bool = True) -> Path:
    """``root``'s training records (``base``) plus ``copies`` of each kind's records, as one file (kept if it exists)."""
    if not path.exists():
        mix = json.loads((root / TRAIN_JSON).read_text())
        records = list(mix) if base else []
        for kind, k in copies.items():
            if kind in MIX_KINDS:
                records += k * [r for r in mix if family_of(r["id"]) == MIX_KINDS[kind]]
            else:
                records += k * json.loads((root / DRILL_KINDS[kind]).read_text())
        write_json_atomic(path, records, indent=None)  # a kill mid-write leaves no half file that a rerun would trust
    return path


def read_stage(start: Path, data_root: Path, output: Path, steps: int, batch_size: int, seed: int) -> dict:
    """The reading warm-up of ``start``'s projector, saved to ``output`` (skipped when it is there)."""
    log = output / "read_warmup_log.json"  # written last: a kill before it leaves the stage to be redone
    if log.exists():
        return json.loads(log.read_text())
    started = time.time()
    model, processor = load_model(str(start), dtype="float32", device="cpu")
    losses = read_warm_up(model, PatchData(data_root, processor, GRID, PATCH, words=True), steps, batch_size, seed=seed)
    model.save_pretrained(output)
    processor.save_pretrained(output)
    summary = {"start": str(start), **warmup_summary(losses, started)}
    log.write_text(json.dumps(summary, indent=1))
    return summary


def warmup_summary(losses: list[float], started: float) -> dict:
    """What a warm-up's log keeps: steps, first and last loss, seconds, about 100 losses along the way."""
    return {"steps": len(losses), "loss_first": losses[0], "loss_last": losses[-1],
            "seconds": round(time.time() - started, 1), "losses": losses[:: max(1, len(losses) // 100)]}
