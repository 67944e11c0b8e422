"""The limits on what an experiment file may ask for, so hostile input is refused quickly.

Every limit is checked by ``orchestrator validate`` (and so by ``plan``, ``run`` and ``tune``)
before anything is expanded, allocated or run; docs/experiments.md ("Limits") lists them.
"""

from __future__ import annotations

import os

from orchestrator.canonical import catalogue

MAX_FILE_BYTES = 1024 * 1024  # an experiment file (1 MiB)
MAX_YAML_DEPTH = 64  # nesting of mappings and lists
MAX_YAML_ALIASES = 100  # *alias references in one file
MAX_YAML_NODES = 100_000  # values in the file once every alias is expanded
MAX_VARIANTS = 1_000  # matrix variants of one file (the product of the axes' lengths)
MAX_RUNS = 10_000  # runs of one file: variants x backends x seeds (x folds)
MAX_TRIALS = 10_000  # tune.trials
MAX_DIMENSIONS = 100  # entries of tune.space
MAX_CHOICES = 1_000  # choices of one categorical dimension
MAX_ENQUEUED = 1_000  # entries of tune.enqueue
MAX_PROBES = 2_000  # configs validate builds to check a search space (variants x values)
MAX_EPOCHS = 100_000  # train.epochs
MAX_SEEDS = 1_000  # entries of seeds:
SEED_MAX = 2**32 - 1  # NumPy's and the frameworks' generators take seeds in [0, 2**32 - 1]
MAX_BATCH = 10_000_000  # train.batch_size, train.eval_batch_size
MAX_LR = catalogue.MAX_LR  # optimizer.lr in (0, 10]
MAX_WEIGHT_BYTES = 4 * 1024**3  # a model's initial weights (float64), before the RAM cap
MAX_NAME_CHARS = 200  # name: (with "-<backend>.parquet" within a file name's 255 bytes)
MAX_DESCRIPTION_CHARS = 5_000  # description: (an MLflow tag holds 8,000)
ECHO_CHARS = 80  # a value echoed in an error is cut to this many characters, then "..."
MAX_ERROR_CHARS = 1_000  # an error line as a whole


def check_name(value: str | None) -> str | None:
    """A name that also names files and MLflow experiments: no path separator, no control
    character, no surrounding space (the length is checked by the field)."""
    if value is not None and (value != value.strip() or any(c in value for c in "/\\")
                              or not value.isprintable()):
        raise ValueError("a name has no slash, backslash, control character or surrounding "
                         "space (it names files and MLflow experiments)")
    return value


def machine_memory_bytes() -> int | None:
    """Physical memory of this machine, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def weight_limit_bytes() -> int:
    """The most memory a model's weights may need: ``MAX_WEIGHT_BYTES``, or a quarter of the
    machine's memory where that is less (training needs gradients, optimizer state and
    activations besides the weights)."""
    memory = machine_memory_bytes()
    return min(MAX_WEIGHT_BYTES, memory // 4) if memory else MAX_WEIGHT_BYTES


def gib(n_bytes: float) -> str:
    """``n_bytes`` in GiB for messages: ``477 GiB``, ``0.5 GiB``."""
    value = n_bytes / 1024**3
    return f"{value:.0f} GiB" if value >= 10 else f"{value:.2g} GiB"


def short(value: object, limit: int = ECHO_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters (then ``...``) for echoing in an error.

    Never builds the full repr of a huge container: a value shared through YAML aliases can
    expand to gigabytes when printed."""
    text = _bounded_repr(value, limit + 1)
    return text if len(text) <= limit else text[:limit] + "..."


def _bounded_repr(value: object, budget: int) -> str:
    if isinstance(value, dict):
        parts, used = [], 1
        for key, item in value.items():
            if used > budget:
                break
            part = f"{_bounded_repr(key, budget)}: {_bounded_repr(item, budget - used)}"
            parts.append(part)
            used += len(part) + 2
        return "{" + ", ".join(parts) + ("..." if used > budget else "") + "}"
    if isinstance(value, (list, tuple)):
        parts, used = [], 1
        for item in value:
            if used > budget:
                break
            part = _bounded_repr(item, budget - used)
            parts.append(part)
            used += len(part) + 2
        left, right = ("[", "]") if isinstance(value, list) else ("(", ")")
        return left + ", ".join(parts) + ("..." if used > budget else "") + right
    if isinstance(value, str) and len(value) > budget:
        return repr(value[:budget])
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * budget:
        return f"<an integer of {value.bit_length()} bits>"
    return repr(value)
