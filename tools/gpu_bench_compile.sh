#!/usr/bin/env bash
# Issue 21's GPU checks in one command (one CUDA GPU, < 8 minutes; NOT YET RUN: no GPU was lent to
# the session that wrote it). From the repository root:  bash tools/gpu_bench_compile.sh
#   1. the compile tests on the GPU's torch (compiled == eager tokens, one graph, tiny models);
#   2. adsc bench --compile, the exact LLaVA-1.5-7B shape in bf16, SDPA, batch 1 and 32,
#      full vs adsc at 192 and 64, eager (DynamicCache and StageCache) vs torch.compile with CUDA
#      graphs (mode reduce-overhead) for the decode step and adsc.compile_prefill (inductor, per decoder
#      layer) for the prefill: prefill / FLOPs eager and compiled, decode step / bytes moved, host time per step;
#      every configuration on its own model over the same weight tensors, measured in interleaved
#      rounds: ratios are medians of per-round paired ratios, with their range;
#   3. adsc bench (eager) at batch 32 for the largest batch in an 80 GB budget vs the KV ratio.
# Results: results/bench_compile_gpu/ and results/bench_gpu/ (commit them with this command line).
set -euo pipefail
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import torch, transformers; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.__version__, transformers.__version__, torch.cuda.get_device_name(0))"
t0=$SECONDS
# timeouts sum to 460 s (< 8 min with the start); a step cut by its timeout stops the script (set -e)
timeout 110 python3 -m pytest tests/core/test_compile.py tests/core/test_compile_prefill.py tests/core/test_stage_cache.py \
    -q -x -k "not inductor"
timeout 250 python3 -m adsc bench --device cuda --compile --compile-mode reduce-overhead --budgets 192 64 \
    --batch 1 32 --trials 3 --warmup 1 --new-tokens 32 --out results/bench_compile_gpu
timeout 100 python3 -m adsc bench --device cuda --methods adsc --budgets 192 64 --batch 32 --trials 2 --warmup 1 \
    --attn sdpa --no-plot --out results/bench_gpu_batch32
echo "done in $((SECONDS - t0)) s"
