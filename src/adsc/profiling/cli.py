"""Analytical FLOPs and KV-cache bytes of a multimodal LLM with and without compression (``adsc profile``).

Examples:
    adsc profile --model llava-1.5-7b --budget 192 --text-tokens 64 --new-tokens 32
    adsc profile --model qwen2-vl-7b --drop-ratio 0.5 --layers 2 8 16 --per-layer --json
    adsc profile --reproduce-table4 --out results/table4
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

from ..checks import real, whole, writable_dir
from ..config import CompressionConfig
from ..config_cli import add_compression_arguments
from ..layouts import families, layout_from_args, on_layout
from .flops import Account, Conventions, account
from .shapes import PRESETS, preset


def add_arguments(p) -> None:
    p.add_argument("--model", default="llava-1.5-7b", choices=sorted(PRESETS), help="shape preset (public config values)")
    amount = add_compression_arguments(p, fields=("layers", "budget", "drop_ratio"),
                                       defaults={"layers": [2, 8, 16, 24], "budget": 192.0}, aliases=True)
    amount.add_argument("--full", action="store_true", help="no compression only")
    p.add_argument("--text-tokens", type=int, default=64, help="prompt tokens that are not image tokens")
    p.add_argument("--layout", metavar="FAMILY[:HxW]",
                   help="vision tokens of one input as the family's adapter lays it out (e.g. llava-next:672x672) instead "
                        "of the preset's image; its newline tokens count as text; the tower is then left out (its cost "
                        "depends on crops / frames, which the presets do not model); --model still gives the decoder; "
                        "families: " + ", ".join(families()))
    p.add_argument("--video-frames", type=int, metavar="N", help="with --layout: a video of N input frames")
    p.add_argument("--new-tokens", type=int, default=32, help="generated tokens (1 from prefill + decode steps)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--attention", choices=["rect", "causal"], default="rect", help="count attention as rectangles or causal triangles")
    p.add_argument("--lm-head", choices=["last", "all", "survivors"], default="last", help="prefill positions the LM head runs on")
    p.add_argument("--kv-bytes", type=int, default=2, help="bytes per cached element (2 = fp16/bf16)")
    p.add_argument("--per-layer", action="store_true", help="print one row per decoder layer")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--reproduce-table4", action="store_true", help="the paper's Table IV beside ours, with the assumptions")
    p.add_argument("--out", help="also write the output (table + JSON) into this folder")


def check_args(args) -> None:
    """Each value in its range before anything is computed or written (one-line errors, exit 2)."""
    whole("--text-tokens", args.text_tokens, 0)
    whole("--new-tokens", args.new_tokens, 1, fix=" (1 = prefill only)")
    whole("--batch", args.batch, 1)
    whole("--kv-bytes", args.kv_bytes, 1, fix=" (2 for fp16/bf16, 4 for fp32, 1 for int8)")
    if args.budget is not None:
        real("--budget", args.budget, 0.0, strict=True)
    if args.drop_ratio is not None:
        real("--drop-ratio", args.drop_ratio, 0.0, 1.0, high_open=True)
    if args.out:
        writable_dir("--out", args.out)


def run(args) -> int:
    check_args(args)
    if args.reproduce_table4:
        return _table4(args)
    shape, text_tokens, found = preset(args.model), args.text_tokens, None
    found = layout_from_args(args)
    if found is not None:
        shape = replace(shape, vision=replace(shape.vision, out_tokens=found.vision_tokens))
        text_tokens += found.extra_tokens  # newline / separator tokens: never dropped, like text
    conv = Conventions(attention=args.attention, lm_head=args.lm_head, kv_dtype_bytes=args.kv_bytes, vision=found is None)
    full = account(shape, None, text_tokens, args.new_tokens, args.batch, conv)
    results = {"full": full}
    schedule = None
    if not args.full:
        kw = {"drop_ratio": args.drop_ratio} if args.drop_ratio is not None else {"budget": args.budget}
        config = CompressionConfig(layers=tuple(args.layers), vision_tokens=shape.vision_tokens, **kw)
        schedule = config.schedule(shape.text.layers)
        if found is not None:  # what the method keeps on the layout's own spans
            schedule = on_layout(config, schedule, found.spans)
        # a compressed model's sliding cache layers keep window - 1 slots too (engine.hooks.sliding_tail)
        results["adsc"] = account(shape, schedule.tokens_per_layer(), text_tokens, args.new_tokens, args.batch, conv)
    if args.json:
        data = {k: v.to_dict() for k, v in results.items()}
        if schedule is not None:
            data["schedule"] = {"stage_layers": list(schedule.stage_layers), "keep_counts": list(schedule.keep_counts),
                                "ratio": schedule.ratio, "average": schedule.average}
        if shape.text.windows:
            data["sliding_windows"] = sliding_note(shape)
        text = json.dumps(data, indent=2)
    else:
        text = _report(results, schedule, args.per_layer)
        if shape.text.windows:
            text += "\n\n" + sliding_note(shape)
        if found is not None:
            text = found.describe() + "\n" + text
    print(text)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "profile.json" if args.json else "profile.txt"), "w") as fh:
            fh.write(text + "\n")
    return 0


def sliding_note(shape) -> str:
    """What the figures assume about a model's sliding-window layers (``adsc profile`` prints it)."""
    windows = [w for w in shape.text.windows if w is not None]
    sizes = ", ".join(str(w) for w in sorted(set(windows)))
    return (f"sliding-window layers: {len(windows)} of {shape.text.layers} (window {sizes}). Attention of a windowed layer "
            "is bounded by its window (--attention causal: min(i + 1, window) keys per query; rect: the whole prefill "
            "rectangle, which a masked kernel still computes). KV: sliding layers cache window - 1 tokens "
            "(transformers' sliding cache layers), so a decode step reads at most window keys there; compressed (adsc) "
            "too: a sliding layer keeps its stage's last window - 1 slots, which hold every kept key the window (in "
            "original positions) lets a query see, so it never caches more than the full model's. A compressed "
            "stage's window counts original positions, so min(i + 1, window) kept keys per query is an upper bound there.")


def _report(results: dict[str, Account], schedule, per_layer: bool) -> str:
    full = results["full"]
    lines = [f"{full.shape.name}: {full.shape.vision_tokens} vision + {full.text_tokens} text tokens, "
             f"{full.new_tokens} generated, batch {full.batch}; {full.conventions.describe()}"]
    if schedule is not None:
        lines.append(f"schedule: stage layers {list(schedule.stage_layers)}, keep {list(schedule.keep_counts)}, "
                     f"ratio {schedule.ratio}, average {schedule.average:.2f} vision tokens/layer")
    lines += ["", "| | total TFLOPs | prefill | decode | vision+proj | LM head | KV MB (end) | rel FLOPs | rel KV |", "|---|---|---|---|---|---|---|---|---|"]
    for name, acc in results.items():
        lines.append(
            f"| {name} | {acc.total_flops / 1e12:.4f} | {acc.prefill_flops / 1e12:.4f} | {acc.decode_flops / 1e12:.4f} "
            f"| {(acc.vision_flops + acc.projector_flops) / 1e12:.4f} | {(acc.lm_head_prefill + acc.lm_head_decode) / 1e12:.4f} "
            f"| {acc.kv_bytes / 1e6:.1f} | {acc.total_flops / full.total_flops:.3f} | {acc.kv_bytes / full.kv_bytes:.3f} |"
        )
    if per_layer:
        for name, acc in results.items():
            lines += ["", f"{name}, per decoder layer:", "layer  tokens  vision  prefill_GFLOPs  decode_GFLOPs  kv_MB"]
            for row in acc.layers:
                lines.append(f"{row.layer:>5}  {row.prompt_tokens:>6}  {row.vision_tokens:>6}  {row.prefill_flops / 1e9:>14.2f}  "
                             f"{row.decode_flops / 1e9:>13.2f}  {row.kv_bytes / 1e6:>5.2f}")
    return "\n".join(lines)


def _table4(args) -> int:
    from .table4 import format_table, reproduce, to_json

    rows = reproduce()
    table = format_table(rows)
    print(json.dumps(to_json(rows), indent=2) if args.json else table)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "table4.md"), "w") as fh:
            fh.write(table + "\n")
        with open(os.path.join(args.out, "table4.json"), "w") as fh:
            json.dump(to_json(rows), fh, indent=2)
    worst = max(max(abs(r["tflops_error"]), abs(r["kv_error"])) for r in rows)
    return 0 if worst <= 0.03 else 1
