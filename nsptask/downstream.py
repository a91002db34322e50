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

import random
from typing import Any

import numpy as np

from .builder import PRETRAINING_DOCUMENTS_FILE
from .instances import DocumentGroup, document_seed

__all__ = [
    "SEGMENT_LABELS",
    "build_sentence_task",
    "build_segment_tagging",
    "task_documents",
    "load_classification_data",
    "tokenize_pairs",
    "segment_metrics",
    "pretraining_overlap",
]

SEGMENT_LABELS = ["O", "B-L", "I-L", "B-R", "I-R"]
SENTENCE_TASKS = {"nsp": "nsp", "sop": "sop", "coherence": "coherence"}


def task_documents(
    source: Any = None,
    tokenizer: Any = None,
    *,
    validation_fraction: float = 0.2,
    split_seed: int = 12345,
    corpus_split: str = "validation",
    test_fraction: float = 0.3,
    task_validation_fraction: float = 0.0,
    seed: int = 12345,
    max_seq_length: int = 128,
    reader_kwargs: dict | None = None,
    tokenizer_backend: str = "hf",
    cache_dir: str | None = None,
    num_proc: int | None = None,
) -> dict:
    """The documents of each task split, tokenized, in a seeded shuffled order.

    Args:
        source, tokenizer: The corpus and tokenizer (defaults: bundled corpus, nsptask's tokenizer).
        validation_fraction (`float`, *optional*, defaults to 0.2), split_seed (`int`, *optional*, defaults to
            12345): The pretraining split; tasks are made from its ``corpus_split`` side.
        corpus_split (`str`, *optional*, defaults to `"validation"`): ``validation`` = documents held out of
            pretraining.
        test_fraction (`float`, *optional*, defaults to 0.3), task_validation_fraction (`float`, *optional*,
            defaults to 0.0): Shares of those documents in the task's test and validation sets; the rest trains.
        seed (`int`, *optional*, defaults to 12345): Seed of the task split and of the instances.

    Returns:
        `dict[str, datasets.Dataset]`: tokenized documents (``doc_id``, ``input_ids``, ``sentence_lengths``,
        ``text_hash``, ...) per task split.
    """
    from .builder import PretrainingDataBuilder
    from .preprocessing import _salted

    if not 0 < test_fraction < 1 or not 0 <= task_validation_fraction < 1 - test_fraction:
        raise ValueError(
            f"test_fraction must lie in (0, 1) and task_validation_fraction in [0, 1 - test_fraction); got "
            f"{test_fraction} and {task_validation_fraction}."
        )
    builder = PretrainingDataBuilder(
        config_name="nsp",
        source=source,
        tokenizer=tokenizer,
        cache_dir=cache_dir,
        validation_fraction=validation_fraction,
        split_seed=split_seed,
        seed=seed,
        max_seq_length=max_seq_length,
        reader_kwargs=reader_kwargs or {},
        tokenizer_backend=tokenizer_backend,
    )
    tokenized = builder.tokenized_documents(num_proc)
    rows = builder.split_order(corpus_split)
    keys = np.asarray(tokenized.with_format("arrow")[:]["doc_key"].to_numpy())[rows]
    u = _salted(keys, seed, "task").astype(np.float64) / 2.0**64
    assignment = {
        "test": u < test_fraction,
        "validation": (u >= test_fraction) & (u < test_fraction + task_validation_fraction),
        "train": u >= test_fraction + task_validation_fraction,
    }
    out = {}
    for name in ("train", "validation", "test"):
        if name == "validation" and task_validation_fraction == 0:
            continue
        chosen = rows[assignment[name]]
        if len(chosen) < 2:
            raise ValueError(
                f"The task's {name} set gets {len(chosen)} of the {len(rows)} documents held out of pretraining "
                f"(validation_fraction={validation_fraction}, test_fraction={test_fraction}): a task split needs at "
                "least two documents (NotNext and switched segments come from another document of the same split). "
                "Hold out more documents (a larger validation_fraction) or use a larger corpus."
            )
        out[name] = tokenized.select(chosen)
    out["_builder"] = builder
    return out


def _groups(documents, pool_size: int = 1000):
    """Pools of a task split's documents (already in shuffled order)."""
    from .builder import _pool_bounds, group_from_table

    table = documents.with_format("arrow")
    for start, end in _pool_bounds(len(documents), pool_size):
        yield group_from_table(table[start:end], first_index=start)


def build_sentence_task(
    task: str = "nsp",
    source: Any = None,
    tokenizer: Any = None,
    *,
    max_seq_length: int = 128,
    dupe_factor: int = 1,
    seed: int = 12345,
    **document_kwargs: Any,
):
    """NSP, SOP or coherence as a sentence-pair classification task with a ``labels`` column.

    Args:
        task (`str`, *optional*, defaults to `"nsp"`): ``nsp``, ``sop`` or ``coherence``.
        source, tokenizer: The corpus and tokenizer (defaults: bundled corpus, nsptask's tokenizer).
        max_seq_length (`int`, *optional*, defaults to 128): Pair length.
        dupe_factor (`int`, *optional*, defaults to 1): Times each document is turned into pairs.
        seed (`int`, *optional*, defaults to 12345): Seed of the task split and of the pairs.
        **document_kwargs: :func:`task_documents` options (``validation_fraction``, ``split_seed``,
            ``test_fraction``, ``task_validation_fraction``, ``reader_kwargs``, ...).

    Returns:
        `datasets.DatasetDict` with ``train``, ``test`` (and ``validation``): ``input_ids``, ``token_type_ids``,
        ``labels`` (a ``ClassLabel`` whose names go into the fine-tuned model's ``id2label``), ``a_doc``,
        ``b_doc`` (the documents of segments A and B) and ``text_hash``-free bookkeeping.
    """
    import datasets

    from .builder import PretrainingConfig, instances_table

    if task not in SENTENCE_TASKS:
        raise ValueError(f"Unknown sentence task {task!r}: expected one of {sorted(SENTENCE_TASKS)}")
    splits = task_documents(source, tokenizer, max_seq_length=max_seq_length, seed=seed, **document_kwargs)
    builder = splits.pop("_builder")
    tok = builder.tokenizer
    config = PretrainingConfig(
        name=SENTENCE_TASKS[task],
        format=SENTENCE_TASKS[task],
        max_seq_length=max_seq_length,
        dupe_factor=dupe_factor,
        seed=seed,
    )
    label_column = config.instance_config.label_column
    names = ["Coherent", "NotAdjacent"] if task == "coherence" else None
    out = datasets.DatasetDict()
    for split, documents in splits.items():
        tables, a_docs, b_docs = [], [], []
        for group in _groups(documents):
            table = instances_table(group, range(len(group)), config, tok)
            first = group.doc_indices[0]
            a_docs += [group.doc_ids[i - first] for i in table["doc_index"].to_pylist()]
            b_docs += [group.doc_ids[i - first] for i in table["b_doc_index"].to_pylist()]
            tables.append(table)
        import pyarrow as pa

        table = pa.concat_tables(tables)
        data = datasets.Dataset(table).rename_column(label_column, "labels")
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
    source: Any = None,
    tokenizer: Any = None,
    *,
    max_seq_length: int = 128,
    switch_probability: float = 0.5,
    min_side: int = 8,
    seed: int = 12345,
    **document_kwargs: Any,
):
    """The segment-tagging task from a corpus (documents held out of pretraining, split by document).

    Args:
        max_seq_length (`int`, *optional*, defaults to 128): Window length with ``[CLS]`` and ``[SEP]``.
        switch_probability (`float`, *optional*, defaults to 0.5): Share of windows that switch to another
            document.
        min_side (`int`, *optional*, defaults to 8): Fewest tokens on either side of a switch.
        seed (`int`, *optional*, defaults to 12345): Seed of the task split and of the windows.
        **document_kwargs: :func:`task_documents` options.

    Returns:
        `datasets.DatasetDict` (``train``, ``test``, maybe ``validation``) with ``input_ids``, ``token_type_ids``
        (all 0), ``labels`` (``SEGMENT_LABELS`` ids; ``O`` on the special tokens), ``switch`` (index of the
        first ``R`` token, -1 when the window does not switch), ``a_doc`` and ``b_doc`` (the documents of the
        ``L`` and ``R`` text; equal when there is no switch).
    """
    import datasets

    from .builder import sequence_template

    splits = task_documents(source, tokenizer, max_seq_length=max_seq_length, seed=seed, **document_kwargs)
    builder = splits.pop("_builder")
    template = sequence_template(builder.tokenizer)
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
    import os

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
