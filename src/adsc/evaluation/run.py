"""One evaluation run: benchmarks -> prediction files -> scores -> results.json.

Python entry point (the CLI wraps it)::

    from adsc.evaluation import evaluate
    results = evaluate(model, processor, ["gqa", "pope"], data_root="eval", output_dir="runs/adsc192",
                       compression=adsc.CompressionConfig(layers=(2, 8, 16, 24), budget=192))
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

from tqdm.auto import tqdm

from .benchmarks import HEADLINES, VQAv2, headline, load_benchmark
from .generation import Generator
from .predictions import PredictionWriter, merge_shards, read_predictions, shard_path

RESULTS = "results.json"


def predictions_path(output_dir: str, name: str) -> str:
    return os.path.join(output_dir, f"{name}.predictions.jsonl")


def fingerprint(name: str, model_name: str, compression: dict | None, generator: dict, max_new_tokens: int | None) -> dict:
    """What must match for two runs' predictions to be mixed (resume) or merged (shards)."""
    return {"benchmark": name, "model": model_name, "compression": compression, "prompt": generator,
            "decoding": {"greedy": True, "max_new_tokens": max_new_tokens}}


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


def evaluate(model, processor, benchmarks, data_root: str, output_dir: str, compression=None, model_name: str | None = None,
             batch_size: int = 8, max_new_tokens: int | None = None, limit: int | None = None, shard=None,
             template: str = "auto", pad_square: bool | None = None, overwrite: bool = False, progress: bool = True,
             benchmark_options: dict | None = None, label: str | None = None, is_main=True, barrier=None) -> dict | None:
    """Generate, score and write ``output_dir/results.json``; returns the results (None on a
    non-final shard, whose predictions are merged later by :func:`merge_and_score`)."""
    import adsc

    os.makedirs(output_dir, exist_ok=True)
    # A model the caller compressed already is evaluated as it is (and left compressed).
    own = compression is not None
    handle = adsc.compress(model, compression) if own else adsc.get_handle(model)
    try:
        generator = Generator(model, processor, template=template, pad_square=pad_square)
        comp = handle.config.to_dict() if handle else None
        name = model_name or getattr(model, "name_or_path", None) or type(model).__name__
        timing = {}
        loaded = {}
        for bench_name in benchmarks:
            bench = load_benchmark(bench_name, data_root, **(benchmark_options or {}).get(bench_name, {}))
            if limit:
                bench.samples = bench.samples[:limit]
            bench.check_images()
            path = predictions_path(output_dir, bench_name)
            if overwrite:
                for p in (path, shard_path(path, shard)):
                    if os.path.exists(p):
                        os.remove(p)
            fp = fingerprint(bench_name, name, comp, generator.describe(), max_new_tokens)
            timing[bench_name] = generate_benchmark(generator, bench, path, fp, shard, batch_size, max_new_tokens, None, progress)
            loaded[bench_name] = bench
        summary = compression_summary(handle, generator)
    finally:
        if own:
            handle.remove()
    sharded = shard is not None and shard[1] > 1
    if sharded:
        _write_json(os.path.join(output_dir, f"shard{shard[0]}of{shard[1]}.timing.json"), {"timing": timing, **summary})
        if barrier is None:
            return None  # separate processes: `adsc eval --merge` scores once all shards are done
        barrier()  # every process has written its shard: the main one merges and scores
        if not is_main:
            return None
        return merge_and_score(output_dir, list(loaded), data_root, shard[1], limit, benchmark_options, label)
    return _finish(output_dir, loaded, shard[1] if sharded else 1, name, summary, timing, batch_size, label,
                   extra={"max_new_tokens": max_new_tokens, "limit": limit, "generation": generator.describe()})


def merge_and_score(output_dir: str, benchmarks, data_root: str, shards: int, limit: int | None = None,
                    benchmark_options: dict | None = None, label: str | None = None) -> dict:
    """Merge the shard prediction files of a finished sharded run and score them."""
    loaded = {}
    for bench_name in benchmarks:
        bench = load_benchmark(bench_name, data_root, **(benchmark_options or {}).get(bench_name, {}))
        if limit:
            bench.samples = bench.samples[:limit]
        loaded[bench_name] = bench
    timing, summary = {}, {}
    for i in range(shards):
        p = os.path.join(output_dir, f"shard{i}of{shards}.timing.json")
        if os.path.exists(p):
            with open(p) as fh:
                data = json.load(fh)
            summary = {k: v for k, v in data.items() if k != "timing"}
            for b, t in data["timing"].items():
                agg = timing.setdefault(b, {"generated": 0, "resumed": 0, "seconds": 0.0, "new_tokens": 0})
                for k in agg:
                    agg[k] += t[k]
    name = None
    for bench_name, bench in loaded.items():
        path = predictions_path(output_dir, bench_name)
        merge_shards(path, shards, [s.id for s in bench.samples])
        name = name or read_predictions(path)[0].get("fingerprint", {}).get("model")
    return _finish(output_dir, loaded, shards, name, summary, timing, None, label, extra={"limit": limit}, merged=True)


def _finish(output_dir, loaded, shards, model_name, summary, timing, batch_size, label, extra, merged=False) -> dict:
    results = {"model": model_name, "label": label or summary.get("method"), **summary, "batch_size": batch_size,
               "shards": shards, **extra, "benchmarks": {}, "timing": timing,
               "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    for bench_name, bench in loaded.items():
        path = predictions_path(output_dir, bench_name)
        if shards > 1 and not merged:
            merge_shards(path, shards, [s.id for s in bench.samples])
        results["benchmarks"][bench_name] = score_benchmark(bench, path, bool(extra.get("limit")), output_dir)
    results["wall_seconds"] = sum(t.get("seconds", 0.0) for t in timing.values())
    _write_json(os.path.join(output_dir, RESULTS), results)
    return results


def _write_json(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)
