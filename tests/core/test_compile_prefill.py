"""adsc.compile_prefill: every decoder layer compiled for prefills (fullgraph=True, so a graph break
inside a layer fails), the engine's work between layers eager. Its logits and greedy tokens equal
eager compressed ones, LLaVA and Qwen2-VL, batch 1 and a padded batch; compilations are counted:
one graph per decoder layer for a prompt shape (transformers' attention picks its cache layer by
``layer_idx``, which dynamo specialises on), none for a second prompt of that shape.

Most checks capture graphs with a counting backend that runs them as captured (seconds); one
test runs inductor (marked ``compile``).
"""

import pytest
import torch
from transformers import DynamicCache

import adsc

from .test_compile import compiled_generate, counting_backend
from .test_stage_cache import CFG, NEW, llava_case, qwen_case

CASES = [(llava_case, False), (llava_case, True), (qwen_case, False), (qwen_case, True)]
IDS = ["llava-batch1", "llava-padded", "qwen2_vl-batch1", "qwen2_vl-padded"]
GREEDY = dict(max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False)
CACHES = {"dynamic": lambda model: DynamicCache(config=model.config),
          "stage": lambda model: adsc.StageCache(model.config, room=3)}


def logits(model, inputs, cache):
    with torch.no_grad():
        return model(**inputs, cache=cache, use_cache=True).logits


@pytest.fixture
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("case, padded", CASES, ids=IDS)
def test_compiled_prefill_gives_eager_logits_and_tokens_compiling_once_per_layer(case, padded, fresh_dynamo):
    model, inputs = case(padded)
    layers = len(model.model.language_model.layers)
    handle = adsc.compress(model, CFG)
    try:
        eager = {kind: logits(model, inputs, make(model)) for kind, make in CACHES.items()}
        with torch.no_grad():
            eager_tokens = model.generate(**inputs, **GREEDY)
        backend, graphs = counting_backend("eager")
        prefill = adsc.compile_prefill(model, backend=backend)
        try:
            got = logits(model, inputs, DynamicCache(config=model.config))
            assert len(graphs) == layers, f"{len(graphs)} graphs for {layers} layers"
            stage = logits(model, inputs, adsc.StageCache(model.config, room=3))  # another cache: its own graphs
            assert len(graphs) == 2 * layers
            with torch.no_grad():
                # generate's prefill may differ in its arguments (padded: position_ids for the layers
                # before the first stage), so it may compile its own; a second one of the same shape, nothing
                tokens = model.generate(**inputs, **GREEDY)
                before = len(graphs)
                again = model.generate(**inputs, **GREEDY)
            assert len(graphs) == before <= 3 * layers
        finally:
            prefill.remove()
        torch.testing.assert_close(got, eager["dynamic"], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(stage, eager["stage"], atol=1e-5, rtol=1e-5)
        assert torch.equal(tokens, eager_tokens) and torch.equal(again, eager_tokens)
        assert handle.last_trace.kv_lengths(0)[-1] < handle.last_trace.kv_lengths(0)[0]  # it did compress
    finally:
        handle.remove()


def test_a_new_prompt_shape_compiles_one_graph_per_layer_and_the_old_shape_none(fresh_dynamo):
    model, inputs = llava_case(padded=False)
    layers = len(model.model.language_model.layers)
    handle = adsc.compress(model, CFG)
    backend, graphs = counting_backend("eager")
    prefill = adsc.compile_prefill(model, backend=backend)
    try:
        logits(model, inputs, DynamicCache(config=model.config))
        longer = dict(inputs, input_ids=torch.cat([inputs["input_ids"], inputs["input_ids"][:, -5:]], 1))
        longer["attention_mask"] = torch.ones_like(longer["input_ids"])
        logits(model, longer, DynamicCache(config=model.config))
        assert len(graphs) == 2 * layers
        logits(model, inputs, DynamicCache(config=model.config))
        logits(model, longer, DynamicCache(config=model.config))
        assert len(graphs) == 2 * layers  # both shapes served from the cache of graphs
    finally:
        prefill.remove()
        handle.remove()


def test_compiled_prefill_of_ratio_zero_equals_the_unpatched_model(fresh_dynamo):
    model, inputs = llava_case(padded=True)
    plain = logits(model, inputs, DynamicCache(config=model.config))
    handle = adsc.compress(model, adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.0))
    prefill = adsc.compile_prefill(model, backend=counting_backend("eager")[0])
    try:
        got = logits(model, inputs, DynamicCache(config=model.config))
    finally:
        prefill.remove()
        handle.remove()
    torch.testing.assert_close(got, plain, atol=1e-5, rtol=1e-5)


def test_compiled_prefill_and_compiled_decode_together_give_eager_tokens(fresh_dynamo):
    """The decode step compiled by generate (one graph) traces through the layers' dispatch to their
    own forward; the prefill runs the per-layer graphs; a StageCache allocated inside them is still
    marked static for the decode graph."""
    model, inputs = qwen_case(padded=True)
    handle = adsc.compress(model, CFG)
    try:
        with torch.no_grad():
            eager = model.generate(**inputs, **GREEDY)
        backend, graphs = counting_backend("eager")
        prefill = adsc.compile_prefill(model, backend=backend)
        try:
            out, decode_graphs = compiled_generate(model, inputs, "eager")
        finally:
            prefill.remove()
        assert torch.equal(out, eager)
        assert len(decode_graphs) == 1 and len(graphs) == len(model.model.language_model.layers)
    finally:
        handle.remove()


def test_compile_prefill_switches_off_and_is_removed():
    model, _ = llava_case(padded=False)
    layers = model.model.language_model.layers
    prefill = adsc.compile_prefill(model, backend=counting_backend("eager")[0])
    with pytest.raises(RuntimeError, match="compiled already"):
        adsc.compile_prefill(model)
    prefill.remove()
    assert all("forward" not in layer.__dict__ for layer in layers)
    adsc.compile_prefill(model).remove()  # again after remove()


@pytest.mark.parametrize("order", ["compress_first", "compile_first"])
@pytest.mark.parametrize("removed_first", ["handle", "prefill"])
def test_compile_prefill_and_compress_compose_in_either_order(order, removed_first, fresh_dynamo):
    """Both attach through one ForwardCall per layer (the engine's step, then the compiled layer):
    either order gives the compressed logits, either removal leaves the other working, and after
    both every layer's own forward and dynamo's recompile limits are back."""
    model, inputs = llava_case(padded=True)
    layers = model.model.language_model.layers
    with torch.no_grad():
        plain = logits(model, inputs, DynamicCache(config=model.config))
        handle = adsc.compress(model, CFG)
        compressed = logits(model, inputs, DynamicCache(config=model.config))
        handle.remove()
    limits = (torch._dynamo.config.recompile_limit, torch._dynamo.config.accumulated_recompile_limit)
    backend, graphs = counting_backend("eager")
    if order == "compress_first":
        handle = adsc.compress(model, CFG)
        prefill = adsc.compile_prefill(model, backend=backend)
    else:
        prefill = adsc.compile_prefill(model, backend=backend)
        handle = adsc.compress(model, CFG)
    torch.testing.assert_close(logits(model, inputs, DynamicCache(config=model.config)), compressed)
    assert len(graphs) == len(layers)  # the layers ran compiled, the engine's steps outside the graphs
    first, second = (handle, prefill) if removed_first == "handle" else (prefill, handle)
    first.remove()
    left = plain if first is handle else compressed
    torch.testing.assert_close(logits(model, inputs, DynamicCache(config=model.config)), left)
    second.remove()
    assert all("forward" not in layer.__dict__ for layer in layers)
    assert (torch._dynamo.config.recompile_limit, torch._dynamo.config.accumulated_recompile_limit) == limits
    torch.testing.assert_close(logits(model, inputs, DynamicCache(config=model.config)), plain, atol=0, rtol=0)


@pytest.mark.compile
def test_inductor_compiled_prefill_gives_eager_logits(fresh_dynamo):
    model, inputs = llava_case(padded=True)
    handle = adsc.compress(model, CFG)
    try:
        eager = logits(model, inputs, DynamicCache(config=model.config))
        backend, graphs = counting_backend("inductor")
        prefill = adsc.compile_prefill(model, backend=backend)
        try:
            got = logits(model, inputs, DynamicCache(config=model.config))
            again = logits(model, inputs, DynamicCache(config=model.config))
        finally:
            prefill.remove()
        torch.testing.assert_close(got, eager, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(again, eager, atol=1e-4, rtol=1e-4)
        assert len(graphs) == len(model.model.language_model.layers)
    finally:
        handle.remove()


def test_a_compiled_prefill_counts_for_the_stage_cache_room(fresh_dynamo):
    """A compiled prefill runs no Python of the cache, so it marks the StageCache prefilled itself:
    eager decode steps after it get exactly the room (max_new_tokens - 1) and a clear error past it."""
    model, inputs = llava_case(padded=False)
    handle = adsc.compress(model, CFG)
    backend, _ = counting_backend("eager")
    prefill = adsc.compile_prefill(model, backend=backend)
    try:
        with torch.no_grad():
            cache = adsc.StageCache(model.config, max_new_tokens=3)
            model.generate(**inputs, max_new_tokens=3, do_sample=False, cache=cache)
            assert cache.prefilled and cache.decode_tokens == 2
            with pytest.raises(ValueError, match="room for 2 decode-step tokens"):
                model.generate(**inputs, max_new_tokens=4, do_sample=False, cache=adsc.StageCache(model.config, max_new_tokens=3))
    finally:
        prefill.remove()
        handle.remove()
