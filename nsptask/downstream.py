"""Downstream tasks: datasets for judging a pretrained encoder.

All corpus tasks are built from documents held out of pretraining (the validation side of the document
split that pretraining used: ``validation_fraction`` and ``split_seed``), and those documents are split
again, by a hash of their ids, into the task's ``train`` / (``validation``) / ``test`` sets *before* any
instance is made. Instances of a task split draw every segment, A and B, from documents of that split only:
no document appears in two task splits, on either side of a pair (``a_doc`` / ``b_doc`` record the ids).

- Corpus probes that are not the pretraining objectives (:mod:`nsptask.probes`): DiscoEval's sentence position
  and discourse coherence (another document's sentence, or a same-document variant with a weaker topic cue), DisSent's
  connectives, and segment tagging: windows of whole sentences of one document that, in half the windows with two
  or more sentences, switch after a random sentence to whole sentences of another; every sentence is one seqeval
  entity (``L`` or ``R``, its words tagged ``B-``/``I-`` on their first sub-tokens), so an error costs one sentence.
- The objectives again as optional tasks: NSP and SOP as classification tasks, and *coherence* (the negative B
  comes from the same document but is not the continuation); the study's report marks them as repeating an
  objective.
- User tasks from GLUE-style TSV files (MRPC's ``msr_paraphrase_*.txt`` too), CSV / JSONL / Parquet files or a
  ``datasets.Dataset`` (one or two text columns and a label; :mod:`nsptask.task_files`), and CoNLL NER files.
"""

from __future__ import annotations

import logging
import os
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
from .preprocessing import salted_keys
from .probes import PROBES, SEGMENT_LABELS, build_probe
from .task_files import TaskTable, read_task_file
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
    "pretraining_overlap",
    "check_task_leak",
    "evaluation_splits",
]

logger = logging.getLogger(__name__)

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


def build_segment_tagging(
    data_args: DataArguments | None = None,
    tokenizer: Any = None,
    task: TaskOptions | None = None,
    documents: dict | None = None,
) -> datasets.DatasetDict:
    """The segment-tagging task from a corpus (documents held out of pretraining, split by document): windows of
    whole sentences, a separator between sentences, that switch (half of those with two sentences or more) after a
    random sentence to whole sentences of another document; every word labelled (on its first sub-token) with its
    sentence's side, each sentence one seqeval entity (``B-L I-L ...`` or ``B-R I-R ...``). See
    :mod:`nsptask.probes`.

    Args:
        data_args (`DataArguments`, *optional*): The corpus, its pretraining split, the window length
            (``instances.max_seq_length``) and the seed of the task split and of the windows
            (``instances.instance_seed``).
        tokenizer: The tokenizer of the model the task is for.
        task (`TaskOptions`, *optional*): The task's test and validation shares (:func:`task_documents`).
        documents (`dict`, *optional*): The task splits' documents, when already made (:func:`task_documents`).

    Returns:
        `datasets.DatasetDict` (``train``, ``test``, maybe ``validation``) with ``input_ids``, ``token_type_ids``
        (all 0), ``labels`` (``SEGMENT_LABELS`` ids on word starts, -100 elsewhere), ``word_tags`` (every word's
        tag), ``sentence_words``, ``switch`` (the first ``R`` sentence, -1 when the window does not switch),
        ``a_doc`` and ``b_doc`` (the documents of the ``L`` and ``R`` sentences), ``boundary_overlaps``.
    """
    data_args = (data_args or DataArguments()).resolve()
    splits = documents or task_documents(data_args, tokenizer, task)
    return build_probe(
        "segment-tagging", splits, tokenizer, data_args.instances.max_seq_length, data_args.instances.instance_seed
    )


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
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    label_names: list[str] | None = None,
    encoding: str = "utf-8",
    bad_rows: str = "error",
):
    """User sentence(-pair) classification data from files as GLUE distributes them (TSV with a header, MRPC's
    ``.txt``), CSV, JSONL or Parquet (:func:`nsptask.task_files.read_task_file`), or from a ``DatasetDict``.

    The columns are ``text``, ``text_pair`` (pair tasks) and ``labels``, a ``ClassLabel`` whose names are the label
    strings of the training split, sorted (or `label_names`, e.g. a model's ``id2label``). A label in another split
    that the training split lacks is an error that names it. Rows a file could not use are counted in the
    DatasetDict's ``skipped`` (with ``bad_rows="skip"``; else they are errors naming file, line and column).

    Args:
        data_files (`dict[str, str]`, *optional*): ``{"train": path, "validation": path, "test": path}``.
        dataset (`datasets.DatasetDict`, *optional*): Instead of files (its columns named by the options).
        text_column, text_pair_column, label_column (`str`, *optional*): Column names; default: from a GLUE header
            (``text_pair_column="none"`` for single-sentence tasks such as SST-2).
        label_names (`list[str]`, *optional*): Fixed label set.
        encoding (`str`, *optional*, defaults to `"utf-8"`), bad_rows (`str`, *optional*, defaults to `"error"`): How
            files are read.

    Returns:
        `datasets.DatasetDict` with ``text`` (and ``text_pair``) and ``labels``.
    """
    tables = {}
    if dataset is not None:
        for split, part in dataset.items():
            a, b, y = text_column or "sentence1", text_pair_column, label_column or "label"
            b = None if b == "none" else (b or ("sentence2" if "sentence2" in part.column_names else None))
            for column in (a, b, y):
                if column is not None and column not in part.column_names:
                    raise ValueError(f"The {split} split has no column {column!r}; found {part.column_names}.")
            values = part[y]
            if isinstance(part.features[y], datasets.ClassLabel):
                values = [part.features[y].int2str(v) for v in values]
            tables[split] = TaskTable(
                split, list(part[a]), list(part[b]) if b else None, [str(v) for v in values], (a, b, y)
            )
    elif not data_files:
        raise ValueError("Give data_files={'train': ..., 'validation': ...} or a dataset.")
    else:
        for split, path in data_files.items():
            tables[split] = read_task_file(path, text_column, text_pair_column, label_column, encoding, bad_rows)
    first = "train" if "train" in tables else next(iter(tables))
    label_names = list(label_names) if label_names is not None else sorted(set(tables[first].labels))
    index = {name: i for i, name in enumerate(label_names)}
    result = datasets.DatasetDict()
    for split, table in tables.items():
        unknown = next((v for v in table.labels if v not in index), None)
        if unknown is not None:
            raise ValueError(
                f"The {split} split ({table.path}) has label {unknown!r}, which the training labels {label_names} do "
                "not include. Fix the data, or train with a label set that includes it."
            )
        columns = {"text": table.text, "labels": [index[v] for v in table.labels]}
        if table.text_pair is not None:
            columns["text_pair"] = table.text_pair
        features = datasets.Features(
            {k: datasets.Value("string") for k in columns if k != "labels"}
            | {"labels": datasets.ClassLabel(names=label_names)}
        )
        result[split] = datasets.Dataset.from_dict(columns, features=features)
    result.skipped = {split: dict(t.skipped) for split, t in tables.items() if t.skipped}
    return result


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
    task: TaskOptions, data_args: DataArguments, tokenizer, documents: dict
) -> tuple[datasets.DatasetDict, list[str]]:
    """A corpus task's splits (``train``, ``test`` and, with a task validation share, ``validation``) and its label
    names, from the task splits' documents (:func:`task_documents`)."""
    data_args = data_args.resolve()
    if task.task not in PROBES:  # nsp, sop, coherence: the objectives as tasks
        data = build_sentence_task(task.task, data_args, tokenizer, task, documents=documents)
        return data, data["train"].features["labels"].names
    length, seed = data_args.instances.max_seq_length, data_args.instances.instance_seed
    data = build_probe(task.task, documents, tokenizer, length, seed)
    if task.task == "segment-tagging":
        return data, list(SEGMENT_LABELS)
    return data, data["train"].features["labels"].names


def evaluation_splits(data: datasets.DatasetDict) -> datasets.DatasetDict:
    """A corpus task as the Trainer sees it: ``validation`` is what is evaluated during training (the task's test
    set, or its validation set when there is one, and then ``test`` is scored once at the end)."""
    dropped = getattr(data, "dropped", {})
    if "validation" in data:
        out = datasets.DatasetDict({"train": data["train"], "validation": data["validation"], "test": data["test"]})
    else:
        out = datasets.DatasetDict({"train": data["train"], "validation": data["test"]})
        dropped = {"validation" if k == "test" else k: v for k, v in dropped.items()}
    out.dropped = dropped  # what the task left out, per split (counted in the run's metrics)
    return out


def _ner_data(task: TaskOptions, files: dict, data_args: DataArguments, tokenizer, label_names, num_proc=None):
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
                num_proc=num_proc,
                desc=f"Aligning labels ({split})",
            )
            .rename_column("ner_tags", "word_tags")  # every word's gold tag: truncated entities count as missed
        )
    return out, names


def _classification_data(task: TaskOptions, files: dict, data_args: DataArguments, tokenizer, label_names, num_proc):
    raw = load_classification_data(
        files,
        text_column=task.text_a_column,
        text_pair_column=task.text_b_column,
        label_column=task.label_column,
        label_names=label_names,
        encoding=data_args.reader.encoding,
        bad_rows=task.bad_rows,
    )
    names = next(iter(raw.values())).features["labels"].names
    tokenized = datasets.DatasetDict()
    for split, part in raw.items():
        tokenized[split] = part.map(
            partial(
                tokenize_pairs,
                tokenizer=tokenizer,
                text_column="text",
                text_pair_column="text_pair" if "text_pair" in part.column_names else None,
                max_length=data_args.instances.max_seq_length,
            ),
            batched=True,
            remove_columns=[c for c in part.column_names if c != "labels"],
            num_proc=num_proc,
            desc=f"Tokenizing ({split})",
        )
    tokenized.dropped = {split: sum(counts.values()) for split, counts in raw.skipped.items()}
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
        num_proc (`int`, *optional*): Processes for tokenizing file tasks (``--preprocessing_num_workers``).
    """
    if task.from_corpus:
        documents = task_documents(data_args, tokenizer, task)
        check_task_leak(model_dir, documents, task.allow_pretraining_documents)
        raw, names = build_corpus_task(task, data_args, tokenizer, documents)
        return evaluation_splits(raw), names
    files = {
        k: v
        for k, v in (("train", task.train_file), ("validation", task.validation_file), ("test", task.test_file))
        if v
    }
    if task.task == "ner":
        return _ner_data(task, files, data_args, tokenizer, label_names, num_proc)
    return _classification_data(task, files, data_args, tokenizer, label_names, num_proc)
