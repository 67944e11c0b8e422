"""JaxTrainingSession: ONE jit-compiled step (forward, loss, value_and_grad, optimizer update)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from orchestrator import TrainingSession


class JaxTrainingSession(TrainingSession):
    """The step is a pure function of (trainable weights, other weights, optimizer state,
    learning rate, step count, loss sum, accumulators, PRNG key, batch) compiled once per batch
    shape (an epoch's short last batch is a second trace); its results replace the model's
    weights, the optimizer's state and the backend's key. The epoch's loss sum stays a device
    array until ``take_loss_sum``. The full-batch optimizer (``gd``) adds each batch's gradient,
    weighted by batch / n_train, to the accumulators instead of updating.
    """

    def setup(self) -> None:
        model = self.model
        self._names = model.trainable_names
        self._frozen = [n for n in model.variables if n not in set(self._names)]
        self._loss_sum = jnp.zeros((), jnp.float64)
        self._accumulators = ([jnp.zeros_like(v.value) for v in model.trainable_variables]
                              if self.full_batch else [])
        self._step = jax.jit(self._step_impl)
        self._loss = jax.jit(self._loss_impl)

    def _step_impl(self, params: list, frozen: dict, state: dict, lr: Any, t: Any,
                   loss_sum: Any, accumulators: list, key: Any, x: Any, y: Any) -> tuple:
        key, subkey = jax.random.split(key)

        def loss_of(params: list) -> tuple[Any, dict]:
            weights = {**frozen, **dict(zip(self._names, params))}
            output, updates = self.model.apply(weights, x, True, subkey)
            return self.loss_fn(y, output), updates

        (loss, updates), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
        batch = x.shape[0]
        loss_sum = loss_sum + loss.astype(jnp.float64) * batch
        if self.full_batch:
            # the full-batch gradient is the sample-weighted mean of the batch gradients
            accumulators = [a + g * (batch / self.n_train) for a, g in zip(accumulators, grads)]
        else:
            params, state = self.optimizer.pure_update(params, state, grads, lr, t)
        return params, {**frozen, **updates}, state, loss_sum, accumulators, key

    def _loss_impl(self, weights: dict, x: Any, y: Any) -> Any:
        return self.loss_fn(y, self.model.apply(weights, x, False, None)[0])

    @staticmethod
    def _target(y: np.ndarray | None) -> jax.Array | None:
        return None if y is None else jnp.asarray(y)

    def step(self, x: np.ndarray, y: np.ndarray | None) -> None:
        model, opt = self.model, self.optimizer
        if not self.full_batch:
            opt.t += 1
        variables = model.variables
        params, frozen, opt.state, self._loss_sum, self._accumulators, self.backend.key = \
            self._step([variables[n].value for n in self._names],
                       {n: variables[n].value for n in self._frozen}, opt.state,
                       *opt.scalars(), self._loss_sum, self._accumulators, self.backend.key,
                       model.input_tensor(x), self._target(y))
        for name, value in zip(self._names, params):
            variables[name].value = value
        model.write_updates(frozen)

    def apply_accumulated(self) -> None:
        self.optimizer.step(self._accumulators)
        self._accumulators = [jnp.zeros_like(a) for a in self._accumulators]

    def take_loss_sum(self) -> float:
        total = float(self._loss_sum)
        self._loss_sum = jnp.zeros((), jnp.float64)
        return total

    def evaluation_loss(self, x: np.ndarray, y: np.ndarray | None) -> float:
        return float(self._loss(self.model.weights(), self.model.input_tensor(x),
                                self._target(y)))
