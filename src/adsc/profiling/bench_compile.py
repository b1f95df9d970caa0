"""``adsc bench --compile``: eager vs torch.compile'd decode steps, full vs compressed, one run.

Every configuration decodes through an :class:`adsc.StageCache` (fixed per-layer capacities), the
cache transformers' compiled generation needs. Per configuration and run: one prefill, then
``--new-tokens`` decode steps, eagerly through a DynamicCache, eagerly through the StageCache, or
compiled: the decode step through ``torch.compile(model.__call__, fullgraph=True)`` (a graph break
would fail the run), the prefill's decoder layers through :func:`adsc.compile_prefill` (its graphs
counted apart). The compiled tokens must equal the eager ones, and the compilations are counted
(one decode graph is expected, at the first decode step, and none after). Reported: prefill time /
FLOPs ratio, eager and compiled; decode step time / bytes-moved ratio (weights + KV read per step,
:mod:`.flops`); host time per decode step (until the call returns, before any sync: on a GPU the
launch work; on the CPU, where the host does everything, the step itself -- on the tiny shape
almost all overhead).

Interleaved, so that ratios hold under load: each configuration runs on its own model object
over the first one's weight tensors (:func:`~.bench_models.twin`), with its own engine steps and its own
compiled step, all kept alive for the whole run (a compiled step guards on the engine's steps, so one model
switching compressions would recompile). Each round runs every mode with every configuration in
lockstep (all prefill, then decode step i of each before step i + 1 of any; the order rotates by
round); a ratio is the median of paired ratios -- a configuration's decode step over the full
model's same step, milliseconds apart, or its prefill over the full model's of the same round --
reported with the 95 % confidence interval of that median (and the quartiles of the pairs).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from dataclasses import dataclass, field

import torch

from .. import CompressionConfig, compile_prefill, compress
from ..engine.cache import StageCache
from ..tiny import IMAGE_TOKEN
from .bench_models import build_inputs, build_model, twin
from .flops import Conventions, account
from .measure import text_tokens
from .shapes import shape_from_config

MODES = ("eager_dynamic", "eager", "compiled")  # DynamicCache eager, StageCache eager, StageCache compiled


def run(args, environment, configurations) -> int:
    """``environment`` and ``configurations`` are bench.py's (passed in: this module is imported from it)."""
    gpu = args.device == "cuda"
    size = args.size or ("7b" if gpu else "tiny")
    steps = args.new_tokens or 16
    dtype = torch.bfloat16 if gpu else torch.float32
    attn = (args.attn or ["sdpa"])[0]
    out_dir = args.out or os.path.join("results", "bench_compile_gpu" if gpu else "bench_compile_cpu")
    if not gpu:
        torch.set_num_threads(args.threads)
    started = time.time()
    model = build_model(size, attn, dtype, args.device)
    shape = shape_from_config(model.config, f"llava-{size}")
    configs, skipped = configurations(model, args, shape.text.layers, ("adsc",))
    batches = args.batch or ([1, 32] if gpu else [1])
    env = environment(args, size, configs[1][1].layers, batches, [attn])
    env.update(mode=args.compile_mode, decode_steps=steps, clock="wall" if gpu else "process_cpu",
               order="interleaved rounds, rotating; paired per-round ratios")
    result = {"environment": env, "runs": [], "skipped": skipped, "complete": False}
    deadline = started + args.max_seconds if args.max_seconds else math.inf
    for i, batch in enumerate(batches):
        if i and time.time() > deadline:
            result["skipped"] += [{"config": f"batch {b}", "reason": f"--max-seconds {args.max_seconds:g} had passed"}
                                  for b in batches[i:]]
            text = _write(result, out_dir, started)
            break
        inputs = build_inputs(batch, args.device, dtype)
        rows = _measure(model, inputs, configs, steps, args, gpu, deadline)
        _add_analytical(rows, shape, inputs, steps, batch, dtype)
        result["runs"].append({"attn": attn, "batch": batch, "rows": rows})
        result["complete"] = i == len(batches) - 1
        text = _write(result, out_dir, started)  # after every batch: a run cut off keeps the batches it finished
    print(text)
    return 0


def _write(result, out_dir: str, started: float) -> str:
    result["targets"] = _targets(result)
    result["environment"]["wall_s"] = round(time.time() - started, 1)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as fh:
        json.dump(result, fh, indent=2)
    text = render(result)
    with open(os.path.join(out_dir, "results.md"), "w") as fh:
        fh.write(text)
    return text


def _clock(gpu: bool) -> float:
    return time.perf_counter() if gpu else time.process_time()


def _lockstep(arms, mode: str, inputs, steps: int, gpu: bool) -> list[dict]:
    """One run of every arm in ``mode``, interleaved step by step: each arm prefills (eagerly, as
    ``generate`` does; into its StageCache, reset, or a new DynamicCache), then greedy decode step
    ``i`` runs for every arm before step ``i + 1`` does, so the runs a paired ratio compares are
    milliseconds apart and load from other processes hits them alike."""
    from transformers import DynamicCache

    sync = torch.cuda.synchronize if gpu else (lambda: None)
    runs = []
    with torch.no_grad():
        for arm in arms:
            cache = DynamicCache(config=arm.model.config) if mode == "eager_dynamic" else arm.cache
            if mode != "eager_dynamic":
                cache.reset()
            if arm.prefill is not None:  # compiled mode: the prefill's decoder layers compiled too
                arm.prefill.enabled = mode == "compiled"
            sync()
            t0 = _clock(gpu)
            logits = arm.model(**inputs, cache=cache, use_cache=True, logits_to_keep=1).logits
            sync()
            token = logits[:, -1:].argmax(-1)
            runs.append({"prefill_s": _clock(gpu) - t0, "step_s": [], "host_s": [], "tokens": [token], "cache": cache,
                         "step_fn": arm.compiled if mode == "compiled" else arm.model.__call__})
        for _ in range(steps):
            for run in runs:
                sync()
                t0 = _clock(gpu)
                # no attention_mask: the benchmark's prompts are unpadded, so the model builds its own
                # from the cache's fixed sizes (inside the compiled graph)
                out = run["step_fn"](input_ids=run["tokens"][-1], cache=run["cache"], use_cache=True)
                run["host_s"].append(_clock(gpu) - t0)  # before the sync: what the host spent issuing the step
                token = out.logits[:, -1:].argmax(-1)
                sync()
                run["step_s"].append(_clock(gpu) - t0)
                run["tokens"].append(token)
    for run in runs:
        del run["cache"], run["step_fn"]
        run["tokens"] = torch.cat(run["tokens"], 1).cpu()
    return runs


def _counting_backend(cudagraphs: bool):
    """An inductor backend that counts the graphs it compiles (recompilations included)."""
    from torch._inductor.compile_fx import compile_fx

    graphs = []

    def backend(graph, example_inputs):
        graphs.append(len(graph.graph.nodes))
        return compile_fx(graph, example_inputs, config_patches={"triton.cudagraphs": cudagraphs})

    return backend, graphs


def _counting_compile(fn, mode: str):
    """torch.compile(fn) through inductor, counting the graphs it compiles (recompilations included)."""
    backend, graphs = _counting_backend(mode == "reduce-overhead")
    return torch.compile(fn, backend=backend, fullgraph=True), graphs


def _counting_prefill(model):
    """:func:`adsc.compile_prefill` through inductor, counting its graphs. No CUDA graphs: a prefill's
    cache tensors are made inside its graphs, and a CUDA graph's outputs are overwritten by its
    next replay."""
    backend, graphs = _counting_backend(False)
    return compile_prefill(model, backend=backend), graphs


@dataclass
class _Arm:
    """One configuration: its model (a twin of the first), handle, StageCache and compiled step."""

    label: str
    config: CompressionConfig | None
    model: object
    handle: object
    cache: StageCache
    compiled: object
    graphs: list
    runs: dict = field(default_factory=lambda: {mode: [] for mode in MODES})  # mode -> one run per round
    prefill: object = None  # its CompiledPrefill (adsc.compile_prefill), enabled in compiled mode only
    prefill_graphs: list = field(default_factory=list)
    prefill_graphs_first: int = 0  # prefill graphs after the compiling run (more later = recompiled)
    first: dict | None = None  # the compiling run
    compile_s: float = 0.0


def _measure(model, inputs, configs, steps, args, gpu, deadline: float = math.inf) -> list[dict]:
    torch._dynamo.reset()
    arms = []
    # every arm's step is one entry in the same code objects' caches: room for all of them
    with torch._dynamo.config.patch(recompile_limit=max(8, 2 * len(configs))):
        try:
            for i, (label, config) in enumerate(configs):
                arm_model = model if i == 0 else twin(model)
                handle = compress(arm_model, config) if config is not None else None
                compiled, graphs = _counting_compile(arm_model.__call__, args.compile_mode)
                arms.append(_Arm(label, config, arm_model, handle, StageCache(arm_model.config, room=steps), compiled, graphs))
                arms[-1].prefill, arms[-1].prefill_graphs = _counting_prefill(arm_model)
            for mode in MODES[:2]:
                for _ in range(args.warmup):
                    _lockstep(arms, mode, inputs, steps, gpu)
            for arm in arms:  # the first compiled run compiles (at its first decode step)
                if not args.warmup:  # measured rounds prefill into a used cache: compile for that one
                    _lockstep([arm], "eager", inputs, steps, gpu)  # (a fresh cache is another graph per layer)
                t0 = time.perf_counter()
                arm.first = _lockstep([arm], "compiled", inputs, steps, gpu)[0]
                arm.compile_s = time.perf_counter() - t0
                arm.prefill_graphs_first = len(arm.prefill_graphs)
            for _ in range(args.warmup):  # e.g. CUDA graphs record at the first runs after compiling
                _lockstep(arms, "compiled", inputs, steps, gpu)
            for trial in range(args.trials):
                if trial and time.time() > deadline:  # --max-seconds: the rounds measured so far stand
                    break
                shift = trial % len(arms)  # rotate the order: no configuration always runs first or last
                order = arms[shift:] + arms[:shift]
                for mode in MODES:
                    for arm, run in zip(order, _lockstep(order, mode, inputs, steps, gpu)):
                        arm.runs[mode].append(run)
            return [_row(arm, arms[0]) for arm in arms]
        finally:
            for arm in arms:
                if arm.handle is not None:
                    arm.handle.remove()
                if arm.prefill is not None:
                    arm.prefill.remove()
            torch._dynamo.reset()


def _paired(runs: list[dict], full: list[dict], key: str) -> list[float]:
    """This configuration's times over the full model's, pair by pair: per round for the prefill,
    per round and decode step for the steps (``key`` = step_s / host_s)."""
    if key == "prefill_s":
        return [r[key] / f[key] for r, f in zip(runs, full)]
    return [a / b for r, f in zip(runs, full) for a, b in zip(r[key], f[key])]


def _spread(ratios: list[float]) -> tuple[float, list[float]]:
    """(median, [first quartile, third quartile]): how single pairs spread under this machine's load."""
    if len(ratios) < 2:
        return ratios[0], [ratios[0], ratios[0]]
    q1, med, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return med, [q1, q3]


def _median_interval(ratios: list[float]) -> list[float]:
    """95 % confidence interval of the median ratio, distribution-free: the order statistics
    n/2 -+ 1.96 sqrt(n)/2 of the n pairs (the quartiles say how single pairs spread, this how well
    their median is known: ~4x narrower at 256 pairs; it treats pairs as independent)."""
    xs, n = sorted(ratios), len(ratios)
    half = 0.98 * math.sqrt(n)
    return [xs[max(0, math.floor(n / 2 - half))], xs[min(n - 1, math.ceil(n / 2 + half) - 1)]]


def _row(arm: _Arm, full: _Arm) -> dict:
    trace = arm.handle.last_trace if arm.handle is not None else None
    reference = arm.runs["eager"][0]["tokens"]
    every = [arm.first] + [r for mode in MODES for r in arm.runs[mode]]
    row = {"config": arm.label, "budget": None if arm.config is None else arm.config.budget,
           "vision_per_layer": trace.vision_tokens(0) if trace is not None else None,
           "kv_capacities": arm.cache.capacities(), "compile_s": arm.compile_s, "compilations": len(arm.graphs),
           "recompilations_after_first": len(arm.graphs) - 1,
           "prefill_compilations": arm.prefill_graphs_first,
           "prefill_recompilations_after_first": len(arm.prefill_graphs) - arm.prefill_graphs_first,
           "compiled_tokens_equal_eager": all(torch.equal(r["tokens"], reference) for r in every),
           "ratio": {}, "ratio_quartiles": {}, "ratio_ci": {}, "pairs": {}}
    for mode in MODES:
        runs = arm.runs[mode]
        steps = [s for r in runs for s in r["step_s"]]
        row[mode] = {"prefill_s": statistics.median(r["prefill_s"] for r in runs),
                     "decode_step_s": statistics.median(steps),
                     "host_step_s": statistics.median(s for r in runs for s in r["host_s"]),
                     "decode_step_s_quartiles": statistics.quantiles(steps, n=4, method="inclusive")[::2] if len(steps) > 1 else [steps[0]] * 2,
                     "per_round_prefill_s": [r["prefill_s"] for r in runs]}
        for key, name in (("prefill_s", "prefill"), ("step_s", "decode_step"), ("host_s", "host_step")):
            ratios = _paired(runs, full.runs[mode], key)
            row["ratio"][f"{mode}_{name}"], row["ratio_quartiles"][f"{mode}_{name}"] = _spread(ratios)
            row["pairs"][f"{mode}_{name}"] = len(ratios)
            row["ratio_ci"][f"{mode}_{name}"] = _median_interval(ratios)
    return row


def _add_analytical(rows, shape, inputs, steps, batch, dtype) -> None:
    """Analytical prefill FLOPs, bytes moved per decode step and KV bytes, and their ratios to full."""
    text = text_tokens(inputs["input_ids"], IMAGE_TOKEN)
    size = torch.finfo(dtype).bits // 8
    conv = Conventions(lm_head="last", kv_dtype_bytes=size, weight_dtype_bytes=size, kv_read="capacity")
    for row in rows:
        acc = account(shape, row["vision_per_layer"], text, steps + 1, batch, conv)
        row["flops_prefill"], row["decode_step_bytes"], row["kv_bytes_analytical"] = (
            acc.prefill_flops, acc.decode_step_bytes, acc.kv_bytes)
        row["ratio"]["prefill_flops"] = row["flops_prefill"] / rows[0]["flops_prefill"]
        row["ratio"]["decode_bytes"] = row["decode_step_bytes"] / rows[0]["decode_step_bytes"]


def _targets(result) -> list[dict]:
    out = []

    def add(target, value, met, row, key=None, scale=1.0):
        item = {"target": target, "value": value, "met": met}
        if key is not None:
            lo, hi = (q / scale for q in row["ratio_quartiles"][key])
            c_lo, c_hi = (q / scale for q in row["ratio_ci"][key])
            item["note"] = f"95 % CI of the median {c_lo:.3f}..{c_hi:.3f}, quartiles {lo:.3f}..{hi:.3f} over {row['pairs'][key]} pairs"
        out.append(item)

    for run in result["runs"]:
        tag = f"batch {run['batch']}"
        for row in run["rows"][1:]:
            r, name = row["ratio"], row["config"]
            add(f"{name}: compiled tokens == eager tokens, no recompilation ({tag})", row["recompilations_after_first"],
                row["compiled_tokens_equal_eager"] and row["recompilations_after_first"] == 0, row)
            for mode in MODES[:2]:
                key = f"{mode}_host_step"
                add(f"{name}: {mode} host time per decode step <= 1.03x full ({tag})", r[key], r[key] <= 1.03, row, key)
            for mode in MODES:
                key = f"{mode}_decode_step"
                gap = r[key] / r["decode_bytes"]
                add(f"{name}: {mode} decode step time ratio <= 1.10x bytes ratio ({tag})", gap, gap <= 1.10, row, key,
                    r["decode_bytes"])
            gap = r["eager_prefill"] / r["prefill_flops"]
            add(f"{name}: prefill time ratio <= 1.15x FLOPs ratio ({tag})", gap, gap <= 1.15, row, "eager_prefill",
                r["prefill_flops"])
            gap = r["compiled_prefill"] / r["prefill_flops"]
            add(f"{name}: compiled prefill time ratio <= 1.15x FLOPs ratio, no prefill recompilation ({tag})", gap,
                gap <= 1.15 and row["prefill_recompilations_after_first"] == 0, row, "compiled_prefill", r["prefill_flops"])
    return out


def _ratio(row, key) -> str:
    lo, hi = row["ratio_ci"][key]
    return f"{row['ratio'][key]:.3f} ({lo:.3f}-{hi:.3f})"


def _prefill_table(rows) -> list[str]:
    """Eager (StageCache) vs compiled prefill (:func:`adsc.compile_prefill`), each paired with the
    full model's prefill of the same mode and round, and over the FLOPs ratio."""
    lines = ["| config | prefill ms: eager / compiled | prefill / full: eager | compiled | FLOPs / full | "
             "time / FLOPs: eager | compiled | prefill graphs | recompiles |", "|" + "---|" * 9]
    for row in rows:
        r, flops = row["ratio"], row["ratio"]["prefill_flops"]
        paired = (f"{_ratio(row, 'eager_prefill')} | {_ratio(row, 'compiled_prefill')} | {flops:.3f} | "
                  f"{r['eager_prefill'] / flops:.2f} | {r['compiled_prefill'] / flops:.2f}")
        lines.append(f"| {row['config']} | {row['eager']['prefill_s'] * 1e3:.1f} / {row['compiled']['prefill_s'] * 1e3:.1f} "
                     f"| {paired} | {row['prefill_compilations']} | {row['prefill_recompilations_after_first']} |")
    return lines


def render(result) -> str:
    env = result["environment"]
    lines = [f"# adsc bench --compile ({env['size']}, {env['date']})", "",
             f"`{env['command']}`; torch {env['torch']}, transformers {env['transformers']}, {env.get('gpu', env['machine'])}, "
             f"{env['threads']} thread(s), load average at start {env.get('load_average')}, {env['decode_steps']} decode steps, "
             f"{env['warmup']} warm-up + {env['trials']} interleaved rounds, clock {env['clock']}, mode {env['mode']}, "
             f"{env['wall_s']} s", "",
             "Times are medians (prefill: over rounds; steps: over every decode step of every round). Ratios are "
             "paired: the configurations run in lockstep, step i of each before step i + 1 of any, so a decode step's "
             "ratio is this configuration's step over the full model's same step (milliseconds apart), a prefill's over "
             "the full model's prefill of the same round; the median of those, with its 95 % confidence interval in "
             "brackets (order statistics of the pairs; the targets also give the pairs' quartiles).", ""]
    load, cores = (env.get("load_average") or [0])[0], env.get("cpu_count") or 1
    if load > cores:
        lines += [f"**Measured on a shared machine**: load average {load:.1f} on {cores} cores at the start (other "
                  "processes); single timings swing by tens of percent there, the paired ratios much less: read those "
                  "with their intervals.", ""]
    for run in result["runs"]:
        rounds = run["rows"][0]["pairs"]["eager_prefill"]
        lines += [f"## {run['attn']}, batch {run['batch']} ({rounds} round{'s' * (rounds != 1)})", "",
                  "| config | prefill ms | step ms: dynamic / stage / compiled | host ms: dynamic / stage / compiled | "
                  "compile s | tokens equal | recompiles |", "|" + "---|" * 7]
        for row in run["rows"]:
            steps = " / ".join(f"{row[m]['decode_step_s'] * 1e3:.2f}" for m in MODES)
            host = " / ".join(f"{row[m]['host_step_s'] * 1e3:.2f}" for m in MODES)
            lines.append(f"| {row['config']} | {row['eager']['prefill_s'] * 1e3:.1f} | {steps} | {host} | {row['compile_s']:.0f} "
                         f"| {row['compiled_tokens_equal_eager']} | {row['recompilations_after_first']} |")
        lines += ["", "| config | prefill / full | FLOPs / full | step / full: dynamic | stage | compiled | bytes / full "
                  "| host / full: dynamic | stage | compiled |", "|" + "---|" * 10]
        for row in run["rows"][1:]:
            r = row["ratio"]
            lines.append(f"| {row['config']} | {_ratio(row, 'eager_prefill')} | {r['prefill_flops']:.3f} | "
                         + " | ".join(_ratio(row, f"{m}_decode_step") for m in MODES) + f" | {r['decode_bytes']:.3f} | "
                         + " | ".join(_ratio(row, f"{m}_host_step") for m in MODES) + " |")
        lines += [""] + _prefill_table(run["rows"]) + [""]
    if result["skipped"] or not result.get("complete", True):
        lines += ["## Not measured", ""]
        if not result.get("complete", True):
            lines += ["**Incomplete**: the run stopped (or was cut off) before its last batch.", ""]
        lines += [f"- {s['config']}: {s['reason']}" for s in result["skipped"]] + [""]
    lines += ["## Targets", ""]
    for t in result["targets"]:
        value = f"{t['value']:.3f}" if isinstance(t["value"], float) else t["value"]
        note = f" ({t['note']})" if "note" in t else ""
        lines.append(f"- {'met' if t['met'] else 'MISSED'}: {t['target']}: {value}{note}")
    return "\n".join(lines) + "\n"
