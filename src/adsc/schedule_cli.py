"""Per-layer vision-token counts of a compression schedule (``adsc schedule``)."""

from __future__ import annotations

import json

from .checks import real, whole, writable_file
from .config import CompressionConfig
from .config_cli import add_compression_arguments
from .layouts import Layout, families, layout_from_args, on_layout
from .methods import get_method
from .schedule import Schedule, schedule_from_counts


def add_arguments(p) -> None:
    p.add_argument("--num-layers", type=int, default=32, help="decoder depth (32 for LLaVA-1.5-7B)")
    how = add_compression_arguments(p, fields=("method", "layers", "budget", "drop_ratio", "vision_tokens", "drop_position"),
                                    defaults={"method": "adsc", "vision_tokens": 576, "drop_position": "before"},
                                    aliases=True)
    how.add_argument("--keep", type=int, nargs="+", help="explicit tokens kept from each pruning layer on")
    p.add_argument("--layout", metavar="FAMILY[:HxW]",
                   help="count the tokens of one input as the family's adapter lays it out, e.g. llava-next:672x672 "
                        "(sets --vision-tokens; newline tokens are not counted); families: " + ", ".join(families()))
    p.add_argument("--video-frames", type=int, metavar="N", help="with --layout: a video of N input frames instead of an image")
    p.add_argument("--plot", help="save a PNG of tokens per layer here")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def check_args(args) -> None:
    """Each value in its range before anything is computed or written (one-line errors, exit 2)."""
    whole("--num-layers", args.num_layers, 1)
    whole("--vision-tokens", args.vision_tokens, 1)
    if args.budget is not None:
        real("--budget", args.budget, 0.0, args.vision_tokens, strict=True, fix=" (vision tokens to keep on average)")
    if args.drop_ratio is not None:
        real("--drop-ratio", args.drop_ratio, 0.0, 1.0, high_open=True, fix=" (the share of tokens each pruning layer drops)")
    for k in args.keep or ():
        whole("--keep", k, 0, args.vision_tokens, fix=" (tokens kept, at most --vision-tokens)")
    if args.plot:
        writable_file("--plot", args.plot)


def schedule_from_args(args, found: Layout | None = None) -> Schedule:
    """The schedule the flags describe; on a --layout, the counts the method keeps on its spans."""
    check_args(args)
    if args.keep:
        layers = args.layers or get_method(args.method).default_layers
        if len(args.keep) != len(layers):
            raise ValueError(f"--keep needs one count per pruning layer ({len(layers)})")
        stage = [x + (args.drop_position == "after") for x in layers]
        CompressionConfig(layers=layers, drop_ratio=0.0, drop_position=args.drop_position).validate(args.num_layers)
        return schedule_from_counts(args.num_layers, args.vision_tokens, stage, args.keep)
    budget = args.budget if args.drop_ratio is None and args.budget is not None else None
    ratio = args.drop_ratio if args.drop_ratio is not None else (None if budget is not None else 0.5)
    config = CompressionConfig(
        method=args.method, layers=args.layers, drop_ratio=ratio, budget=budget,
        vision_tokens=args.vision_tokens, drop_position=args.drop_position,
    )
    sched = config.schedule(args.num_layers)
    return sched if found is None else on_layout(config, sched, found.spans)


def plot_schedules(schedules: dict[str, Schedule], path: str, title: str = "vision tokens per layer") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, sched in schedules.items():
        counts = sched.tokens_per_layer()
        ax.step(range(len(counts)), counts, where="post", label=f"{label} (avg {sched.average:.1f})")
    ax.set_xlabel("decoder layer")
    ax.set_ylabel("vision tokens")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args) -> int:
    found = layout_from_args(args)
    if found is not None:
        args.vision_tokens = found.vision_tokens  # the budget / ratio refer to this input
    sched = schedule_from_args(args, found)
    if args.json:
        print(json.dumps({
            **({"layout": {"spec": args.layout, "frames": args.video_frames, "extra_tokens": found.extra_tokens,
                           "spans": [{"grid": list(s.grid), "frames": s.frames} for s in found.spans]}} if found else {}),
            "num_layers": sched.num_layers, "vision_tokens": sched.vision_tokens,
            "stage_layers": list(sched.stage_layers), "keep_counts": list(sched.keep_counts),
            "ratio": sched.ratio, "average": sched.average, "tokens_per_layer": sched.tokens_per_layer(),
        }, indent=2))
    else:
        if found is not None:
            print(found.describe())
        print(sched.table())
    if args.plot:
        plot_schedules({args.method: sched}, args.plot)
        print(f"saved {args.plot}")
    return 0
