"""``Optimizer``: one canonical optimizer bound to a backend's variables, the only update code.

The same object runs inside a ``TrainingSession``'s compiled step and in
``Backend.optimizer_trajectory``, so the conformance kit checks the update that trains. The core
owns the bookkeeping: the lookup of the update rule in the backend's ``optimizers`` table (keyed
by canonical name), the hyperparameters (``hp``, resolved by the catalogue: a backend never
applies a default), the per-parameter state slots and their initial values (declared once on the
catalogue entry, ``ComponentDef.state``: ``v``, ``G``, ``s``, ``m``...), the learning-rate check
and whether the rule is full-batch.

A backend subclasses ``Optimizer`` with three framework primitives:

- ``new_slot(variable, value)``: a state tensor shaped like ``variable``, filled with ``value``;
- ``assign_learning_rate(lr)``: store the learning rate where the next update reads it (a device
  variable inside a compiled step, so that a schedule never recompiles);
- ``apply(grads)``: advance the step count ``t`` (starting at 1), then run the update rule
  ``self.update(self, self.variables, grads)``.

and writes one vectorized update per canonical optimizer (all parameters at once:
``torch._foreach_*`` ops, or one traced loop), ``update(opt, params, grads)``, reading
``opt.hp``, ``opt.lr``, ``opt.t`` and ``opt.state[slot]`` (a list parallel to ``params``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from orchestrator.canonical.catalogue import ComponentSpec

if TYPE_CHECKING:
    from orchestrator.contract.backend import Backend

UpdateRule = Callable[["Optimizer", list[Any], list[Any]], None]


def check_learning_rate(lr: float) -> float:
    """``lr`` as a float if it is finite and >= 0 (0 is a legitimate end of a schedule)."""
    if isinstance(lr, bool):
        raise ValueError(f"learning rate must be a number >= 0, got {lr!r}")
    try:
        value = float(lr)
    except (TypeError, ValueError):
        raise ValueError(f"learning rate must be a number >= 0, got {lr!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"learning rate must be a finite number >= 0, got {lr!r}")
    return value


class Optimizer(ABC):
    """A canonical optimizer over ``variables`` (see the module docstring)."""

    def __init__(self, backend: Backend, spec: ComponentSpec, variables: Sequence[Any],
                 dtype: str) -> None:
        if spec.kind != "optimizer":
            raise ValueError(f"expected an optimizer component, got a {spec.kind} ({spec.name!r})")
        self.update: UpdateRule = backend.component(spec)
        self.spec = spec
        self.name = spec.name
        self.hp = dict(spec.params)
        self.dtype = dtype
        self.full_batch = spec.definition.full_batch
        self.variables = list(variables)
        self.setup()
        self.state: dict[str, list[Any]] = {
            slot: [self.new_slot(v, value) for v in self.variables]
            for slot, value in spec.definition.initial_state(self.hp).items()}
        self.assign_learning_rate(check_learning_rate(self.hp["lr"]))

    def set_learning_rate(self, lr: float) -> None:
        """Change the learning rate from the next step on, without recompiling anything."""
        self.assign_learning_rate(check_learning_rate(lr))

    def step(self, grads: Sequence[Any]) -> None:
        """One update of every variable; ``grads`` in the order of ``variables``."""
        if len(grads) != len(self.variables):
            raise ValueError(f"expected {len(self.variables)} gradients, got {len(grads)}")
        if self.variables:
            self.apply(list(grads))

    # --- framework primitives ---------------------------------------------------------------

    def setup(self) -> None:
        """Create what the update reads besides the slots (a learning-rate variable, a step
        counter); called before the slots are made. Default: nothing."""

    @abstractmethod
    def new_slot(self, variable: Any, value: float) -> Any:
        """A state tensor of ``variable``'s shape and dtype, filled with ``value``."""

    @abstractmethod
    def assign_learning_rate(self, lr: float) -> None:
        """Store the (checked) learning rate for the next update (``self.lr``)."""

    @abstractmethod
    def apply(self, grads: list[Any]) -> None:
        """Advance ``t`` by one, then ``self.update(self, self.variables, grads)``."""
