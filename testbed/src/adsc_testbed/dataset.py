"""Generate a whole testbed dataset: train split (665K format) and six benchmark folders.

Every scene is drawn from its own generator seeded by (seed, stream, attempt), so a scene does not
depend on how many were drawn before it in other streams, and the same seed gives the same bytes.
Stream 0 is the train split; each benchmark has its own stream (its own images, as the real
benchmarks do). A train scene identical to a test scene is skipped: the splits share no image.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .formats import gqa as f_gqa
from .formats import instruct
from .formats import mme as f_mme
from .formats import pope as f_pope
from .formats import scienceqa as f_sqa
from .formats import textvqa as f_textvqa
from .formats import vqav2 as f_vqav2
from .formats.io import write_json, write_jsonl
from .questions import caption, drill, gqa, mme, pope, sqa, textvqa, vqav2
from .questions.common import QA
from .scene import Scene, sample_scene
from .world import GridSpec, SceneConfig, World, default_world

BENCHMARKS = ("gqa", "mme", "pope", "scienceqa", "textvqa", "vqav2")
FORMATS = {"gqa": f_gqa, "mme": f_mme, "pope": f_pope, "scienceqa": f_sqa, "textvqa": f_textvqa, "vqav2": f_vqav2}
STREAMS = {"train": 0, **{name: i + 1 for i, name in enumerate(BENCHMARKS)}}
VERSION = 5  # 2: one question per training record, object listings; 3: filtered listings; 4: existence drills (own file);
# 5: reading and counting drills (own files; everything else byte-identical to version 4)

# Where each benchmark's files land, for the evaluation readers (also written to manifest.json).
LAYOUT = {
    "gqa": {"question_file": "gqa/llava_gqa_testdev_balanced.jsonl", "image_folder": "gqa/data/images",
            "annotations": "gqa/data/testdev_balanced_questions.json"},
    "mme": {"question_file": "mme/llava_mme.jsonl", "image_folder": "mme/MME_Benchmark_release_version",
            "annotations": "mme/MME_Benchmark_release_version"},
    "pope": {"question_file": "pope/llava_pope_test.jsonl", "image_folder": "pope/val2014",
             "annotations": "pope/coco"},
    "scienceqa": {"question_file": "scienceqa/llava_test_CQM-A.json", "image_folder": "scienceqa/images/test",
                  "annotations": "scienceqa"},
    "textvqa": {"question_file": "textvqa/llava_textvqa_val_v051_ocr.jsonl", "image_folder": "textvqa/train_images",
                "annotations": "textvqa/TextVQA_0.5.1_val.json"},
    "vqav2": {"question_file": "vqav2/llava_vqav2_mscoco_val2014.jsonl", "image_folder": "vqav2/val2014",
              "annotations": "vqav2/v2_mscoco_val2014_annotations.json",
              "questions": "vqav2/v2_OpenEnded_mscoco_val2014_questions.json"},
    "train": {"data_path": f"train/{instruct.INSTRUCT_FILE}", "image_folder": "train",
              "caption_path": f"train/{instruct.CAPTION_FILE}",
              **{f"{family}_path": f"train/{name}" for family, name in instruct.DRILL_FILES.items()}},
}


@dataclass
class TestbedConfig:
    __test__ = False  # not a pytest test class despite the name

    seed: int = 0
    num_images: int | dict[str, int] = 100  # per benchmark: one count for all, or {benchmark: count}
    num_train: int = 1000
    spec: GridSpec = field(default_factory=GridSpec)
    scene: SceneConfig = field(default_factory=SceneConfig)
    benchmarks: tuple[str, ...] = BENCHMARKS
    # Image and question numbers start after this: a validation split generated with id_start
    # VALIDATION_IDS shares no id with a test split (both would otherwise number from 1).
    id_start: int = 0


# A multiple of MME's five subtasks (images cycle through them by number) far above any test split.
VALIDATION_IDS = 1_000_000
# The formats whose question ids are a running count (the others derive them from image ids).
COUNTED_IDS = ("gqa", "pope")


def images_for(cfg: TestbedConfig, bench: str) -> int:
    return cfg.num_images[bench] if isinstance(cfg.num_images, dict) else cfg.num_images


def _rng(seed: int, stream: str, attempt: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([seed, STREAMS[stream], attempt, purpose])


def signature(scene: Scene) -> str:
    d = scene.to_dict()
    d.pop("image_id")
    return json.dumps(d, sort_keys=True)


def questions_for(bench: str, scene: Scene, rng: np.random.Generator, cfg: TestbedConfig,
                  stats: pope.CategoryStats | None = None, subtask: str | None = None) -> list[QA]:
    if bench == "gqa":
        return gqa.gqa_questions(scene, rng)
    if bench == "mme":
        return mme.mme_questions(scene, subtask, rng, cfg.scene.vocab)
    if bench == "pope":
        return pope.pope_questions(scene, stats, rng)
    if bench == "scienceqa":
        return sqa.sqa_questions(scene, rng)
    if bench == "textvqa":
        return textvqa.textvqa_questions(scene, rng, cfg.scene.ocr_noise)
    if bench == "vqav2":
        return vqav2.vqav2_questions(scene, rng)
    raise ValueError(f"unknown benchmark {bench!r}")


def _draw(cfg: TestbedConfig, world: World, stream: str, attempt: int) -> Scene:
    return sample_scene("", _rng(cfg.seed, stream, attempt, 0), world, cfg.spec, cfg.scene)


def build_benchmark(bench: str, cfg: TestbedConfig, world: World) -> list[tuple[Scene, list[QA]]]:
    """num_images scenes that can carry the benchmark's questions (others are skipped)."""
    if bench == "pope":  # negatives need the category statistics of the whole image set first
        scenes = [_draw(cfg, world, bench, a) for a in range(images_for(cfg, bench))]
        stats = pope.CategoryStats.from_scenes(scenes)
        items = []
        for a, scene in enumerate(scenes):
            scene.image_id = f_pope.image_id(cfg.id_start + a + 1)
            items.append((scene, pope.pope_questions(scene, stats, _rng(cfg.seed, bench, a, 1))))
        return items
    items, attempt = [], 0
    while len(items) < images_for(cfg, bench):
        if attempt > 20 * images_for(cfg, bench) + 100:
            raise RuntimeError(f"{bench}: scenes too sparse to carry its questions; loosen SceneConfig")
        scene = _draw(cfg, world, bench, attempt)
        image_id = FORMATS[bench].image_id(cfg.id_start + len(items) + 1)
        subtask = image_id.split("/")[0] if bench == "mme" else None
        qas = questions_for(bench, scene, _rng(cfg.seed, bench, attempt, 1), cfg, subtask=subtask)
        attempt += 1
        if qas:
            scene.image_id = image_id
            items.append((scene, qas))
    return items


def build_train(cfg: TestbedConfig, world: World, taken: set[str]) -> list[tuple[Scene, dict[str, list[QA]]]]:
    scenes, attempt = [], 0
    while len(scenes) < cfg.num_train:
        scene = _draw(cfg, world, "train", attempt)
        attempt += 1
        if signature(scene) not in taken:
            scene.image_id = f"train_{len(scenes) + 1:06d}"
            scenes.append((attempt - 1, scene))
    stats = pope.CategoryStats.from_scenes([s for _, s in scenes])
    items = []
    for attempt, scene in scenes:
        rng = _rng(cfg.seed, "train", attempt, 1)
        by_family = {}
        for bench in cfg.benchmarks:
            if bench == "mme":  # two subtasks per image keep the yes/no share of the mix moderate
                qas = [q for sub in rng.permutation(mme.SUBTASKS)[:2]
                       for q in questions_for(bench, scene, rng, cfg, subtask=str(sub))]
            elif bench == "pope":  # one negative split per image
                split = pope.SPLITS[int(rng.integers(len(pope.SPLITS)))]
                qas = [q for q in questions_for(bench, scene, rng, cfg, stats=stats) if q.extra["split"] == split]
            else:
                qas = questions_for(bench, scene, rng, cfg)
            by_family[bench] = qas
        by_family["caption"] = caption.caption_questions(scene, rng)  # training only: listings (alignment)
        by_family["drill"] = drill.drill_questions(scene, stats, rng)  # training only: multi-turn existence drill
        # drawn last, so the questions above are those of version 4
        by_family["drill_read"] = drill.reading_drill(scene, rng)
        by_family["drill_count"] = drill.counting_drill(scene, rng)
        items.append((scene, by_family))
    return items


def generate(out: str | Path, cfg: TestbedConfig) -> dict:
    """Write the dataset under ``out`` and return the manifest (also written as manifest.json)."""
    out = Path(out)
    world = default_world()
    counts, taken = {}, set()
    for bench in cfg.benchmarks:
        items = build_benchmark(bench, cfg, world)
        FORMATS[bench].write(out, items, **({"id_start": cfg.id_start} if bench in COUNTED_IDS else {}))
        write_jsonl(out / "annotations" / f"{bench}.jsonl", [s.to_dict() for s, _ in items])
        taken.update(signature(s) for s, _ in items)
        counts[bench] = {"images": len(items), "questions": sum(len(q) for _, q in items)}
    train = build_train(cfg, world, taken)
    n_records = instruct.write(out, train)
    write_jsonl(out / "annotations" / "train.jsonl", [s.to_dict() for s, _ in train])
    counts["train"] = {"images": len(train), "records": n_records,
                       "turns": sum(len(q) for _, fam in train for q in fam.values())}
    manifest = {
        "generator": "adsc_testbed", "version": VERSION, "seed": cfg.seed,
        "grid": {**asdict(cfg.spec), "tokens_per_side": cfg.spec.grid, "vision_tokens": cfg.spec.tokens},
        "scene_config": asdict(cfg.scene), "counts": counts, "id_start": cfg.id_start,
        "layout": {k: v for k, v in LAYOUT.items() if k in counts},
    }
    write_json(out / "manifest.json", manifest, indent=2)
    return manifest


def _question_ids(root: Path, bench: str) -> set[str]:
    path = root / LAYOUT[bench]["question_file"]
    if path.suffix == ".json":  # ScienceQA's LLaVA file: one JSON list of conversations
        return {str(r["id"]) for r in json.loads(path.read_text())}
    return {str(json.loads(line)["question_id"]) for line in path.read_text().splitlines() if line.strip()}


def _scenes(root: Path, name: str) -> list[dict]:
    path = root / "annotations" / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def shared_between(a: str | Path, b: str | Path) -> dict[str, list[str]]:
    """What two generated datasets share: question ids and image ids (per benchmark), scenes
    (identical content under any id, train images included) and generation seeds. Empty lists:
    the two are disjoint, as a validation split must be from the test split it tunes for."""
    a, b = Path(a), Path(b)
    manifests = [json.loads((d / "manifest.json").read_text()) for d in (a, b)]
    benches = sorted(set(manifests[0]["counts"]) & set(manifests[1]["counts"]) - {"train"})
    questions = {f"{bench}:{q}" for bench in benches for q in _question_ids(a, bench) & _question_ids(b, bench)}
    images = {f"{bench}:{i}" for bench in benches
              for i in {s["image_id"] for s in _scenes(a, bench)} & {s["image_id"] for s in _scenes(b, bench)}}

    def contents(root: Path) -> set[str]:
        return {json.dumps({k: v for k, v in s.items() if k != "image_id"}, sort_keys=True)
                for name in [*BENCHMARKS, "train"] for s in _scenes(root, name)}

    seeds = {manifests[0]["seed"]} & {manifests[1]["seed"]}
    return {"question ids": sorted(questions), "images": sorted(images),
            "scenes": sorted(contents(a) & contents(b)), "seeds": sorted(map(str, seeds))}
