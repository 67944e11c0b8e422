"""Read experiment files, apply overrides, expand the matrix and validate everything up front.

Pure: no framework, no MLflow, no data read (a data path is only checked to exist); the work
is bounded before it is done (``config.limits``, ``config.yaml_reader``). Every error
is a ``ConfigError`` naming the file and the key path, saying what is allowed and the closest
match, so ``orchestrator validate`` / ``run`` can stop with exit status 2 before any run exists.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import math
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from orchestrator.canonical import catalogue
from orchestrator.canonical.catalogue import ComponentError, ComponentSpec
from orchestrator.config import limits, yaml_reader
from orchestrator.config.limits import short
from orchestrator.config.schema import Experiment, Train
from orchestrator.plugins.registry import RegistryError


class ConfigError(ValueError):
    """An invalid experiment file; ``str()`` is one line: ``FILE: key.path: what is wrong``."""

    def __init__(self, file: str | Path, path: str, message: str) -> None:
        # every part bounded: a hostile file can make any of them huge
        file, path = _cut(str(file), 300), _cut(str(path), 200)
        message = _cut(" ".join(str(message).splitlines()), limits.MAX_ERROR_CHARS)
        self.file, self.path, self.message = file, path, message
        super().__init__(f"{file}: {path + ': ' if path else ''}{message}")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True)
class ResolvedExperiment:
    """One variant of one experiment file, fully validated, with every default filled in."""

    file: str
    name: str  # the MLflow experiment name
    variant: str  # "" when the file has no matrix
    task: str
    data: BaseModel
    model: BaseModel
    loss: ComponentSpec
    optimizer: ComponentSpec
    train: Train
    backends: tuple[str, ...]
    seeds: tuple[int, ...]
    folds: int | None
    config: dict[str, Any] = field(compare=False)  # resolved, for logging and digests
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # as written
    tune: Any = field(default=None, compare=False)  # config.tune_schema.Tune
    executor: Any = field(default=None, compare=False)  # config.schema.ExecutorConfig | None
    resources: Any = field(default=None, compare=False)  # config.schema.RunResources

    @property
    def digest(self) -> str:
        text = json.dumps(self.config, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        return f"{self.name}[{self.variant}]" if self.variant else self.name


# --- overrides --------------------------------------------------------------------------------


def parse_override(text: str) -> tuple[str, Any]:
    """``key.path=value`` with the value read as YAML (``3``, ``1e-3``, ``[a, b]``, ``null``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError("command line", f"-o {text}", "overrides look like "
                          "section.setting=VALUE, e.g. train.epochs=3")
    parts = key.strip().split(".")
    if any(not part.strip() for part in parts):
        raise ConfigError("command line", f"-o {text}", "the dotted path has an empty part; "
                          "overrides look like section.setting=VALUE, e.g. train.epochs=3")
    try:
        value = yaml_reader.load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError("command line", f"-o {text}", f"value is not valid YAML: {problem}"
                          ) from None
    return key.strip(), value


def set_dotted(config: dict[str, Any], key: str, value: Any, file: str) -> None:
    node = config
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(file, ".".join(parts[:i + 1]),
                              f"is {type(child).__name__}, cannot set {key}")
        node = child
    node[parts[-1]] = value


# --- reading ----------------------------------------------------------------------------------


def read_yaml(file: Path) -> dict[str, Any]:
    try:
        info = os.stat(file)
    except FileNotFoundError:
        raise ConfigError(file, "", "file not found") from None
    except OSError as exc:
        raise ConfigError(file, "", f"cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(file, "", f"not a regular file (a {_file_kind(info.st_mode)})")
    if info.st_size > limits.MAX_FILE_BYTES:
        raise ConfigError(file, "", f"{info.st_size:,} bytes; an experiment file is at most "
                                    f"{limits.MAX_FILE_BYTES:,} bytes")
    try:
        with open(file, "rb") as handle:  # read at most the limit (the file may grow)
            text = handle.read(limits.MAX_FILE_BYTES + 1).decode("utf-8")
    except OSError as exc:
        raise ConfigError(file, "", f"cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(file, "", "not a UTF-8 text file") from None
    if len(text.encode("utf-8")) > limits.MAX_FILE_BYTES:
        raise ConfigError(file, "", f"an experiment file is at most {limits.MAX_FILE_BYTES:,} "
                                    "bytes")
    if "\x00" in text:
        raise ConfigError(file, "", "not a text file (it holds NUL bytes)")
    try:
        data = yaml_reader.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(file, "", f"invalid YAML: {where}{problem}") from None
    if data is None:
        raise ConfigError(file, "", "empty file; an experiment needs at least task, loss, "
                                    "optimizer and train")
    if not isinstance(data, dict):
        raise ConfigError(file, "", f"the top level must be a mapping of keys, got "
                                    f"{type(data).__name__}")
    return data


def _file_kind(mode: int) -> str:
    for test, word in ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return word
    return "special file"


def _pydantic_error(file: str | Path, error: ValidationError, model: type[BaseModel],
                    prefix: str = "") -> ConfigError:
    first = error.errors()[0]
    loc = [str(p) for p in first["loc"]]
    if loc and loc[-1] == "[key]":  # a mapping key that is not a string (YAML: 1:, null:)
        loc = loc[:-2]
        first = {**first, "type": "value_error",
                 "msg": f"keys must be strings, got {short(first.get('input'))}"}
    elif first["type"] == "invalid_key":
        loc = loc[:-1]
        first = {**first, "type": "value_error",
                 "msg": f"keys must be strings, got {short(first.get('input'))}"}
    path = ""
    for part in filter(None, [prefix, *loc]):
        path += f"[{part}]" if part.isdigit() and path else f"{'.' if path else ''}{part}"
    kind = first["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        message = catalogue.unknown_message("key", loc[-1], allowed).replace(
            "unknown key", "unknown key")
    elif kind == "missing":
        message = "is required"
    elif kind == "value_error":  # our own validators: the message says it all
        message = first["msg"].removeprefix("Value error, ")
    elif kind in ("model_type", "dict_type", "model_attributes_type"):
        message = f"must be a mapping of keys to values (got {short(first.get('input'))})"
    else:
        message = first["msg"].replace("Input should be", "must be").replace(
            "List should have", "must have").replace("String should have", "must have").replace(
            " after validation", "")
        value = first.get("input")
        if isinstance(value, bool) and kind in ("int_type", "float_type", "int_from_float",
                                                "string_type"):
            message += f" (got {str(value).lower()}: a boolean)"
        elif "input" in first:
            message += f" (got {short(value)})"
    return ConfigError(file, path, message)


def _allowed_keys(model: type[BaseModel], loc: Sequence[str]) -> tuple[str, ...]:
    current: Any = model
    for part in loc:
        if part.isdigit():
            continue
        fields = getattr(current, "model_fields", {})
        info = fields.get(part)
        if info is None:
            return ()
        annotation = info.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        current = next((c for c in candidates if isinstance(c, type)
                        and issubclass(c, BaseModel)), None)
        if current is None:
            return ()
    return tuple(getattr(current, "model_fields", {}))


# --- resolution -------------------------------------------------------------------------------


def _expand_matrix(raw: dict[str, Any], file: str) -> list[tuple[str, dict[str, Any]]]:
    matrix: dict[str, list[Any]] = raw.get("matrix") or {}
    if not matrix:
        return [("", raw)]
    variants = []
    keys = list(matrix)
    for values in itertools.product(*(matrix[k] for k in keys)):
        config = copy.deepcopy({k: v for k, v in raw.items() if k != "matrix"})
        parts = []
        for key, value in zip(keys, values):
            if key.split(".")[0] not in Experiment.model_fields or key.startswith("matrix"):
                raise ConfigError(file, f"matrix.{key}", catalogue.unknown_message(
                    "section", key.split(".")[0],
                    [k for k in Experiment.model_fields if k != "matrix"]))
            if isinstance(value, dict) and key in ("loss", "optimizer"):
                config[key] = copy.deepcopy(value)
                parts.append(f"{key.split('.')[-1]}={value.get('name', '?')}")
            else:
                set_dotted(config, key, copy.deepcopy(value), file)
                parts.append(f"{key.split('.')[-1]}={value}")
        variants.append((",".join(parts), config))
    return variants


def _component(file: str, section: str, kind: str, raw: Mapping[str, Any]) -> ComponentSpec:
    params = {k: v for k, v in raw.items() if k != "name"}
    name = raw["name"]
    if not isinstance(name, str):
        raise ConfigError(file, f"{section}.name", f"must be a string, got {short(name)}")
    try:
        return catalogue.resolve(kind, name, params)
    except ComponentError as exc:
        message = str(exc)
        if message.startswith(f"unknown {kind}"):
            raise ConfigError(file, f"{section}.name", message) from None
        head, _, rest = message.partition(": ")
        if rest and head.startswith(catalogue.get(kind, name).name + "."):
            raise ConfigError(file, f"{section}.{head.split('.', 1)[1]}", rest) from None
        raise ConfigError(file, section, message) from None


def resolve(raw: dict[str, Any], file: str | Path, overrides: Iterable[str] = ()
            ) -> list[ResolvedExperiment]:
    """Validate one experiment (as read from ``file``) into its resolved variants."""
    from orchestrator.plugins import manager as plugin_manager

    file = str(file)
    raw = copy.deepcopy(raw)
    for text in overrides:
        key, value = parse_override(text)
        set_dotted(raw, key, value, file)
    try:
        top = Experiment.model_validate(raw)
    except ValidationError as exc:
        raise _pydantic_error(file, exc, Experiment) from None

    backends = plugin_manager.backends()
    try:
        plugin_manager.tasks().get(top.task)  # an unknown task fails here, with the closest name
    except RegistryError as exc:
        raise ConfigError(file, "task", str(exc)) from None
    chosen = tuple(top.backends or backends.available_names())
    if not chosen:
        raise ConfigError(file, "backends", "no backend is available (orchestrator plugins "
                          "doctor tells why)")
    for i, backend in enumerate(chosen):
        try:
            backends.check_available(backend)
        except RegistryError as exc:
            raise ConfigError(file, f"backends[{i}]", str(exc)) from None
    if len(set(chosen)) != len(chosen):
        raise ConfigError(file, "backends", "lists a backend twice")
    name = top.name or Path(file).stem
    task_cls = plugin_manager.tasks().get(top.task)
    if top.executor is not None:
        try:
            plugin_manager.executors().info(top.executor.name)
        except RegistryError as exc:
            raise ConfigError(file, "executor.name", str(exc)) from None
    _check_counts(file, top, chosen)
    if top.cv is not None and top.cv.split is not None and top.cv.split != task_cls.cv_split:
        has = (f"its folds are {task_cls.cv_split}" if task_cls.cv_split
               else "it does not say which folds it builds")
        raise ConfigError(file, "cv.split", f"{top.cv.split!r}: task {top.task!r} "
                          + ("has no groups to split by; " if top.cv.split == "grouped" else "")
                          + has)
    if top.tune is not None:
        _check_tune(file, top, task_cls)
        if top.tune.sampler.name == "grid":
            for path, dim in top.tune.space.items():
                if dim.when:
                    raise ConfigError(file, f"tune.space.{path}.when", "a grid search cannot "
                                      "have conditional dimensions")
                if dim.type == "float" and dim.step is None:
                    raise ConfigError(file, f"tune.space.{path}", "a grid search needs a step "
                                      "for float ranges")
                if dim.type != "categorical":
                    points = math.floor((dim.high - dim.low) / (dim.step or 1)) + 1
                    if points > limits.MAX_CHOICES:
                        raise ConfigError(file, f"tune.space.{path}", f"a grid of {points:,} "
                                          f"points; at most {limits.MAX_CHOICES:,} per "
                                          "dimension (a larger step)")
        if top.tune.metric.startswith("test/"):
            raise ConfigError(file, "tune.metric", f"{top.tune.metric!r} would tune on the test "
                              "data; use a validation metric (val/...)")
    _check_metrics(file, top, task_cls)
    resolved = []
    base = top.model_dump(exclude={"tune"})
    if top.matrix:  # what the file declares is a value even where the matrix replaces it
        resolve_variant(f"{file} (as written, before the matrix)", file, name, "",
                        {k: v for k, v in base.items() if k != "matrix"}, chosen)
    for variant, config in _expand_matrix(base, file):
        where = f"{file} (variant {variant})" if variant else file
        resolved.append(resolve_variant(where, file, name, variant, config, chosen))
    _check_validation_metrics(file, top, task_cls, resolved)
    if top.tune is not None:
        _check_space(file, resolved, top.tune, name, chosen)
        for r in resolved if top.tune.verdict is not None else ():
            changed = copy.deepcopy(r.raw)
            for path, value in top.tune.verdict.overrides.items():
                set_sample(changed, path, value, file)
            try:
                resolve_variant(file, file, name, r.variant, changed, chosen)
            except ConfigError as exc:
                raise ConfigError(file, "tune.verdict.overrides", "give an invalid config: "
                                  f"{exc.path + ': ' if exc.path else ''}{exc.message}") from None
        resolved = [dataclasses.replace(r, tune=top.tune) for r in resolved]
    return resolved


def _check_counts(file: str, top: Experiment, backends: tuple[str, ...]) -> None:
    """How much work the file asks for, computed before anything is expanded."""
    variants = math.prod(len(values) for values in top.matrix.values())
    if variants > limits.MAX_VARIANTS:
        sizes = " x ".join(str(len(v)) for v in top.matrix.values())
        raise ConfigError(file, "matrix", f"expands to {variants:,} variants ({sizes}); at "
                          f"most {limits.MAX_VARIANTS:,} per file")
    runs = variants * len(backends) * len(top.seeds) * (top.cv.folds if top.cv else 1)
    if runs > limits.MAX_RUNS:
        raise ConfigError(file, "", f"asks for {runs:,} trainings (variants x backends x seeds"
                          f" x folds); at most {limits.MAX_RUNS:,} per file")


def _check_metrics(file: str, top: Experiment, task_cls: Any) -> None:
    """Metrics named in the file must be ones the task reports (where it declares them)."""
    per_epoch = task_cls.epoch_metric_names
    if per_epoch is not None:
        known = ("train/loss", "val/loss", *per_epoch)
        named = [("train.early_stopping.metric", top.train.early_stopping.metric)
                 if top.train.early_stopping else None,
                 ("tune.metric", top.tune.metric) if top.tune else None]
        for where, metric in filter(None, named):
            if metric not in known:
                hint = catalogue.closest(metric, known)
                raise ConfigError(file, where, f"{short(metric)} is not reported per epoch by "
                                  f"task {task_cls.name!r}"
                                  + (f" (did you mean {hint!r}?)" if hint else "")
                                  + f"; it reports: {', '.join(known)}")
    final = task_cls.final_metric_names
    verdict = top.tune.verdict if top.tune else None
    if final is not None and verdict is not None and verdict.metric is not None:
        held_out = [m for m in final if m.startswith("test/")]
        if verdict.metric not in held_out:
            hint = catalogue.closest(verdict.metric, held_out)
            raise ConfigError(file, "tune.verdict.metric", f"{short(verdict.metric)} is not "
                              f"reported on the test part by task {task_cls.name!r}"
                              + (f" (did you mean {hint!r}?)" if hint else "")
                              + f"; it reports: {', '.join(held_out)}")


def _check_validation_metrics(file: str, top: Experiment, task_cls: Any,
                              variants: Sequence[ResolvedExperiment]) -> None:
    """A ``val/...`` metric needs a validation part (a cross-validated search has one per
    fold)."""
    named = [("train.early_stopping.metric", top.train.early_stopping.metric)
             if top.train.early_stopping else None,
             ("tune.metric", top.tune.metric) if top.tune and top.cv is None else None]
    named = [n for n in named if n is not None and n[1].startswith("val/")]
    task = task_cls()
    for variant in variants if named else ():
        if task.has_validation(variant.data) is False:
            where = f"{file} (variant {variant.variant})" if variant.variant else file
            key, metric = named[0]
            options = [f"data.{k}" for k in task_cls.DataOptions.model_fields
                       if k.startswith(("val", "n_val"))]
            raise ConfigError(where, key, f"{short(metric)} needs a validation part, and "
                              f"task {task_cls.name!r} builds none with these data options"
                              + (f" (set {' or '.join(options)})" if options else ""))


def _check_size(where: str, task: Any, data: BaseModel, model: BaseModel) -> None:
    """Refuse a model whose initial weights would not fit, from its spec (plain data: counting
    its weights allocates none of them)."""
    from orchestrator.canonical.specs import weight_shapes
    from orchestrator.contract.task import Prepared

    bounds = task.spec_bounds(data)
    if bounds is None:
        return
    try:
        spec = task.model_spec(model, Prepared((), "", "", bounds))
        shapes = [info.shape for info in weight_shapes(spec).values()]
    except Exception:  # noqa: BLE001 (a plugin's model_spec may raise anything here)
        return  # not this check's business: the run reports a spec that cannot be built
    counts = [math.prod(shape) for shape in shapes]
    total, largest = sum(counts) * 8, max(counts, default=0) * 8  # drawn in float64
    limit = limits.weight_limit_bytes()
    if total > limit:
        raise ConfigError(where, "model", f"its weights would need {limits.gib(total)} "
                          f"({sum(counts):.3g} numbers in float64; the largest array alone "
                          f"{limits.gib(largest)}); the limit is {limits.gib(limit)} "
                          f"(docs/experiments.md, Limits)")


def _check_tune(file: str, top: Experiment, task_cls: Any) -> None:
    """What a search needs from the task: folds of the training part for ``cv:``, outer folds
    for ``nested:``, and a held-out metric for the verdict."""
    tune = top.tune
    if top.cv is not None and not task_cls.supports_search_folds():
        raise ConfigError(file, "cv", f"task {top.task!r} cannot cross-validate a search (it "
                          "has no prepare_search); remove cv: to tune on its validation split")
    if tune.nested is not None and task_cls.cv_split is None:
        raise ConfigError(file, "tune.nested", f"task {top.task!r} builds no folds, so it has "
                          "no outer folds for nested cross-validation")
    if top.cv is not None and tune.metric.split("/")[0] != "val":
        raise ConfigError(file, "tune.metric", f"{tune.metric!r}: a cross-validated search "
                          "averages a validation metric (val/...) over the folds")
    if tune.verdict is not None and tune.verdict.metric is not None \
            and not tune.verdict.metric.startswith("test/"):
        raise ConfigError(file, "tune.verdict.metric", f"{tune.verdict.metric!r}: the verdict "
                          "compares a held-out metric (test/...)")
    if tune.verdict is not None and tune.verdict.ensemble and not task_cls.supports_ensemble():
        raise ConfigError(file, "tune.verdict.ensemble", f"task {top.task!r} cannot score "
                          "averaged outputs (it has no score_outputs); set ensemble: false")
    if tune.verdict is not None:
        for path in tune.verdict.overrides:
            if path.split(".")[0] not in SPACE_SECTIONS or "." not in path:
                raise ConfigError(file, f"tune.verdict.overrides.{path}", "not a config path: "
                                  + catalogue.unknown_message("section", path.split(".")[0],
                                                              SPACE_SECTIONS))


def resolve_variant(where: str, file: str, name: str, variant: str, config: dict[str, Any],
                    backends: tuple[str, ...]) -> ResolvedExperiment:
    """Validate one fully expanded config (a matrix variant, or a tuning trial's config)."""
    from orchestrator.plugins import manager as plugin_manager

    try:
        top = Experiment.model_validate(config)
    except ValidationError as exc:
        raise _pydantic_error(where, exc, Experiment) from None
    task_cls = plugin_manager.tasks().get(top.task)
    task = task_cls()
    try:
        data = task_cls.DataOptions.model_validate(top.data)
    except ValidationError as exc:
        raise _pydantic_error(where, exc, task_cls.DataOptions, "data") from None
    try:
        model = task_cls.ModelOptions.model_validate(top.model)
    except ValidationError as exc:
        raise _pydantic_error(where, exc, task_cls.ModelOptions, "model") from None
    loss = _component(where, "loss", "loss", top.loss)
    optimizer = _component(where, "optimizer", "optimizer", top.optimizer)
    if not task_cls.fits(loss):
        raise ConfigError(where, "loss.name", f"{loss.name!r} does not fit task "
                          f"{task_cls.name!r}; allowed: {', '.join(task_cls.losses)} (or a "
                          f"plugin's loss reading {' or '.join(task_cls.target_kinds())} "
                          "targets)")
    try:
        task.check(data, model, loss)
    except (ValueError, ComponentError) as exc:
        text = str(exc)
        path, sep, rest = text.partition(": ")
        raise ConfigError(where, path if sep else "", rest if sep else text) from None
    _check_size(where, task, data, model)
    needed = [("loss", loss.name), ("optimizer", optimizer.name), *task.components(model)]
    registry = plugin_manager.backends()
    for backend in backends:
        info = registry.info(backend)
        for kind, component in needed:
            if not info.provides(kind, component):
                raise ConfigError(where, "backends", f"backend {backend!r} does not "
                                  f"provide {kind} {component!r}")
    resolved_config = {
        "name": name, "task": top.task, "variant": variant,
        "data": data.model_dump(mode="json"), "model": model.model_dump(mode="json"),
        "loss": {"name": loss.name, **loss.params},
        "optimizer": {"name": optimizer.name, **optimizer.params},
        "train": top.train.model_dump(mode="json"),
        "backends": list(backends), "seeds": list(top.seeds),
        "cv": top.cv.model_dump() if top.cv else None,
    }
    return ResolvedExperiment(
        file=file, name=name, variant=variant, task=top.task, data=data, model=model,
        loss=loss, optimizer=optimizer, train=top.train, backends=backends,
        seeds=tuple(top.seeds), folds=top.cv.folds if top.cv else None,
        config=json.loads(json.dumps(resolved_config, default=list)),
        raw=config, executor=top.executor, resources=top.resources)


SPACE_SECTIONS = ("loss", "optimizer", "model", "data", "train")


_MISSING = object()


def get_dotted(config: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` in a (resolved) config, or ``_MISSING``."""
    node: Any = config
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def config_conditions_hold(dim: Any, space: Mapping[str, Any], config: Mapping[str, Any]
                           ) -> bool:
    """Whether the ``when`` conditions of ``dim`` on config paths (keys that are not dimensions
    of ``space``) hold in ``config``, a variant's resolved config."""
    return all(get_dotted(config, key) in values for key, values in dim.when.items()
               if key not in space)


def _check_space(file: str, variants: Sequence[ResolvedExperiment], tune: Any, name: str,
                 backends: tuple[str, ...]) -> None:
    """Every search dimension must set a real config path to a valid value in every variant
    where it applies (and apply in at least one), and every condition must refer to an earlier
    dimension and one of its values, or to a config path of the variants."""
    probes = len(variants) * sum(len(dim.choices) if dim.type == "categorical" else 2
                                 for dim in tune.space.values())
    if probes > limits.MAX_PROBES:
        raise ConfigError(file, "tune.space", f"checking it needs {probes:,} configs (variants"
                          f" x values to try); at most {limits.MAX_PROBES:,}: fewer variants "
                          "or categorical choices")
    seen: dict[str, Any] = {}
    where_applies: dict[str, set[int]] = {}
    for path, dim in tune.space.items():
        key = f"tune.space.{path}"
        section = path.split(".")[0]
        if section not in SPACE_SECTIONS or "." not in path:
            raise ConfigError(file, key, "the parameter path does not exist: "
                              + catalogue.unknown_message("section", section, SPACE_SECTIONS)
                              + " (then a key, e.g. optimizer.lr)")
        for condition, values in dim.when.items():
            if condition in tune.space and condition not in seen:
                raise ConfigError(file, f"{key}.when.{condition}", "a condition on a dimension "
                                  "must name one declared earlier in tune.space")
            if condition not in seen:
                if all(get_dotted(v.config, condition) is _MISSING for v in variants):
                    raise ConfigError(file, f"{key}.when.{condition}", "names neither a "
                                      "dimension declared earlier in tune.space nor a config "
                                      "path (e.g. loss.name, a matrix key)")
                continue
            allowed = seen[condition].choices or []
            bad = [v for v in values if seen[condition].type == "categorical"
                   and v not in allowed]
            if bad:
                raise ConfigError(file, f"{key}.when.{condition}", f"{bad[0]!r} is not one of "
                                  f"its choices: {allowed}")
        seen[path] = dim
        applies = [v for i, v in enumerate(variants)  # its parents apply, its conditions hold
                   if config_conditions_hold(dim, tune.space, v.config)
                   and all(i in where_applies[c] for c in dim.when if c in tune.space)]
        where_applies[path] = {variants.index(v) for v in applies}
        if not applies:
            found = "; ".join(f"{k} is {get_dotted(v.config, k)!r} in "
                              f"{v.variant or 'the experiment'}"
                              for k in dim.when if k not in tune.space for v in variants)
            raise ConfigError(file, key, f"exists in no variant: its when conditions hold in "
                              f"none ({found})")
        for variant in applies:
            _probe_dimension(file, key, path, dim, tune.space, variant, name, backends)
    for i, point in enumerate(tune.enqueue):
        for path, value in point.items():
            dim = tune.space.get(path)
            where = f"tune.enqueue[{i}].{path}"
            if dim is None:
                raise ConfigError(file, where, "is not a dimension of tune.space")
            inside = (value in dim.choices if dim.type == "categorical" else
                      isinstance(value, (int, float)) and not isinstance(value, bool)
                      and dim.low <= value <= dim.high)
            if not inside:
                allowed = (f"one of {dim.choices}" if dim.type == "categorical"
                           else f"a number in [{dim.low:g}, {dim.high:g}]")
                raise ConfigError(file, where, f"{value!r} is outside the space: {allowed}")


def _probe_dimension(file: str, key: str, path: str, dim: Any, space: Mapping[str, Any],
                     variant: ResolvedExperiment, name: str, backends: tuple[str, ...]) -> None:
    """Try both ends of the range (every choice) against the real config validation."""
    probe = copy.deepcopy(variant.raw)
    for condition, values in _conditions(path, space).items():
        if condition in space:
            set_sample(probe, condition, values[0], file)
    samples = dim.choices if dim.type == "categorical" else [dim.low, dim.high]
    where = f" in variant {variant.variant}" if variant.variant else ""
    for value in samples:
        if dim.type == "int":
            value = int(value)
        trial = copy.deepcopy(probe)
        set_sample(trial, path, value, file)
        try:
            resolve_variant(file, file, name, "", trial, backends)
        except ConfigError as exc:
            hint = ("; limit it to some variants with when: {loss.name: [...]} or another "
                    "config path") if where else ""
            raise ConfigError(file, key, f"{value!r} gives an invalid config{where}: "
                              f"{exc.path + ': ' if exc.path else ''}{exc.message}{hint}"
                              ) from None


def _conditions(path: str, space: Mapping[str, Any]) -> dict[str, list[Any]]:
    """All conditions a dimension depends on, transitively (so a probe satisfies them)."""
    out: dict[str, list[Any]] = {}
    for condition, values in space[path].when.items():
        if condition in space:
            out.update(_conditions(condition, space))
        out[condition] = list(values)
    return out


def set_sample(config: dict[str, Any], path: str, value: Any, file: str) -> None:
    """Set a sampled value; a whole component given by name (``optimizer.name``) drops the
    previous component's hyperparameters, which may not apply to the new one."""
    section, _, key = path.partition(".")
    if key == "name" and section in ("loss", "optimizer"):
        config[section] = {"name": value}
    else:
        set_dotted(config, path, value, file)


def load(files: Sequence[str | Path], overrides: Iterable[str] = ()) -> list[ResolvedExperiment]:
    """Read and resolve every file; the first error stops (nothing has run yet)."""
    overrides = list(overrides)
    out: list[ResolvedExperiment] = []
    if not files:
        raise ConfigError("command line", "", "no experiment file given")
    for file in files:
        path = Path(file)
        out.extend(resolve(read_yaml(path), path, overrides))
    names = {}
    for experiment in out:
        other = names.setdefault((experiment.name, experiment.variant), experiment.file)
        if other != experiment.file:
            raise ConfigError(experiment.file, "name", f"{experiment.name!r} is also the name "
                              f"of the experiment in {other}; names must be unique")
    return out
