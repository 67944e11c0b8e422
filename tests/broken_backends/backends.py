"""Deliberately broken backends: each a small subclass of the torch backend that breaks exactly
one thing the conformance kit must catch (``tests/test_conformance_catches.py``)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from orchestrator.canonical import catalogue
from orchestrator_torch.backend import TorchBackend
from orchestrator_torch.layers import NORMS, FeatureLayerNorm
from orchestrator_torch.model import TorchModel
from orchestrator_torch.optimizers import UPDATES, adam
from orchestrator_torch.session import TorchTrainingSession

# --- a training step that ignores the configured optimizer -----------------------------------


class SgdOnlySession(TorchTrainingSession):
    def __init__(self, backend, model, loss, optimizer, **kwargs) -> None:
        sgd = catalogue.resolve("optimizer", "sgd", {"lr": optimizer["lr"]})
        super().__init__(backend, model, loss, sgd, **kwargs)


class SgdOnlyBackend(TorchBackend):
    """train_step always runs SGD; optimizer_trajectory still runs the configured rule."""

    name = "broken_sgd_only"
    session_class = SgdOnlySession


# --- momentum with the learning rate outside the velocity (PyTorch's form) -------------------


def momentum_lr_outside(opt, params, grads) -> None:
    v = opt.state["v"]
    torch._foreach_mul_(v, opt.hp["momentum"])
    torch._foreach_add_(v, grads)  # v = momentum v + g
    torch._foreach_add_(params, v, alpha=-opt.lr)  # theta -= lr v: equal only at a constant lr


class LrOutsideVelocityBackend(TorchBackend):
    name = "broken_lr_outside_velocity"
    optimizers = {**UPDATES, "momentum": momentum_lr_outside}


# --- dropout ---------------------------------------------------------------------------------


class UnscaledDropout(nn.Dropout):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * (torch.rand_like(x) >= self.p).to(x.dtype)  # no 1 / (1 - p)


class _DropoutSwap(TorchModel):
    make_dropout = UnscaledDropout

    def build(self):
        variables = super().build()
        for i, module in enumerate(self.module):
            if isinstance(module, nn.Dropout):
                self.module[i] = self.make_dropout(module.p)
        return variables


class UnscaledDropoutBackend(TorchBackend):
    """Dropout keeps values unscaled (the expected activation shrinks by 1 - rate)."""

    name = "broken_unscaled_dropout"
    model_class = _DropoutSwap


class KeepRateModel(_DropoutSwap):
    make_dropout = staticmethod(lambda rate: nn.Dropout(1.0 - rate))  # the keep probability


class DropoutRateBackend(TorchBackend):
    """Dropout reads the rate as the keep probability."""

    name = "broken_dropout_rate"
    model_class = KeepRateModel


# --- AdamW's decay after the Adam step -------------------------------------------------------


def adamw_decay_after(opt, params, grads) -> None:
    adam(opt, params, grads)
    torch._foreach_mul_(params, 1 - opt.lr * opt.hp["weight_decay"])


class AdamWDecayAfterBackend(TorchBackend):
    name = "broken_adamw_decay_after"
    optimizers = {**UPDATES, "adamw": adamw_decay_after}


# --- targets of the wrong shape accepted (torch broadcasts [B] against [B, 1]) ---------------


def _unchecked(y, dtype: str):
    if y is None:
        return None
    y = np.asarray(y)
    return y.astype(dtype) if y.dtype.kind == "f" else y.astype(np.int64)


class LooseTargetSession(TorchTrainingSession):
    def targets(self, y, batch):
        return _unchecked(y, self.model.dtype)  # no shape check


class LooseTargetBackend(TorchBackend):
    """Targets are converted but never checked against the predictions' shape."""

    name = "broken_loose_targets"
    session_class = LooseTargetSession

    def loss_value_and_grad(self, loss, y_true, y_pred, *, dtype="float64"):
        target = None if loss.target == "none" else _unchecked(y_true, dtype)
        return self.loss_gradient(self.loss_function(loss), target,
                                  np.asarray(y_pred, dtype=dtype))


# --- layer norm and its eps ------------------------------------------------------------------


class LayerNormIgnoresEpsBackend(TorchBackend):
    """Layer norm with the framework's default eps whatever the spec says."""

    name = "broken_layer_norm_ignores_eps"
    norms = {**NORMS, "layer": lambda n_in, p, **factory: FeatureLayerNorm(n_in, **factory)}


class EpsOutsideRoot(FeatureLayerNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=-1, keepdim=True)
        std = ((x - mean) ** 2).mean(dim=-1, keepdim=True).sqrt()
        return self.weight * (x - mean) / (std + self.eps) + self.bias


class LayerNormEpsOutsideBackend(TorchBackend):
    """Layer norm as (x - mean) / (std + eps): eps outside the square root."""

    name = "broken_layer_norm_eps_outside"
    norms = {**NORMS, "layer": lambda n_in, p, **factory: EpsOutsideRoot(n_in, eps=p["eps"],
                                                                         **factory)}


# --- a float32 step that loses precision -----------------------------------------------------


class HalfGradientSession(TorchTrainingSession):
    def _grads(self):
        grads = super()._grads()
        if self.model.dtype == "float32":  # float64 stays exact, so float64 checks pass
            grads = [g.half().float() for g in grads]
        return grads


class HalfGradientBackend(TorchBackend):
    """In float32, the training step's gradients pass through float16."""

    name = "broken_float16_gradients"
    session_class = HalfGradientSession
