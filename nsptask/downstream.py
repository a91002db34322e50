"""Downstream tasks: datasets for judging a pretrained encoder.

- Sentence-pair tasks built from the corpus: NSP and SOP as classification tasks, and *coherence* (the
  negative B comes from the same document but is not the continuation), from documents held out of
  pretraining, split again by document into fine-tuning train and test sets.
- Segment tagging, the token-level form of next-sentence prediction: a window made of the end of one
  segment and the start of the next (the true continuation, or a segment of another document), with no
  separator between them and uniform token type ids. Every token is tagged ``L`` (left segment), ``R``
  (right segment) or ``O`` (special tokens), in IOB2 (``B-L I-L ... B-R I-R ...``): the model has to find
  where the next segment starts.
- User tasks from CSV / JSONL / Parquet files or a ``datasets.Dataset``: one or two text columns and a label.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from .instances import DocumentGroup, document_seed
from .preprocessing import is_validation_document

__all__ = [
    "SEGMENT_LABELS",
    "build_sentence_task",
    "build_segment_tagging",
    "load_classification_data",
    "tokenize_pairs",
]

SEGMENT_LABELS = ["O", "B-L", "I-L", "B-R", "I-R"]
SENTENCE_TASKS = {"nsp": "nsp", "sop": "sop", "coherence": "coherence"}


def _task_splits(dataset, test_fraction: float, seed: int, split_by: str = "document", doc_column: str = "doc_index"):
    """Split a dataset of one corpus split into train/test by document (a hash of the document index), or by
    instance (test pairs then come from documents the fine-tuning also saw)."""
    import datasets

    if split_by not in ("document", "instance"):
        raise ValueError(f"split_by must be 'document' or 'instance', got {split_by!r}")
    docs = dataset[doc_column]
    keys = [f"{d}" for d in docs] if split_by == "document" else [f"row{i}" for i in range(len(docs))]
    flags = [is_validation_document(k, test_fraction, seed + 1) for k in keys]
    train_rows = [i for i, f in enumerate(flags) if not f]
    test_rows = [i for i, f in enumerate(flags) if f]
    if not train_rows or not test_rows:
        raise ValueError(
            f"The held-out documents ({len(set(docs))}) cannot be split into task train and test sets with "
            f"test_fraction={test_fraction}. Hold out more documents (a larger validation_fraction) or use a larger corpus."
        )
    return datasets.DatasetDict({"train": dataset.select(train_rows), "test": dataset.select(test_rows)})


def build_sentence_task(
    task: str = "nsp",
    source: Any = None,
    tokenizer: Any = None,
    *,
    max_seq_length: int = 128,
    corpus_split: str = "validation",
    validation_fraction: float = 0.2,
    test_fraction: float = 0.3,
    dupe_factor: int = 1,
    seed: int = 12345,
    split_by: str = "document",
    reader_kwargs: dict | None = None,
):
    """NSP, SOP or coherence as a sentence-pair classification task with a ``labels`` column.

    Args:
        task (`str`, *optional*, defaults to `"nsp"`): ``nsp``, ``sop`` or ``coherence``.
        source, tokenizer: The corpus and tokenizer (defaults: bundled corpus, nsptask's tokenizer).
        max_seq_length (`int`, *optional*, defaults to 128): Pair length.
        corpus_split (`str`, *optional*, defaults to `"validation"`): Which document split of the corpus the
            task is made from; ``validation`` = documents held out of pretraining.
        validation_fraction (`float`, *optional*, defaults to 0.2): Share of the corpus's documents held out.
        test_fraction (`float`, *optional*, defaults to 0.3): Share of those documents in the task's test set.
        split_by (`str`, *optional*, defaults to `"document"`): Split the task's train and test sets by document
            (no document in both) or by ``instance`` (test pairs from documents also seen in fine-tuning).

    Returns:
        `datasets.DatasetDict` with ``train`` and ``test``; ``labels`` is a ``ClassLabel`` whose names go
        into the fine-tuned model's ``id2label``.
    """
    from .builder import build_pretraining_dataset

    if task not in SENTENCE_TASKS:
        raise ValueError(f"Unknown sentence task {task!r}: expected one of {sorted(SENTENCE_TASKS)}")
    data = build_pretraining_dataset(
        source,
        format=SENTENCE_TASKS[task],
        tokenizer=tokenizer,
        max_seq_length=max_seq_length,
        validation_fraction=validation_fraction,
        dupe_factor=dupe_factor,
        seed=seed,
        reader_kwargs=reader_kwargs or {},
    )[corpus_split]
    label_column = "sentence_order_label" if task == "sop" else "next_sentence_label"
    data = data.rename_column(label_column, "labels")
    if task == "coherence":
        data = data.cast_column("labels", _class_label(["Coherent", "NotAdjacent"]))
    keep = ["input_ids", "token_type_ids", "labels", "doc_index"]
    data = data.remove_columns([c for c in data.column_names if c not in keep])
    return _task_splits(data, test_fraction, seed, split_by)


def _class_label(names):
    import datasets

    return datasets.ClassLabel(names=names)


def _segment_windows(group: DocumentGroup, d: int, cfg: dict, rng: random.Random, out: dict) -> None:
    """Windows of one document: the end of a segment, then a true or a random continuation."""
    lengths, starts = group.sentence_lengths[d], group.sentence_starts[d]
    budget = cfg["max_seq_length"] - 2
    min_side = cfg["min_side"]
    doc_end = starts[-1] + lengths[-1]
    boundaries = [starts[k] for k in range(1, len(lengths))]
    position = starts[0] + min_side
    for boundary in boundaries:
        if boundary < position or boundary - starts[0] < min_side:
            continue
        left_len = rng.randint(min_side, budget - min_side)
        left_start = max(starts[0], boundary - left_len)
        left_len = boundary - left_start
        right_len = budget - left_len
        is_random = rng.random() < cfg["random_probability"] or doc_end - boundary < min_side
        if is_random:
            j = d
            while j == d or not group.sentence_lengths[j]:
                j = rng.randrange(len(group))
            k = rng.randrange(len(group.sentence_lengths[j]))
            right_start = group.sentence_starts[j][k]
            right_end = min(right_start + right_len, group.sentence_starts[j][-1] + group.sentence_lengths[j][-1])
        else:
            right_start, right_end = boundary, min(boundary + right_len, doc_end)
        if right_end - right_start < 1:
            continue
        out["left"].append((left_start, boundary))
        out["right"].append((right_start, right_end))
        out["random"].append(int(is_random))
        out["doc"].append(group.doc_indices[d])
        # The next window starts after this one's true continuation would end.
        position = boundary + right_len


def build_segment_tagging(
    source: Any = None,
    tokenizer: Any = None,
    *,
    max_seq_length: int = 128,
    random_probability: float = 0.5,
    min_side: int = 8,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.3,
    corpus_split: str = "validation",
    seed: int = 12345,
    reader_kwargs: dict | None = None,
):
    """The segment-tagging task from a corpus (same document-level split as the pretraining data).

    Args:
        max_seq_length (`int`, *optional*, defaults to 128): Window length with ``[CLS]`` and ``[SEP]``.
        random_probability (`float`, *optional*, defaults to 0.5): Share of random continuations.
        min_side (`int`, *optional*, defaults to 8): Fewest tokens on either side of the boundary.
        validation_fraction, test_fraction, corpus_split, seed: As in :func:`build_sentence_task`.

    Returns:
        `datasets.DatasetDict` (``train``, ``test``) with ``input_ids``, ``token_type_ids`` (all 0),
        ``labels`` (``SEGMENT_LABELS`` ids; ``O`` on the special tokens), ``boundary`` (index of the first ``R``
        token), ``continuation`` (``ClassLabel``: ``true`` / ``random``) and ``doc_index``.
    """
    import datasets

    from .builder import PretrainingDataBuilder, _group_from_table, _pool_bounds, _select_split

    builder = PretrainingDataBuilder(
        config_name="nsp",
        source=source,
        tokenizer=tokenizer,
        validation_fraction=validation_fraction,
        max_seq_length=max_seq_length,
        seed=seed,
        reader_kwargs=reader_kwargs or {},
    )
    tok = builder.tokenizer
    docs = _select_split(builder.tokenized_documents(), corpus_split == "validation")
    if len(docs) < 2:
        raise ValueError("Segment tagging needs at least two documents in the split (random continuations).")
    cfg = {"max_seq_length": max_seq_length, "min_side": min_side, "random_probability": random_probability}
    columns: dict[str, list] = {"input_ids": [], "labels": [], "boundary": [], "continuation": [], "doc_index": []}
    table = docs.with_format("arrow")
    for g_start, g_end in _pool_bounds(len(docs), 1000):
        group = _group_from_table(table[g_start:g_end], first_index=g_start)
        out: dict[str, list] = {"left": [], "right": [], "random": [], "doc": []}
        for d in range(len(group)):
            rng = random.Random(document_seed(seed, 0, group.doc_indices[d]))
            _segment_windows(group, d, cfg, rng, out)
        tokens = group.tokens
        for (ls, le), (rs, re_), is_random, doc in zip(out["left"], out["right"], out["random"], out["doc"]):
            left, right = tokens[ls:le].tolist(), tokens[rs:re_].tolist()
            columns["input_ids"].append([tok.cls_token_id, *left, *right, tok.sep_token_id])
            columns["labels"].append([0, 1] + [2] * (len(left) - 1) + [3] + [4] * (len(right) - 1) + [0])
            columns["boundary"].append(1 + len(left))
            columns["continuation"].append(is_random)
            columns["doc_index"].append(doc)
    columns["token_type_ids"] = [[0] * len(x) for x in columns["input_ids"]]
    features = datasets.Features(
        {
            "input_ids": datasets.List(datasets.Value("int32")),
            "labels": datasets.List(datasets.Value("int64")),
            "boundary": datasets.Value("int32"),
            "continuation": datasets.ClassLabel(names=["true", "random"]),
            "doc_index": datasets.Value("int32"),
            "token_type_ids": datasets.List(datasets.Value("int8")),
        }
    )
    return _task_splits(datasets.Dataset.from_dict(columns, features=features), test_fraction, seed)


def tokenize_pairs(
    batch: dict[str, list],
    *,
    tokenizer: Any,
    text_column: str,
    text_pair_column: str | None,
    max_length: int,
) -> dict[str, list]:
    """Tokenize one or two text columns, truncating pairs longest-first; truncations are counted per row
    (``truncated``). A batched map function."""
    texts = batch[text_column]
    pairs = batch[text_pair_column] if text_pair_column else None
    full = tokenizer(texts, pairs, truncation=False)["input_ids"]
    encoded = tokenizer(texts, pairs, truncation=True, max_length=max_length)
    encoded["truncated"] = [int(len(a) > max_length) for a in full]
    return dict(encoded)


def load_classification_data(
    data_files: dict[str, str] | None = None,
    dataset: Any = None,
    *,
    text_column: str = "sentence1",
    text_pair_column: str | None = "sentence2",
    label_column: str = "label",
    label_names: list[str] | None = None,
):
    """User sentence(-pair) classification data from CSV / JSONL / Parquet files or a ``DatasetDict``.

    Labels become a ``labels`` ``ClassLabel`` column; the label set comes from the training split (or
    `label_names`, e.g. a model's ``id2label``). A label in another split that the training split lacks is an
    error that names it.

    Args:
        data_files (`dict[str, str]`, *optional*): ``{"train": path, "validation": path, ...}``.
        dataset (`datasets.DatasetDict`, *optional*): Instead of files.
        text_column, text_pair_column, label_column (`str`): Column names (``text_pair_column=None`` for
            single-sentence tasks such as SST-2).
        label_names (`list[str]`, *optional*): Fixed label set.

    Returns:
        `datasets.DatasetDict` with the text columns and ``labels``.
    """
    import datasets

    if dataset is None:
        if not data_files:
            raise ValueError("Give data_files={'train': ..., 'validation': ...} or a dataset.")
        extension = next(iter(data_files.values())).rsplit(".", 1)[-1].lower()
        builder = {"jsonl": "json", "json": "json", "csv": "csv", "tsv": "csv", "parquet": "parquet"}.get(extension)
        if builder is None:
            raise ValueError(f"Unsupported file type .{extension}: expected .csv, .tsv, .jsonl, .json or .parquet")
        kwargs = {"delimiter": "\t"} if extension == "tsv" else {}
        dataset = datasets.load_dataset(builder, data_files=data_files, **kwargs)
    for split, part in dataset.items():
        if len(part) == 0:
            raise ValueError(f"The {split} split is empty: it needs at least one example.")
        for column in [text_column, label_column] + ([text_pair_column] if text_pair_column else []):
            if column not in part.column_names:
                raise ValueError(
                    f"The {split} split has no column {column!r}; found {part.column_names}. Pass the column names "
                    "(--text_column, --text_pair_column, --label_column)."
                )
    first = "train" if "train" in dataset else next(iter(dataset))
    feature = dataset[first].features[label_column]
    if label_names is None:
        if isinstance(feature, datasets.ClassLabel):
            label_names = list(feature.names)
        else:
            label_names = sorted({str(v) for v in dataset[first][label_column]})
    index = {name: i for i, name in enumerate(label_names)}

    def to_ids(batch, split):
        values = batch[label_column]
        if isinstance(dataset[split].features[label_column], datasets.ClassLabel):
            values = [dataset[split].features[label_column].int2str(v) for v in values]
        out = []
        for v in values:
            if str(v) not in index:
                raise ValueError(
                    f"The {split} split has label {v!r}, which the training labels {label_names} do not include. "
                    "Fix the data, or train with a label set that includes it."
                )
            out.append(index[str(v)])
        return {"labels": out}

    result = datasets.DatasetDict()
    for split, part in dataset.items():
        converted = part.map(to_ids, batched=True, fn_kwargs={"split": split}, desc=f"Labels ({split})")
        result[split] = converted.cast_column("labels", datasets.ClassLabel(names=label_names))
    return result


def boundary_accuracy(predictions: np.ndarray, dataset) -> dict[str, float]:
    """Exact-boundary accuracy of segment tagging: the window counts when the first token predicted ``R``
    (``B-R`` or ``I-R``) is the true first ``R`` token; reported for true and random continuations."""
    predictions = np.asarray(predictions)
    correct = {0: [], 1: []}
    for prediction, boundary, kind, labels in zip(
        predictions, dataset["boundary"], dataset["continuation"], dataset["labels"]
    ):
        n = len(labels) - 1  # up to the final [SEP]
        right = np.flatnonzero(np.isin(prediction[1:n], (3, 4)))
        predicted = int(right[0]) + 1 if len(right) else -1
        correct[kind].append(predicted == boundary)
    out = {}
    for kind, name in ((0, "true"), (1, "random")):
        out[f"boundary_accuracy_{name}"] = float(np.mean(correct[kind])) if correct[kind] else float("nan")
    out["boundary_accuracy"] = float(np.mean(correct[0] + correct[1]))
    return out
