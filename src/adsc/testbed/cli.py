"""The synthetic testbed (``adsc experiment``). For now: ``--generate-only`` writes a dataset.

    adsc experiment --generate-only --out data/testbed --seed 0 --num-images 100 --num-train 1000

The end-to-end experiment (train, compress, evaluate, report) lands once the training and
evaluation packages do; the dataset it will run on is already in the official formats.
"""

from __future__ import annotations

from .world import GridSpec, SceneConfig


def add_arguments(p) -> None:
    p.add_argument("--generate-only", action="store_true", help="write the synthetic dataset and stop")
    p.add_argument("--out", default="testbed_data", help="output folder (benchmark folders + train/)")
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
    from .dataset import BENCHMARKS, TestbedConfig

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
    if not args.generate_only:
        raise ValueError("the end-to-end experiment is not implemented yet; use --generate-only")
    from .dataset import generate

    cfg = config_from_args(args)
    manifest = generate(args.out, cfg)
    g = manifest["grid"]
    print(f"wrote {args.out}: {g['image_size']}px images, patch {g['patch_size']} -> "
          f"{g['tokens_per_side']}x{g['tokens_per_side']} = {g['vision_tokens']} vision tokens, seed {cfg.seed}")
    for name, c in manifest["counts"].items():
        print(f"  {name:<10} " + ", ".join(f"{v} {k}" for k, v in c.items()))
    return 0
