"""Device reads (host syncs) of a compressed prefill beyond the full model's, counted the way
tests/core/test_generate.py counts a decode step's: a read drains a GPU's queue, and at batch 1
on a GPU the prefill is bound by the host launching kernels, so each one costs a stall.

What is left, and why: the vision-token positions (one read of input_ids for the whole batch,
was three per sample), each stage's width (one read per stage: the widest sample's kept tokens
sizes every tensor of the stage), and for Qwen2-VL the image grids (one read) and the check of
token counts against them before get_rope_index (one read, was six)."""

import pytest
import torch
from transformers import DynamicCache

import adsc

from .test_generate import _DeviceReads
from .test_stage_cache import CFG, llava_case, qwen_case

STAGES = len(CFG.layers)
CACHES = {"dynamic": lambda model: DynamicCache(config=model.config),
          "stage": lambda model: adsc.StageCache(model.config, room=3)}


def prefill_reads(case, padded: bool, make_cache, compressed: bool) -> int:
    model, inputs = case(padded)
    handle = adsc.compress(model, CFG) if compressed else None
    counter = _DeviceReads()
    try:
        with torch.no_grad(), counter:
            model(**inputs, cache=make_cache(model), use_cache=True)
    finally:
        if handle is not None:
            handle.remove()
    return counter.before + counter.during


@pytest.mark.parametrize("cache", CACHES, ids=list(CACHES))
@pytest.mark.parametrize("padded", [False, True], ids=["batch1", "padded"])
@pytest.mark.parametrize("case, fixed", [(llava_case, 1), (qwen_case, 3)], ids=["llava", "qwen2_vl"])
def test_a_compressed_prefill_reads_the_device_once_per_stage_and_a_fixed_few_times_more(case, fixed, padded, cache):
    extra = prefill_reads(case, padded, CACHES[cache], True) - prefill_reads(case, padded, CACHES[cache], False)
    assert extra == fixed + STAGES, extra


def test_token_runs_reads_host_ids_and_tensors_alike():
    from adsc.adapters.base import token_runs

    row = [1, 5, 5, 5, 7, 7, 5, 2, 5]
    expected = [(1, 3, 5), (4, 2, 7), (6, 1, 5), (8, 1, 5)]
    assert token_runs(row, (5, 7)) == expected
    assert token_runs(torch.tensor(row), (5, 7)) == expected
    assert token_runs(row, (9,)) == [] and token_runs([], (5,)) == []
