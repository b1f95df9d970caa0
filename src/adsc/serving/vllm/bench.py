"""Serving benchmark on vLLM: full model vs ADSC at 192 / 128 / 64 vision tokens, one run, one KV budget.

    python -m adsc.serving.vllm.bench --out results/bench_vllm_cpu            # CPU: a small LLaVA-1.5-shaped model
    python -m adsc.serving.vllm.bench --mode gpu --out results/bench_vllm_gpu  # GPU: the 7B shape, random bf16 weights

Every setting gets the same KV-cache memory and the same requests (one 336 px image, 576 vision
tokens, a short question, a fixed number of output tokens), all submitted at once. Measured per
setting: the most requests running at once (what fits the KV budget), requests/s and output
tokens/s over the whole run (saturation), and the mean time to first token. The analytical
column is the KV ratio the plan implies (full KV bytes per request / compressed), the limit the
concurrency should reach. Writes bench.json, bench.md and bench.png under --out (the model it
builds goes to --model-dir).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ...adapters import VisionSpan
from ...config import CompressionConfig
from ...tiny import IMAGE_TOKEN, PAD, tiny_llava_processor
from ..plan import Planner
from . import engine_kwargs

SHAPES = {
    # LLaVA-1.5's token layout (336 px, patch 14: 576 vision tokens; 32 decoder layers), tiny widths
    "cpu": dict(layers=32, hidden=128, heads=2, kv_heads=1, vocab=512, vision_hidden=32, vision_layers=2, ffn=256,
                dtype="float32", kv_bytes=40 << 20, requests=32, new_tokens=16),
    # LLaVA-1.5-7B: Vicuna-7B decoder, CLIP ViT-L/14-336 tower
    "gpu": dict(layers=32, hidden=4096, heads=32, kv_heads=32, vocab=32064, vision_hidden=1024, vision_layers=24,
                ffn=11008, dtype="bfloat16", kv_bytes=16 << 30, requests=512, new_tokens=64),
}
BUDGETS = (192, 128, 64)
LAYERS = (2, 8, 16, 24)
BLOCK = 32
QUESTION = "USER: <image>\nwhat is shown in the image ? answer with a single word . ASSISTANT:"


def build_model(path: str, shape: dict, with_weights: bool) -> None:
    """A LLaVA-1.5-shaped model folder (config, processor; random weights when ``with_weights``)."""
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration


    text = LlamaConfig(vocab_size=shape["vocab"], hidden_size=shape["hidden"], intermediate_size=shape["ffn"],
                       num_hidden_layers=shape["layers"], num_attention_heads=shape["heads"],
                       num_key_value_heads=shape["kv_heads"], max_position_embeddings=4096, pad_token_id=PAD)
    vision = CLIPVisionConfig(hidden_size=shape["vision_hidden"], intermediate_size=4 * shape["vision_hidden"],
                              num_hidden_layers=shape["vision_layers"], num_attention_heads=max(2, shape["vision_hidden"] // 64),
                              image_size=336, patch_size=14)
    config = LlavaConfig(text_config=text, vision_config=vision, image_token_id=IMAGE_TOKEN, vision_feature_layer=-2,
                         vision_feature_select_strategy="default")
    config.architectures = ["LlavaForConditionalGeneration"]
    if with_weights:
        torch.manual_seed(0)
        LlavaForConditionalGeneration(config).save_pretrained(path)
    else:
        config.save_pretrained(path)
    tiny_llava_processor(image_size=336, patch=14).save_pretrained(path)


def settings():
    yield "full", CompressionConfig(layers=(), drop_ratio=0.0)
    for budget in BUDGETS:
        yield f"adsc-{budget}", CompressionConfig(layers=LAYERS, budget=budget)


def run_setting(path: str, config, shape: dict, dummy: bool) -> dict:
    from PIL import Image
    from vllm import LLM, SamplingParams


    llm = LLM(path, **engine_kwargs(
        config, max_model_len=1024, block_size=BLOCK, dtype=shape["dtype"], kv_cache_memory_bytes=shape["kv_bytes"],
        max_num_seqs=shape["requests"], max_num_batched_tokens=8192, limit_mm_per_prompt={"image": 1},
        distributed_executor_backend="uni", load_format="dummy" if dummy else "auto", seed=0))
    engine = llm.llm_engine
    scheduler = engine.engine_core.engine_core.scheduler
    params = SamplingParams(max_tokens=shape["new_tokens"], temperature=0, ignore_eos=True)
    image = Image.new("RGB", (336, 336), (120, 40, 200))
    start = time.perf_counter()
    first, done, peak, output_tokens = {}, {}, 0, 0
    for i in range(shape["requests"]):
        engine.add_request(f"r{i}", {"prompt": QUESTION, "multi_modal_data": {"image": image}}, params)
    prompt_tokens = None
    while engine.has_unfinished_requests():
        outputs = engine.step()
        peak = max(peak, len(scheduler.running))
        now = time.perf_counter() - start
        for out in outputs:
            prompt_tokens = len(out.prompt_token_ids)
            if out.outputs and out.outputs[0].token_ids and out.request_id not in first:
                first[out.request_id] = now
            if out.finished:
                done[out.request_id] = now
                output_tokens += len(out.outputs[0].token_ids)
    wall = time.perf_counter() - start
    pool = scheduler.kv_cache_manager.block_pool.num_gpu_blocks
    groups = len(scheduler.kv_cache_manager.coordinator.single_type_managers)
    del llm
    return {"requests": shape["requests"], "completed": len(done), "peak_running": peak, "wall_s": wall,
            "requests_per_s": len(done) / wall, "output_tokens_per_s": output_tokens / wall,
            "mean_ttft_s": sum(first.values()) / max(len(first), 1), "kv_blocks_in_pool": pool,
            "kv_cache_groups": groups, "prompt_tokens": prompt_tokens}


def kv_per_request(config, num_layers: int, prompt_tokens: int, new_tokens: int, vision_start: int) -> float:
    """Analytical KV slots (token x layer) one request stores, from the same plan the engine allocates by."""

    if not config.layers:
        return float(num_layers * (prompt_tokens + new_tokens))
    planner = Planner(config, num_layers)
    plan = planner.plan([VisionSpan(vision_start, (24, 24))])
    total = prompt_tokens + new_tokens
    return float(sum(plan.num_kept(planner.stage_of_layer(layer), total) for layer in range(num_layers)))


def write_report(out: str, rows: dict, meta: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    full = rows["full"]
    for row in rows.values():
        row["concurrency_vs_full"] = row["peak_running"] / full["peak_running"]
        row["throughput_vs_full"] = row["output_tokens_per_s"] / full["output_tokens_per_s"]
        row["kv_ratio_limit"] = full["kv_slots_per_request"] / row["kv_slots_per_request"]
        row["concurrency_vs_limit"] = row["concurrency_vs_full"] / row["kv_ratio_limit"]
    with open(os.path.join(out, "bench.json"), "w") as fh:
        json.dump({"meta": meta, "settings": rows}, fh, indent=2)
    lines = [f"# vLLM serving: full vs ADSC ({meta['mode']} mode)", "",
             f"{meta['command']}  ", f"{meta['device']}; vllm {meta['vllm']}, torch {meta['torch']}, "
             f"transformers {meta['transformers']}; KV budget {meta['kv_bytes'] / 2**20:.0f} MiB, "
             f"{meta['requests']} requests of {rows['full']['prompt_tokens']} prompt + {meta['new_tokens']} output tokens", "",
             "| setting | concurrent requests | x full | KV limit (x) | of limit | req/s | out tok/s | x full "
             "| mean TTFT s | KV groups |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['peak_running']} | {r['concurrency_vs_full']:.2f} | {r['kv_ratio_limit']:.2f} | "
                     f"{r['concurrency_vs_limit']:.2f} | {r['requests_per_s']:.2f} | {r['output_tokens_per_s']:.1f} | "
                     f"{r['throughput_vs_full']:.2f} | {r['mean_ttft_s']:.2f} | {r['kv_cache_groups']} |")
    with open(os.path.join(out, "bench.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    names = list(rows)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = range(len(names))
    ax.bar([i - 0.27 for i in x], [rows[n]["kv_ratio_limit"] for n in names], 0.27, label="KV limit")
    ax.bar(list(x), [rows[n]["concurrency_vs_full"] for n in names], 0.27, label="concurrent requests")
    ax.bar([i + 0.27 for i in x], [rows[n]["throughput_vs_full"] for n in names], 0.27, label="output tokens/s")
    ax.set_xticks(list(x), names)
    ax.set_ylabel("x full model")
    ax.set_title(f"vLLM, one KV budget ({meta['mode']})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "bench.png"), dpi=120)
    print("\n".join(lines))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=sorted(SHAPES), default="cpu")
    p.add_argument("--out", required=True)
    p.add_argument("--requests", type=int, help="requests per setting (default: the mode's)")
    p.add_argument("--kv-mib", type=int, help="KV-cache memory in MiB (default: the mode's)")
    p.add_argument("--model-dir", default="runs/bench_vllm_model", help="where the benchmark model is built (not committed)")
    args = p.parse_args(argv)
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.pop("VLLM_CPU_KVCACHE_SPACE", None)  # the budget is kv_cache_memory_bytes, the same for all
    if args.mode == "gpu":
        os.environ.setdefault("VLLM_USE_V2_MODEL_RUNNER", "0")
    shape = dict(SHAPES[args.mode])
    if args.requests:
        shape["requests"] = args.requests
    if args.kv_mib:
        shape["kv_bytes"] = args.kv_mib << 20
    os.makedirs(args.out, exist_ok=True)
    model_dir = os.path.join(args.model_dir, args.mode)
    dummy = args.mode == "gpu"
    if not os.path.exists(os.path.join(model_dir, "config.json")):
        build_model(model_dir, shape, with_weights=not dummy)
    import torch
    import transformers
    import vllm
    from PIL import Image
    from tqdm.auto import tqdm
    from transformers import AutoProcessor


    ids = AutoProcessor.from_pretrained(model_dir)(text=QUESTION, images=[Image.new("RGB", (336, 336))])["input_ids"][0]
    vision_start = list(ids).index(IMAGE_TOKEN)
    rows = {}
    for name, config in tqdm(list(settings()), desc="settings"):
        row = run_setting(model_dir, config, shape, dummy)
        row["kv_slots_per_request"] = kv_per_request(config, shape["layers"], row["prompt_tokens"],
                                                     shape["new_tokens"], vision_start)
        row["config"] = config.to_dict()
        rows[name] = row
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    meta = {"mode": args.mode, "command": "python -m adsc.serving.vllm.bench " + " ".join(sys.argv[1:] if argv is None else argv),
            "device": device, "vllm": vllm.__version__, "torch": torch.__version__,
            "transformers": transformers.__version__, "kv_bytes": shape["kv_bytes"], "requests": shape["requests"],
            "new_tokens": shape["new_tokens"], "block_size": BLOCK, "shape": shape}
    write_report(args.out, rows, meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
