"""A compressed decode step under torch.compile: one graph (fullgraph=True, so any graph break
fails), compiled once for all decode steps, and the same tokens as eager compressed generation.

transformers' generate compiles only the decode step (the prefill runs eagerly) when the cache
is compileable; adsc.StageCache is. The "eager" backend checks the graph capture (seconds); the
inductor runs (one per model, ~45 s each on a shared CPU) check the generated code too.
"""

import pytest
import torch

import adsc

from .families.gemma3 import CASE as GEMMA3
from .test_stage_cache import CFG, NEW, llava_case, qwen_case

pytestmark = pytest.mark.compile


def counting_backend(kind: str):
    """A torch.compile backend that counts graph compilations (a recompilation is one more)."""
    compiled = []

    def backend(graph, example_inputs):
        compiled.append(graph)
        if kind == "eager":
            return graph.forward
        from torch._inductor.compile_fx import compile_fx

        return compile_fx(graph, example_inputs)

    return backend, compiled


def compiled_generate(model, inputs, kind):
    from transformers import CompileConfig

    backend, compiled = counting_backend(kind)
    config = CompileConfig(backend=backend, mode="default", fullgraph=True)
    config._compile_all_devices = True  # transformers compiles on GPUs only unless told
    torch._dynamo.reset()
    cache = adsc.StageCache(model.config, max_new_tokens=NEW)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False, cache=cache,
                             compile_config=config)
    return out, compiled


def gemma3_case(padded: bool):
    """Gemma 3 with a 6-token window on 23- and 44-token prompts: local and global layers, image
    blocks, and a window that bites inside every stage (a StageCache keeps its sliding layers full
    length; the stage masks apply the window)."""
    from adsc.tiny_gemma3 import tiny_gemma3

    samples = GEMMA3.samples()
    model = tiny_gemma3(layers=6, attn="sdpa", sliding_window=6)
    inputs = GEMMA3.batch(samples[:2]) if padded else samples[0]
    return model, {k: v for k, v in inputs.items() if k != "position_ids"}


@pytest.mark.parametrize("kind, case, padded", [
    ("eager", llava_case, False), ("eager", llava_case, True), ("eager", qwen_case, False), ("eager", qwen_case, True),
    ("eager", gemma3_case, False), ("eager", gemma3_case, True),
    ("inductor", llava_case, True), ("inductor", qwen_case, False),
], ids=["capture-llava-batch1", "capture-llava-padded", "capture-qwen2_vl-batch1", "capture-qwen2_vl-padded",
        "capture-gemma3-batch1", "capture-gemma3-padded", "inductor-llava-padded", "inductor-qwen2_vl-batch1"])
def test_compiled_compressed_decode_gives_eager_tokens_with_one_graph(kind, case, padded):
    model, inputs = case(padded)
    handle = adsc.compress(model, CFG)
    try:
        with torch.no_grad():
            eager = model.generate(**inputs, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False)
        out, compiled = compiled_generate(model, inputs, kind)
        assert torch.equal(out, eager)
        # NEW - 1 decode steps, all served by the graph compiled at the first: no recompilation
        assert len(compiled) == 1, f"{len(compiled)} compilations"
        assert handle.last_trace.kv_lengths(0)[-1] < handle.last_trace.kv_lengths(0)[0]  # it did compress
    finally:
        handle.remove()
        torch._dynamo.reset()


def test_a_reset_stage_cache_serves_the_next_prefill_without_compiling_again():
    from transformers import CompileConfig

    model, inputs = llava_case(padded=True)
    handle = adsc.compress(model, CFG)
    backend, compiled = counting_backend("eager")
    config = CompileConfig(backend=backend, mode="default", fullgraph=True)
    config._compile_all_devices = True
    torch._dynamo.reset()
    cache = adsc.StageCache(model.config, max_new_tokens=NEW)
    try:
        with torch.no_grad():
            runs = []
            for _ in range(2):
                cache.reset()
                runs.append(model.generate(**inputs, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False, cache=cache,
                                           compile_config=config))
            eager = model.generate(**inputs, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False)
        assert torch.equal(runs[0], eager) and torch.equal(runs[1], eager)
        assert len(compiled) == 1, f"{len(compiled)} compilations"
        longer = {**inputs, "input_ids": torch.cat([inputs["input_ids"], inputs["input_ids"][:, -12:]], 1)}
        longer["attention_mask"] = torch.ones_like(longer["input_ids"])
        cache.reset()
        with pytest.raises(ValueError, match="make a new StageCache"), torch.no_grad():
            model(**longer, cache=cache)
    finally:
        handle.remove()
        torch._dynamo.reset()


def test_batches_of_one_shape_whose_stages_keep_other_counts_share_one_decode_graph():
    """A reset StageCache takes a batch of the same padded width whose compressed stages are narrower
    (its widest sample has less text): the compiled step does not read a stage's width, so it is not
    compiled again (it was, guarding on the width: one graph per batch in an evaluation)."""
    from transformers import CompileConfig

    from adsc.tiny import PAD, tiny_llava

    from .helpers import llava_ids

    def batch(prefixes):
        rows = [llava_ids(p) for p in prefixes]
        return dict(input_ids=torch.tensor([[PAD] * (64 - len(r)) + r for r in rows]),
                    attention_mask=torch.tensor([[0] * (64 - len(r)) + [1] * len(r) for r in rows]),
                    pixel_values=torch.randn(len(rows), 3, 48, 48))

    model = tiny_llava(layers=6)
    handle = adsc.compress(model, CFG)
    backend, compiled = counting_backend("eager")
    config = CompileConfig(backend=backend, mode="default", fullgraph=True)
    config._compile_all_devices = True
    greedy = dict(max_new_tokens=4, min_new_tokens=4, do_sample=False)
    torch._dynamo.reset()
    cache = adsc.StageCache(model.config, max_new_tokens=4)
    try:
        with torch.no_grad():
            for prefixes in ([[1, 5, 6, 7, 8, 9], [1]], [[1, 5], [1, 6, 7]]):
                inputs = batch(prefixes)
                cache.reset()
                got = model.generate(**inputs, **greedy, cache=cache, compile_config=config)
                assert torch.equal(got, model.generate(**inputs, **greedy))
        assert len(compiled) == 1, f"{len(compiled)} compilations"
    finally:
        handle.remove()
        torch._dynamo.reset()
