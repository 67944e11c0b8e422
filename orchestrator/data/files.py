"""Reading a user's CSV/Parquet table and checking its columns, with errors that name the file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from orchestrator.data.errors import DataError, listing, missing_column, prefix

if TYPE_CHECKING:
    import pandas as pd

SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return next((s for s in SUFFIXES if name.endswith(s)), path.suffix.lower())


def read_frame(path: str | Path, key: str = "data.path") -> pd.DataFrame:
    """A non-empty DataFrame from a CSV or Parquet file, or a DataError saying what is wrong."""
    import pandas as pd

    p = Path(path).expanduser()
    at = prefix(p, key)
    if not p.exists():
        raise DataError(f"{at}: file not found (relative paths start at {Path.cwd()})")
    if not p.is_file():
        raise DataError(f"{at}: is a directory, expected a file ({', '.join(SUFFIXES)})")
    suffix = _suffix(p)
    if suffix not in SUFFIXES:
        raise DataError(f"{at}: unsupported extension '{suffix or '(none)'}'; "
                        f"allowed: {', '.join(SUFFIXES)}")
    if p.stat().st_size == 0:
        raise DataError(f"{at}: file is empty")
    try:
        if suffix.startswith(".csv"):
            df = pd.read_csv(p)
        else:
            import pyarrow.parquet as pq
            df = pq.read_table(p).to_pandas()
    except pd.errors.EmptyDataError:
        raise DataError(f"{at}: file is empty (no header, no rows)") from None
    except Exception as exc:  # parser errors: pandas and pyarrow raise several types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{at}: cannot be read as {suffix[1:]}: {first}") from None
    if len(df) == 0:
        raise DataError(f"{at}: no rows (only a header with columns: {listing(df.columns)})")
    df.columns = [str(c) for c in df.columns]  # Parquet may carry integer column names
    return df


def require_columns(df: pd.DataFrame, names: dict[str, str], path: str | Path | None,
                    key: str = "data.path") -> None:
    """Every ``role -> column`` in ``names`` exists, else the closest match is suggested."""
    for role, name in names.items():
        if name not in df.columns:
            raise missing_column(path, role, name, df.columns, key)


def numeric_columns(df: pd.DataFrame, columns: Sequence[str], path: str | Path | None,
                    role: str = "feature", key: str = "data.path") -> pd.DataFrame:
    """``df[columns]`` as float64; a DataError names the first non-numeric column and a bad value.

    Empty cells become NaN (they are missing values); any other text is an error, because a
    silently coerced '?' or '1,5' would become a wrong number or a hidden NaN.
    """
    import pandas as pd

    out = {}
    for col in columns:
        s = df[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            out[col] = s.astype("float64")
            continue
        coerced = pd.to_numeric(s, errors="coerce")
        bad = s.notna() & coerced.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{prefix(path, key)}: {role} column '{col}' is not numeric "
                            f"(row {row}: {s.iloc[row]!r}, {int(bad.sum())} such values); "
                            "encode it as numbers, leave missing cells empty, or drop the column")
        out[col] = coerced.astype("float64")
    for col, values in out.items():  # inf (or 1e400) is no measurement: every loss turns NaN
        infinite = np.isinf(values.to_numpy())
        if infinite.any():
            row = int(np.flatnonzero(infinite)[0])
            raise DataError(f"{prefix(path, key)}: {role} column '{col}' has "
                            f"{int(infinite.sum())} infinite value(s) (first at row {row}: "
                            f"{_cell(df[col].iloc[row])}); give finite numbers, or leave the cell "
                            "empty for a missing value")
    return pd.DataFrame(out, index=df.index)


def check_integer_labels(series: pd.Series, where: str) -> np.ndarray:
    """The labels as int64; DataError if any is missing or not integer-like (e.g. 'cat', 0.5)."""
    import pandas as pd

    s = series
    if pd.api.types.is_bool_dtype(s):
        return s.to_numpy().astype(np.int64)
    if s.isna().any():
        row = int(np.flatnonzero(s.isna().to_numpy())[0])
        raise DataError(f"{where}: label column '{s.name}' has {int(s.isna().sum())} missing "
                        f"values (first at row {row}); every row needs a label")
    values = pd.to_numeric(s, errors="coerce")
    bad = values.isna() | (values != np.round(values))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        examples = listing(pd.unique(s[bad])[:5])
        raise DataError(f"{where}: label column '{s.name}' must hold integer class ids "
                        f"(row {row}: {s.iloc[row]!r}; bad values: {examples}); "
                        "encode classes as 0, 1, ...")
    return values.to_numpy().astype(np.int64)


def check_binary(series: pd.Series, where: str) -> np.ndarray:
    """The labels as int64 in {0, 1}; accepts 0/1, -1/1 (mapped to 0/1) and booleans.

    DataError if a value is outside those sets or only one class is present (a binary task with
    one class cannot be split, scored by average precision or trained).
    """
    y = check_integer_labels(series, where)
    classes = set(np.unique(y).tolist())
    if classes <= {0, 1}:
        pass
    elif classes <= {-1, 1}:
        y = (y == 1).astype(np.int64)  # the SVM-style convention, as in HIVA
    else:
        raise DataError(f"{where}: label column '{series.name}' must be binary (0/1 or -1/1); "
                        f"found classes: {listing(sorted(classes))}")
    if len(np.unique(y)) < 2:
        raise DataError(f"{where}: label column '{series.name}' has only one class "
                        f"({int(y[0])}); a binary task needs positives and negatives")
    return y


def _cell(value: object) -> str:
    """A cell as written in a message (NumPy scalars as plain numbers)."""
    return repr(value.item() if isinstance(value, np.generic) else value)
