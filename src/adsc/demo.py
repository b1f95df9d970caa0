"""Compress a tiny local LLaVA-shaped model, generate, and show what each layer kept (``adsc demo``).

Runs offline in seconds: the model has random weights, so the generated tokens mean nothing;
the per-layer vision-token counts and KV-cache sizes are the point.
"""

from __future__ import annotations

import torch
from PIL import Image

from . import CompressionConfig, cache_bytes, cache_lengths, compress
from .tiny import tiny_llava, tiny_llava_processor


def add_arguments(p) -> None:
    p.add_argument("--layers", type=int, nargs="+", default=[2, 8, 16, 24], help="pruning layers (0-indexed)")
    p.add_argument("--budget", type=float, default=192.0, help="average vision tokens over all layers")
    p.add_argument("--new-tokens", type=int, default=8)


def run(args) -> int:
    torch.manual_seed(0)
    model = tiny_llava(layers=32, image_size=336, patch=14, attn="sdpa")  # 24 x 24 = 576 vision tokens
    processor = tiny_llava_processor(image_size=336, patch=14)
    image = Image.new("RGB", (336, 336), (200, 40, 40))
    inputs = processor(images=[image], text=["USER: <image>\nWhat color is the square? ASSISTANT:"], return_tensors="pt")

    results = {}
    for label, config in (("full", None), ("adsc", CompressionConfig(layers=tuple(args.layers), budget=args.budget))):
        handle = compress(model, config) if config else None
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=args.new_tokens, do_sample=False, return_dict_in_generate=True)
        cache = out.past_key_values
        results[label] = (cache_lengths(cache), cache_bytes(cache))
        if handle is not None:
            print(f"schedule ({config.layers}, budget {args.budget}):")
            print(f"  drop ratio {handle.schedule.ratio:.4f}, keep counts {list(handle.schedule.keep_counts)}, "
                  f"average {handle.schedule.average:.2f} vision tokens per layer")
            print("\nper layer, sample 0 (prompt has", inputs["input_ids"].shape[1], "tokens):")
            trace = handle.last_trace
            print("layer  vision_tokens  kv_cache_len")
            for layer, (v, kv) in enumerate(zip(trace.vision_tokens(0), cache_lengths(cache))):
                print(f"{layer:>5}  {v:>13}  {kv:>12}")
            handle.remove()
    full_bytes, ours_bytes = results["full"][1], results["adsc"][1]
    print(f"\nKV cache after generate: full {full_bytes / 1e6:.3f} MB, adsc {ours_bytes / 1e6:.3f} MB "
          f"({100 * ours_bytes / full_bytes:.1f} % of full)")
    return 0
