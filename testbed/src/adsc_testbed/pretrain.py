"""Pretraining the testbed's "pretrained MLLM" from scratch, at full vision tokens.

Stages in a fixed order, each in its own folder under ``out`` and skipped when its output exists
(a killed run resumes where it stopped): ``init/`` (vocabulary, processor, random model, dense
vision warm-up), ``align/`` (object listings), ``drill/`` (existence drills), ``read/`` (the
projector's reading warm-up), ``text_scenes/`` (reading on scenes of strings alone), ``focus/``
(some kinds' records alone), ``qa/`` (the training mix, with optional copies of drill kinds),
``qa2/`` (the mix again, a fresh schedule). Every stage after ``init/`` trains projector and
language model through ``adsc.training`` (the Trainer path users run) with no pruning layers;
a stage given minutes runs on a wall-clock cosine (``adsc.training.time_budget``). ``qa/`` (or
``qa2/``) is the model; with ``heldout`` its ``probe.json`` holds the image-dependence control.
A run is one ``Recipe``: its Stage records and one PretrainSettings record (seed, start model,
batch, learning rate, model size), written whole to ``OUT/recipe.json``, which alone runs it again.
Why each stage exists and how the committed checkpoint was made: docs/testbed.md.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from adsc.evaluation.generation import load_model
from adsc.files import write_json_atomic

from .dataset import TestbedConfig, generate
from .facts import GRID, IMAGE_SIZE, PATCH, VISION_TOKENS
from .formats.instruct import CAPTION_FILE, DRILL_FILES, INSTRUCT_FILE, family_of
from .model import build_model, build_processor, vocabulary
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


# The stages a recipe may hold, in the order they run (a recipe lists some of them, in this order).
STAGES = ("init", "align", "drill", "read", "text_scenes", "focus", "qa", "qa2")
BASE_STAGES = ("init", "align", "drill")  # they make the base model: not with start_from
MINUTES_CAP = 1_000_000  # the step cap of a stage run for minutes: the clock ends it


@dataclasses.dataclass
class Stage:
    """One record of a pretraining recipe: a stage of STAGES and what it trains for.

    init: ``steps`` of dense vision warm-up; align, drill, read, qa2: ``steps``; text_scenes,
    focus, qa: ``minutes`` of wall clock (``steps`` then a cap) or ``steps``; qa and focus take
    ``copies`` of drill kinds (exist, read, count) or of the mix's own records (sqa); text_scenes
    takes ``strings`` (1 to that many per scene) and ``images`` (scenes generated for it)."""

    name: str
    steps: int = 0
    minutes: float | None = None
    copies: dict[str, int] = dataclasses.field(default_factory=dict)
    strings: int = 1
    images: int = 3000

    @classmethod
    def from_dict(cls, record: dict, where: str = "recipe") -> Stage:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(record) - fields)
        if unknown or "name" not in record:
            raise ValueError(f"{where}: stage {record} has unknown fields {unknown} or no name; fields: {sorted(fields)}")
        return cls(**record)


@dataclasses.dataclass(frozen=True)
class PretrainSettings:
    """What a pretraining run is besides its stages; with them in ``OUT/recipe.json`` the file alone
    runs it again (``Recipe.read``). ``layers`` / ``hidden``: the decoder the init stage builds;
    ``save_steps`` and ``num_workers`` change how a stage runs, not what it trains."""

    seed: int = 0
    start_from: str | None = None  # a model to continue (the stages after init, align, drill)
    batch_size: int = 32
    lr: float = 1e-3
    layers: int = 12
    hidden: int = 128
    save_steps: int = 100
    num_workers: int = 0

    def __post_init__(self):
        if self.start_from is not None:  # a Path given in Python: the record holds what JSON can
            object.__setattr__(self, "start_from", str(self.start_from))


@dataclasses.dataclass
class Recipe:
    """A pretraining run as data: its stages (Stage records, in STAGES order) and its settings."""

    stages: list[Stage]
    settings: PretrainSettings = dataclasses.field(default_factory=PretrainSettings)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self.settings), "stages": [dataclasses.asdict(s) for s in self.stages]}

    @classmethod
    def from_dict(cls, data: dict | list, where: str = "recipe") -> Recipe:
        """A ``to_dict`` record (a run's recipe.json), or a bare list of stage records (default settings)."""
        if isinstance(data, list):
            data = {"stages": data}
        fields = {f.name for f in dataclasses.fields(PretrainSettings)}
        unknown = sorted(set(data) - fields - {"stages"})
        if unknown or not isinstance(data.get("stages"), list):
            raise ValueError(f"{where}: unknown fields {unknown} or no list of stages; a recipe is "
                             f"{{\"stages\": [...]}} with any of {sorted(fields)}, or the list of stages alone")
        settings = PretrainSettings(**{k: v for k, v in data.items() if k != "stages"})
        return cls([Stage.from_dict(r, where) for r in data["stages"]], settings)

    @classmethod
    def read(cls, path: str | Path) -> Recipe:
        return cls.from_dict(json.loads(Path(path).read_text()), str(path))


def check_recipe(recipe: Recipe) -> Recipe:
    """The recipe with its copies checked, or the error that names the fix: called before anything
    is generated or trained, so a typo fails at once, not after hours of stages."""
    stages, start_from = recipe.stages, recipe.settings.start_from
    names = [s.name for s in stages]
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise ValueError(f"recipe: unknown stage(s) {unknown}; stages run in this order: {list(STAGES)}")
    if names != sorted(set(names), key=STAGES.index):
        raise ValueError(f"recipe: stages {names} must each appear once, in the order {list(STAGES)}")
    if "qa" not in names:
        raise ValueError("recipe: the qa stage is the model; add it (e.g. {\"name\": \"qa\", \"steps\": 1000})")
    if start_from is None and names[0] != "init":
        raise ValueError("recipe: a model from scratch starts with the init stage (or give start_from)")
    if start_from is not None and set(names) & set(BASE_STAGES):
        raise ValueError(f"recipe: {sorted(set(names) & set(BASE_STAGES))} make a base model; leave them out with start_from")
    checked = []
    for s in stages:
        if s.name == "focus" and not s.copies:
            raise ValueError("recipe: the focus stage trains on some kinds' records alone: give its copies (e.g. sqa=4)")
        if s.name in ("text_scenes", "focus") and s.minutes is None:
            raise ValueError(f"recipe: the {s.name} stage runs for minutes: e.g. --{s.name.replace('_', '-')}-minutes 14")
        if s.minutes is None and s.steps < 1:
            raise ValueError(f"recipe: stage {s.name} needs steps >= 1 or minutes")
        text_scenes(s.strings)
        checked.append(dataclasses.replace(s, copies=drill_copies(s.copies, s.name)))
    return dataclasses.replace(recipe, stages=checked)


# settings that change how a stage runs, not what it trains: a resume may change them
RUN_ONLY = ("save_steps", "num_workers")


def check_same_recipe(out: str | Path, recipe: Recipe) -> None:
    """Refuse to run ``recipe`` into a folder that holds another recipe's run: its finished stages
    would be skipped as done, so the result would mix two recipes' checkpoints. The same recipe
    again is a resume (finished stages skipped)."""
    recorded_file = Path(out) / "recipe.json"
    if not recorded_file.exists():
        return
    fix = f"give another --out (another out folder), or delete {out} to start this recipe afresh"
    try:
        recorded = Recipe.from_dict(json.loads(recorded_file.read_text()), str(recorded_file)).to_dict()
    except (ValueError, TypeError) as err:
        raise ValueError(f"{out} holds a run whose recipe cannot be read ({err}); {fix}") from None
    differences = recipe_differences(recorded, recipe.to_dict())
    if differences:
        raise ValueError(f"{out} holds a run of another recipe ({recorded_file}; recorded -> now: "
                         f"{'; '.join(differences)}): its finished stages would mix with this recipe's; {fix}")


def recipe_differences(recorded: dict, now: dict) -> list[str]:
    """``field: old -> new`` for each setting and stage field (``qa.steps``) of two ``Recipe.to_dict``
    records that differ, RUN_ONLY settings aside; a stage in one recipe alone is named as such."""
    found = [f"{k}: {recorded[k]!r} -> {now[k]!r}" for k in now
             if k not in ("stages", *RUN_ONLY) and recorded.get(k) != now[k]]
    old, new = ({s["name"]: s for s in r["stages"]} for r in (recorded, now))
    for name in [*old, *(n for n in new if n not in old)]:
        if name not in new or name not in old:
            found.append(f"stage {name}: {'recorded only' if name in old else 'new'}")
        else:
            found += [f"{name}.{k}: {old[name][k]!r} -> {v!r}" for k, v in new[name].items() if old[name][k] != v]
    return found


def pretrain(data_root: str | Path, out: str | Path, recipe: Recipe, heldout: str | Path | None = None) -> dict:
    """Run ``recipe`` into ``out``; ``recipe.json`` there is the recipe as run (stages and settings).
    ``heldout``: scenes for the image-dependence probe of the final model (``probe.json``)."""
    if not isinstance(recipe, Recipe):
        raise TypeError(f"pretrain takes a Recipe(stages, PretrainSettings(...)), not a {type(recipe).__name__}")
    data_root, out = Path(data_root), Path(out)
    recipe = check_recipe(recipe)
    run = recipe.settings
    seed, start_from, batch_size, lr = run.seed, run.start_from, run.batch_size, run.lr
    stages = {s.name: s for s in recipe.stages}
    check_same_recipe(out, recipe)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "recipe.json", recipe.to_dict())
    init = out / "init"
    if "init" in stages and not (init / "model.safetensors").exists():
        start = time.time()
        processor = build_processor(vocabulary(data_root / TRAIN_JSON))
        model = build_model(len(processor.tokenizer), layers=run.layers, hidden=run.hidden, seed=seed)
        losses = warm_up_vision(model, PatchData(data_root, processor, GRID, PATCH), stages["init"].steps, batch_size, seed=seed)
        model.save_pretrained(init)
        processor.save_pretrained(init)
        (init / "warmup_log.json").write_text(json.dumps(warmup_summary(losses, start), indent=1))

    # lazy: adsc.training pulls in transformers' Trainer and peft (seconds) for every `adsc` command
    from adsc.training import TrainConfig, train  # lazy: see above
    from adsc.training.time_budget import TimeBudget  # lazy: see above

    def stage(model: Path, data: Path, output: Path, steps: int, minutes: float | None = None,
              images: Path | None = None) -> dict:
        if (output / "model.safetensors").exists():
            return json.loads((output / "pretrain_stage.json").read_text())
        cfg = TrainConfig.from_settings(
            model=str(model), data=str(data), image_folder=str(images or data_root / "train"), output_dir=str(output),
            mode="full", learning_rate=lr, projector_lr=lr, warmup_steps=0.03, global_batch_size=batch_size,
            lr_scheduler_type="cosine" if minutes is None else "constant",  # constant: TimeBudget scales it
            per_device_train_batch_size=batch_size, max_steps=steps, max_length=512,
            layers=(), budget=float(VISION_TOKENS), curriculum="direct",  # no pruning layers: full tokens
            template="chat_template", pad_to_square=False, gradient_checkpointing=False, bf16=False,
            dataloader_num_workers=run.num_workers, logging_steps=20, save_steps=run.save_steps, save_total_limit=1,
            seed=seed,
        )
        clock = [TimeBudget(60 * minutes)] if minutes is not None else []
        summary = train(cfg, callbacks=clock)
        if minutes is not None:
            summary["time_budget_minutes"] = minutes
        (output / "pretrain_stage.json").write_text(json.dumps(summary, indent=1, default=str))
        return summary

    def cap(s: Stage) -> int:
        return (s.steps or MINUTES_CAP) if s.minutes is not None else s.steps

    previous, summary = (init, {}) if start_from is None else (Path(start_from), {"start_from": str(start_from)})
    for name, data in (("align", CAPTION_JSON), ("drill", DRILL_JSON)):
        summary[name] = None
        if name in stages:
            summary[name] = stage(previous, data_root / data, out / name, stages[name].steps)
            previous = out / name
    if "read" in stages:
        summary["read"] = read_stage(previous, data_root, out / "read", stages["read"].steps, batch_size, seed)
        previous = out / "read"
    if "text_scenes" in stages:
        s = stages["text_scenes"]
        scenes = out / "text_scenes_data"
        if not (scenes / "manifest.json").exists():
            generate(scenes, TestbedConfig(seed=seed + TEXT_SCENES_SEED_OFFSET, num_images=2, num_train=s.images,
                                           spec=GridSpec(IMAGE_SIZE, PATCH, 2), scene=text_scenes(s.strings),
                                           benchmarks=("pope",)))
        mix = write_mix(out / "text_scenes_data.json", scenes, {"read": TEXT_SCENES_COPIES})
        summary["text_scenes"] = stage(previous, mix, out / "text_scenes", cap(s), s.minutes, scenes / "train")
        previous = out / "text_scenes"
    if "focus" in stages:
        s = stages["focus"]
        mix = write_mix(out / "focus_data.json", data_root, s.copies, base=False)
        summary["focus"] = stage(previous, mix, out / "focus", cap(s), s.minutes)
        previous = out / "focus"
    qa = stages["qa"]
    qa_data = write_mix(out / "qa_data.json", data_root, qa.copies) if qa.copies else data_root / TRAIN_JSON
    summary.update(stage(previous, qa_data, out / "qa", cap(qa), qa.minutes))
    summary["drills_in_qa"] = qa.copies
    final = out / "qa"
    if "qa2" in stages:
        summary["qa2"] = stage(final, data_root / TRAIN_JSON, out / "qa2", stages["qa2"].steps)
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
