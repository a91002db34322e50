"""A model-free reference for the sentence tasks: how far topic alone goes.

ALBERT's argument against NSP is that its negatives come from other documents, so NSP can be solved by
noticing a change of topic, without modelling coherence. :func:`overlap_baseline` measures that on the
user's own data: it scores each pair by the IDF-weighted overlap of the word pieces of segment A and
segment B, fits one threshold on the training pairs and reports the accuracy on held-out pairs. On NSP
pairs it is far above chance; on SOP pairs (the same two segments, either order) it cannot beat chance,
because the overlap of A and B does not depend on their order.

Everything is computed on flat token arrays with numpy (no Python loop over pairs), so it runs on millions of
pairs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["overlap_baseline", "overlap_scores"]


def _flat(dataset):
    """Token ids, segment ids (0 = A, 1 = B) and pair index of every token of a pair dataset, as numpy arrays."""
    table = dataset.with_format("arrow")[:] if hasattr(dataset, "with_format") else pa.table(dataset)
    ids_column = table["input_ids"]
    lengths = pc.list_value_length(ids_column).to_numpy(zero_copy_only=False).astype(np.int64)
    ids = pc.list_flatten(ids_column).to_numpy(zero_copy_only=False).astype(np.int64)
    types = pc.list_flatten(table["token_type_ids"]).to_numpy(zero_copy_only=False).astype(np.int64)
    pairs = np.repeat(np.arange(len(lengths)), lengths)
    return ids, types, pairs, len(lengths)


def _pair_weights(ids, types, pairs, n_pairs: int, special: np.ndarray, idf: np.ndarray | None, size: int):
    """Per pair: the IDF weight of the word pieces in both segments (intersection) and in either (union); the IDF
    (fit on these pairs unless given) over `size` piece ids."""
    keep = ~np.isin(ids, special)
    ids, types, pairs = ids[keep], types[keep], pairs[keep]
    # Unique (pair, segment, piece), then unique (pair, piece) with the number of segments holding it.
    per_segment = np.unique((pairs * 2 + (types > 0)) * size + ids)
    pair_piece = (per_segment // (2 * size)) * size + per_segment % size
    unique, sides = np.unique(pair_piece, return_counts=True)
    pair_of, piece_of = unique // size, unique % size
    document_frequency = np.bincount(piece_of, minlength=size).astype(np.float64)
    if idf is None:
        idf = np.log((n_pairs + 1) / (document_frequency + 1))
    weights = idf[piece_of]
    union = np.bincount(pair_of, weights=weights, minlength=n_pairs)
    intersection = np.bincount(pair_of, weights=weights * (sides == 2), minlength=n_pairs)
    return intersection, union, idf


def overlap_scores(
    dataset, special_ids: Iterable[int] = (), idf: np.ndarray | None = None, size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """IDF-weighted Jaccard overlap of the word-piece sets of A and B, one score per pair of `dataset`
    (``input_ids`` and ``token_type_ids``). Returns ``(scores, idf)``; the IDF (over `size` piece ids, default the
    largest id + 1) is fit on `dataset` unless given."""
    ids, types, pairs, n = _flat(dataset)
    special = np.asarray(sorted(set(int(i) for i in special_ids)), dtype=np.int64)
    size = size or (len(idf) if idf is not None else (int(ids.max()) + 1 if len(ids) else 1))
    intersection, union, idf = _pair_weights(ids, types, pairs, n, special, idf, size)
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(union > 0, intersection / np.where(union > 0, union, 1), 0.0)
    return scores, idf


def overlap_baseline(
    train, evaluation, label_column: str, special_ids: Iterable[int] = (), per_example: bool = False
) -> dict[str, Any]:
    """Accuracy of a one-threshold classifier on the word-piece overlap of A and B (no model, no training
    beyond the threshold).

    Args:
        train (`datasets.Dataset`): Pairs (``input_ids``, ``token_type_ids``, the label) to fit the IDF
            weights and the threshold on.
        evaluation (`datasets.Dataset`): Held-out pairs to score.
        label_column (`str`): ``next_sentence_label`` or ``sentence_order_label``.
        special_ids (`Iterable[int]`, *optional*): Token ids left out of the overlap (``[CLS]``, ``[SEP]``...).
        per_example (`bool`, *optional*, defaults to `False`): Also return ``correct`` (one 0/1 per held-out pair)
            and ``predictions``.

    Returns:
        `dict` with ``accuracy`` (held-out), ``train_accuracy``, ``majority`` (held-out share of the most
        frequent label), ``threshold``, ``direction`` (1: more overlap means label 1) and ``num_pairs``.

    Example:
        ```python
        >>> from nsptask import build_pretraining_dataset, default_tokenizer
        >>> from nsptask.baselines import overlap_baseline
        >>> tokenizer = default_tokenizer()
        >>> data = build_pretraining_dataset(format="nsp", tokenizer=tokenizer)
        >>> result = overlap_baseline(data["train"], data["validation"], "next_sentence_label",
        ...                           tokenizer.all_special_ids)
        >>> result["accuracy"] > result["majority"]
        True
        ```
    """
    special = list(special_ids)
    size = 1 + max(int(np.max(_flat(d)[0], initial=0)) for d in (train, evaluation))
    x_train, idf = overlap_scores(train, special, size=size)
    x_eval, _ = overlap_scores(evaluation, special, idf=idf)
    y_train, y_eval = np.asarray(train[label_column]), np.asarray(evaluation[label_column])
    best = (-1.0, 0.0, 1)
    for threshold in np.unique(np.quantile(x_train, np.linspace(0, 1, 201))):
        for direction in (1, -1):
            accuracy = float(((direction * (x_train - threshold) > 0).astype(int) == y_train).mean())
            if accuracy > best[0]:
                best = (accuracy, float(threshold), direction)
    train_accuracy, threshold, direction = best
    predictions = (direction * (x_eval - threshold) > 0).astype(int)
    share = float(y_eval.mean()) if len(y_eval) else 0.0
    out = {
        "accuracy": float((predictions == y_eval).mean()) if len(y_eval) else float("nan"),
        "train_accuracy": train_accuracy,
        "majority": max(share, 1 - share),
        "threshold": threshold,
        "direction": direction,
        "num_pairs": int(len(y_eval)),
    }
    if per_example:
        out["correct"] = (predictions == y_eval).astype(int).tolist()
        out["predictions"] = predictions.astype(int).tolist()
    return out
