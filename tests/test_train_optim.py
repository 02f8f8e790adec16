"""Parameter groups, freezing, schedules, losses and the run configuration."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from layerlab.train import OptimizerConfig, RunConfig, ScheduleConfig
from layerlab.train.config import LossConfig
from layerlab.train.optim import LossFn, make_optimizer, make_scheduler, param_groups


def _net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3),  # weight decayed, bias not
        nn.BatchNorm2d(4),  # neither
        nn.ReLU(),
        nn.Flatten(),
        nn.LayerNorm(4 * 6 * 6),  # neither
        nn.PReLU(),  # 1-D parameter: not decayed
        nn.Linear(4 * 6 * 6, 3),
    )


def test_weight_decay_on_weights_only() -> None:
    groups, infos = param_groups(_net(), OptimizerConfig(weight_decay=0.1))
    by_name = {i.name: i for i in infos}
    assert by_name["decay"].params == ["0.weight", "6.weight"]
    assert by_name["decay"].weight_decay == 0.1
    assert sorted(by_name["no_decay"].params) == sorted(
        ["0.bias", "1.weight", "1.bias", "4.weight", "4.bias", "5.weight", "6.bias"]
    )
    assert by_name["no_decay"].weight_decay == 0.0
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    assert by_name["decay"].elements == 4 * 9 + 144 * 3


def test_weight_decay_all_switch() -> None:
    groups, infos = param_groups(_net(), OptimizerConfig(weight_decay=0.1, weight_decay_all=True))
    assert len(groups) == 1 and infos[0].name == "all" and infos[0].weight_decay == 0.1
    assert infos[0].tensors == len(list(_net().parameters()))


def test_frozen_parameters_are_not_in_the_optimizer() -> None:
    net = _net()
    net[0].requires_grad_(False)
    groups, infos = param_groups(net, OptimizerConfig(weight_decay=0.1))
    opt = make_optimizer(groups, OptimizerConfig(weight_decay=0.1))
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert id(net[0].weight) not in in_opt and id(net[0].bias) not in in_opt
    assert all(not n.startswith("0.") for i in infos for n in i.params)
    assert len(in_opt) == len(list(net.parameters())) - 2


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop"])
def test_optimizers_get_their_settings(name: str) -> None:
    cfg = OptimizerConfig(name=name, lr=0.05, weight_decay=0.01)
    opt = make_optimizer(param_groups(_net(), cfg)[0], cfg)
    assert type(opt).__name__.lower() == name
    assert opt.param_groups[0]["lr"] == 0.05
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]


def test_sgd_nesterov_and_validation() -> None:
    cfg = OptimizerConfig(name="sgd", momentum=0.8, nesterov=True)
    opt = make_optimizer(param_groups(_net(), cfg)[0], cfg)
    assert opt.param_groups[0]["nesterov"] is True and opt.param_groups[0]["momentum"] == 0.8
    with pytest.raises(ValidationError, match="nesterov"):
        OptimizerConfig(name="adam", nesterov=True)


def _lrs(sched: ScheduleConfig, total: int, lr: float = 1.0) -> list[float]:
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    s = make_scheduler(opt, sched, base_lr=lr, total_steps=total)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        s.step()
    return out


def test_warmup_then_cosine() -> None:
    lrs = _lrs(ScheduleConfig(name="cosine", warmup_steps=4, min_lr=0.1), 20)
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[4] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:], strict=False))
    assert lrs[-1] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 15 / 16)))


def test_step_and_none_and_one_cycle() -> None:
    assert _lrs(ScheduleConfig(name="step", step_size=3, gamma=0.5), 7) == pytest.approx(
        [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    )
    assert _lrs(ScheduleConfig(name="none", warmup_steps=2), 4) == pytest.approx([0.5, 1, 1, 1])
    cyc = _lrs(ScheduleConfig(name="one_cycle", pct_start=0.3), 20)
    peak = cyc.index(max(cyc))
    assert 4 <= peak <= 7 and max(cyc) == pytest.approx(1.0, rel=1e-3)
    assert cyc[0] < 0.1 and cyc[-1] < 0.01


def test_losses() -> None:
    out = torch.tensor([[2.0, -1.0], [0.5, 0.5]])
    y = torch.tensor([0, 1])
    ce = LossFn(LossConfig(name="cross_entropy", label_smoothing=0.1), output_shape=[2])
    assert ce(out, y).item() == pytest.approx(nn.functional.cross_entropy(out, y, label_smoothing=0.1).item())
    assert ce.correct(out, y).item() == 1  # row 2 ties: argmax picks class 0
    bce = LossFn(LossConfig(name="bce_with_logits"), output_shape=[1])
    logits = torch.tensor([[-1.5], [0.5]])
    assert bce(logits, y).item() == pytest.approx(
        nn.functional.binary_cross_entropy_with_logits(logits, y.float().view(-1, 1)).item()
    )
    assert bce.correct(logits, y).item() == 2
    onehot = LossFn(LossConfig(name="bce_with_logits"), output_shape=[2])
    assert onehot(out, y).item() == pytest.approx(
        nn.functional.binary_cross_entropy_with_logits(out, nn.functional.one_hot(y, 2).float()).item()
    )
    sl1 = LossFn(LossConfig(name="smooth_l1", beta=0.5), output_shape=[1])
    a, b = torch.tensor([[0.2], [3.0]]), torch.tensor([[0.0], [0.0]])
    assert sl1(a, b).item() == pytest.approx(nn.functional.smooth_l1_loss(a, b, beta=0.5).item())


def test_config_forbids_unknown_keys_and_checks_consistency() -> None:
    with pytest.raises(ValidationError, match="learning_rate"):
        RunConfig.model_validate({"optimizer": {"learning_rate": 0.1}})
    with pytest.raises(ValidationError, match="label_smoothing"):
        RunConfig.model_validate({"loss": {"name": "mse", "label_smoothing": 0.1}})
    with pytest.raises(ValidationError, match="val_split"):
        RunConfig.model_validate({"patience": 2, "data": {"val_split": 0}})
    with pytest.raises(ValidationError, match="epochs or max_steps"):
        RunConfig.model_validate({"epochs": None})
    with pytest.raises(ValidationError, match="upload"):
        RunConfig.model_validate({"data": {"dataset": "upload"}})
    with pytest.raises(ValidationError):
        RunConfig.model_validate({"device": "tpu"})
    cfg = RunConfig.model_validate({"init": "kaiming_normal", "device": "cuda:1"})
    assert cfg.init_arg() == {"scheme": "kaiming_normal"}
    assert RunConfig().freeze_bn_stats is True and RunConfig().compile is False
