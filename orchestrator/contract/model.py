"""``BackendModel``: one network built by a backend, with canonical weights at its edges.

The core owns the bookkeeping: the canonical weight names, shapes and order
(``specs.weight_shapes``), the one weight check (``specs.check_weights``: every name present, no
unknown name, every shape right, all checked before anything is written), the input check
(``specs.check_input``) and the shape of an upstream gradient. A backend's model class
implements only the framework primitives:

- ``build()``: create the network for ``self.spec`` in ``self.dtype`` and return every canonical
  weight name (in ``specs.weight_shapes`` order) mapped to the framework variable that holds it;
- ``read_variable(name)`` / ``write_variable(name, array)``: one weight in canonical layout (a
  backend whose framework stores a weight transposed transposes here, nowhere else);
- ``forward(x, training)``: the output as NumPy (``training=True``: batch statistics, updated
  running statistics, dropout);
- ``backprop(x, upstream, training)``: output, gradient with respect to the input (None for
  token ids) and the gradients of the trainable weights (``self.trainable_names`` order) of
  ``sum(output * upstream)``, by the framework's automatic differentiation;
- ``native``: the framework's own model object (what an MLflow flavour saves).

Both float32 and float64 are mandatory: the conformance kit checks every component in float64
against the NumPy reference, and runs default to float32.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from orchestrator.canonical import specs
from orchestrator.canonical.specs import ModelSpec

if TYPE_CHECKING:
    from orchestrator.contract.backend import Backend

DTYPES = ("float32", "float64")


def check_dtype(dtype: str) -> str:
    """``dtype`` if it is one of ``DTYPES`` (every backend supports both), else ``ValueError``."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return dtype


@dataclass(frozen=True)
class VJP:
    """Output of a forward pass and the gradients of ``sum(output * upstream)``."""

    output: np.ndarray
    grad_input: np.ndarray | None  # None for integer (token) inputs
    grad_weights: dict[str, np.ndarray]  # trainable weights only, canonical names and layout


class BackendModel(ABC):
    """A network built by a backend from a ``ModelSpec`` (see the module docstring).

    Constructed by ``Backend.build_model`` as ``model_class(backend, spec, dtype)``, which then
    loads the initial weights with ``set_weights``.
    """

    def __init__(self, backend: Backend, spec: ModelSpec, dtype: str = "float32") -> None:
        self.backend = backend
        self.spec = spec
        self.dtype = check_dtype(dtype)
        self.shapes = {name: info.shape for name, info in specs.weight_shapes(spec).items()}
        self.trainable_names = specs.trainable_names(spec)
        self.int_input = spec.input_dtype == "int"
        self.variables: dict[str, Any] = self.build()
        if list(self.variables) != list(self.shapes):  # a mapping bug, never a user error
            raise AssertionError(f"{type(self).__name__}.build() returned weights "
                                 f"{list(self.variables)}, canonical order is {list(self.shapes)}")

    @property
    def trainable_variables(self) -> list[Any]:
        """The framework variables an optimizer updates, in ``trainable_names`` order."""
        return [self.variables[name] for name in self.trainable_names]

    # --- the core's side --------------------------------------------------------------------

    def get_weights(self) -> dict[str, np.ndarray]:
        """Every canonical weight and state array (running statistics included), as NumPy
        copies in canonical layout."""
        return {name: self.read_variable(name) for name in self.shapes}

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Load canonical weights: exactly the names of ``specs.weight_shapes(spec)``, each of
        its canonical shape; nothing is written unless everything fits (``ValueError``)."""
        for name, array in specs.check_weights(self.spec, weights, self.dtype).items():
            self.write_variable(name, array)

    def predict(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        """Forward pass. ``training=True`` uses batch statistics (and updates the running ones)
        and applies dropout."""
        return self.forward(specs.check_input(self.spec, x), bool(training))

    def vjp(self, x: np.ndarray, upstream: np.ndarray, *, training: bool = False) -> VJP:
        """Forward pass plus gradients of ``sum(output * upstream)`` (backpropagation through
        time for recurrent layers). In training mode running statistics are updated as in
        ``predict``; a training session's accumulated gradients are not touched."""
        x = specs.check_input(self.spec, x)
        upstream = np.asarray(upstream, dtype=self.dtype)
        expected = (len(x), *self.spec.output_shape)
        if upstream.shape != expected:
            raise ValueError(f"upstream has shape {upstream.shape}, the output has {expected}")
        output, grad_input, grads = self.backprop(x, upstream, bool(training))
        if len(grads) != len(self.trainable_names):
            raise AssertionError(f"{type(self).__name__}.backprop returned {len(grads)} weight "
                                 f"gradients for {len(self.trainable_names)} trainable weights")
        return VJP(output, None if self.int_input else grad_input,
                   dict(zip(self.trainable_names, grads)))

    # --- framework primitives ---------------------------------------------------------------

    @abstractmethod
    def build(self) -> dict[str, Any]:
        """Build the network; return canonical weight name -> framework variable, in
        ``specs.weight_shapes`` order (initial values do not matter: weights are loaded next)."""

    @abstractmethod
    def read_variable(self, name: str) -> np.ndarray:
        """The weight ``name`` as a NumPy copy in canonical layout."""

    @abstractmethod
    def write_variable(self, name: str, value: np.ndarray) -> None:
        """Store ``value`` (canonical layout, checked shape, ``self.dtype``) into ``name``."""

    @abstractmethod
    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        """The network's output on the checked batch ``x``, as NumPy."""

    @abstractmethod
    def backprop(self, x: np.ndarray, upstream: np.ndarray, training: bool
                 ) -> tuple[np.ndarray, np.ndarray | None, list[np.ndarray]]:
        """(output, d/dx or None for token ids, [d/dw for w in trainable_names]) of
        ``sum(output * upstream)``, gradients in canonical layout; a weight the output does not
        reach gets zeros."""

    @property
    @abstractmethod
    def native(self) -> Any:
        """The framework's own model object (``torch.nn.Module``, ``keras.Model``...)."""
