"""Run the conformance kit against an installed backend and summarise it per component.

``ConformanceReport`` is a pytest plugin: for every test of the kit it keeps the outcome, the
component(s) the test checks and the errors measured against the reference
(``assertions.record_errors``). ``run_kit`` runs ``BackendConformance`` in-process for one
backend with that plugin; ``orchestrator plugins check NAME`` prints its ``summary()``.

Which component a test checks is read from its ``component(kind, name)`` markers if it has any,
else from its parameters: a ``ComponentSpec`` (or a case holding one, or listing
``components``), a training case (kind ``model``), a canonical name in a tuple (an optimizer
setting, a worked number). Other tests count as ``model`` if ``ModelTests`` defines them, else
as ``other``, under the test's name.
"""

from __future__ import annotations

import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orchestrator.canonical import catalogue
from orchestrator.canonical.catalogue import ComponentSpec
from orchestrator.testing.assertions import Measurement, record_errors

GROUPS = (*catalogue.KINDS, "model", "other")
_MEASURED = pytest.StashKey[tuple[Measurement, ...]]()


@dataclass(frozen=True)
class CheckResult:
    """One test of the kit."""

    test: str  # the test's name with its parameters, e.g. "test_trajectory[sgd-1-float64]"
    components: tuple[tuple[str, str], ...]  # (kind, name); kind in GROUPS
    dtype: str  # "float64" unless the test is parametrized with another
    outcome: str  # "passed", "failed", "skipped" or "error" (a fixture failed)
    message: str  # first line of the failure or skip reason
    measurements: tuple[Measurement, ...]


@dataclass
class ComponentSummary:
    """The tests of one component: counts, and the worst error per dtype (relative to its
    tolerance)."""

    kind: str
    name: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    worst: dict[str, Measurement] = field(default_factory=dict)

    def add(self, result: CheckResult) -> None:
        if result.outcome == "passed":
            self.passed += 1
        elif result.outcome == "skipped":
            self.skipped += 1
        else:
            self.failed += 1
        for m in result.measurements:
            held = self.worst.get(result.dtype)
            if held is None or _ratio(m) > _ratio(held):
                self.worst[result.dtype] = m


def _ratio(m: Measurement) -> float:
    return m.error / m.tol if m.tol > 0 else float("inf")


def _canonical(value: str) -> tuple[str, str] | None:
    for kind in catalogue.KINDS:
        if value in catalogue.names(kind):
            return (kind, value)
    return None


def _components_of_value(value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, ComponentSpec):
        yield (value.kind, value.name)
    elif hasattr(value, "make_batch") and hasattr(value, "id"):  # a training case
        yield ("model", value.id)
    elif isinstance(getattr(value, "components", None), list | tuple):  # a layer case
        yield from value.components or [("other", getattr(value, "id", "layer"))]
    elif isinstance(getattr(value, "spec", None), ComponentSpec):  # a loss case
        yield (value.spec.kind, value.spec.name)
    elif isinstance(value, tuple):  # an optimizer setting, a worked number
        for item in value:
            found = _canonical(item) if isinstance(item, str) else None
            if found:
                yield found
                return


def components_of(item: pytest.Item) -> tuple[tuple[str, str], ...]:
    """The (kind, name) pairs a test of the kit checks."""
    marked = tuple((str(m.args[0]), str(m.args[1])) for m in item.iter_markers("component"))
    if marked:
        return marked
    params = getattr(getattr(item, "callspec", None), "params", {})
    found: list[tuple[str, str]] = []
    for value in params.values():
        found += [c for c in _components_of_value(value) if c not in found]
    if found:
        return tuple(found)
    function = getattr(item, "function", None)
    defined_in = getattr(function, "__qualname__", "").partition(".")[0]  # the kit's class
    name = item.name.split("[")[0].removeprefix("test_")
    return (("model" if defined_in == "ModelTests" else "other", name),)


def _message(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, reason)
        text = str(longrepr[2]).removeprefix("Skipped: ")
    else:
        crash = getattr(longrepr, "reprcrash", None)
        text = crash.message if crash is not None else str(longrepr or "")
    return text.strip().splitlines()[0] if text.strip() else ""


class ConformanceReport:
    """A pytest plugin collecting a ``CheckResult`` per test: ``pytest.main(args,
    plugins=[report])``, then ``report.results`` or ``report.summary()``."""

    def __init__(self) -> None:
        self.results: list[CheckResult] = []

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        with record_errors() as found:
            try:
                return (yield)
            finally:
                item.stash[_MEASURED] = tuple(found)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo
                                  ) -> Iterator[pytest.TestReport]:
        report = yield
        if report.when == "call" or (report.when != "call" and not report.passed):
            outcome = report.outcome if report.when == "call" or report.skipped else "error"
            params = getattr(getattr(item, "callspec", None), "params", {})
            self.results.append(CheckResult(
                test=item.name, components=components_of(item),
                dtype=str(params.get("dtype", "float64")), outcome=outcome,
                message="" if report.passed else _message(report),
                measurements=item.stash.get(_MEASURED, ())))
        return report

    def summary(self) -> list[ComponentSummary]:
        """One entry per component, kinds in ``GROUPS`` order, names in first-seen order."""
        by_key: dict[tuple[str, str], ComponentSummary] = {}
        for result in self.results:
            for kind, name in result.components:
                by_key.setdefault((kind, name), ComponentSummary(kind, name)).add(result)
        order = {kind: i for i, kind in enumerate(GROUPS)}
        return sorted(by_key.values(), key=lambda s: order.get(s.kind, len(GROUPS)))

    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.outcome in ("failed", "error")]


TEST_MODULE = '''\
from orchestrator.testing import BackendConformance


class TestConformance(BackendConformance):
    backend_name = {name!r}
'''


def run_kit(backend_name: str, *, select: str | None = None, verbose: bool = False
            ) -> tuple[int, ConformanceReport]:
    """Run ``BackendConformance`` against an installed backend, in this process.

    ``select`` is a pytest ``-k`` expression. Returns pytest's exit code (0 all passed, 1 some
    failed, 5 nothing selected...) and the report.
    """
    report = ConformanceReport()
    with tempfile.TemporaryDirectory(prefix="orchestrator-check-") as tmp:
        root = Path(tmp)
        (root / "pytest.ini").write_text(textwrap.dedent("""\
            [pytest]
            filterwarnings =
                ignore::DeprecationWarning
        """))
        module = root / f"test_conformance_{backend_name.replace('-', '_')}.py"
        module.write_text(TEST_MODULE.format(name=backend_name))
        args = [str(module), "-c", str(root / "pytest.ini"), "--rootdir", tmp,
                "-p", "no:cacheprovider", "--import-mode=importlib", "-q",
                *(["--tb=short", "-rfE"] if verbose else ["--tb=no", "-rN"]),
                *(["-k", select] if select else [])]
        code = pytest.main(args, plugins=[report])
    return int(code), report
