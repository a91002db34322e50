"""Reading a user's classification files as GLUE distributes them, and nothing silently.

Tab-separated files (``.tsv``, and MRPC's original ``msr_paraphrase_*.txt``) are read as GLUE's own loaders read
them: fields split on tabs, quote characters kept as text (``csv.QUOTE_NONE``), a byte-order mark ignored, the first
line a header. ``.csv`` files are read with standard CSV quoting, ``.jsonl``/``.json`` one object per line,
``.parquet`` with its own types. Unless the options name them, the text and label columns come from the header of a
GLUE task:

| header has | text | second text | label | task |
|---|---|---|---|---|
| ``#1 String``, ``#2 String``, ``Quality`` | ``#1 String`` | ``#2 String`` | ``Quality`` | MRPC (original and GLUE) |
| ``sentence1``, ``sentence2``, ``gold_label`` | ``sentence1`` | ``sentence2`` | ``gold_label`` | MNLI, SNLI |
| ``question``, ``sentence``, ``label`` | ``question`` | ``sentence`` | ``label`` | QNLI |
| ``question1``, ``question2``, ``is_duplicate`` | ``question1`` | ``question2`` | ``is_duplicate`` | QQP |
| ``sentence1``, ``sentence2``, ``label`` | ``sentence1`` | ``sentence2`` | ``label`` | RTE, WNLI, generic pairs |
| ``sentence``, ``label`` | ``sentence`` | | ``label`` | SST-2, generic single sentences |

Labels keep the spelling the file gives them (``"1"``, ``"entailment"``; a JSON ``1`` is ``"1"``, a JSON ``1.0`` is
``"1.0"``, and a column that mixes the two is an error). A missing label, an empty text, a row with the wrong number
of fields, a split with no data row, or (JSONL) a line that is not an object is an error that names the file, the
line and the column, or, with ``bad_rows="skip"``, a row left out and counted (the run reports the counts).
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pyarrow.parquet as pq

from .corpus import json_object
from .errors import CorpusError

__all__ = ["GLUE_LAYOUTS", "TaskTable", "read_task_file"]

GLUE_LAYOUTS = (
    (("#1 String", "#2 String", "Quality"), "#1 String", "#2 String", "Quality"),
    (("sentence1", "sentence2", "gold_label"), "sentence1", "sentence2", "gold_label"),
    (("question", "sentence", "label"), "question", "sentence", "label"),
    (("question1", "question2", "is_duplicate"), "question1", "question2", "is_duplicate"),
    (("sentence1", "sentence2", "label"), "sentence1", "sentence2", "label"),
    (("sentence", "label"), "sentence", None, "label"),
)
TAB_SEPARATED = (".tsv", ".txt")
SUFFIXES = (".tsv", ".txt", ".csv", ".jsonl", ".json", ".parquet")


@dataclass
class TaskTable:
    """The rows of a classification file, as text and label strings.

    Args:
        path (`str`): The file.
        text (`list[str]`), text_pair (`list[str] | None`): The texts.
        labels (`list[str]`): The labels, spelled as in the file.
        columns (`tuple`): The text, second-text and label column names used.
        skipped (`Counter`): Rows left out, by reason (``bad_rows="skip"``).
    """

    path: str
    text: list[str]
    text_pair: list[str] | None
    labels: list[str]
    columns: tuple
    skipped: Counter = field(default_factory=Counter)


def _rows(path: Path, encoding: str):
    """(line number, list of fields or dict) of a file, and its header (None for JSON and Parquet)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        table = pq.read_table(path)
        return table.column_names, ((i + 2, row) for i, row in enumerate(table.to_pylist()))
    if suffix in (".jsonl", ".json"):
        return None, _json_rows(path, encoding)
    handle = open(path, encoding="utf-8-sig" if encoding.lower().replace("_", "-") == "utf-8" else encoding, newline="")
    if suffix in TAB_SEPARATED:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(handle)
    try:
        header = next(reader)
    except StopIteration:
        handle.close()
        raise CorpusError(f"{path}: the file is empty. Expected a header line and data rows.") from None
    return [h.strip() for h in header], _delimited_rows(reader, handle)


def _delimited_rows(reader, handle):
    with handle:  # closed when the rows are read to the end (or the generator is dropped)
        for row in reader:
            yield reader.line_num, row


def _json_rows(path: Path, encoding: str):
    with open(path, encoding=encoding) as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, json_object(path, number, line)


def _columns(path: Path, header: list[str], text: str | None, pair: str | None, label: str | None) -> tuple:
    """The text, second-text and label columns: the options', else a GLUE layout's whose columns the header has."""
    if text is None and label is None:
        for needed, a, b, y in GLUE_LAYOUTS:
            if set(needed) <= set(header):
                return a, (None if pair == "none" else (pair or b)), y
    a, b, y = text or "sentence1", None if pair == "none" else (pair or "sentence2"), label or "label"
    missing = [c for c in (a, b, y) if c is not None and c not in header]
    if missing:
        raise CorpusError(
            f"{path}: no column {missing[0]!r}; found {header}. Expected a GLUE header (e.g. sentence1, sentence2, "
            "label; MRPC's '#1 String', '#2 String', 'Quality'), or name the columns: --text_a_column, "
            "--text_b_column ('none' for single sentences), --label_column."
        )
    return a, b, y


def _label_text(value, path: Path, where: str, column: str, kinds: set) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise CorpusError(f"{path}, {where}, column {column!r}: label {value!r} is not a string or a number.")
    kinds.add(type(value).__name__)
    if len(kinds) > 1:
        raise CorpusError(
            f"{path}, {where}, column {column!r}: the labels mix {' and '.join(sorted(kinds))} values (e.g. 1 "
            'and "1"), which would make two classes of one label. Write every label the same way.'
        )
    return value.strip() if isinstance(value, str) else str(value)


def read_task_file(
    path: str,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    encoding: str = "utf-8",
    bad_rows: str = "error",
) -> TaskTable:
    """Read a classification file (see the module docstring for the formats and the checks).

    Args:
        path (`str`): A ``.tsv``, MRPC ``.txt``, ``.csv``, ``.jsonl``/``.json`` or ``.parquet`` file.
        text_column, text_pair_column, label_column (`str`, *optional*): Column names (default: from a GLUE header);
            ``text_pair_column="none"`` for single sentences.
        encoding (`str`, *optional*, defaults to `"utf-8"`): Text encoding.
        bad_rows (`str`, *optional*, defaults to `"error"`): ``"error"`` or ``"skip"`` (counted in ``skipped``).

    Example:
        ```python
        >>> from nsptask.task_files import read_task_file
        >>> table = read_task_file("msr_paraphrase_train.txt")  # doctest: +SKIP
        >>> table.columns, sorted(set(table.labels))  # doctest: +SKIP
        (('#1 String', '#2 String', 'Quality'), ['0', '1'])
        ```
    """
    file = Path(path)
    if file.suffix.lower() not in SUFFIXES:
        raise CorpusError(
            f"{path}: unsupported file type {file.suffix!r}: expected a GLUE-style .tsv (or MRPC's .txt), .csv, "
            ".jsonl or .parquet file."
        )
    header, rows = _rows(file, encoding)
    first = None
    if header is None:  # JSON lines: the first object's keys are the header
        rows = iter(rows)
        first = next(rows, None)
        if first is None:
            raise CorpusError(f"{path}: no data rows. Expected one JSON object per line.")
        header = list(first[1])
    columns = _columns(file, header, text_column, text_pair_column, label_column)
    out = TaskTable(str(file), [], [] if columns[1] else None, [], columns)
    kinds: set = set()
    unit = "row" if file.suffix.lower() == ".parquet" else "line"
    for number, row in ([first] if first else []) + list(rows):
        where = f"{unit} {number}"
        label_text = partial(_label_text, path=file, where=where, column=columns[2], kinds=kinds)
        problem = _add_row(out, header, row, columns, label_text)
        if problem is not None:
            reason, detail = problem
            if bad_rows != "skip":
                raise CorpusError(
                    f"{file}, {where}: {reason} ({detail}). Fix the row, or pass --bad_rows skip to leave such rows "
                    "out (counted)."
                )
            out.skipped[reason] += 1
    if not out.labels:
        raise CorpusError(
            f"{path}: no data rows"
            + (f" ({sum(out.skipped.values())} left out: {dict(out.skipped)})" if out.skipped else "")
            + ". Expected a header line and at least one labelled row."
        )
    return out


def _add_row(out: TaskTable, header, row, columns, label_text) -> tuple[str, str] | None:
    """Append a row's texts and label to `out`; or say why it cannot be used: (reason, detail)."""
    if isinstance(row, list):
        if len(row) != len(header):
            return "ragged row", f"{len(row)} fields, the header has {len(header)}"
        row = dict(zip(header, row))
    text_a, text_b, label = columns
    values = {}
    for column in (text_a, text_b):
        if column is None:
            continue
        value = row.get(column)
        if not isinstance(value, str) or not value.strip():
            return "empty text", f"column {column!r}"
        values[column] = value.strip()
    label_value = label_text(row.get(label))
    if label_value is None:
        return "missing label", f"column {label!r}"
    out.text.append(values[text_a])
    if text_b is not None:
        out.text_pair.append(values[text_b])
    out.labels.append(label_value)
    return None
