"""Downstream tasks: datasets for judging a pretrained encoder.

All corpus tasks are built from documents held out of pretraining (the validation side of the document
split that pretraining used: ``validation_fraction`` and ``split_seed``), and those documents are split
again, by a hash of their ids, into the task's ``train`` / (``validation``) / ``test`` sets *before* any
instance is made. Instances of a task split draw every segment, A and B, from documents of that split only:
no document appears in two task splits, on either side of a pair (``a_doc`` / ``b_doc`` record the ids).

- Sentence-pair tasks: NSP and SOP as classification tasks, and *coherence* (the negative B comes from the
  same document but is not the continuation).
- Segment tagging, the token-level form of next-sentence prediction: a window of consecutive sentences of
  one document that, with probability 0.5, switches at a sentence start to text from another document.
  Tokens before the switch (all of them when there is none) are ``L``, tokens after it ``R``, special tokens
  ``O`` (IOB2: ``B-L I-L ... B-R I-R ...``). Every window has the same length whether it switches or not,
  and the switch sits at a sentence start of both documents, so the label is decided by the text alone.
- User tasks from CSV / JSONL / Parquet files or a ``datasets.Dataset``: one or two text columns and a label.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa

from .arguments import DataArguments, TaskOptions
from .builder import (
    PRETRAINING_DOCUMENTS_FILE,
    PretrainingConfig,
    _pool_bounds,
    group_from_table,
    instances_table,
    pretraining_builder,
)
from .conll import label_list, read_conll
from .instances import DocumentGroup, SequenceTemplate, document_seed
from .preprocessing import salted_keys
from .token_classification import tokenize_and_align_labels

__all__ = [
    "SEGMENT_LABELS",
    "build_sentence_task",
    "build_segment_tagging",
    "build_corpus_task",
    "task_documents",
    "load_task_data",
    "load_classification_data",
    "tokenize_pairs",
    "segment_metrics",
    "pretraining_overlap",
    "check_task_leak",
]

logger = logging.getLogger(__name__)

SEGMENT_LABELS = ["O", "B-L", "I-L", "B-R", "I-R"]
SENTENCE_TASKS = {"nsp": "nsp", "sop": "sop", "coherence": "coherence"}


def _fractions(task: TaskOptions | None) -> tuple[float, float]:
    task = task or TaskOptions()
    return task.task_test_fraction or 0.3, task.task_validation_fraction or 0.0


def task_documents(
    data_args: DataArguments | None = None,
    tokenizer: Any = None,
    task: TaskOptions | None = None,
    *,
    corpus_split: str = "validation",
) -> dict:
    """The documents of each task split, tokenized, in a seeded shuffled order.

    Args:
        data_args (`DataArguments`, *optional*): The corpus, how it is read, the pretraining split (tasks are made
            from its `corpus_split` side) and the seed (``instances.instance_seed``) of the task split.
        tokenizer (*optional*): The tokenizer (default: nsptask's).
        task (`TaskOptions`, *optional*): The shares of those documents in the task's test and validation sets
            (``task_test_fraction``, default 0.3; ``task_validation_fraction``, default 0); the rest trains.
        corpus_split (`str`, *optional*, defaults to `"validation"`): ``validation`` = documents held out of
            pretraining.

    Returns:
        `dict[str, datasets.Dataset]`: tokenized documents (``doc_id``, ``input_ids``, ``sentence_lengths``,
        ``text_hash``, ...) per task split.
    """
    data_args = (data_args or DataArguments()).resolve()
    test_fraction, validation_fraction = _fractions(task)
    builder = pretraining_builder(data_args, tokenizer, "nsp")
    tokenized = builder.tokenized_documents(data_args.num_proc)
    rows = builder.split_order(corpus_split)
    keys = np.asarray(tokenized.with_format("arrow")[:]["doc_key"].to_numpy())[rows]
    u = salted_keys(keys, data_args.instances.instance_seed, "task").astype(np.float64) / 2.0**64
    assignment = {
        "test": u < test_fraction,
        "validation": (u >= test_fraction) & (u < test_fraction + validation_fraction),
        "train": u >= test_fraction + validation_fraction,
    }
    out = {}
    for name in ("train", "validation", "test"):
        if name == "validation" and validation_fraction == 0:
            continue
        chosen = rows[assignment[name]]
        if len(chosen) < 2:
            raise ValueError(
                f"The task's {name} set gets {len(chosen)} of the {len(rows)} documents held out of pretraining "
                f"(validation_fraction={data_args.split.validation_fraction}, test_fraction={test_fraction}): a task "
                "split needs at least two documents (NotNext and switched segments come from another document of the "
                "same split). Hold out more documents (a larger validation_fraction) or use a larger corpus."
            )
        out[name] = tokenized.select(chosen)
    return out


def _groups(documents, pool_size: int = 1000):
    """Pools of a task split's documents (already in shuffled order)."""
    table = documents.with_format("arrow")
    for start, end in _pool_bounds(len(documents), pool_size):
        yield group_from_table(table[start:end], first_index=start)


def build_sentence_task(
    name: str = "nsp",
    data_args: DataArguments | None = None,
    tokenizer: Any = None,
    task: TaskOptions | None = None,
    dupe_factor: int = 1,
    documents: dict | None = None,
) -> datasets.DatasetDict:
    """NSP, SOP or coherence as a sentence-pair classification task with a ``labels`` column.

    Args:
        name (`str`, *optional*, defaults to `"nsp"`): ``nsp``, ``sop`` or ``coherence``.
        data_args (`DataArguments`, *optional*): The corpus, its pretraining split, the pair length
            (``instances.max_seq_length``) and the seed of the task split and pairs (``instances.instance_seed``).
        tokenizer: The tokenizer of the model the task is for.
        task (`TaskOptions`, *optional*): The task's test and validation shares (:func:`task_documents`).
        dupe_factor (`int`, *optional*, defaults to 1): Times each document is turned into pairs.
        documents (`dict`, *optional*): The task splits' documents, when already made (:func:`task_documents`).

    Returns:
        `datasets.DatasetDict` with ``train``, ``test`` (and ``validation``): ``input_ids``, ``token_type_ids``,
        ``labels`` (a ``ClassLabel`` whose names go into the fine-tuned model's ``id2label``), ``a_doc`` and
        ``b_doc`` (the documents of segments A and B).
    """
    if name not in SENTENCE_TASKS:
        raise ValueError(f"Unknown sentence task {name!r}: expected one of {sorted(SENTENCE_TASKS)}")
    data_args = (data_args or DataArguments()).resolve()
    splits = documents or task_documents(data_args, tokenizer, task)
    instances = replace(data_args.instances, dupe_factor=dupe_factor).resolved(data_format=SENTENCE_TASKS[name])
    config = PretrainingConfig(name=SENTENCE_TASKS[name], instances=instances)
    label_column = instances.label_column
    names = ["Coherent", "NotAdjacent"] if name == "coherence" else None
    out = datasets.DatasetDict()
    for split, documents in splits.items():
        tables, a_docs, b_docs = [], [], []
        for group in _groups(documents):
            table = instances_table(group, range(len(group)), config, tokenizer)
            first = group.doc_indices[0]
            a_docs += [group.doc_ids[i - first] for i in table["doc_index"].to_pylist()]
            b_docs += [group.doc_ids[i - first] for i in table["b_doc_index"].to_pylist()]
            tables.append(table)
        data = datasets.Dataset(pa.concat_tables(tables)).rename_column(label_column, "labels")
        data = data.remove_columns([c for c in data.column_names if c not in ("input_ids", "token_type_ids", "labels")])
        data = data.add_column("a_doc", a_docs).add_column("b_doc", b_docs)
        if names:
            data = data.cast_column("labels", datasets.ClassLabel(names=names))
        out[split] = data
    return out


def _segment_windows(group: DocumentGroup, d: int, cfg: dict, rng: random.Random, other: random.Random, out: dict):
    """Windows of one document: `budget` tokens from a sentence start; half of them switch, at a later sentence
    start, to another document's text from one of its sentence starts."""
    lengths, starts = group.sentence_lengths[d], group.sentence_starts[d]
    budget, min_side = cfg["max_seq_length"] - 2, cfg["min_side"]
    doc_end = starts[-1] + lengths[-1]
    k = 0
    while k < len(lengths):
        window_start = starts[k]
        if doc_end - window_start < budget:
            break  # not enough text left for a full window: every window has the same length
        # Sentence starts inside the window that leave at least min_side tokens on both sides.
        switches = [m for m in range(k + 1, len(lengths)) if min_side <= starts[m] - window_start <= budget - min_side]
        switch = bool(switches) and rng.random() < cfg["switch_probability"]
        if switch:
            m = rng.choice(switches)
            left = (window_start, starts[m])
            j = d
            while j == d or not group.sentence_lengths[j]:
                j = other.randrange(len(group))
            need = budget - (left[1] - left[0])
            candidates = [
                s
                for s, start in enumerate(group.sentence_starts[j])
                if group.sentence_starts[j][-1] + group.sentence_lengths[j][-1] - start >= need
            ]
            if not candidates:
                switch = False
            else:
                start = group.sentence_starts[j][other.choice(candidates)]
                right = (start, start + need)
        if not switch:
            left, right, j = (window_start, window_start + budget), (0, 0), d
        out["left"].append(left)
        out["right"].append(right)
        out["doc"].append(group.doc_ids[d])
        out["other"].append(group.doc_ids[j])
        # The next window starts at the first sentence after this window's own text.
        end = window_start + budget
        while k < len(lengths) and starts[k] < end:
            k += 1


def build_segment_tagging(
    data_args: DataArguments | None = None,
    tokenizer: Any = None,
    task: TaskOptions | None = None,
    *,
    switch_probability: float = 0.5,
    min_side: int = 8,
    documents: dict | None = None,
) -> datasets.DatasetDict:
    """The segment-tagging task from a corpus (documents held out of pretraining, split by document).

    Args:
        data_args (`DataArguments`, *optional*): The corpus, its pretraining split, the window length
            (``instances.max_seq_length``, with ``[CLS]`` and ``[SEP]``) and the seed of the task split and of the
            windows (``instances.instance_seed``).
        tokenizer: The tokenizer of the model the task is for.
        task (`TaskOptions`, *optional*): The task's test and validation shares (:func:`task_documents`).
        switch_probability (`float`, *optional*, defaults to 0.5): Share of windows that switch to another
            document.
        min_side (`int`, *optional*, defaults to 8): Fewest tokens on either side of a switch.
        documents (`dict`, *optional*): The task splits' documents, when already made (:func:`task_documents`).

    Returns:
        `datasets.DatasetDict` (``train``, ``test``, maybe ``validation``) with ``input_ids``, ``token_type_ids``
        (all 0), ``labels`` (``SEGMENT_LABELS`` ids; ``O`` on the special tokens), ``switch`` (index of the
        first ``R`` token, -1 when the window does not switch), ``a_doc`` and ``b_doc`` (the documents of the
        ``L`` and ``R`` text; equal when there is no switch).
    """
    data_args = (data_args or DataArguments()).resolve()
    splits = documents or task_documents(data_args, tokenizer, task)
    template = SequenceTemplate.of(tokenizer)
    max_seq_length, seed = data_args.instances.max_seq_length, data_args.instances.instance_seed
    cfg = {
        "max_seq_length": max_seq_length - template.single_specials + 2,
        "min_side": min_side,
        "switch_probability": switch_probability,
    }
    features = datasets.Features(
        {
            "input_ids": datasets.List(datasets.Value("int32")),
            "labels": datasets.List(datasets.Value("int64")),
            "switch": datasets.Value("int32"),
            "a_doc": datasets.Value("string"),
            "b_doc": datasets.Value("string"),
            "token_type_ids": datasets.List(datasets.Value("int8")),
        }
    )
    out = datasets.DatasetDict()
    for split, documents in splits.items():
        columns: dict[str, list] = {k: [] for k in features}
        for group in _groups(documents):
            windows: dict[str, list] = {"left": [], "right": [], "doc": [], "other": []}
            for d in range(len(group)):
                rng = random.Random(document_seed(seed, 0, group.doc_ids[d], "segments"))
                other = random.Random(document_seed(seed, 0, group.doc_ids[d], "segments-other"))
                _segment_windows(group, d, cfg, rng, other, windows)
            tokens = group.tokens
            for (ls, le), (rs, re_), a, b in zip(windows["left"], windows["right"], windows["doc"], windows["other"]):
                left, right = tokens[ls:le].tolist(), tokens[rs:re_].tolist()
                prefix, suffix = list(template.single_prefix), list(template.single_suffix)
                columns["input_ids"].append([*prefix, *left, *right, *suffix])
                labels = [0] * len(prefix) + [1] + [2] * (len(left) - 1)
                if right:
                    labels += [3] + [4] * (len(right) - 1)
                columns["labels"].append(labels + [0] * len(suffix))
                columns["switch"].append(len(prefix) + len(left) if right else -1)
                columns["a_doc"].append(a)
                columns["b_doc"].append(b)
        columns["token_type_ids"] = [[0] * len(x) for x in columns["input_ids"]]
        out[split] = datasets.Dataset.from_dict(columns, features=features)
    return out


def pretraining_overlap(model_dir: str | None, documents) -> tuple[int, int, bool]:
    """How many of `documents` (tokenized documents with ``text_hash``) a model was pretrained on, from the
    record ``pretraining_documents.npy`` that nsptask writes beside a pretrained (and a fine-tuned) model.

    Returns:
        `(overlapping, total, recorded)`; `recorded` is False when the model has no record.
    """
    total = sum(len(d) for d in documents)
    if model_dir is None or not os.path.isfile(os.path.join(model_dir, PRETRAINING_DOCUMENTS_FILE)):
        return 0, total, False
    seen = np.load(os.path.join(model_dir, PRETRAINING_DOCUMENTS_FILE))
    overlap = sum(int(np.isin(np.asarray(d["text_hash"], dtype=np.uint64), seen).sum()) for d in documents)
    return overlap, total, True


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
                    "(--text_a_column, --text_b_column, --label_column)."
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


def segment_metrics(predictions: np.ndarray, dataset) -> dict[str, float]:
    """Window-level scores of segment tagging: window accuracy (does the window switch documents or not:
    predicted when any token is tagged ``R``) and the exact switch position (the first token predicted ``R``
    is the true first ``R`` token), over switched windows; with the majority-class window accuracy."""
    predictions = np.asarray(predictions)
    window, position = [], []
    for prediction, switch, labels in zip(predictions, dataset["switch"], dataset["labels"]):
        content = np.flatnonzero(np.asarray(labels) != 0)  # the text's positions (not the special tokens)
        right = content[np.isin(np.asarray(prediction)[content], (3, 4))]
        predicted = int(right[0]) if len(right) else -1
        window.append((predicted >= 0) == (switch >= 0))
        if switch >= 0:
            position.append(predicted == switch)
    switched = float(np.mean([s >= 0 for s in dataset["switch"]])) if len(dataset) else float("nan")
    return {
        "window_accuracy": float(np.mean(window)) if window else float("nan"),
        "window_majority": max(switched, 1 - switched),
        "switch_position_accuracy": float(np.mean(position)) if position else float("nan"),
        "windows": len(window),
        "switched_windows": len(position),
    }


def check_task_leak(model_dir: str | None, documents: dict, allow: bool) -> None:
    """Stop when a corpus task would be built from documents the model was pretrained on (its record
    ``pretraining_documents.npy``), unless allowed."""
    overlap, total, recorded = pretraining_overlap(model_dir, list(documents.values()))
    if not recorded:
        if model_dir is not None and Path(model_dir).is_dir():
            logger.warning(
                "nsptask: %s has no record of its pretraining documents; the leak check is skipped.", model_dir
            )
        return
    if overlap and not allow:
        raise ValueError(
            f"{overlap} of the task's {total} documents were in {model_dir}'s pretraining data "
            f"({PRETRAINING_DOCUMENTS_FILE}): expected a task made from documents held out of pretraining. Use the "
            "split the model was pretrained with (the defaults read it from the model's nsptask_data.json), or pass "
            "--allow_pretraining_documents to go on anyway."
        )


def build_corpus_task(
    task: TaskOptions, data_args: DataArguments, tokenizer, documents: dict | None = None
) -> tuple[datasets.DatasetDict, list[str]]:
    """A corpus task's splits (``train``, ``test`` and, with a task validation share, ``validation``) and its label
    names."""
    if task.task == "segment-tagging":
        return build_segment_tagging(data_args, tokenizer, task, documents=documents), list(SEGMENT_LABELS)
    data = build_sentence_task(task.task, data_args, tokenizer, task, documents=documents)
    return data, data["train"].features["labels"].names


def _evaluation_splits(data: datasets.DatasetDict) -> datasets.DatasetDict:
    """A corpus task as the Trainer sees it: ``validation`` is what is evaluated during training (the task's test
    set, or its validation set when there is one, and then ``test`` is scored once at the end)."""
    if "validation" in data:
        return datasets.DatasetDict({"train": data["train"], "validation": data["validation"], "test": data["test"]})
    return datasets.DatasetDict({"train": data["train"], "validation": data["test"]})


def _ner_data(task: TaskOptions, files: dict, data_args: DataArguments, tokenizer, label_names):
    read = {k: read_conll(v, repair_iob=task.repair_iob, encoding=data_args.reader.encoding) for k, v in files.items()}
    names = label_list(read["train"].tags) if "train" in read else list(label_names or [])
    out = datasets.DatasetDict()
    for split, conll in read.items():
        out[split] = (
            conll.to_dataset(names)
            .map(
                partial(
                    tokenize_and_align_labels,
                    tokenizer=tokenizer,
                    label_names=names,
                    max_length=data_args.instances.max_seq_length,
                    label_all_tokens=task.label_all_tokens and split == "train",
                ),
                batched=True,
                remove_columns=["tokens"],
                desc=f"Aligning labels ({split})",
            )
            .rename_column("ner_tags", "word_tags")  # every word's gold tag: truncated entities count as missed
        )
    return out, names


def _classification_data(task: TaskOptions, files: dict, data_args: DataArguments, tokenizer, label_names, num_proc):
    text_b = None if task.text_b_column in (None, "none") else task.text_b_column
    raw = load_classification_data(
        files,
        text_column=task.text_a_column or "sentence1",
        text_pair_column=text_b if task.text_b_column is not None else "sentence2",
        label_column=task.label_column or "label",
        label_names=label_names,
    )
    names = next(iter(raw.values())).features["labels"].names
    tokenized = datasets.DatasetDict()
    for split, part in raw.items():
        tokenized[split] = part.map(
            partial(
                tokenize_pairs,
                tokenizer=tokenizer,
                text_column=task.text_a_column or "sentence1",
                text_pair_column=text_b if task.text_b_column is not None else "sentence2",
                max_length=data_args.instances.max_seq_length,
            ),
            batched=True,
            remove_columns=[c for c in part.column_names if c != "labels"],
            num_proc=num_proc,
            desc=f"Tokenizing ({split})",
        )
    return tokenized, names


def load_task_data(
    task: TaskOptions,
    data_args: DataArguments,
    tokenizer,
    model_dir: str | None = None,
    label_names: list[str] | None = None,
    num_proc: int | None = None,
) -> tuple[datasets.DatasetDict, list[str]]:
    """A task's data with model inputs and ``labels``, and its label names: the one place task data is made, for
    fine-tuning, evaluation and the study.

    Corpus tasks are built from the documents held out of pretraining and checked against the model's record of
    its pretraining documents (:func:`check_task_leak`); ``train`` and ``validation`` (= the task's test documents),
    or with a task validation share ``train``, ``validation`` and ``test``. File tasks read ``train_file``,
    ``validation_file`` and ``test_file``.

    Args:
        task (`TaskOptions`): The task.
        data_args (`DataArguments`): The corpus, split and length.
        tokenizer: The tokenizer.
        model_dir (`str`, *optional*): The checkpoint (its record of pretraining documents is checked).
        label_names (`list[str]`, *optional*): A fixed label set (a fine-tuned model's), for evaluation.
        num_proc (`int`, *optional*): Processes for tokenizing file tasks.
    """
    if task.from_corpus:
        documents = task_documents(data_args, tokenizer, task)
        check_task_leak(model_dir, documents, task.allow_pretraining_documents)
        raw, names = build_corpus_task(task, data_args, tokenizer, documents)
        return _evaluation_splits(raw), names
    files = {
        k: v
        for k, v in (("train", task.train_file), ("validation", task.validation_file), ("test", task.test_file))
        if v
    }
    if task.task == "ner":
        return _ner_data(task, files, data_args, tokenizer, label_names)
    return _classification_data(task, files, data_args, tokenizer, label_names, num_proc)
