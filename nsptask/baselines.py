"""A model-free reference for the sentence tasks: how far topic alone goes.

ALBERT's argument against NSP is that its negatives come from other documents, so NSP can be solved by
noticing a change of topic, without modelling coherence. :func:`overlap_baseline` measures that on the
user's own data: it scores each pair by the IDF-weighted overlap of the word pieces of segment A and
segment B, fits one threshold on the training pairs and reports the accuracy on held-out pairs. On NSP
pairs it is far above chance; on SOP pairs (the same two segments, either order) it cannot beat chance,
because the overlap of A and B does not depend on their order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["overlap_baseline", "overlap_scores"]


def _segment_sets(dataset, special_ids: set[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for ids, types in zip(dataset["input_ids"], dataset["token_type_ids"]):
        ids = np.asarray(ids)
        types = np.asarray(types)
        keep = ~np.isin(ids, list(special_ids))
        pairs.append((np.unique(ids[keep & (types == 0)]), np.unique(ids[keep & (types == 1)])))
    return pairs


def _idf(pairs: list[tuple[np.ndarray, np.ndarray]], size: int) -> np.ndarray:
    document_frequency = np.zeros(size, dtype=np.float64)
    for a, b in pairs:
        document_frequency[np.union1d(a, b)] += 1
    return np.log((len(pairs) + 1) / (document_frequency + 1))


def overlap_scores(pairs: Iterable[tuple[np.ndarray, np.ndarray]], idf: np.ndarray) -> np.ndarray:
    """IDF-weighted Jaccard overlap of the word-piece sets of A and B, one score per pair."""
    scores = []
    for a, b in pairs:
        union = idf[np.union1d(a, b)].sum()
        scores.append(idf[np.intersect1d(a, b, assume_unique=True)].sum() / union if union > 0 else 0.0)
    return np.asarray(scores)


def overlap_baseline(train, evaluation, label_column: str, special_ids: Iterable[int] = ()) -> dict[str, Any]:
    """Accuracy of a one-threshold classifier on the word-piece overlap of A and B (no model, no training
    beyond the threshold).

    Args:
        train (`datasets.Dataset`): Pairs (``input_ids``, ``token_type_ids``, the label) to fit the IDF
            weights and the threshold on.
        evaluation (`datasets.Dataset`): Held-out pairs to score.
        label_column (`str`): ``next_sentence_label`` or ``sentence_order_label``.
        special_ids (`Iterable[int]`, *optional*): Token ids left out of the overlap (``[CLS]``, ``[SEP]``...).

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
    special = set(int(i) for i in special_ids)
    train_pairs = _segment_sets(train, special)
    eval_pairs = _segment_sets(evaluation, special)
    size = 1 + max(
        (int(x.max()) for pair in train_pairs + eval_pairs for x in pair if x.size),
        default=0,
    )
    idf = _idf(train_pairs, size)
    x_train, y_train = overlap_scores(train_pairs, idf), np.asarray(train[label_column])
    x_eval, y_eval = overlap_scores(eval_pairs, idf), np.asarray(evaluation[label_column])
    best = (-1.0, 0.0, 1)
    for threshold in np.unique(np.quantile(x_train, np.linspace(0, 1, 201))):
        for direction in (1, -1):
            accuracy = float(((direction * (x_train - threshold) > 0).astype(int) == y_train).mean())
            if accuracy > best[0]:
                best = (accuracy, float(threshold), direction)
    train_accuracy, threshold, direction = best
    predictions = (direction * (x_eval - threshold) > 0).astype(int)
    share = float(y_eval.mean()) if len(y_eval) else 0.0
    return {
        "accuracy": float((predictions == y_eval).mean()) if len(y_eval) else float("nan"),
        "train_accuracy": train_accuracy,
        "majority": max(share, 1 - share),
        "threshold": threshold,
        "direction": direction,
        "num_pairs": int(len(y_eval)),
    }
