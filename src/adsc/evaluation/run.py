"""One evaluation run: benchmarks -> prediction files -> scores -> results.json.

Python entry point (the CLI wraps it)::

    from adsc.evaluation import evaluate
    results = evaluate(model, processor, ["gqa", "pope"], data_root="eval", output_dir="runs/adsc192",
                       compression=adsc.CompressionConfig(layers=(2, 8, 16, 24), budget=192, vision_tokens=576))

Every input is read and checked (settings, data files, images, the output directory's earlier
predictions and results.json) before the first prediction is generated, so a run that fails
on its input leaves the output directory as it was. ``results.json`` gathers every benchmark
run into the directory under the same settings: rerunning a subset updates those entries and
keeps the others.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

from tqdm.auto import tqdm

from .. import compress, get_handle
from ..files import write_json_atomic
from .benchmarks import HEADLINES, DataError, VQAv2, headline, load_benchmark
from .checks import check_output_dir, check_run_settings
from .files import OutputLock
from .generation import Generator
from .model_facts import model_identity, numerics, reference_vision_tokens, revision
from .predictions import (
    PredictionWriter,
    check_compatible,
    merge_shards,
    read_predictions,
    shard_path,
)

RESULTS = "results.json"


def predictions_path(output_dir: str, name: str) -> str:
    return os.path.join(output_dir, f"{name}.predictions.jsonl")


def fingerprint(name: str, model: dict, compression: dict | None, generator: dict, max_new_tokens: int | None,
                numerics_: dict | None = None) -> dict:
    """What must match for two runs' predictions to be mixed (resume) or merged (shards).

    ``model`` is the model's identity (config + weights digests), not its path.
    """
    return {"benchmark": name, "model": model, "numerics": numerics_, "compression": compression, "prompt": generator,
            "decoding": {"greedy": True, "max_new_tokens": max_new_tokens}}


def run_fingerprint(fp: dict) -> dict:
    """The part of a prediction fingerprint shared by every benchmark of a run (kept in results.json)."""
    return {k: v for k, v in fp.items() if k != "benchmark"}


def load_benchmarks(benchmarks, data_root: str, limit: int | None, options: dict | None,
                    allow_outside_root: bool = False) -> dict:
    """Every benchmark read and its images checked: all input errors come out here, before any output."""
    loaded = {}
    for bench_name in benchmarks:
        bench = load_benchmark(bench_name, data_root, allow_outside_root, **(options or {}).get(bench_name, {}))
        if limit:
            bench.samples = bench.samples[:limit]
        loaded[bench_name] = bench
    return loaded


def generate_benchmark(generator: Generator, bench, path: str, fp: dict, shard=None, batch_size: int = 8,
                       max_new_tokens: int | None = None, limit: int | None = None, progress: bool = True) -> dict:
    """Generate every missing prediction of this shard; returns counts and timing."""
    samples = bench.samples[:limit] if limit else bench.samples
    if shard and shard[1] > 1:
        samples = samples[shard[0]::shard[1]]
    writer = PredictionWriter(shard_path(path, shard), fp, shard if shard and shard[1] > 1 else None)
    todo = [s for s in samples if s.id not in writer.done]
    if max_new_tokens:
        todo = [dataclasses.replace(s, max_new_tokens=max_new_tokens) for s in todo]
    start, new_tokens = time.perf_counter(), 0
    bar = tqdm(total=len(samples), initial=len(samples) - len(todo), desc=bench.name, disable=not progress, unit="q")
    for i in range(0, len(todo), batch_size):
        batch = todo[i:i + batch_size]
        texts, prompts, n_new = generator(batch)
        new_tokens += n_new
        writer.append([{"id": s.id, "text": t, "prompt": p} for s, t, p in zip(batch, texts, prompts)])
        bar.update(len(batch))
    bar.close()
    seconds = time.perf_counter() - start
    return {"generated": len(todo), "resumed": len(samples) - len(todo), "seconds": seconds, "new_tokens": new_tokens,
            "samples_per_s": len(todo) / seconds if todo and seconds > 0 else None}


def score_benchmark(bench, path: str, limited: bool = False, submission_dir: str | None = None) -> dict:
    """Score a prediction file. ``limited``: the samples are a --limit prefix, so predictions
    beyond it (from an earlier, longer run) are left out instead of reported as unknown."""
    _, records = read_predictions(path)
    preds = {k: r["text"] for k, r in records.items()}
    if limited:
        ids = {s.id for s in bench.samples}
        preds = {k: v for k, v in preds.items() if k in ids}
    scores = bench.score(preds)
    out = {"scores": scores, "metric": HEADLINES[bench.name][1], "headline": headline(bench.name, scores), "n": len(preds)}
    if isinstance(bench, VQAv2) and bench.split != "val":
        sub = os.path.join(submission_dir or os.path.dirname(path), "vqav2_test-dev_submission.json")
        out["submission"] = sub
        out["submission_questions"] = bench.write_submission(preds, sub)
    return out


def compression_summary(handle, generator: Generator) -> dict:
    """Vision-token budget of the run: the config's figure and what the model's images got."""
    full = generator.vision_tokens_per_image
    if handle is None:
        return {"method": "full", "compression": None, "tokens": full, "schedule_average": full, "vision_tokens": full}
    cfg = handle.config
    measured = None
    trace = getattr(handle, "last_trace", None)
    if trace is not None:
        try:
            per_layer = trace.vision_tokens(0)
            measured = sum(per_layer) / len(per_layer)
        except Exception:  # a trace is diagnostics only; never fail a finished run on it
            measured = None
    return {"method": cfg.method, "compression": cfg.to_dict(),
            "tokens": cfg.budget if cfg.budget is not None else handle.schedule.average,
            "schedule_average": handle.schedule.average, "measured_average": measured, "vision_tokens": full}


def check_vision_tokens(model, config) -> None:
    """The config's vision_tokens must be the model's count where every image has one count."""
    if config is None:
        return
    count, exact = reference_vision_tokens(model.config)
    if exact and config.layers and config.vision_tokens != count:
        raise DataError(
            f"the compression config says vision_tokens={config.vision_tokens}, but this model gives {count} vision "
            f"tokens per image; its budget and token counts would be mislabelled: set vision_tokens={count} "
            "(adsc eval does when --vision-tokens is left out)"
        )


def check_results_file(output_dir: str, run_fp: dict, overwrite: bool) -> None:
    """Refuse to add to a results.json of a run with other settings (read only; nothing is written)."""
    path = os.path.join(output_dir, RESULTS)
    if overwrite or not os.path.exists(path):
        return
    old = _read_results(path)
    theirs = old.get("fingerprint")
    if theirs is None:
        raise DataError(f"{path} was written by an older adsc (no fingerprint); use another --output-dir, "
                        "or --overwrite to start the results again")
    differs = sorted(k for k in set(theirs) | set(run_fp) if theirs.get(k) != run_fp.get(k))
    if differs:
        raise DataError(f"{path} holds results of a run with different {', '.join(differs)}; refusing to mix them. "
                        "Use another --output-dir, or --overwrite to start the results again.")


def _read_results(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError(f"{path} is not valid JSON; move it away or use --overwrite") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks", {}), dict):
        raise DataError(f"{path} is not an adsc results file; move it away or use --overwrite")
    return data


def evaluate(model, processor, benchmarks, data_root: str, output_dir: str, compression=None, model_name: str | None = None,
             batch_size: int = 8, max_new_tokens: int | None = None, limit: int | None = None, shard=None,
             template: str = "auto", pad_square: bool | None = None, overwrite: bool = False, progress: bool = True,
             benchmark_options: dict | None = None, label: str | None = None, is_main=True, barrier=None,
             allow_outside_root: bool = False, compile=False) -> dict | None:
    """Generate, score and merge into ``output_dir/results.json``; returns the results (None on a
    non-final shard, whose predictions are merged later by :func:`merge_and_score`).

    Refused before anything is written: bad settings, bad data or images, an output directory
    another process holds, and earlier predictions or results of a run with other settings
    (model weights, config, dtype, attention kernel, compression, prompt, decoding).
    """
    check_run_settings(batch_size, limit, max_new_tokens, shard)
    check_vision_tokens(model, compression)
    # ``benchmarks``: names, or readers loaded already (the CLI reads them before loading the model)
    loaded = benchmarks if isinstance(benchmarks, dict) else \
        load_benchmarks(benchmarks, data_root, limit, benchmark_options, allow_outside_root)
    for bench in loaded.values():
        bench.check_images()
    check_output_dir(output_dir)
    sharded = shard is not None and shard[1] > 1
    with OutputLock(output_dir, shard):
        identity = model_identity(model)  # before compressing: hooks only, but the weights are what they are
        # A model the caller compressed already is evaluated as it is (and left compressed).
        own = compression is not None
        handle = compress(model, compression) if own else get_handle(model)
        try:
            generator = Generator(model, processor, template=template, pad_square=pad_square, compile=compile)
            comp = handle.config.to_dict() if handle else None
            name = model_name or getattr(model, "name_or_path", None) or type(model).__name__
            fps = {b: fingerprint(b, identity, comp, generator.describe(), max_new_tokens, numerics(model)) for b in loaded}
            run_fp = run_fingerprint(next(iter(fps.values()))) if fps else None
            check_results_file(output_dir, run_fp, overwrite)
            for bench_name in loaded:  # every earlier prediction file checked before any is written
                path = predictions_path(output_dir, bench_name)
                if not overwrite:
                    check_compatible(shard_path(path, shard), fps[bench_name], shard if sharded else None)
            timing = {}
            for bench_name, bench in loaded.items():
                path = predictions_path(output_dir, bench_name)
                if overwrite:
                    for p in (path, shard_path(path, shard)):
                        if os.path.exists(p):
                            os.remove(p)
                timing[bench_name] = generate_benchmark(generator, bench, path, fps[bench_name], shard, batch_size,
                                                        max_new_tokens, None, progress)
            summary = {"model_name": name, "revision": revision(model), **compression_summary(handle, generator),
                       "fingerprint": run_fp}
        finally:
            if own:
                handle.remove()
        if not sharded:
            return _finish(output_dir, loaded, 1, summary, timing, batch_size, label, limit, overwrite,
                           extra={"max_new_tokens": max_new_tokens, "generation": generator.describe()})
        write_json_atomic(os.path.join(output_dir, f"shard{shard[0]}of{shard[1]}.timing.json"), {"timing": timing, **summary})
    if barrier is None:
        return None  # separate processes: `adsc eval --merge` scores once all shards are done
    barrier()  # every process has written its shard: the main one merges and scores
    if not is_main:
        return None
    return merge_and_score(output_dir, list(loaded), data_root, shard[1], limit, benchmark_options, label, allow_outside_root)


def merge_and_score(output_dir: str, benchmarks, data_root: str, shards: int, limit: int | None = None,
                    benchmark_options: dict | None = None, label: str | None = None,
                    allow_outside_root: bool = False) -> dict:
    """Merge the shard prediction files of a finished sharded run and score them."""
    check_run_settings(limit=limit)
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise DataError(f"--shards must be a whole number >= 1, got {shards!r}")
    loaded = load_benchmarks(benchmarks, data_root, limit, benchmark_options, allow_outside_root)
    check_output_dir(output_dir)
    with OutputLock(output_dir):
        timing, summary = {}, {}
        for i in range(shards):
            p = os.path.join(output_dir, f"shard{i}of{shards}.timing.json")
            if os.path.exists(p):
                data = _read_results(p)
                summary = {k: v for k, v in data.items() if k != "timing"}
                for b, t in data.get("timing", {}).items():
                    agg = timing.setdefault(b, {"generated": 0, "resumed": 0, "seconds": 0.0, "new_tokens": 0})
                    for k in agg:
                        agg[k] += t.get(k) or 0
        run_fp = None
        for bench_name in loaded:  # checked before anything is merged or written
            first = shard_path(predictions_path(output_dir, bench_name), (0, shards))
            if os.path.exists(first):
                run_fp = run_fp or run_fingerprint(read_predictions(first)[0].get("fingerprint", {}))
        summary["fingerprint"] = run_fp
        check_results_file(output_dir, run_fp, False)
        for bench_name, bench in loaded.items():
            merge_shards(predictions_path(output_dir, bench_name), shards, [s.id for s in bench.samples])
        return _finish(output_dir, loaded, shards, summary, timing, None, label, limit, False, extra={})


def _finish(output_dir, loaded, shards, summary, timing, batch_size, label, limit, overwrite, extra) -> dict:
    """Score the benchmarks of this run and merge them into results.json (others' entries kept)."""
    path = os.path.join(output_dir, RESULTS)
    old = {}
    if os.path.exists(path):
        try:
            old = _read_results(path)
        except DataError:
            if not overwrite:  # checked before generation; only --overwrite gets here with a bad file
                raise
    if old.get("fingerprint") != summary.get("fingerprint"):
        old = {}  # --overwrite of a run with other settings: its entries are not this run's
    scored = {}
    for bench_name, bench in loaded.items():
        entry = score_benchmark(bench, predictions_path(output_dir, bench_name), bool(limit), output_dir)
        scored[bench_name] = {**entry, "limit": limit, "shards": shards, "batch_size": batch_size}
    benchmarks = {**old.get("benchmarks", {}), **scored}
    timing = {**old.get("timing", {}), **timing}
    limits = {r.get("limit") for r in benchmarks.values()}
    summary = dict(summary)
    name = summary.pop("model_name", None) or old.get("model")
    results = {"model": name, "label": label or old.get("label") or summary.get("method"), **summary,
               "batch_size": batch_size, "shards": shards, **extra,
               # one figure when every benchmark agrees, else per benchmark (each entry has its own)
               "limit": limits.pop() if len(limits) == 1 else {b: r.get("limit") for b, r in benchmarks.items()},
               "benchmarks": benchmarks, "timing": timing, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    results["wall_seconds"] = sum(t.get("seconds", 0.0) for t in timing.values())
    write_json_atomic(path, results)
    return results
