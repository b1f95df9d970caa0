#!/usr/bin/env bash
# Issue 21's GPU checks in one command (one CUDA GPU, < 8 minutes; NOT YET RUN on a GPU: no device was
# lent to the sessions that wrote it; its two bench commands were dry-run on the CPU with --size tiny).
# From the repository root:  bash tools/gpu_bench_compile.sh
#   1. the compile tests on the GPU's torch (compiled == eager tokens, one graph, tiny models);
#   2. adsc bench --compile, the exact LLaVA-1.5-7B shape in bf16, SDPA, batch 32 first (the decode
#      target's batch), then batch 1: full, noop and adsc at 192 (the budget the targets name; 64 is
#      in step 3), eager (DynamicCache and StageCache) vs torch.compile with CUDA graphs (mode
#      reduce-overhead) for the decode step and adsc.compile_prefill (inductor, per decoder layer)
#      for the prefill: prefill / FLOPs eager and compiled, decode step / bytes moved, host time per
#      step; every configuration on its own model over the same weight tensors, measured in
#      interleaved rounds: ratios are medians of paired ratios with their 95 % interval.
#      --max-seconds stops adding rounds and batches in time, and the results are written after
#      every batch, so an outer timeout still leaves batch 32's (compiling cannot be cut short: 3
#      arms x (one decode graph + 32 layer graphs) per batch, minutes on a 7B);
#   3. adsc bench (eager) at batch 32: the largest batch in an 80 GB budget vs the KV ratio.
# Results: results/bench_compile_gpu/ and results/bench_gpu_batch32/ (commit them with this command
# line, the GPU name and the versions the first line prints). A failed step does not stop the next;
# the script exits 1 if any failed.
set -uo pipefail
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import torch, transformers; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.__version__, transformers.__version__, torch.cuda.get_device_name(0))" || exit 1
t0=$SECONDS
failed=()
step() {  # step NAME TIMEOUT_S COMMAND...: run it under its timeout, note a failure, go on
    local name=$1 limit=$2; shift 2
    echo "== $name (timeout $limit s, at $((SECONDS - t0)) s)"
    timeout "$limit" "$@" || { echo "== $name FAILED (rc $?)"; failed+=("$name"); }
}
# timeouts sum to 460 s (< 8 min with the start)
step compile-tests 80 python3 -m pytest tests/core/test_compile.py tests/core/test_compile_prefill.py \
    tests/core/test_stage_cache.py -q -x -k "not inductor" -p no:cacheprovider
step bench-compile 290 python3 -m adsc bench --device cuda --compile --compile-mode reduce-overhead \
    --budgets 192 --batch 32 1 --trials 3 --warmup 1 --new-tokens 32 --max-seconds 200 \
    --out results/bench_compile_gpu
step bench-batch32 90 python3 -m adsc bench --device cuda --methods adsc --budgets 192 64 --batch 32 \
    --trials 2 --warmup 1 --attn sdpa --no-plot --out results/bench_gpu_batch32
echo "done in $((SECONDS - t0)) s${failed[*]:+; failed: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
