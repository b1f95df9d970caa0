"""`adsc eval --compile` against eager decoding on a trained model: the testbed's committed checkpoint
on its quick-preset test data (all six benchmarks), compressed to 16 of 144 vision tokens.

    python3 tools/eval_compile_testbed.py --out results/eval_compile_testbed

Writes results.json and results.md there: per benchmark the eager and compiled headline scores,
how many answers are equal, and the wall time of each run (compiling included, inductor's cache
cold). Data and runs go
to --work (default: a temporary folder), the data generated from the testbed's fixed seed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
import transformers

from adsc import CompressionConfig
from adsc.evaluation.predictions import read_predictions
from adsc.evaluation.run import evaluate
from adsc_testbed.experiment import BENCHMARKS, EVAL_NAMES, MME_SUBTASKS, PRESETS, Experiment
from adsc_testbed.facts import ADSC_LAYERS, VISION_TOKENS

BUDGET = 16.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/eval_compile_testbed")
    p.add_argument("--work", help="data and run folders (default: a temporary folder, removed after)")
    args = p.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="adsc-eval-compile-") as tmp:
        work = Path(args.work or tmp)
        # a cold compile every time: inductor's on-disk cache of an earlier run would hide its cost
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(work / "inductor_cache")
        experiment = Experiment(work, PRESETS["quick"], progress=False)
        experiment.generate()
        model, processor = experiment._pretrained()
        names = [EVAL_NAMES.get(b, b) for b in BENCHMARKS]
        compression = CompressionConfig(layers=ADSC_LAYERS, budget=BUDGET, vision_tokens=VISION_TOKENS)
        runs = {}
        for mode in ("eager", "compiled"):
            torch._dynamo.reset()
            start = time.perf_counter()
            result = evaluate(model, processor, names, str(experiment.data), str(work / mode), compression=compression,
                              model_name="testbed", batch_size=16, max_new_tokens=8, progress=False,
                              benchmark_options={"mme": {"subtasks": MME_SUBTASKS}}, compile=mode == "compiled")
            runs[mode] = {"seconds": time.perf_counter() - start,
                          "headline": {k: v["headline"] for k, v in result["benchmarks"].items()}}
        equal = {}
        for name in names:
            eager, compiled = (read_predictions(str(work / m / f"{name}.predictions.jsonl"))[1] for m in ("eager", "compiled"))
            equal[name] = [sum(eager[k]["text"] == compiled[k]["text"] for k in eager), len(eager)]
    out = {"command": "python3 tools/eval_compile_testbed.py --out " + args.out, "budget": BUDGET, "batch_size": 16,
           "max_new_tokens": 8, "torch": torch.__version__, "transformers": transformers.__version__,
           "machine": platform.machine(), "threads": 1, "runs": runs, "equal_answers": equal,
           "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as fh:
        json.dump(out, fh, indent=2)
    lines = [f"# adsc eval --compile vs eager (testbed checkpoint, {BUDGET:g} of 144 vision tokens, {out['date']})", "",
             f"`{out['command']}`; torch {out['torch']}, transformers {out['transformers']}, {out['machine']}, 1 thread", "",
             "| benchmark | eager | compiled | equal answers |", "|---|---|---|---|"]
    for name in names:
        lines.append(f"| {name} | {runs['eager']['headline'][name]:.2f} | {runs['compiled']['headline'][name]:.2f} "
                     f"| {equal[name][0]}/{equal[name][1]} |")
    lines += ["", f"Wall time: eager {runs['eager']['seconds']:.1f} s, compiled {runs['compiled']['seconds']:.1f} s "
              f"(compiling included, from a cold inductor cache: one decode graph per batch shape)."]
    with open(os.path.join(args.out, "results.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
