"""The synthetic testbed (``adsc experiment``): the paper's claims, end to end, on a CPU.

    adsc experiment --preset quick                 # < 10 min on 2 cores, from the committed checkpoint
    adsc experiment --preset full --out results/testbed
    adsc experiment --generate-only --out data/testbed --seed 0 --num-images 100 --num-train 1000
    adsc experiment --pretrain --out runs/testbed_pretrain   # remake adsc_testbed/checkpoint (long)
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .dataset import BENCHMARKS, TestbedConfig, generate
from .experiment import CHECKPOINT, PRESETS, Experiment, with_overrides
from .facts import IMAGE_SIZE, PATCH
from .pretrain import PretrainSettings, Recipe, Stage, check_recipe, check_same_recipe, drill_copies, pretrain, text_scenes
from .probe import table
from .world import GridSpec, SceneConfig


def add_arguments(p) -> None:
    p.add_argument("--preset", choices=["smoke", "quick", "full"], default="quick", help="experiment size")
    p.add_argument("--questions", type=int, help="override the preset's test questions per benchmark")
    p.add_argument("--train-steps", type=int, help="override the preset's fine-tuning steps")
    p.add_argument("--checkpoint", help="pretrained testbed model (default: the committed adsc_testbed/checkpoint)")
    p.add_argument("--generate-only", action="store_true", help="write the synthetic dataset and stop")
    p.add_argument("--pretrain", action="store_true", help="pretrain the testbed model from scratch into --out")
    p.add_argument("--warmup-steps", type=int, default=600, help="--pretrain: dense vision warm-up steps")
    p.add_argument("--align-steps", type=int, default=300, help="--pretrain: object-listing alignment steps")
    p.add_argument("--drill-steps", type=int, default=0, help="--pretrain: multi-turn existence-drill steps (optional stage)")
    p.add_argument("--qa-steps", type=int, default=1000,
                   help="--pretrain: full-token QA training steps (a cap with --qa-minutes)")
    p.add_argument("--qa-minutes", type=float, default=None,
                   help="--pretrain: run the QA stage for this many minutes, learning rate on a cosine over the time")
    p.add_argument("--drills-in-qa", nargs="+", default=["0"], metavar="K|KIND=K",
                   help="--pretrain: copies of the drill records in the QA mix: K existence drills, or per kind "
                        "(exist=3 read=4 count=2; sqa=2: the mix's own ScienceQA records)")
    p.add_argument("--focus", nargs="+", default=[], metavar="KIND=K",
                   help="--pretrain: before the QA stage, train on these kinds' records alone (e.g. sqa=4), for --focus-minutes")
    p.add_argument("--focus-minutes", type=float, default=None, help="--pretrain: minutes of the --focus stage")
    p.add_argument("--start-from", default=None,
                   help="--pretrain: run only the QA stage, from this model (e.g. adsc_testbed/checkpoint)")
    p.add_argument("--read-warmup-steps", type=int, default=0,
                   help="--pretrain: before the QA stage, teach the projector the word on each text patch for this many steps")
    p.add_argument("--text-scenes-minutes", type=float, default=None,
                   help="--pretrain: before the QA stage, train reading on scenes of strings alone for this many minutes")
    p.add_argument("--text-scenes-strings", type=int, default=1,
                   help="--pretrain: strings per scene in that stage, 1 to this many (colour picks the one asked about)")
    p.add_argument("--recipe", metavar="FILE.json",
                   help="--pretrain: run a recipe instead of the stage flags above: a run's OUT/recipe.json (stages "
                        "and settings: seed, start_from, batch size, lr, model size; --seed --start-from --workers "
                        "aside), or a JSON list of stage records (adsc_testbed.pretrain.Stage) with those flags")
    p.add_argument("--workers", type=int, default=0, help="--pretrain: data-loading processes (0: in the training process)")
    p.add_argument("--out", default=None, help="output folder (default: runs/testbed_<preset>, or testbed_data)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-images", type=int, default=100, help="test images per benchmark")
    p.add_argument("--num-train", type=int, default=1000, help="training images (665K-format records)")
    p.add_argument("--image-size", type=int, default=336, help="pixels per side (336 with patch 14 = 24x24 tokens)")
    p.add_argument("--patch-size", type=int, default=14, help="ViT patch size of the model to be trained")
    p.add_argument("--cell-patches", type=int, default=2, help="layout cell side in patches (small object = 1 patch)")
    p.add_argument("--min-objects", type=int, default=5)
    p.add_argument("--max-objects", type=int, default=10)
    p.add_argument("--benchmarks", nargs="+", default=None,
                   help="subset of: gqa mme pope scienceqa textvqa vqav2 (default: all)")


def config_from_args(args):
    benchmarks = tuple(args.benchmarks or BENCHMARKS)
    unknown = [b for b in benchmarks if b not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    if args.min_objects < 2 or args.max_objects < args.min_objects:
        raise ValueError("need 2 <= --min-objects <= --max-objects (relations need two objects)")
    spec = GridSpec(args.image_size, args.patch_size, args.cell_patches)
    scene = SceneConfig(min_objects=args.min_objects, max_objects=args.max_objects)
    return TestbedConfig(seed=args.seed, num_images=args.num_images, num_train=args.num_train, spec=spec,
                         scene=scene, benchmarks=benchmarks)


def run(args) -> int:
    if args.pretrain:
        return _pretrain(args)
    if not args.generate_only:
        return _experiment(args)
    args.out = args.out or "testbed_data"
    cfg = config_from_args(args)
    manifest = generate(args.out, cfg)
    g = manifest["grid"]
    print(f"wrote {args.out}: {g['image_size']}px images, patch {g['patch_size']} -> "
          f"{g['tokens_per_side']}x{g['tokens_per_side']} = {g['vision_tokens']} vision tokens, seed {cfg.seed}")
    for name, c in manifest["counts"].items():
        print(f"  {name:<10} " + ", ".join(f"{v} {k}" for k, v in c.items()))
    return 0


def _experiment(args) -> int:
    preset = with_overrides(PRESETS[args.preset], questions=args.questions, train_steps=args.train_steps)
    out = args.out or f"runs/testbed_{preset.name}"
    for note in preset.notes:
        print(note)
    summary = Experiment(out, preset, args.checkpoint or CHECKPOINT, seed=args.seed).run()
    print((Path(out) / "report.md").read_text())
    print(f"report: {out}/report.md, {out}/report.json, {out}/figure2.png ({summary['seconds'] / 60:.1f} min)")
    return 0


def recipe_from_args(args) -> Recipe:
    """The recipe the --pretrain flags ask for: their stages, and the run settings --seed,
    --start-from and --workers give; or the recipe --recipe names (a run's recipe.json: stages and
    settings, the flags aside; or a JSON list of stage records, with the flags' settings)."""
    settings = PretrainSettings(seed=args.seed, start_from=args.start_from, num_workers=args.workers)
    if args.recipe:
        data = json.loads(Path(args.recipe).read_text())
        if isinstance(data, list):
            data = {**dataclasses.asdict(settings), "stages": data}
        return Recipe.from_dict(data, args.recipe)
    stages = []
    if args.start_from is None:  # the base model's stages; a continuation starts after them
        stages.append(Stage("init", steps=args.warmup_steps))
        base = (("align", args.align_steps), ("drill", args.drill_steps))
        stages += [Stage(name, steps=steps) for name, steps in base if steps]
    if args.read_warmup_steps:
        stages.append(Stage("read", steps=args.read_warmup_steps))
    if args.text_scenes_minutes:
        stages.append(Stage("text_scenes", minutes=args.text_scenes_minutes, strings=args.text_scenes_strings))
    if args.focus or args.focus_minutes:
        focus = _drill_copies(args.focus, "--focus") if args.focus else {}
        stages.append(Stage("focus", minutes=args.focus_minutes, copies=focus))
    copies = drill_copies(_drill_copies(args.drills_in_qa), "--drills-in-qa")  # "3": existence drills
    stages.append(Stage("qa", steps=args.qa_steps, minutes=args.qa_minutes, copies=copies))
    return Recipe(stages, settings)


def _pretrain(args) -> int:
    recipe = check_recipe(recipe_from_args(args))  # before any data is written
    if args.text_scenes_strings != 1 and not any(s.name == "text_scenes" for s in recipe.stages):
        text_scenes(args.text_scenes_strings)  # a bad count is refused even without the stage
    out = args.out or "runs/testbed_pretrain"
    check_same_recipe(out, recipe)  # before a rerun into another recipe's folder touches its data
    data = f"{out}/data"
    args.seed = recipe.settings.seed  # the scenes follow the recipe's seed (a --recipe file's, not the flag's)
    args.image_size, args.patch_size = IMAGE_SIZE, PATCH
    if args.num_train == 1000:
        args.num_train = 3000
    # a rerun (resume) keeps data already written; same seed and settings give the same bytes anyway
    if not Path(data, "manifest.json").exists():
        generate(data, config_from_args(args))
    # held-out scenes (another seed) for the image-dependence control written next to the model
    args.seed, args.num_train, args.num_images = args.seed + 1, 200, 2
    if not Path(out, "heldout", "manifest.json").exists():
        generate(f"{out}/heldout", config_from_args(args))
    summary = pretrain(data, out, recipe, heldout=f"{out}/heldout")
    print(table(summary["probe"]))
    print(f"pretrained model in {out}/qa ({summary['steps']} steps, final loss {summary['final_loss']:.3f}); "
          f"its recipe in {out}/recipe.json; copy model.safetensors, config.json and the processor files to "
          "testbed/src/adsc_testbed/checkpoint to use it")
    return 0


def _drill_copies(words: list[str], flag: str = "--drills-in-qa") -> int | dict[str, int]:
    """``["3"]`` -> 3 (existence drills); ``["exist=3", "read=4"]`` -> {"exist": 3, "read": 4}."""
    try:
        if len(words) == 1 and "=" not in words[0] and flag == "--drills-in-qa":
            return int(words[0])
        return {kind: int(k) for kind, k in (w.split("=", 1) for w in words)}
    except ValueError:
        raise SystemExit(f"{flag} {' '.join(words)}: give KIND=K pairs, e.g. {flag} read=4 sqa=2") from None
