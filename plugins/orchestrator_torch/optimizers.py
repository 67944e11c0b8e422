"""The canonical optimizers as one vectorized (torch._foreach_*) update over a list of tensors.

The formulas are the catalogue's, not torch.optim's: lr inside the velocity for
momentum/Nesterov, eps inside the square root for Adagrad/RMSprop, Adagrad's initial
accumulator, AdamW decay applied before the Adam step. ``UPDATES`` is the backend's table
(canonical name -> update rule); the core's ``Optimizer`` owns state slots, hyperparameters and
the learning-rate check, and ``TorchOptimizer`` keeps the learning rate and step count on the
host, so an update never waits for the device.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from orchestrator.contract.optimizer import Optimizer

Tensors = list[torch.Tensor]


class TorchOptimizer(Optimizer):
    """Updates the parameters in place from explicitly given gradients."""

    def setup(self) -> None:
        self.t = 0  # host-side step count: bias corrections need no device sync

    def new_slot(self, variable: torch.Tensor, value: float) -> torch.Tensor:
        return torch.full_like(variable, value).detach()

    def assign_learning_rate(self, lr: float) -> None:
        self.lr = lr  # a Python float: the foreach ops take it as a scalar

    @torch.no_grad()
    def apply(self, grads: list[Any]) -> None:
        self.t += 1
        self.update(self, self.variables, grads)


def sgd(opt: Optimizer, params: Tensors, grads: Tensors) -> None:
    torch._foreach_add_(params, grads, alpha=-opt.lr)


def momentum(opt: Optimizer, params: Tensors, grads: Tensors) -> None:
    v = opt.state["v"]
    torch._foreach_mul_(v, opt.hp["momentum"])
    torch._foreach_add_(v, grads, alpha=opt.lr)  # v = momentum v + lr g
    torch._foreach_sub_(params, v)


def nesterov(opt: Optimizer, params: Tensors, grads: Tensors) -> None:
    v, mom = opt.state["v"], opt.hp["momentum"]
    torch._foreach_mul_(v, mom)
    torch._foreach_add_(v, grads, alpha=opt.lr)
    torch._foreach_add_(params, v, alpha=-mom)  # theta -= momentum v + lr g (look-ahead form)
    torch._foreach_add_(params, grads, alpha=-opt.lr)


def adagrad(opt: Optimizer, params: Tensors, grads: Tensors) -> None:
    G = opt.state["G"]
    torch._foreach_addcmul_(G, grads, grads)
    denom = torch._foreach_add(G, opt.hp["eps"])  # eps inside the square root
    torch._foreach_sqrt_(denom)
    torch._foreach_addcdiv_(params, grads, denom, value=-opt.lr)


def rmsprop(opt: Optimizer, params: Tensors, grads: Tensors) -> None:
    s, rho = opt.state["s"], opt.hp["rho"]
    torch._foreach_mul_(s, rho)
    torch._foreach_addcmul_(s, grads, grads, value=1 - rho)
    denom = torch._foreach_add(s, opt.hp["eps"])  # eps inside the square root
    torch._foreach_sqrt_(denom)
    torch._foreach_addcdiv_(params, grads, denom, value=-opt.lr)


def adam(opt: Optimizer, params: Tensors, grads: Tensors) -> None:
    m, v = opt.state["m"], opt.state["v"]
    b1, b2 = opt.hp["beta1"], opt.hp["beta2"]
    torch._foreach_mul_(m, b1)
    torch._foreach_add_(m, grads, alpha=1 - b1)
    torch._foreach_mul_(v, b2)
    torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
    bc1, bc2 = 1 - b1 ** opt.t, 1 - b2 ** opt.t
    # sqrt(v_hat) + eps = sqrt(v) / sqrt(bc2) + eps; then lr * m_hat / that
    denom = torch._foreach_sqrt(v)
    torch._foreach_div_(denom, math.sqrt(bc2))
    torch._foreach_add_(denom, opt.hp["eps"])
    torch._foreach_addcdiv_(params, m, denom, value=-opt.lr / bc1)


def adamw(opt: Optimizer, params: Tensors, grads: Tensors) -> None:
    torch._foreach_mul_(params, 1 - opt.lr * opt.hp["weight_decay"])  # decoupled decay first
    adam(opt, params, grads)


UPDATES = {"gd": sgd, "sgd": sgd, "momentum": momentum, "nesterov": nesterov,
           "adagrad": adagrad, "rmsprop": rmsprop, "adam": adam, "adamw": adamw}
