"""The base of every config model: unknown keys are errors, values are immutable, types strict
(``true`` is no integer, ``"3"`` no number, ``.inf`` and ``.nan`` no value at all)."""

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from orchestrator.contract.written import as_written


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _as_written(cls, data: Any) -> Any:
        return as_written(cls, data)
