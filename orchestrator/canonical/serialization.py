"""Model specs as JSON and back: what a logged model carries so that it can be rebuilt anywhere.

A ``ModelSpec`` is plain frozen data; ``spec_to_json`` writes its input shape and kind, name,
layers (each as its type name and fields, components as kind, name and resolved
hyperparameters) and the JSON-representable part of ``meta``. ``spec_from_json`` rebuilds an
equal spec, resolving every component through the catalogue again (so a file naming an unknown
component or hyperparameter is rejected with the catalogue's message).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from orchestrator.canonical import catalogue, specs
from orchestrator.canonical.catalogue import ComponentSpec
from orchestrator.canonical.specs import ModelSpec

LAYER_TYPES: dict[str, type] = {cls.__name__: cls for cls in (
    specs.Dense, specs.Activation, specs.Norm, specs.Dropout, specs.Embedding, specs.Recurrent)}
FORMAT = 1


def _plain(value: Any) -> Any:
    if isinstance(value, ComponentSpec):
        return {"kind": value.kind, "name": value.name,
                "params": {k: _plain(v) for k, v in value.params.items()}}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _json_meta(meta: Any) -> dict[str, Any]:
    out = {}
    for key, value in dict(meta).items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue  # meta is informational (compare=False): keep what JSON can hold
        out[str(key)] = value
    return out


def spec_to_json(spec: ModelSpec) -> str:
    """``spec`` as a JSON document."""
    layers = [{"type": type(layer).__name__,
               **{f.name: _plain(getattr(layer, f.name)) for f in dataclasses.fields(layer)}}
              for layer in spec.layers]
    return json.dumps({"format": FORMAT, "name": spec.name, "input_shape": list(spec.input_shape),
                       "input_dtype": spec.input_dtype, "layers": layers,
                       "meta": _json_meta(spec.meta)}, indent=1)


def spec_from_json(text: str) -> ModelSpec:
    """The ``ModelSpec`` written by ``spec_to_json`` (``ValueError`` for a malformed one)."""
    data = json.loads(text)
    if data.get("format") != FORMAT:
        raise ValueError(f"model spec format {data.get('format')!r}, expected {FORMAT}")
    layers = []
    for i, entry in enumerate(data["layers"]):
        fields = dict(entry)
        kind = fields.pop("type")
        if kind not in LAYER_TYPES:
            raise ValueError(f"layer {i}: " + catalogue.unknown_message(
                "layer type", kind, tuple(LAYER_TYPES)))
        if isinstance(fields.get("component"), dict):
            c = fields["component"]
            fields["component"] = catalogue.resolve(c["kind"], c["name"], c["params"])
        layers.append(LAYER_TYPES[kind](**fields))
    return ModelSpec(tuple(data["input_shape"]), tuple(layers), input_dtype=data["input_dtype"],
                     name=data["name"], meta=data.get("meta", {}))
