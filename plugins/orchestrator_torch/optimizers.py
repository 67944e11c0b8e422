"""The canonical optimizers as one vectorized (torch._foreach_*) update over a list of tensors.

The same ``ForeachOptimizer.step`` runs inside the training step and in
``Backend.optimizer_trajectory``, so the conformance kit checks the code that trains. The
formulas are the catalogue's, not torch.optim's: lr inside the velocity for momentum/Nesterov,
eps inside the square root for Adagrad/RMSprop, Adagrad's initial accumulator, AdamW decay
applied before the Adam step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from orchestrator.canonical.catalogue import ComponentSpec

OPTIMIZERS = ("gd", "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")


class ForeachOptimizer:
    """Updates ``params`` in place from explicitly given gradients.

    ``params`` are the trainable tensors (parameters or plain tensors); their order fixes the
    order of the gradients passed to ``step``. State tensors start at zero (Adagrad's
    accumulator at ``initial_accumulator``). ``lr`` is a plain attribute: changing it takes effect
    at the next step, with nothing rebuilt.
    """

    def __init__(self, spec: ComponentSpec, params: Sequence[torch.Tensor]) -> None:
        if spec.kind != "optimizer":
            raise ValueError(f"expected an optimizer component, got kind {spec.kind!r}")
        if spec.name not in OPTIMIZERS:
            raise ValueError(f"the torch backend has no optimizer {spec.name!r}")
        self.spec = spec
        self.name = spec.name
        self.hp = dict(spec.params)
        self.lr = float(self.hp["lr"])
        self.full_batch = spec.definition.full_batch
        self.params = list(params)
        self.t = 0  # host-side step count: bias corrections need no device sync
        self._state: dict[str, list[torch.Tensor]] = {}
        with torch.no_grad():
            if self.name in ("momentum", "nesterov"):
                self._state["v"] = [torch.zeros_like(p) for p in self.params]
            elif self.name == "adagrad":
                init = float(self.hp["initial_accumulator"])
                self._state["G"] = [torch.full_like(p, init) for p in self.params]
            elif self.name == "rmsprop":
                self._state["s"] = [torch.zeros_like(p) for p in self.params]
            elif self.name in ("adam", "adamw"):
                self._state["m"] = [torch.zeros_like(p) for p in self.params]
                self._state["v"] = [torch.zeros_like(p) for p in self.params]

    def set_learning_rate(self, lr: float) -> None:
        if not lr >= 0:  # 0 is a legitimate end point of a schedule
            raise ValueError(f"learning rate must be >= 0, got {lr}")
        self.lr = float(lr)

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor]) -> None:
        """One update of every parameter with ``grads`` (same order as ``params``)."""
        if len(grads) != len(self.params):
            raise ValueError(f"expected {len(self.params)} gradients, got {len(grads)}")
        if not self.params:
            return
        self.t += 1
        params, grads, lr, hp = self.params, list(grads), self.lr, self.hp
        name = self.name
        if name in ("gd", "sgd"):
            torch._foreach_add_(params, grads, alpha=-lr)
        elif name in ("momentum", "nesterov"):
            v, mom = self._state["v"], hp["momentum"]
            torch._foreach_mul_(v, mom)
            torch._foreach_add_(v, grads, alpha=lr)  # v = momentum v + lr g
            if name == "momentum":
                torch._foreach_sub_(params, v)
            else:  # theta -= momentum v + lr g (the look-ahead form)
                torch._foreach_add_(params, v, alpha=-mom)
                torch._foreach_add_(params, grads, alpha=-lr)
        elif name == "adagrad":
            G = self._state["G"]
            torch._foreach_addcmul_(G, grads, grads)
            denom = torch._foreach_add(G, hp["eps"])  # eps inside the square root
            torch._foreach_sqrt_(denom)
            torch._foreach_addcdiv_(params, grads, denom, value=-lr)
        elif name == "rmsprop":
            s, rho = self._state["s"], hp["rho"]
            torch._foreach_mul_(s, rho)
            torch._foreach_addcmul_(s, grads, grads, value=1 - rho)
            denom = torch._foreach_add(s, hp["eps"])
            torch._foreach_sqrt_(denom)
            torch._foreach_addcdiv_(params, grads, denom, value=-lr)
        else:  # adam, adamw
            if name == "adamw":  # decoupled decay first, as torch.optim.AdamW does
                torch._foreach_mul_(params, 1 - lr * hp["weight_decay"])
            self._adam(params, grads, lr)

    def _adam(self, params: list[torch.Tensor], grads: list[torch.Tensor], lr: float) -> None:
        m, v = self._state["m"], self._state["v"]
        b1, b2, eps = self.hp["beta1"], self.hp["beta2"], self.hp["eps"]
        torch._foreach_mul_(m, b1)
        torch._foreach_add_(m, grads, alpha=1 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
        bc1 = 1 - b1 ** self.t
        bc2 = 1 - b2 ** self.t
        # sqrt(v_hat) + eps = sqrt(v) / sqrt(bc2) + eps; then lr * m_hat / that
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, math.sqrt(bc2))
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(params, m, denom, value=-lr / bc1)
