"""Reading CoNLL token-classification files.

Accepted layouts, one token per line and a blank (or whitespace-only) line between sentences:

- CoNLL-2003: ``token POS chunk NER`` (the tag is the last column), ``-DOCSTART-`` lines skipped;
- two columns, ``token<TAB>tag`` (WNUT-17), or any columns separated by tabs or spaces.

Tags must follow IOB2 (``O``, ``B-TYPE``, ``I-TYPE``; ``E-``/``S-`` of IOBES are accepted too). An
``I-TYPE`` that does not continue an entity of the same type is an IOB1 tag: an error naming the file and
line, unless ``repair_iob=True`` turns it into ``B-TYPE`` (IOB1 -> IOB2; repairs are counted).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field

import datasets

from .errors import CorpusError

__all__ = ["ConllError", "ConllData", "read_conll", "label_list"]

_TAG = re.compile(r"^(O|[BIES]-\S+)$")


class ConllError(CorpusError):
    """A malformed CoNLL file: the message names the file and line, what was expected and found, and the fix."""


@dataclass
class ConllData:
    """Sentences of a CoNLL file.

    Args:
        tokens (`list[list[str]]`): Words per sentence.
        tags (`list[list[str]]`): IOB2 tags per sentence.
        path (`str`): The file read.
        counts (`Counter`): ``sentences``, ``tokens``, ``docstart_lines``, ``iob1_repaired``.
    """

    tokens: list[list[str]]
    tags: list[list[str]]
    path: str = ""
    counts: Counter = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.tokens)

    def to_dataset(self, label_names: list[str] | None = None):
        """A ``datasets.Dataset`` with ``tokens`` and ``ner_tags`` (a ``ClassLabel`` sequence)."""
        names = label_names or label_list(self.tags)
        unknown = sorted({t for row in self.tags for t in row} - set(names))
        if unknown:
            raise ConllError(
                f"{self.path}: tags {unknown} are not in the label set {names} (the model's labels). Evaluate with "
                "a model trained on these labels, or map the tags first."
            )
        index = {name: i for i, name in enumerate(names)}
        features = datasets.Features(
            {
                "tokens": datasets.List(datasets.Value("string")),
                "ner_tags": datasets.List(datasets.ClassLabel(names=names)),
            }
        )
        return datasets.Dataset.from_dict(
            {"tokens": self.tokens, "ner_tags": [[index[t] for t in row] for row in self.tags]}, features=features
        )


def label_list(tags: list[list[str]]) -> list[str]:
    """Sorted label set with ``O`` first and each entity type's ``B-`` before its ``I-``."""
    names = {t for row in tags for t in row}
    names.discard("O")
    return ["O"] + sorted(names, key=lambda t: (t[2:], t[0]))


def read_conll(path: str | os.PathLike, repair_iob: bool = False, encoding: str = "utf-8") -> ConllData:
    """Read a CoNLL file (see the module docstring for the layouts).

    Args:
        path (`str`): The file.
        repair_iob (`bool`, *optional*, defaults to `False`): Turn IOB1 ``I-`` tags that start an entity into
            ``B-`` instead of raising.
        encoding (`str`, *optional*, defaults to `"utf-8"`): File encoding.

    Returns:
        `ConllData`

    Raises:
        ConllError: for a row with one column, a tag outside IOB2/IOBES, or (without `repair_iob`) an ``I-``
            tag with no entity before it; the message names the file and line.

    Example:
        ```python
        >>> from nsptask.conll import read_conll
        >>> data = read_conll("wnut17/train.conll")  # doctest: +SKIP
        >>> data.tokens[0][:3], data.tags[0][:3]  # doctest: +SKIP
        (['@paulwalk', 'It', "'s"], ['O', 'O', 'O'])
        ```
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ConllError(f"{path}: no such file. Expected a CoNLL file; check the path.")
    tokens: list[list[str]] = []
    tags: list[list[str]] = []
    counts: Counter = Counter()
    sentence_tokens: list[str] = []
    sentence_tags: list[str] = []

    def close_sentence():
        if sentence_tokens:
            tokens.append(list(sentence_tokens))
            tags.append(list(sentence_tags))
            counts["sentences"] += 1
            counts["tokens"] += len(sentence_tokens)
        sentence_tokens.clear()
        sentence_tags.clear()

    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode(encoding)
            except UnicodeDecodeError as err:
                raise ConllError(
                    f"{path}, line {lineno}: invalid {encoding}: found bytes {raw[err.start : err.end]!r}, expected "
                    f"{encoding} text. Re-encode the file as {encoding}, or pass its real encoding (--encoding; "
                    "read_conll(encoding=...))."
                ) from None
            # A stray byte-order mark is no content (WNUT-17's dev.conll has one alone on a separator line).
            stripped = line.replace("\ufeff", "").strip()
            if not stripped:
                close_sentence()
                continue
            if stripped.startswith("-DOCSTART-"):
                counts["docstart_lines"] += 1
                close_sentence()
                continue
            columns = stripped.split("\t") if "\t" in stripped else stripped.split()
            columns = [c for c in columns if c != ""]
            if len(columns) < 2:
                raise ConllError(
                    f"{path}, line {lineno}: expected a token and a tag separated by a tab or spaces, found "
                    f"{stripped!r}. Fix the row, or separate sentences with an empty line."
                )
            token, tag = columns[0], columns[-1]
            if not _TAG.match(tag):
                raise ConllError(
                    f"{path}, line {lineno}: tag {tag!r} is not in the IOB2 scheme (expected O, B-TYPE or I-TYPE). "
                    "Convert the file to IOB2 tags."
                )
            if tag.startswith("I-"):
                previous = sentence_tags[-1] if sentence_tags else "O"
                if previous == "O" or previous[2:] != tag[2:] or previous[0] in "ES":
                    if not repair_iob:
                        raise ConllError(
                            f"{path}, line {lineno}: tag {tag!r} continues no {tag[2:]} entity (previous tag "
                            f"{previous!r}): this is IOB1, not IOB2. Pass repair_iob=True (--repair_iob) to turn "
                            "such tags into B- tags."
                        )
                    tag = "B-" + tag[2:]
                    counts["iob1_repaired"] += 1
            sentence_tokens.append(token)
            sentence_tags.append(tag)
    close_sentence()
    if not tokens:
        raise ConllError(f"{path}: no sentences found. Expected token/tag rows separated by empty lines.")
    return ConllData(tokens=tokens, tags=tags, path=path, counts=counts)
