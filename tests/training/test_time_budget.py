"""TimeBudget: the learning-rate schedule over wall-clock time, and the stop when time is up."""

import math
from types import SimpleNamespace

import pytest
import torch

from adsc.training.time_budget import TimeBudget, time_scale


def test_time_scale_warms_up_then_falls_on_a_cosine_to_zero():
    assert time_scale(0.0, 0.1) == 0.0
    assert time_scale(0.05, 0.1) == pytest.approx(0.5)
    assert time_scale(0.1, 0.1) == pytest.approx(1.0)
    assert time_scale(0.55, 0.1) == pytest.approx(0.5)
    assert time_scale(1.0, 0.1) == pytest.approx(0.0, abs=1e-12)
    assert time_scale(2.0, 0.1) == pytest.approx(0.0, abs=1e-12)  # past the budget: stays at zero


def test_time_budget_scales_every_group_from_its_base_rate_and_stops_when_time_is_up(tmp_path):
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.SGD([{"params": params[:1], "lr": 1.0}, {"params": params[1:], "lr": 0.1}])
    torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)  # as the Trainer's constant scheduler: sets initial_lr
    args, state = SimpleNamespace(output_dir=str(tmp_path)), SimpleNamespace(global_step=0)
    control = SimpleNamespace(should_training_stop=False)
    clock = TimeBudget(seconds=100.0, warmup=0.0)
    clock.on_train_begin(args, state, control, optimizer=opt)
    clock.start -= 50.0  # half the time gone
    state.global_step = 1
    clock.on_step_end(args, state, control, optimizer=opt)
    half = 0.5 * (1 + math.cos(math.pi * 0.5))
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([half, 0.1 * half], rel=1e-3)
    assert not control.should_training_stop
    clock.start -= 50.0
    clock.on_step_end(args, state, control, optimizer=opt)
    assert control.should_training_stop


def test_time_budget_resumes_on_the_clock_of_its_checkpoint(tmp_path):
    args, state = SimpleNamespace(output_dir=str(tmp_path)), SimpleNamespace(global_step=7)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    first = TimeBudget(seconds=100.0)
    first.spent_before = 40.0
    (tmp_path / "checkpoint-7").mkdir()
    first.on_save(args, state, SimpleNamespace())
    again = TimeBudget(seconds=100.0)
    again.on_train_begin(args, state, SimpleNamespace(), optimizer=opt)
    assert again.spent() == pytest.approx(40.0, abs=1.0)
    with pytest.raises(ValueError, match="time budget of 100 s, not 200 s"):  # another schedule: refused
        TimeBudget(seconds=200.0).on_train_begin(args, state, SimpleNamespace(), optimizer=opt)


def test_time_budget_refuses_several_processes(tmp_path):
    args = SimpleNamespace(output_dir=str(tmp_path), world_size=2)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="single process"):
        TimeBudget(seconds=10.0).on_train_begin(args, SimpleNamespace(global_step=0), SimpleNamespace(), optimizer=opt)
