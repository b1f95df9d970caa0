"""Score-free selection: exact counts, nesting, spread, and the mask formats per kernel."""

import pytest
import torch

from adsc.engine.state import stage_mask
from adsc.selection import even_indices, nested_selection


@pytest.mark.parametrize("pattern", ["grid2d", "stride1d", "random"])
def test_counts_exact_and_nested(pattern):
    counts = (335, 195, 113, 65, 0)
    stages = nested_selection((24, 24), counts, pattern)
    assert [len(s) for s in stages] == list(counts)
    for outer, inner in zip(stages, stages[1:]):
        assert set(inner.tolist()) <= set(outer.tolist())


def test_grid2d_keeps_a_regular_subgrid_when_the_ratio_allows():
    (kept,) = nested_selection((24, 24), (144,), "grid2d", 0.5)
    rows, cols = kept // 24, kept % 24
    assert sorted(set(rows.tolist())) == list(range(1, 24, 2))
    assert sorted(set(cols.tolist())) == list(range(1, 24, 2))


def test_grid2d_spreads_over_rows_where_stride1d_keeps_columns():
    (g,) = nested_selection((24, 24), (144,), "grid2d")
    (s,) = nested_selection((24, 24), (144,), "stride1d")
    assert len(set((g % 24).tolist())) == 12 and len(set((g // 24).tolist())) == 12
    assert len(set((s % 24).tolist())) == 6 and len(set((s // 24).tolist())) == 24  # whole columns


def test_phase_moves_the_survivor_inside_its_cell():
    assert even_indices(12, 4, 0.0) == [0, 3, 6, 9]
    assert even_indices(12, 4, 0.5) == [1, 4, 7, 10]
    a = nested_selection((6, 6), (9,), "grid2d", 0.0)[0]
    b = nested_selection((6, 6), (9,), "grid2d", 0.5)[0]
    assert not torch.equal(a, b)


def test_mask_formats_per_attention_kernel():
    kv_valid = torch.tensor([[False, True, True, True], [True, True, True, True]])
    sdpa = stage_mask(kv_valid, 4, "sdpa", torch.float32)
    assert sdpa.dtype == torch.bool and sdpa.shape == (2, 1, 4, 4)
    assert sdpa[0, 0].tolist() == [[True, False, False, False], [False, True, False, False],
                                   [False, True, True, False], [False, True, True, True]]
    eager = stage_mask(kv_valid, 4, "eager", torch.float32)
    assert torch.equal(eager == 0, sdpa)
    flash = stage_mask(kv_valid, 4, "flash_attention_2", torch.float32)
    assert flash.tolist() == kv_valid.int().tolist()  # 2-D key mask: slot order is causal order
    decode = stage_mask(kv_valid, 1, "sdpa", torch.float32)
    assert decode.shape == (2, 1, 1, 4) and decode[0, 0, 0].tolist() == [False, True, True, True]
    # no padding (known on the host): SDPA and FlashAttention take their fast causal path, eager
    # still needs a mask; without the host's word the explicit mask is built (correct, slower)
    full = torch.ones(1, 5, dtype=torch.bool)
    assert stage_mask(full, 5, "sdpa", torch.float32, all_valid=True) is None
    assert stage_mask(full, 5, "flash_attention_2", torch.float32, all_valid=True) is None
    assert stage_mask(full, 5, "eager", torch.float32, all_valid=True) is not None
    assert torch.equal(stage_mask(full, 5, "sdpa", torch.float32)[0, 0], torch.ones(5, 5, dtype=torch.bool).tril())
