"""A bounded YAML reader for experiment files and ``-o`` values.

PyYAML's safe loader already refuses tags that would run code; this one also refuses what
costs unbounded time or memory, or silently loses a value, before it is built:

- nesting deeper than ``MAX_YAML_DEPTH`` (PyYAML recurses per level: 100k brackets would end
  in a RecursionError);
- more than ``MAX_YAML_ALIASES`` aliases, or more than ``MAX_YAML_NODES`` values once aliases
  are expanded (a 1 KB "billion laughs" file expands to gigabytes when copied or printed);
- a key given twice in one mapping (YAML readers keep the last one without a word);

and reads numbers as people write them: ``1e-3`` and ``2E5`` are floats (YAML 1.1, which
PyYAML implements, needs a dot: ``1.0e-3``; YAML 1.2 and JSON do not).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from orchestrator.config.limits import MAX_YAML_ALIASES, MAX_YAML_DEPTH, MAX_YAML_NODES, short

_FLOAT_WITHOUT_DOT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


class YamlLimitError(yaml.YAMLError):
    """The document exceeds a limit (depth, aliases, size) or repeats a key."""

    def __init__(self, problem: str, mark: Any = None) -> None:
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


class _Checks:
    """What both loaders check while building: the expanded size, keys given twice."""

    def construct_document(self, node: Any) -> Any:
        size = _expanded_size(node)
        if size > MAX_YAML_NODES:
            raise YamlLimitError(f"expands to more than {MAX_YAML_NODES:,} values (aliases "
                                 "repeat what they name)", node.start_mark)
        return super().construct_document(node)  # type: ignore[misc]

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True) \
                    if isinstance(key_node, yaml.ScalarNode) else None  # type: ignore[attr-defined]
                try:
                    first = seen.setdefault(key, key_node) if key is not None else key_node
                except TypeError:
                    continue  # an unhashable key: the constructor says so
                if first is not key_node:
                    raise YamlLimitError(f"duplicate key {short(key)} (first on line "
                                         f"{first.start_mark.line + 1})", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc]


class BoundedLoader(_Checks, yaml.SafeLoader):
    """``yaml.SafeLoader`` (pure Python) with the limits of this module, counted as it
    composes: the fallback where PyYAML was built without libyaml."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                raise YamlLimitError(f"more than {MAX_YAML_ALIASES} aliases (*name)",
                                     self.peek_event().start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise YamlLimitError(f"nested deeper than {MAX_YAML_DEPTH} levels",
                                     self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_C = getattr(yaml, "CSafeLoader", None)
# libyaml parses about 40 times faster (a 1 MiB file in well under a second); its composer is
# C code that recurses per level, so the depth and the aliases are counted on its event stream
# first, and only a document within the limits is composed
FastLoader = type("FastLoader", (_Checks, _C), {}) if _C is not None else None

for _loader in (BoundedLoader, FastLoader):
    if _loader is not None:
        _loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_WITHOUT_DOT,
                                      list("-+0123456789."))


def _check_events(text: str) -> None:
    """Depth and alias count from libyaml's events, stopping at the first excess."""
    depth = aliases = 0
    try:
        for event in yaml.parse(text, Loader=_C):
            depth, aliases = _count(event, depth, aliases)
    except yaml.YAMLError as exc:  # libyaml's own depth limit (1000) may come first
        if "maximum nesting depth" in str(getattr(exc, "problem", "")):
            raise YamlLimitError(f"nested deeper than {MAX_YAML_DEPTH} levels",
                                 getattr(exc, "problem_mark", None)) from None
        raise


def _count(event: Any, depth: int, aliases: int) -> tuple[int, int]:
    """One event's change to the nesting depth and the alias count; the limits."""
    if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
        depth += 1
        if depth > MAX_YAML_DEPTH:
            raise YamlLimitError(f"nested deeper than {MAX_YAML_DEPTH} levels",
                                 event.start_mark)
    elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
        depth -= 1
    elif isinstance(event, yaml.AliasEvent):
        aliases += 1
        if aliases > MAX_YAML_ALIASES:
            raise YamlLimitError(f"more than {MAX_YAML_ALIASES} aliases (*name)",
                                 event.start_mark)
    return depth, aliases


def _expanded_size(root: Any) -> int:
    """How many nodes the document has with every alias expanded: each node's size counted
    once (the graph of shared nodes is small even when its expansion is not)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if done or not children:
            sizes[id(node)] = min(1 + sum(sizes.get(id(c), 0) for c in children),
                                  MAX_YAML_NODES + 1)
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load(text: str) -> Any:
    """Parse one YAML document within the limits; raises ``yaml.YAMLError``."""
    if FastLoader is None:
        return yaml.load(text, Loader=BoundedLoader)  # noqa: S506 (a SafeLoader subclass)
    _check_events(text)
    return yaml.load(text, Loader=FastLoader)  # noqa: S506 (a CSafeLoader subclass)
