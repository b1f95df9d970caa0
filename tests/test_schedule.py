import pytest

from adsc import BudgetError, reachable_budgets, schedule_from_counts, solve_ratio


def test_paper_example_keep_300_at_layer_8():
    sched = schedule_from_counts(32, 576, [8], [300])
    assert sched.tokens_per_layer()[:9] == [576] * 8 + [300]
    assert sched.average == pytest.approx((576 * 8 + 300 * 24) / 32)


@pytest.mark.parametrize("budget", [192, 128, 64])
def test_solver_hits_budget_within_one_token(budget):
    sched = solve_ratio(32, 576, (2, 8, 16, 24), budget)
    assert abs(sched.average - budget) <= 1.0
    assert 0 < sched.ratio < 1


def test_unreachable_budget_names_reachable_range():
    low, high = reachable_budgets(32, 576, (8, 16, 24))
    assert low == 144
    with pytest.raises(BudgetError, match=r"reachable averages lie in \(144.00, 576\]"):
        solve_ratio(32, 576, (8, 16, 24), 64)
