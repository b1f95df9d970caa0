"""Wall-clock benchmark: full vs compressed vs baselines, prefill / decode / end-to-end / memory (``adsc bench``).

CPU mode (default) runs a LLaVA-shaped model with the real 576-token image input in about two
minutes on 2 cores; GPU mode (``--device cuda``) runs the exact LLaVA-1.5-7B shape in bf16 with
SDPA and FlashAttention-2, batch 1 and 32. Weights are random: speed does not depend on them.
Every configuration is measured in each trial round, in rotating order, so that load from
other processes hits all of them alike; medians and spreads over the rounds are reported.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time

import torch

from .. import CompressionConfig, cache_bytes, checks, compress
from ..config_cli import add_compression_arguments, compression_from_args
from ..methods import get_method
from ..tiny import IMAGE_TOKEN
from .bench_models import build_inputs, build_model, scaled_layers
from .flops import Conventions, account
from .measure import text_tokens
from .shapes import shape_from_config

METHODS = ("adsc", "fastv", "pyramiddrop", "tome")  # "random" on request: same FLOPs as adsc
BUDGETS = (192.0, 128.0, 64.0)
SINGLE = ("method", "budget", "drop_ratio", "pattern", "drop_position")  # flags that ask for one configuration


def add_arguments(p) -> None:
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--size", choices=["cpu", "tiny", "7b"], help="model shape (default: cpu on CPU, 7b on CUDA)")
    add_compression_arguments(
        p, fields=("method", "layers", "budget", "drop_ratio", "pattern", "drop_position"),
        title="one configuration (the flags every adsc command takes; measured beside full and noop)")
    sweep = p.add_argument_group(
        "sweep (lists: every method at every budget)",
        "Used when none of --method / --budget / --drop-ratio is given (--layers then sets the sweep's pruning "
        "layers; default 2 8 16 24 scaled to the model's depth, each method's own equivalent of them).")
    sweep.add_argument("--methods", nargs="+", metavar="METHOD",
                       help=f"methods of the sweep (default {' '.join(METHODS)}; with --compile: adsc); unavailable ones "
                            "are skipped with a note")
    sweep.add_argument("--budgets", type=float, nargs="+", metavar="BUDGET",
                       help=f"budgets of the sweep (default {' '.join(f'{b:g}' for b in BUDGETS)})")
    p.add_argument("--new-tokens", type=int, help="generated tokens per end-to-end run (default: 8 on CPU, 32 on CUDA)")
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--prefill-reps", type=int, default=2, help="prefills per round; the fastest counts (drops interference spikes)")
    p.add_argument("--batch", type=int, nargs="+", help="batch sizes (default: 1 on CPU, 1 32 on CUDA)")
    p.add_argument("--attn", nargs="+", help="attention kernels (default: sdpa on CPU; sdpa flash_attention_2 on CUDA)")
    # 1 thread by default: on a shared 2-core machine, 2 threads contend with other processes
    # and their spin-waits made a prefill 4x slower and 3x noisier than one thread.
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    p.add_argument("--memory-budget-gb", type=float, default=80.0, help="GPU: memory budget for the largest-batch estimate")
    p.add_argument("--out", default=None, help="results folder (default results/bench_cpu or results/bench_gpu)")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--compile", action="store_true",
                   help="eager vs torch.compile'd decode through adsc.StageCache (and prefill, adsc.compile_prefill), full vs noop vs the configuration or sweep "
                        "(sweep default: adsc at --budgets), interleaved rounds (bench_compile.py; default size tiny on CPU, "
                        "--new-tokens = decode steps, default 16)")
    p.add_argument("--compile-mode", default="default", choices=["default", "reduce-overhead"],
                   help="with --compile: reduce-overhead adds CUDA graphs (GPU)")
    p.add_argument("--max-seconds", type=float, metavar="S",
                   help="with --compile: once S seconds have passed, measure no more rounds (at least one per batch) and "
                        "no further batch; results are written after every batch, so a run cut off keeps what it measured")


def check_arguments(args) -> None:
    """Every number and path the benchmark takes, checked before any model is built (one line, exit 2)."""
    for flag, value, low in (("--trials", args.trials, 1), ("--warmup", args.warmup, 0),
                             ("--prefill-reps", args.prefill_reps, 1), ("--threads", args.threads, 1)):
        checks.whole(flag, value, low)
    if args.new_tokens is not None:
        checks.whole("--new-tokens", args.new_tokens, 1)
    for batch in args.batch or ():
        checks.whole("--batch", batch, 1)
    for budget in args.budgets or ():
        checks.real("--budgets", budget, 0, strict=True)
    if args.budget is not None:
        checks.real("--budget", args.budget, 0, strict=True)
    if args.drop_ratio is not None:
        checks.real("--drop-ratio", args.drop_ratio, 0, 1, high_open=True)
    single = [f"--{f.replace('_', '-')}" for f in SINGLE if getattr(args, f) is not None]
    if single and (args.methods or args.budgets):
        raise ValueError(f"{' '.join(single)} ask for one configuration, --methods / --budgets for a sweep: give one of the "
                         "two (e.g. --method fastv --budget 128, or --methods fastv --budgets 192 128)")
    for layer in args.layers or ():
        checks.whole("--layers", layer, 0)
    checks.real("--memory-budget-gb", args.memory_budget_gb, 0, strict=True)
    if args.max_seconds is not None:
        if not args.compile:
            raise ValueError("--max-seconds bounds a --compile run: add --compile, or drop --max-seconds")
        checks.real("--max-seconds", args.max_seconds, 0, strict=True)
    if args.out:
        checks.writable_dir("--out", args.out)


def run(args) -> int:
    check_arguments(args)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("adsc bench: error: --device cuda needs a CUDA GPU and torch.cuda.is_available() is False here; "
              "GPU mode was not run. Use --device cpu for the scaled CPU benchmark.", file=sys.stderr)
        return 2
    if args.compile:
        from .bench_compile import run as run_compile

        return run_compile(args, _environment, configurations)
    gpu = args.device == "cuda"
    size = args.size or ("7b" if gpu else "cpu")
    args.new_tokens = args.new_tokens or (32 if gpu else 8)
    dtype = torch.bfloat16 if gpu else torch.float32
    batches = args.batch or ([1, 32] if gpu else [1])
    kernels = args.attn or (["sdpa"] + (["flash_attention_2"] if gpu and _has_flash() else []) if gpu else ["sdpa"])
    out_dir = args.out or os.path.join("results", "bench_gpu" if gpu else "bench_cpu")
    if not gpu:
        torch.set_num_threads(args.threads)
    started = time.time()
    model = build_model(size, kernels[0], dtype, args.device)
    shape = shape_from_config(model.config, f"llava-{size}")
    configs, skipped = configurations(model, args, shape.text.layers, METHODS)
    layers = configs[1][1].layers  # noop's: the configurations' pruning layers
    result = {"environment": _environment(args, size, layers, batches, kernels), "runs": [], "skipped": skipped}
    for attn in kernels:
        model.set_attn_implementation(attn)
        for batch in batches:
            inputs = build_inputs(batch, args.device, dtype)
            rows = _measure(model, inputs, configs, args, gpu)
            _add_flops(rows, shape, inputs, args.new_tokens, batch, dtype)
            _add_ratios(rows)
            result["runs"].append({"attn": attn, "batch": batch, "rows": rows})
            if gpu:
                _max_batch(rows, args.memory_budget_gb, batch)
    result["targets"] = _targets(result, gpu)
    result["environment"]["wall_s"] = round(time.time() - started, 1)
    from .report import write_results

    paths = write_results(result, out_dir, with_plot=not args.no_plot)
    print(open(paths["md"]).read())
    return 0


def _has_flash() -> bool:
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return False
    return True


def _environment(args, size, layers, batches, kernels) -> dict:
    import transformers

    env = {
        "command": "adsc bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"] else "adsc bench (API)",
        "size": size, "pruning_layers": list(layers), "batches": batches, "attn": kernels,
        "new_tokens": args.new_tokens, "trials": args.trials, "warmup": args.warmup,
        "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if args.device == "cuda":
        env["gpu"] = torch.cuda.get_device_name(0)
    try:
        env["load_average"] = os.getloadavg()
    except OSError:
        pass
    return env


def configurations(model, args, num_layers: int, methods: tuple[str, ...]) -> tuple[list[tuple[str, CompressionConfig | None]], list[dict]]:
    """(label, config) pairs: full, an attached compression that drops nothing (the engine's overhead
    alone), then the configuration the shared flags describe, or else the sweep (every method of
    ``--methods``, default ``methods``, at every budget of ``--budgets``); and the sweep's entries
    that failed to attach, with the reason."""
    scaled = tuple(args.layers) if args.layers else scaled_layers(num_layers)
    if any(getattr(args, f) is not None for f in SINGLE):
        method = args.method or "adsc"
        config = compression_from_args(args, fallback={"layers": get_method(method).layers_like(scaled)})
        amount = f"{config.budget:g}" if config.budget is not None else f"drop{config.drop_ratio:g}"
        compress(model, config).remove()  # asked for by name: a failure is the command's error
        return [("full", None), ("noop", CompressionConfig(layers=config.layers, drop_ratio=0.0)),
                (f"{config.method}@{amount}", config)], []
    configs = [("full", None), ("noop", CompressionConfig(layers=scaled, drop_ratio=0.0))]
    skipped = []
    for method in args.methods or methods:
        for budget in args.budgets or BUDGETS:
            label = f"{method}@{budget:g}"
            try:  # a baseline that has not landed, or rejects these settings, is reported and skipped
                # each method's layers for these ADSC layers (FastV's K and ToMe's start: the first)
                config = CompressionConfig(method=method, layers=get_method(method).layers_like(scaled), budget=budget)
                compress(model, config).remove()
            except Exception as err:  # noqa: BLE001 -- any failure of a method must not stop the others
                skipped.append({"config": label, "reason": f"{type(err).__name__}: {err}".splitlines()[0][:200]})
                continue
            configs.append((label, config))
    return configs, skipped


def _sync(gpu: bool) -> None:
    if gpu:
        torch.cuda.synchronize()


def _timed(fn, gpu: bool):
    """(primary seconds, wall seconds, result). On CPU the primary clock is this process's CPU
    time: with one thread it is the compute time, and unlike wall time it does not count the
    time other processes on a shared machine hold the core. On GPU: wall time after a sync."""
    _sync(gpu)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = fn()
    _sync(gpu)
    wall = time.perf_counter() - wall0
    return (wall if gpu else time.process_time() - cpu0), wall, result


def _once(model, inputs, config, args, gpu) -> dict:
    """One round of one configuration: the best of ``prefill_reps`` prefills, then one generate."""
    handle = compress(model, config) if config is not None else None
    try:
        with torch.no_grad():
            prefills = [_timed(lambda: model(**inputs, use_cache=True, logits_to_keep=1), gpu) for _ in range(args.prefill_reps)]
            if gpu:
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
            e2e, e2e_wall, out = _timed(lambda: model.generate(
                **inputs, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=False,
                return_dict_in_generate=True), gpu)
        row = {"prefill_s": min(p[0] for p in prefills), "prefill_wall_s": min(p[1] for p in prefills),
               "e2e_s": e2e, "e2e_wall_s": e2e_wall, "kv_bytes": cache_bytes(out.past_key_values)}
        if gpu:
            row["peak_bytes"] = torch.cuda.max_memory_allocated() - base
        if handle is not None and handle.last_trace is not None:
            row["vision_per_layer"] = handle.last_trace.vision_tokens(0)
        return row
    finally:
        if handle is not None:
            handle.remove()


def _measure(model, inputs, configs, args, gpu) -> list[dict]:
    samples = {label: [] for label, _ in configs}
    for _ in range(args.warmup):
        for label, config in configs:
            _once(model, inputs, config, args, gpu)
    for trial in range(args.trials):
        shift = trial % len(configs)  # rotate the order: no configuration always runs first or last
        for label, config in configs[shift:] + configs[:shift]:
            samples[label].append(_once(model, inputs, config, args, gpu))
    batch = inputs["input_ids"].shape[0]
    full = samples[configs[0][0]]
    rows = []
    for label, config in configs:
        runs = samples[label]
        # decode = generate minus its prefill; floored so a noisy round cannot divide by ~0
        decode = [max(r["e2e_s"] - r["prefill_s"], 0.05 * r["e2e_s"]) for r in runs]
        full_decode = [max(r["e2e_s"] - r["prefill_s"], 0.05 * r["e2e_s"]) for r in full]
        row = {
            "config": label, "method": "full" if config is None else config.method,
            "budget": None if config is None else config.budget,
            "clock": "wall" if gpu else "process_cpu",
            "prefill_s": _stats([r["prefill_s"] for r in runs]),
            "e2e_s": _stats([r["e2e_s"] for r in runs]),
            "prefill_wall_s": _stats([r["prefill_wall_s"] for r in runs]),
            "e2e_wall_s": _stats([r["e2e_wall_s"] for r in runs]),
            "decode_tokens_per_s": _stats([batch * (args.new_tokens - 1) / d for d in decode]),
            "kv_bytes": runs[-1]["kv_bytes"],
            "vision_per_layer": runs[-1].get("vision_per_layer"),
            # paired ratios: each round against the full model of the same round, then the median
            "ratio": {
                "prefill_time": statistics.median(r["prefill_s"] / f["prefill_s"] for r, f in zip(runs, full)),
                "e2e_time": statistics.median(r["e2e_s"] / f["e2e_s"] for r, f in zip(runs, full)),
                "decode_tps": statistics.median(fd / d for d, fd in zip(decode, full_decode)),
                "prefill_wall_time": statistics.median(r["prefill_wall_s"] / f["prefill_wall_s"] for r, f in zip(runs, full)),
            },
            # the per-round prefill ratios' range: the resolution of the medians above
            "prefill_time_ratio_range": [min(r["prefill_s"] / f["prefill_s"] for r, f in zip(runs, full)),
                                         max(r["prefill_s"] / f["prefill_s"] for r, f in zip(runs, full))],
        }
        if gpu:
            row["peak_bytes"] = max(r["peak_bytes"] for r in runs)
        rows.append(row)
    return rows


def _stats(values: list[float]) -> dict:
    med = statistics.median(values)
    return {"median": med, "min": min(values), "max": max(values), "spread": (max(values) - min(values)) / med if med else 0.0,
            "n": len(values)}


def _add_flops(rows, shape, inputs, new_tokens, batch, dtype) -> None:
    """Analytical prefill/total FLOPs and KV bytes of each configuration, from the layers' real token counts."""
    text = text_tokens(inputs["input_ids"], IMAGE_TOKEN)
    conv = Conventions(lm_head="last", kv_dtype_bytes=torch.finfo(dtype).bits // 8)
    for row in rows:
        acc = account(shape, row["vision_per_layer"], text, new_tokens, batch, conv)
        row["flops_prefill"], row["flops_total"], row["kv_bytes_analytical"] = acc.prefill_flops, acc.total_flops, acc.kv_bytes


def _add_ratios(rows) -> None:
    full = rows[0]
    for row in rows:
        row["ratio"]["prefill_flops"] = row["flops_prefill"] / full["flops_prefill"]
        row["ratio"]["kv"] = row["kv_bytes"] / full["kv_bytes"]
        if "peak_bytes" in row:
            row["ratio"]["peak_memory"] = row["peak_bytes"] / full["peak_bytes"]


def _max_batch(rows, budget_gb, batch) -> None:
    """Largest batch whose weights + per-sample peak fit the budget, from this batch's measured peak."""
    weights = torch.cuda.memory_allocated()  # after the runs only the model (and inputs) remain
    for row in rows:
        per_sample = row["peak_bytes"] / batch
        row["max_batch_in_budget"] = int(max(budget_gb * 1e9 - weights, 0) // per_sample) if per_sample else None


def _targets(result, gpu) -> list[dict]:
    """The issue's targets, each with the measured value and whether it is met."""
    out = []

    def find(run, label):
        return next((r for r in run["rows"] if r["config"] == label), None)

    for run in result["runs"]:
        tag = f"{run['attn']}, batch {run['batch']}"
        r192, r64, noop = find(run, "adsc@192"), find(run, "adsc@64"), find(run, "noop")
        if not gpu:
            if r192:
                gap = r192["ratio"]["prefill_time"] / r192["ratio"]["prefill_flops"]
                out.append({"target": f"prefill time ratio at 192 within 1.15x of the FLOPs ratio ({tag})", "value": gap, "met": gap <= 1.15})
            if noop:
                over = noop["ratio"]["prefill_time"] - 1
                lo, hi = noop["prefill_time_ratio_range"]
                out.append({"target": f"overhead of a compression that drops nothing <= 3 % (prefill, {tag})", "value": over, "met": over <= 0.03,
                            "note": f"per-round ratios {lo:.3f}..{hi:.3f}: the noise floor of this machine"})
                over_e2e = noop["ratio"]["e2e_time"] - 1
                out.append({"target": f"overhead of a compression that drops nothing <= 3 % (end-to-end, {tag})", "value": over_e2e, "met": over_e2e <= 0.03})
        else:
            if r192:
                s = 1 / r192["ratio"]["prefill_time"]
                out.append({"target": f"prefill speedup >= 2.0x at 192 ({tag})", "value": s, "met": s >= 2.0})
            if r64:
                s = 1 / r64["ratio"]["prefill_time"]
                out.append({"target": f"prefill speedup >= 3.0x at 64 ({tag})", "value": s, "met": s >= 3.0})
            if r192 and run["batch"] >= 32:
                s = r192["ratio"]["decode_tps"]
                out.append({"target": f"decode throughput >= 1.8x at 192 ({tag})", "value": s, "met": s >= 1.8})
            if r192 and r192.get("max_batch_in_budget") and run["rows"][0].get("max_batch_in_budget"):
                grow = r192["max_batch_in_budget"] / run["rows"][0]["max_batch_in_budget"]
                need = 0.95 / r192["ratio"]["kv"]  # the bar: 0.95x of what the KV ratio allows
                out.append({"target": f"largest batch in the memory budget grows >= 0.95x the KV ratio = {need:.2f}x ({tag})",
                            "value": grow, "met": grow >= need})
    return out

