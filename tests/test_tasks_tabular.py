"""The imbalanced (tabular) and embedding tasks: options, data preparation, errors, metrics.

Fast: no framework is imported; models are stand-ins with a ``predict`` method.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from orchestrator.config.loader import ConfigError, resolve
from orchestrator.data.errors import DataError
from orchestrator.evaluation.metrics import binary
from orchestrator.tasks.embedding import EmbeddingTask, knn_accuracy, recall_at_1
from orchestrator.tasks.imbalanced import ImbalancedData, ImbalancedTask

HORMONES = ["tsh", "t3", "tt4", "t4u", "fti", "tbg"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_CACHE_DIR", str(tmp_path / "cache"))


def experiment(task: str = "imbalanced", **sections) -> dict:
    raw = {"task": task, "loss": {"name": "binary_crossentropy", "from_logits": True},
           "optimizer": {"name": "adam"}, "train": {"epochs": 1}, "backends": ["torch"]}
    if task == "embedding":
        raw["loss"] = {"name": "triplet", "mining": "batch_hard"}
    raw.update(sections)
    return raw


# --- options, through the config loader ---------------------------------------------------------


def test_defaults_resolve():
    (exp,) = resolve(experiment(), "x.yaml")
    assert exp.data.source == "hypothyroid" and exp.data.test_size == 0.2
    assert exp.data.val_size == 0.15 and exp.model.hidden == (64, 32)
    (emb,) = resolve(experiment("embedding"), "e.yaml")
    assert emb.model.dim == 32


@pytest.mark.parametrize("section, key, hint", [
    ("data", "tset_size", "test_size"),
    ("data", "missing_indicator", "missing_indicators"),
    ("model", "hiden", "hidden"),
    ("model", "dropuot", "dropout"),
])
def test_unknown_option_names_the_key_and_the_closest(section, key, hint):
    with pytest.raises(ConfigError) as err:
        resolve(experiment(**{section: {key: 1}}), "x.yaml")
    message = str(err.value)
    assert f"{section}.{key}" in message and repr(hint) in message


def test_loss_that_does_not_fit_the_task_is_rejected():
    raw = experiment(loss={"name": "sparse_categorical_crossentropy", "from_logits": True})
    with pytest.raises(ConfigError, match=r"loss\.name: .*binary_crossentropy, binary_focal"):
        resolve(raw, "x.yaml")
    with pytest.raises(ConfigError, match=r"loss\.name: .*allowed: triplet"):
        resolve(experiment("embedding", loss={"name": "binary_crossentropy"}), "e.yaml")


def test_probability_losses_and_explicit_triplets_are_rejected():
    with pytest.raises(ConfigError, match=r"loss\.from_logits: must be true"):
        resolve(experiment(loss={"name": "binary_focal", "gamma": 2.0}), "x.yaml")
    with pytest.raises(ConfigError, match=r"loss\.mining: 'none' .*batch_hard or batch_all"):
        resolve(experiment("embedding", loss={"name": "triplet", "mining": "none"}), "e.yaml")


def test_bad_option_values_are_rejected():
    with pytest.raises(ConfigError, match=r"data\.test_size"):
        resolve(experiment(data={"test_size": 1.5}), "x.yaml")
    with pytest.raises(ConfigError, match=r"model\.norm"):
        resolve(experiment(model={"norm": "group"}), "x.yaml")
    with pytest.raises(ConfigError, match=r"data\.label: only for a file source"):
        resolve(experiment(data={"label": "y"}), "x.yaml")
    with pytest.raises(ConfigError, match=r"data\.source: .*give one of them"):
        resolve(experiment(data={"source": "hiva", "path": "t.csv"}), "x.yaml")
    with pytest.raises(ConfigError, match=r"data\.source: 'hypothyroids' is neither .*did you "
                                          r"mean 'hypothyroid'"):
        resolve(experiment(data={"source": "hypothyroids"}), "x.yaml")


# --- prepare() on hypothyroid -------------------------------------------------------------------


@pytest.fixture(scope="module")
def hypothyroid(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:  # module scope: its own cache
        env.setenv("ORCHESTRATOR_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield ImbalancedTask().prepare(ImbalancedData(), seed=0, folds=None)


def test_split_sizes_and_stratification(hypothyroid):
    (split,) = hypothyroid.splits
    n_train, n_val, n_test = len(split.y_train), len(split.y_val), len(split.y_test)
    assert n_train + n_val + n_test == 3163
    assert n_test == 633  # ceil(0.2 * 3163)
    assert n_val == 380  # ceil(0.15 * 2530), carved from the training part
    assert hypothyroid.meta["positives"] == 151
    rate = 151 / 3163
    for y in (split.y_train, split.y_val, split.y_test):
        assert y.sum() > 0 and abs(y.mean() - rate) < 0.01
    assert split.x_train.dtype == np.float32 and split.x_train.shape[1] == 25
    assert hypothyroid.table.shape == (3163, 26)
    assert len(hypothyroid.meta["feature_names"]) == 25


def test_preprocessor_is_fitted_on_training_rows_only(hypothyroid):
    (split,) = hypothyroid.splits
    assert not np.isnan(split.x_train).any() and not np.isnan(split.x_test).any()
    train_means = split.x_train.mean(axis=0)
    assert np.abs(train_means).max() < 1e-4  # standardized with the training statistics
    assert np.abs(split.x_test.mean(axis=0)).max() > 1e-3  # other rows: not exactly
    assert np.abs(split.x_val.mean(axis=0)).max() > 1e-3
    stds = split.x_train.std(axis=0)
    assert np.allclose(stds[stds > 0], 1.0, atol=1e-3)


def test_targets_are_a_float_column(hypothyroid):
    (split,) = hypothyroid.splits
    loss = resolve(experiment(), "x.yaml")[0].loss
    y = ImbalancedTask().targets(split.y_train, loss, hypothyroid)
    assert y.dtype == np.float32 and y.shape == (len(split.y_train), 1)


def test_cross_validation_folds_cover_every_row_once():
    data = ImbalancedData(missing_indicators=True, log_features=("tsh", "fti"))
    prepared = ImbalancedTask().prepare(data, seed=1, folds=5)
    assert len(prepared.splits) == 5 and [s.fold for s in prepared.splits] == list(range(5))
    assert sum(len(s.y_test) for s in prepared.splits) == 3163
    for s in prepared.splits:
        assert s.y_test.sum() in (30, 31) and s.y_val.sum() > 0
        assert len(s.y_train) + len(s.y_val) + len(s.y_test) == 3163
        # indicators: 0/1 columns appended after the 25 standardized features
        assert s.x_train.shape[1] > 25
        assert set(np.unique(s.x_train[:, 25:])) <= {0.0, 1.0}
    again = ImbalancedTask().prepare(data, seed=1, folds=5)  # from the cache
    assert again.digest == prepared.digest
    np.testing.assert_array_equal(again.splits[3].x_test, prepared.splits[3].x_test)
    assert ImbalancedTask().prepare(data, seed=2, folds=5).digest != prepared.digest


def test_log_features_must_exist():
    with pytest.raises(DataError, match=r"data\.log_features: .*'TSH' not found.*did you mean "
                                        r"'tsh'"):
        ImbalancedTask().prepare(ImbalancedData(log_features=("TSH",)), seed=0, folds=None)


# --- a user's file ------------------------------------------------------------------------------


def _table(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_user_csv_is_prepared(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["a,b,Target"] + [f"{rng.normal():.3f},{'' if i % 7 == 0 else i},{int(i % 5 == 0)}"
                             for i in range(200)]
    path = _table(tmp_path, "\n".join(rows) + "\n")
    data = ImbalancedData(path=str(path), label="Target", missing_indicators=True)
    prepared = ImbalancedTask().prepare(data, seed=0, folds=None)
    (split,) = prepared.splits
    assert prepared.meta["positives"] == 40 and prepared.meta["feature_names"] == ("a", "b")
    assert split.x_train.shape[1] == 3  # a, b and b_missing
    assert prepared.source == str(path)
    same = ImbalancedTask().prepare(ImbalancedData(source=str(path), label="Target"), seed=0,
                                    folds=None)
    assert same.meta["positives"] == 40


@pytest.mark.parametrize("content, label, pattern", [
    (None, "label", r"file not found"),
    ("a,b,Target\n1,2,0\n3,4,1\n", "target", r"label column 'target' not found; columns: a, b, "
                                             r"Target \(did you mean 'Target'\?\)"),
    ("a,b,label\n1,x,0\n3,4,1\n", "label", r"feature column 'b' is not numeric"),
    ("", "label", r"file is empty"),
    ("a,b,label\n", "label", r"no rows"),
    ("a,label\n1,0\n2,0\n", "label", r"only one class"),
])
def test_user_file_errors_name_the_file_and_key(tmp_path, content, label, pattern):
    path = tmp_path / "data.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError) as err:
        ImbalancedTask().prepare(ImbalancedData(path=str(path), label=label), seed=0, folds=None)
    message = str(err.value)
    assert message.startswith(f"data.path: {path}")
    assert __import__("re").search(pattern, message), message


def test_a_file_given_as_source_is_reported_under_data_source(tmp_path):
    path = tmp_path / "missing.parquet"
    with pytest.raises(DataError, match=rf"^data\.source: {path}: file not found"):
        ImbalancedTask().prepare(ImbalancedData(source=str(path)), seed=0, folds=None)
    bad = _table(tmp_path, "a,label\nq,0\n2,1\n")
    with pytest.raises(DataError, match=rf"^data\.source: {bad}: feature column 'a'"):
        ImbalancedTask().prepare(ImbalancedData(source=str(bad)), seed=0, folds=None)


# --- metrics ------------------------------------------------------------------------------------


class _Fixed:
    """A stand-in model whose 'logits' are a lookup by row (the rows hold their own index)."""

    def __init__(self, logits: np.ndarray) -> None:
        self.logits = np.asarray(logits, dtype=np.float32)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.logits[x[:, 0].astype(int)].reshape(-1, 1)


def test_average_precision_on_a_known_case():
    # scikit-learn's documented example: AP = 0.8333
    metrics, matrix = binary(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]), "test")
    assert metrics["test/average_precision"] == pytest.approx(0.83333, abs=1e-4)
    assert metrics["test/recall"] == 0.5 and matrix.tolist() == [[2, 0], [1, 1]]


def test_imbalanced_evaluate_reports_rare_class_metrics():
    from orchestrator.contract.task import Prepared, Split

    y = np.array([0, 0, 1, 1, 0, 1])
    probs = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    logits = np.log(probs / (1 - probs))
    rows = np.arange(6, dtype=np.float32)[:, None]
    split = Split(rows, y, rows[4:], y[4:], rows[:4], y[:4])
    task = ImbalancedTask()
    loss = resolve(experiment(), "x.yaml")[0].loss
    result = task.evaluate(_Fixed(logits), split, Prepared((split,), "d", "s"), loss, {})
    assert result.metrics["test/average_precision"] == pytest.approx(0.83333, abs=1e-4)
    assert result.metrics["test/precision"] == 1.0 and result.metrics["test/f1"] == \
        pytest.approx(2 / 3)
    assert result.metrics["val/average_precision"] == 1.0
    assert set(result.figures) == {"plots/confusion_matrix.png", "plots/precision_recall.png"}
    assert task.epoch_metrics(_Fixed(logits), split, None, loss) == {"val/average_precision": 1.0}
    import matplotlib.pyplot as plt

    plt.close("all")


def test_recall_at_1_and_knn_on_hand_built_embeddings():
    gallery = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0], [5.2, 0.0]])
    gallery_labels = np.array([0, 0, 1, 1, 2])
    query = np.array([[0.1, 0.2], [9.0, 0.5], [5.0, 0.0], [4.0, 0.0]])
    query_labels = np.array([0, 1, 2, 0])
    # nearest: 0 (label 0, right), 2 or 3 (label 1, right), 4 (label 2, right), 4 (label 2, wrong)
    assert recall_at_1(query, query_labels, gallery, gallery_labels) == 0.75
    # k=3: query 3 sees labels (2, 0, 0) -> 0: right; query 2 sees (2, 1|0, ...) -> tie -> 2
    assert knn_accuracy(query, query_labels, gallery, gallery_labels, k=3) == 1.0
    # squared L2, not L1 or cosine: (0, 3) is nearer to (2, 3)=d 4 than to (0, 0)=d 9
    assert recall_at_1(np.array([[0.0, 3.0]]), np.array([1]), np.array([[0.0, 0.0], [2.0, 3.0]]),
                       np.array([0, 1])) == 1.0


def test_embedding_prepare_and_evaluate():
    task = EmbeddingTask()
    (exp,) = resolve(experiment("embedding"), "e.yaml")
    prepared = task.prepare(exp.data, seed=0, folds=None)
    (split,) = prepared.splits
    assert len(split.y_test) == 360 and len(split.y_train) + len(split.y_val) == 1437
    spec = task.model_spec(exp.model, prepared)
    assert spec.input_shape == (64,) and spec.layers[-1].units == 32

    table = {row.tobytes(): label for row, label in zip(
        np.concatenate([split.x_train, split.x_val, split.x_test]),
        np.concatenate([split.y_train, split.y_val, split.y_test]))}

    class OneHot:  # a perfect embedding: each image's class as a one-hot vector
        def predict(self, x):
            return np.eye(10)[[table[row.tobytes()] for row in x]]

    result = task.evaluate(OneHot(), split, prepared, exp.loss, {})
    assert result.metrics["test/recall_at_1"] == 1.0 and result.metrics["test/knn_accuracy"] == 1.0
    assert "plots/embedding_pca.png" in result.figures
    import matplotlib.pyplot as plt

    plt.close("all")
