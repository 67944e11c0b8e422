"""The sequence tasks (har, text, vanishing): options, data preparation, errors, sampling and the
gradient-norm measurement. Fast: no training; the few real models are tiny torch networks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orchestrator.canonical import catalogue
from orchestrator.config.loader import ConfigError, resolve
from orchestrator.data.errors import DataError
from orchestrator.tasks.har import HarData, HarTask
from orchestrator.tasks.text import TextData, TextTask, mean_cross_entropy, sample
from orchestrator.tasks.vanishing import (VanishingData, VanishingModel, VanishingTask,
                                          gradient_norm_per_step, loss_upstream)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_CACHE_DIR", str(tmp_path / "cache"))


LOSSES = {"har": {"name": "categorical_crossentropy"},
          "text": {"name": "sparse_categorical_crossentropy", "from_logits": True},
          "vanishing": {"name": "sparse_categorical_crossentropy", "from_logits": True}}


def experiment(task: str, **sections) -> dict:
    raw = {"task": task, "loss": LOSSES[task], "optimizer": {"name": "adam"},
           "train": {"epochs": 1}, "backends": ["torch"]}
    raw.update(sections)
    return raw


# --- options, through the config loader ---------------------------------------------------------


def test_defaults_resolve():
    (har,) = resolve(experiment("har"), "h.yaml")
    assert (har.data.source, har.data.window, har.data.stride) == ("watch", 200, 100)
    assert (har.model.cell, har.model.units, har.model.depth, har.model.dropout) == \
        ("bilstm", 32, 3, 0.5)
    (text,) = resolve(experiment("text"), "t.yaml")
    assert text.data.seq_len == 100 and text.model.cell == "lstm"
    assert TextTask.direction == "minimize" and TextTask.main_metric == "test/bits_per_char"
    variants = resolve(experiment("vanishing", matrix={"model.cell": ["rnn", "lstm"],
                                                       "data.length": [10, 50]}), "v.yaml")
    assert [(v.model.cell, v.data.length) for v in variants] == \
        [("rnn", 10), ("rnn", 50), ("lstm", 10), ("lstm", 50)]


@pytest.mark.parametrize("task, section, key, hint", [
    ("har", "data", "windw", "window"),
    ("har", "data", "test_subject", "test_subjects"),
    ("har", "model", "unit", "units"),
    ("text", "data", "seq_length", "seq_len"),
    ("text", "model", "embeding_dim", "embedding_dim"),
    ("vanishing", "data", "lenght", "length"),
])
def test_unknown_option_names_the_key_and_the_closest(task, section, key, hint):
    with pytest.raises(ConfigError) as err:
        resolve(experiment(task, **{section: {key: 1}}), "x.yaml")
    message = str(err.value)
    assert f"{section}.{key}" in message and repr(hint) in message


def test_nested_augment_key_is_checked():
    with pytest.raises(ConfigError) as err:
        resolve(experiment("har", data={"augment": {"rotaton_deg": 10}}), "x.yaml")
    assert "data.augment.rotaton_deg" in str(err.value)


@pytest.mark.parametrize("task, sections, where", [
    ("har", {"loss": {"name": "sparse_categorical_crossentropy", "from_logits": True}},
     "loss.from_logits"),
    ("har", {"data": {"window": 200, "downsample": 3}}, "data.downsample"),
    ("har", {"data": {"source": "/no/such/file.csv"}}, "data.source"),
    ("har", {"model": {"cell": "gru"}}, "model.cell"),
    ("text", {"loss": {"name": "sparse_categorical_crossentropy"}}, "loss.from_logits"),
    ("text", {"loss": {"name": "categorical_crossentropy", "from_logits": True}}, "loss.name"),
    ("vanishing", {"model": {"cell": "bilstm"}}, "model.cell"),
])
def test_cross_checks_name_the_key(task, sections, where):
    with pytest.raises(ConfigError) as err:
        resolve(experiment(task, **sections), "x.yaml")
    assert where in str(err.value)


def test_shipped_experiment_files_resolve():
    from orchestrator.config.loader import load

    files = [Path("experiments") / f for f in ("har_lecture.yaml", "har_better.yaml",
                                               "text.yaml", "vanishing.yaml")]
    files += [Path("experiments/cv") / f for f in ("har_lecture_cv.yaml", "har_better_cv.yaml")]
    resolved = load([f for f in files if f.exists()])
    assert {e.task for e in resolved} <= {"har", "text", "vanishing"}
    assert all(set(e.backends) == {"torch", "tensorflow"} for e in resolved)


# --- HAR ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def har_prepared(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:  # module scope: its own cache
        env.setenv("ORCHESTRATOR_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        data = HarData(val_subjects=1, downsample=4, magnitudes=True,
                       augment={"copies": 1, "rotation_deg": 30, "scale": 0.1,
                                "jitter": 0.05, "mirror": (-1, 1, 1, 1, -1, -1)})
        yield data, HarTask().prepare(data, seed=0, folds=None)


def test_har_split_by_subject(har_prepared):
    _, prepared = har_prepared
    (split,) = prepared.splits
    train = set(split.info["train_subjects"])
    val, test = set(split.info["val_subjects"]), set(split.info["test_subjects"])
    assert len(test) == 2 and len(val) == 1 and len(train) == 7
    assert not (train & val or train & test or val & test)
    assert split.x_train.shape[1:] == (50, 8)  # 200 samples / 4, 6 channels + 2 magnitudes
    assert len(split.x_train) == 2 * len(split.y_train) // 2
    assert prepared.meta["classes"] == 7 and len(prepared.meta["channels"]) == 8
    # the windows table shows which subject each window belongs to
    assert set(prepared.table["subject"]) == {str(s) for s in range(1, 11)}


def test_har_scaler_fitted_on_training_subjects_only(har_prepared):
    _, prepared = har_prepared
    (split,) = prepared.splits
    originals = split.x_train[: len(split.x_train) // 2]  # original windows first, then copies
    assert np.allclose(originals.mean(axis=(0, 1)), 0, atol=1e-4)
    assert np.allclose(originals.std(axis=(0, 1)), 1, atol=1e-3)
    # test windows are transformed with the training statistics, not their own
    assert not np.allclose(split.x_test.mean(axis=(0, 1)), 0, atol=1e-3)


def test_har_prepare_is_deterministic_and_augmentation_follows_the_seed(har_prepared):
    data, prepared = har_prepared
    again = HarTask().prepare(data, seed=0, folds=None)
    assert np.array_equal(again.splits[0].x_train, prepared.splits[0].x_train)
    assert again.digest == prepared.digest
    other = HarTask().prepare(data.model_copy(update={"test_subjects": (1, 2)}), seed=0,
                              folds=None)
    assert other.splits[0].info["test_subjects"] == ["1", "2"]
    assert "1" not in other.splits[0].info["val_subjects"]


def test_har_grouped_folds_cover_every_subject_once():
    prepared = HarTask().prepare(HarData(downsample=4), seed=0, folds=5)
    held = [s for split in prepared.splits for s in split.info["test_subjects"]]
    assert sorted(held, key=int) == [str(s) for s in range(1, 11)]
    for split in prepared.splits:
        assert not set(split.info["train_subjects"]) & set(split.info["test_subjects"])


def test_har_window_longer_than_every_recording():
    with pytest.raises(DataError, match=r"^data\.window: .*longest recording \(2618"):
        HarTask().prepare(HarData(window=3000, stride=100), seed=0, folds=None)


def test_har_too_many_validation_subjects():
    with pytest.raises(DataError, match="data.val_subjects"):
        HarTask().prepare(HarData(test_subjects=2, val_subjects=8), seed=0, folds=None)


def recordings_csv(tmp_path: Path, rows_per_recording: int = 120) -> Path:
    rng = np.random.default_rng(0)
    frames = []
    for rec in range(6):
        frames.append(pd.DataFrame({
            "t": np.arange(rows_per_recording), "acc_x": rng.normal(size=rows_per_recording),
            "acc_y": rng.normal(size=rows_per_recording), "acc_z": rng.normal(size=rows_per_recording),
            "activity": ["walk", "sit"][rec % 2], "rec": f"r{rec}", "person": f"p{rec // 2}"}))
    path = tmp_path / "recordings.csv"
    pd.concat(frames).to_csv(path, index=False)
    return path


def table_data(path: Path, **changes) -> HarData:
    options = {"source": str(path), "channels": ("acc_x", "acc_y", "acc_z"),
               "label": "activity", "recording": "rec", "subject": "person", "rate_hz": 20.0,
               "window": 40, "stride": 20, "test_subjects": 1, "val_subjects": 1}
    return HarData(**{**options, **changes})


def test_har_user_recordings_table(tmp_path):
    path = recordings_csv(tmp_path)
    prepared = HarTask().prepare(table_data(path, magnitudes=True), seed=0, folds=None)
    (split,) = prepared.splits
    assert prepared.meta["class_names"] == ("sit", "walk")
    assert split.x_train.shape[1:] == (40, 4)
    assert len(split.info["test_subjects"]) == 1 and len(split.info["train_subjects"]) == 1
    assert prepared.source == str(path)


@pytest.mark.parametrize("changes, key, words", [
    ({"label": "activty"}, "data.label", "did you mean 'activity'"),
    ({"recording": "recording"}, "data.recording", "not found"),
    ({"channels": ("acc_x", "acc_w")}, "data.channels", "acc_w"),
    ({"channels": None}, "data.source", "'t'"),  # t is not a channel: still a numeric column
    ({"window": 500}, "data.window", "longest recording"),
    ({"channels": ("acc_x", "acc_y")}, "data.magnitudes", "triples"),
])
def test_har_user_table_errors_name_the_file_and_key(tmp_path, changes, key, words):
    path = recordings_csv(tmp_path)
    data = table_data(path, magnitudes="magnitudes" in key, **changes)
    if key == "data.source":  # every column but the ids is taken: the run still works
        prepared = HarTask().prepare(data, seed=0, folds=None)
        assert "t" in prepared.meta["channels"]
        return
    with pytest.raises(DataError) as err:
        HarTask().prepare(data, seed=0, folds=None)
    message = str(err.value)
    assert message.startswith(key) and words in message
    if key != "data.window" and key != "data.magnitudes":
        assert str(path) in message


def test_har_user_table_not_a_table(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(DataError, match=r"^data\.source: .*notes\.txt: unsupported extension"):
        HarTask().prepare(table_data(path), seed=0, folds=None)


# --- text ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shakespeare(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:  # module scope: its own cache
        env.setenv("ORCHESTRATOR_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        data = TextData(validation=("hamlet", "macbeth"), val_split=1,
                        max_train_chars=200_000, seq_len=50, max_eval_chars=20_000)
        yield data, TextTask().prepare(data, seed=0, folds=None)


def test_text_holds_out_whole_plays(shakespeare):
    _, prepared = shakespeare
    (split,) = prepared.splits
    assert split.info["test_documents"] == ["hamlet", "macbeth"]
    (val_doc,) = split.info["val_documents"]
    roles = dict(zip(prepared.table["document"], prepared.table["role"]))
    assert roles["hamlet"] == roles["macbeth"] == "test" and roles[val_doc] == "val"
    assert sum(r == "train" for r in roles.values()) == 35


def test_text_sequences_and_budget(shakespeare):
    data, prepared = shakespeare
    (split,) = prepared.splits
    assert split.x_train.shape == (200_000 // 50, 50) and split.x_train.dtype == np.int32
    assert np.array_equal(split.x_train[:, 1:], split.y_train[:, :-1])  # next character
    assert split.x_test.shape[0] == 20_000 // 50
    assert split.x_val.shape[0] <= data.max_val_sequences
    # the budget is spread over the whole training text: the last play is in it too
    vocab = prepared.meta["vocab"]
    assert vocab[0] == "<unk>" and "\n" in vocab and prepared.meta["vocab_size"] == len(vocab)
    assert split.x_train.max() < len(vocab)


def test_text_vocabulary_comes_from_training_text(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text("abcab" * 400 + "xyz" * 50, encoding="utf-8")
    prepared = TextTask().prepare(TextData(source=str(path), validation=0.1, val_split=0,
                                           seq_len=20), seed=0, folds=None)
    (split,) = prepared.splits
    assert prepared.meta["vocab"] == ("<unk>", "a", "b", "c")  # x, y, z only in the tail
    assert (split.y_test == 0).any() and split.x_val is None


def test_text_errors(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text("abc" * 100, encoding="utf-8")
    with pytest.raises(DataError, match="data.validation: .*single document"):
        TextTask().prepare(TextData(source=str(path), validation=2), seed=0, folds=None)
    with pytest.raises(DataError, match="data.validation: document 'hamlt'.*did you mean"):
        TextTask().prepare(TextData(validation=("hamlt",)), seed=0, folds=None)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9".encode("latin-1") * 50)
    with pytest.raises(DataError, match=r"^data\.source: .*latin1\.txt: not UTF-8"):
        TextTask().prepare(TextData(source=str(bad)), seed=0, folds=None)


class CountingModel:
    """A stand-in language model: logits favour (last id + 1) mod V, softly."""

    def __init__(self, vocab_size: int) -> None:
        self.v = vocab_size

    def predict(self, x, training=False):
        x = np.asarray(x)
        logits = np.zeros((*x.shape, self.v), dtype=np.float32)
        np.put_along_axis(logits, ((x + 1) % self.v)[..., None], 2.0, axis=-1)
        return logits


def test_sampling_is_deterministic_for_a_seed():
    vocab = ("<unk>", "\n", "A", "B", "C", ":")
    model = CountingModel(len(vocab))
    first = sample(model, vocab, "AB:\n", 60, (0.5, 1.0), 8, seed=3)
    assert first == sample(model, vocab, "AB:\n", 60, (0.5, 1.0), 8, seed=3)
    assert first != sample(model, vocab, "AB:\n", 60, (0.5, 1.0), 8, seed=4)
    assert all(s.startswith("AB:\n") and len(s) >= 64 for s in first)
    cold = sample(model, vocab, "A", 200, (0.05,), 8, seed=0)[0]
    assert cold.startswith("ABC:")  # near-greedy follows the favoured successor
    assert "<unk>" not in cold  # id 0 is never drawn


def test_bits_per_char_of_a_uniform_model():
    class Uniform:
        def predict(self, x, training=False):
            return np.zeros((*np.asarray(x).shape, 8), dtype=np.float32)

    x = np.zeros((5, 7), dtype=np.int32)
    nats = mean_cross_entropy(Uniform(), x, x + 3, batch_size=2)
    assert math.isclose(nats / math.log(2), 3.0, rel_tol=1e-6)


# --- vanishing ----------------------------------------------------------------------------------


def test_vanishing_data_follows_the_seed():
    task = VanishingTask()
    data = VanishingData(length=30, n_train=40, n_val=10, n_test=20)
    a = task.prepare(data, seed=1, folds=None).splits[0]
    b = task.prepare(data, seed=1, folds=None).splits[0]
    assert np.array_equal(a.x_train, b.x_train) and a.x_val.shape == (10, 30, 1)
    assert np.array_equal(np.sign(a.x_test[:, 0, 0]) > 0, a.y_test == 1)
    with pytest.raises(DataError, match="cv"):
        task.prepare(data, seed=1, folds=3)


def test_loss_upstream_is_the_gradient_of_the_mean_cross_entropy():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(6, 2))
    y = rng.integers(0, 2, size=6)

    def loss(logits):
        m = logits.max(axis=1, keepdims=True)
        logp = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
        return -logp[np.arange(6), y].mean()

    numeric = np.zeros_like(z)
    for idx in np.ndindex(*z.shape):
        step = np.zeros_like(z)
        step[idx] = 1e-6
        numeric[idx] = (loss(z + step) - loss(z - step)) / 2e-6
    assert np.allclose(loss_upstream(z, y), numeric, atol=1e-8)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_gradient_norm_per_step_on_a_tiny_torch_model(cell):
    torch = pytest.importorskip("torch")
    from orchestrator.plugins import manager as plugin_manager
    from orchestrator.canonical.initializers import init_weights

    task = VanishingTask()
    prepared = task.prepare(VanishingData(length=12, n_train=10, n_test=16), seed=0, folds=None)
    split = prepared.splits[0]
    spec = task.model_spec(VanishingModel(cell=cell, units=4), prepared)
    model = plugin_manager.backends().load("torch").build_model(
        spec, init_weights(spec, 0), dtype="float64")
    norms = gradient_norm_per_step(model, split.x_test, split.y_test)
    assert norms.shape == (12,) and np.all(norms > 0)
    # the same gradient straight from torch autograd on the mean cross entropy
    x = torch.tensor(split.x_test, dtype=torch.float64, requires_grad=True)
    model.module.train(False)
    value = torch.nn.functional.cross_entropy(model.module(x), torch.tensor(split.y_test))
    (grad,) = torch.autograd.grad(value, x)
    assert np.allclose(norms, grad.norm(dim=-1).mean(dim=0).numpy(), rtol=1e-8)
    loss = catalogue.resolve("loss", "sparse_categorical_crossentropy", {"from_logits": True})
    evaluation = task.evaluate(model, split, prepared, loss, {})
    assert "plots/gradient_norm_per_step.png" in evaluation.figures
    table = evaluation.tables["tables/gradient_norm_per_step.csv"]
    assert list(table.columns) == ["step", "grad_norm"] and len(table) == 12
    ratio = evaluation.metrics["test/grad_norm_ratio_first_to_last"]
    assert math.isclose(ratio, norms[0] / norms[-1], rel_tol=1e-9)
