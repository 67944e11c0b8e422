"""Values as people write them in YAML, made fit for strict validation.

Config models validate strictly (``true`` is not an integer, ``"3"`` is not a number, ``.inf``
is not a finite number), with two conversions that lose nothing: a list where a tuple is
declared becomes a tuple (YAML has no tuples), and a float with an integral value where only an
integer fits becomes that integer (``hidden: [1e3]``, ``epochs: 1e2``) when it is exact.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

_EXACT = 2**53  # floats beyond this are not exact integers


def as_written(model: type[BaseModel], data: Any) -> Any:
    """``data`` (a mapping of field values) with the conversions above applied."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key in out:
            out[key] = convert(out[key], info.annotation)
    return out


def convert(value: Any, annotation: Any) -> Any:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return convert(value, args[0])
    if origin in (Union, types.UnionType):
        if isinstance(value, list):
            for arg in args:
                if get_origin(arg) in (tuple, list):
                    return convert(value, arg)
        if isinstance(value, float) and float not in args and int in args:
            return convert(value, int)
        return value
    if origin is tuple and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(v, args[0]) for v in value)
        return tuple(value)
    if origin is list and isinstance(value, list) and args:
        return [convert(v, args[0]) for v in value]
    if annotation is int and isinstance(value, float) and value.is_integer() \
            and abs(value) <= _EXACT:
        return int(value)
    return value
