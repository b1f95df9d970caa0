"""``adsc bench --compile``: eager vs torch.compile'd decode steps, full vs compressed, one run.

Every configuration decodes through an :class:`adsc.StageCache` (fixed per-layer capacities), the
cache transformers' compiled generation needs. Per configuration: one prefill (eager, as
``generate`` runs it), then ``--new-tokens`` decode steps, first eagerly, then through
``torch.compile(model.__call__, fullgraph=True)`` (a graph break would fail the run); the compiled
tokens must equal the eager ones, and the compilations are counted (one is expected: the first
decode step; none after). Reported: prefill time / FLOPs ratio, decode step time / bytes-moved
ratio (weights + KV read per step, :mod:`.flops`), and host time per decode step (until the call
returns, before any sync: on a GPU the launch work; on the CPU, where the host does everything,
the step itself -- on the tiny shape that is almost all overhead).

Configurations run one after another (not rotated as in ``adsc bench``): attaching another
compression changes the hooks, which a compiled step guards on, so rotating would recompile.
"""

from __future__ import annotations

import json
import os
import statistics
import time

import torch

from .. import CompressionConfig, compress
from ..engine.cache import StageCache
from ..tiny import IMAGE_TOKEN
from .bench_models import build_inputs, build_model, scaled_layers
from .flops import Conventions, account
from .measure import text_tokens
from .shapes import shape_from_config


def run(args, environment) -> int:
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
    layers = tuple(args.layers) if args.layers else scaled_layers(shape.text.layers)
    # noop: compression attached at the same layers, dropping nothing: the engine's overhead alone
    configs = [("full", None), ("noop", CompressionConfig(layers=layers, drop_ratio=0.0))] + [(f"adsc@{b:g}", CompressionConfig(layers=layers, budget=b)) for b in args.budgets]
    env = environment(args, size, layers, args.batch or [1], [attn])
    env.update(mode=args.compile_mode, decode_steps=steps, clock="wall" if gpu else "process_cpu")
    result = {"environment": env, "runs": []}
    for batch in args.batch or ([1, 32] if gpu else [1]):
        inputs = build_inputs(batch, args.device, dtype)
        rows = [_configuration(model, inputs, label, config, steps, args, gpu) for label, config in configs]
        _add_analytical(rows, shape, inputs, steps, batch, dtype)
        _add_ratios(rows)
        result["runs"].append({"attn": attn, "batch": batch, "rows": rows})
    result["targets"] = _targets(result)
    env["wall_s"] = round(time.time() - started, 1)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as fh:
        json.dump(result, fh, indent=2)
    text = render(result)
    with open(os.path.join(out_dir, "results.md"), "w") as fh:
        fh.write(text)
    print(text)
    return 0


def _clock(gpu: bool) -> float:
    return time.perf_counter() if gpu else time.process_time()


def _generate(model, step_fn, inputs, cache, steps, gpu) -> dict:
    """One eager prefill into ``cache`` (a StageCache, reset; None: a new DynamicCache), then
    ``steps`` greedy decode steps through ``step_fn``."""
    if cache is None:
        from transformers import DynamicCache

        cache = DynamicCache(config=model.config)
    else:
        cache.reset()
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    with torch.no_grad():
        sync()
        t0 = _clock(gpu)
        logits = model(**inputs, cache=cache, use_cache=True, logits_to_keep=1).logits
        sync()
        prefill = _clock(gpu) - t0
        token = logits[:, -1:].argmax(-1)
        tokens, step_s, host_s = [token], [], []
        for _ in range(steps):
            sync()
            t0 = _clock(gpu)
            # no attention_mask: the benchmark's prompts are unpadded, so the model builds its own
            # from the cache's fixed sizes (inside the compiled graph)
            out = step_fn(input_ids=token, cache=cache, use_cache=True)
            host_s.append(_clock(gpu) - t0)  # before the sync: what the host spent issuing the step
            token = out.logits[:, -1:].argmax(-1)
            sync()
            step_s.append(_clock(gpu) - t0)
            tokens.append(token)
    return {"prefill_s": prefill, "step_s": step_s, "host_s": host_s, "tokens": torch.cat(tokens, 1).cpu()}


def _counting_compile(fn, mode: str):
    """torch.compile(fn) through inductor, counting the graphs it compiles (recompilations included)."""
    from torch._inductor.compile_fx import compile_fx

    graphs = []

    def backend(graph, example_inputs):
        graphs.append(len(graph.graph.nodes))
        return compile_fx(graph, example_inputs, config_patches={"triton.cudagraphs": mode == "reduce-overhead"})

    return torch.compile(fn, backend=backend, fullgraph=True), graphs


def _configuration(model, inputs, label, config, steps, args, gpu) -> dict:
    handle = compress(model, config) if config is not None else None
    try:
        cache = StageCache(model.config, room=steps)
        # eager through the DynamicCache (what generate uses by default) and through the StageCache
        dynamic = [_generate(model, model.__call__, inputs, None, steps, gpu) for _ in range(args.warmup + args.trials)]
        eager = [_generate(model, model.__call__, inputs, cache, steps, gpu) for _ in range(args.warmup + args.trials)]
        vision = handle.last_trace.vision_tokens(0) if handle is not None else None
        torch._dynamo.reset()
        compiled_fn, graphs = _counting_compile(model.__call__, args.compile_mode)
        t0 = time.perf_counter()
        first = _generate(model, compiled_fn, inputs, cache, steps, gpu)  # compiles at its first decode step
        compile_s = time.perf_counter() - t0
        compiled = [_generate(model, compiled_fn, inputs, cache, steps, gpu) for _ in range(args.trials)]
        compilations_after_first = len(graphs) - 1
    finally:
        if handle is not None:
            handle.remove()
        torch._dynamo.reset()
    eager, dynamic, warm = eager[args.warmup:], dynamic[args.warmup:], eager[0]
    row = {"config": label, "budget": None if config is None else config.budget, "vision_per_layer": vision,
           "kv_capacities": cache.capacities(), "compile_s": compile_s, "compilations": len(graphs),
           "recompilations_after_first": compilations_after_first,
           "compiled_tokens_equal_eager": all(torch.equal(r["tokens"], warm["tokens"]) for r in [first] + compiled + dynamic)}
    for mode, runs in (("eager_dynamic", dynamic), ("eager", eager), ("compiled", compiled)):
        row[mode] = {
            "prefill_s": statistics.median(r["prefill_s"] for r in runs),
            # per run the median step (drops interference spikes), then the median over runs
            "decode_step_s": statistics.median(statistics.median(r["step_s"]) for r in runs),
            "host_step_s": statistics.median(statistics.median(r["host_s"]) for r in runs),
            "decode_step_s_range": [min(statistics.median(r["step_s"]) for r in runs),
                                    max(statistics.median(r["step_s"]) for r in runs)],
        }
    return row


def _add_analytical(rows, shape, inputs, steps, batch, dtype) -> None:
    text = text_tokens(inputs["input_ids"], IMAGE_TOKEN)
    size = torch.finfo(dtype).bits // 8
    conv = Conventions(lm_head="last", kv_dtype_bytes=size, weight_dtype_bytes=size, kv_read="capacity")
    for row in rows:
        acc = account(shape, row["vision_per_layer"], text, steps + 1, batch, conv)
        row["flops_prefill"], row["decode_step_bytes"], row["kv_bytes_analytical"] = (
            acc.prefill_flops, acc.decode_step_bytes, acc.kv_bytes)


def _add_ratios(rows) -> None:
    full = rows[0]
    for row in rows:
        ratio = {"prefill_flops": row["flops_prefill"] / full["flops_prefill"],
                 "decode_bytes": row["decode_step_bytes"] / full["decode_step_bytes"]}
        for mode in ("eager_dynamic", "eager", "compiled"):
            for key in ("prefill_s", "decode_step_s", "host_step_s"):
                ratio[f"{mode}_{key[:-2]}"] = row[mode][key] / full[mode][key]
        row["ratio"] = ratio


def _targets(result) -> list[dict]:
    out = []
    for run in result["runs"]:
        tag = f"batch {run['batch']}"
        for row in run["rows"][1:]:
            r, name = row["ratio"], row["config"]
            out.append({"target": f"{name}: compiled tokens == eager tokens, no recompilation ({tag})",
                        "value": row["recompilations_after_first"],
                        "met": row["compiled_tokens_equal_eager"] and row["recompilations_after_first"] == 0})
            for mode in ("eager_dynamic", "eager"):
                out.append({"target": f"{name}: {mode} host time per decode step <= 1.03x full ({tag})",
                            "value": r[f"{mode}_host_step"], "met": r[f"{mode}_host_step"] <= 1.03})
            for mode in ("eager_dynamic", "eager", "compiled"):
                gap = r[f"{mode}_decode_step"] / r["decode_bytes"]
                out.append({"target": f"{name}: {mode} decode step time ratio <= 1.10x bytes ratio ({tag})",
                            "value": gap, "met": gap <= 1.10})
            gap = r["eager_prefill"] / r["prefill_flops"]
            out.append({"target": f"{name}: prefill time ratio <= 1.15x FLOPs ratio ({tag})", "value": gap, "met": gap <= 1.15})
    return out


def render(result) -> str:
    env = result["environment"]
    lines = [f"# adsc bench --compile ({env['size']}, {env['date']})", "",
             f"`{env['command']}`; torch {env['torch']}, transformers {env['transformers']}, {env.get('gpu', env['machine'])}, "
             f"{env['threads']} thread(s), load {env.get('load_average')}, {env['decode_steps']} decode steps, "
             f"{env['trials']} trials, clock {env['clock']}, mode {env['mode']}, {env['wall_s']} s", ""]
    for run in result["runs"]:
        lines += [f"## {run['attn']}, batch {run['batch']}", "",
                  "| config | prefill ms | prefill / full | FLOPs / full | step ms: dynamic / stage / compiled | "
                  "step / full: dynamic / stage / compiled | bytes / full | host ms: dynamic / stage / compiled | "
                  "host / full: dynamic / stage / compiled | compile s | tokens equal | recompiles |",
                  "|" + "---|" * 12]
        for row in run["rows"]:
            r = row["ratio"]
            modes = ("eager_dynamic", "eager", "compiled")
            steps = " / ".join(f"{row[m]['decode_step_s'] * 1e3:.2f}" for m in modes)
            step_ratio = " / ".join(f"{r[m + '_decode_step']:.3f}" for m in modes)
            host = " / ".join(f"{row[m]['host_step_s'] * 1e3:.2f}" for m in modes)
            host_ratio = " / ".join(f"{r[m + '_host_step']:.3f}" for m in modes)
            lines.append(
                f"| {row['config']} | {row['eager']['prefill_s'] * 1e3:.1f} | {r['eager_prefill']:.3f} | {r['prefill_flops']:.3f} "
                f"| {steps} | {step_ratio} | {r['decode_bytes']:.3f} | {host} | {host_ratio} | {row['compile_s']:.0f} "
                f"| {row['compiled_tokens_equal_eager']} | {row['recompilations_after_first']} |")
        lines.append("")
    lines += ["## Targets", ""] + [f"- {'met' if t['met'] else 'MISSED'}: {t['target']}: {t['value']:.3f}"
                                   if isinstance(t["value"], float) else f"- {'met' if t['met'] else 'MISSED'}: {t['target']}: {t['value']}"
                                   for t in result["targets"]]
    return "\n".join(lines) + "\n"
