"""Intervals and comparisons of the study: a paired bootstrap that resamples documents and pretraining seeds.

Every arm of a study is scored on the same examples (checked by their hash), and each example comes from a document
(its cluster: examples of one document are not independent). One replicate of the bootstrap draws the documents with
replacement (an example counts as often as its document was drawn) and, when there are several, the pretraining seeds
with replacement; the same draw serves every arm, so a difference between two arms is computed on the same resampled
documents and seeds: a paired, clustered interval. Within a pretraining seed, the fine-tuning seeds are not resampled:
their median is taken, as BERT and RoBERTa report medians over fine-tuning runs.

The statistics (of weighted examples):

- ``accuracy``: examples' 0/1 correctness; ``mcc``: Matthews correlation from the weighted confusion matrix (any
  number of classes; 0 is chance whatever the label balance), the measure "at chance" is decided on;
  ``balanced_accuracy``: the mean recall over classes;
- ``ratio``: correct over total per example (MLM: masked tokens);
- ``f1``: entities found, per example ``(tp, fp, fn)`` (seqeval's micro F1 over the resampled examples).

Example:
    ```python
    >>> import numpy as np
    >>> from nsptask.intervals import Records, compare
    >>> labels = np.array([0, 1] * 50); documents = np.repeat(np.arange(20), 5)
    >>> a = Records("label", {1: [{"predictions": labels, "labels": labels}]}, documents)
    >>> b = Records("label", {1: [{"predictions": 1 - labels, "labels": labels}]}, documents)
    >>> result = compare({"a": a, "b": b}, "accuracy")
    >>> result["cells"]["a"]["mean"], result["differences"][("a", "b")]["separated"]
    (1.0, True)
    ```
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Records", "compare", "REPLICATES", "statistic"]

REPLICATES = 2000
KINDS = {"label": ("accuracy", "mcc", "balanced_accuracy"), "ratio": ("ratio",), "entities": ("f1",)}


@dataclass
class Records:
    """One arm's per-example records of one column.

    Args:
        kind (`str`): ``label`` (``predictions``, ``labels``), ``ratio`` (``correct``, ``total``) or ``entities``
            (``counts``: one ``(tp, fp, fn)`` row per example).
        runs (`dict[int, list[dict]]`): Per pretraining seed, one record per fine-tuning seed (a single one for a
            score without fine-tuning), each a dict of per-example arrays.
        documents (`np.ndarray` or `dict[int, np.ndarray]`): Each example's document (the cluster), any hashable
            values; per pretraining seed when the seeds are scored on different examples.
    """

    kind: str
    runs: dict
    documents: np.ndarray


def _weights(documents: np.ndarray, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """(replicates + 1) x examples weights: row 0 all ones (the point estimate), then one row per replicate, each
    example weighted by how often its document was drawn."""
    _, cluster = np.unique(documents, return_inverse=True)
    n_clusters = int(cluster.max()) + 1 if len(cluster) else 0
    draws = rng.integers(n_clusters, size=(replicates, n_clusters))
    counts = np.zeros((replicates, n_clusters))
    np.add.at(counts, (np.repeat(np.arange(replicates), n_clusters), draws.ravel()), 1.0)
    return np.vstack([np.ones(len(cluster)), counts[:, cluster]])


def statistic(name: str, record: dict, weights: np.ndarray) -> np.ndarray:
    """A statistic of one record's examples under each row of `weights` (rows x examples)."""
    if name == "ratio":
        return (weights @ np.asarray(record["correct"], float)) / np.maximum(
            weights @ np.asarray(record["total"], float), 1e-12
        )
    if name == "f1":
        tp, fp, fn = (weights @ np.asarray(record["counts"], float).reshape(-1, 3)).T
        return np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1e-12), 0.0)
    labels, predictions = np.asarray(record["labels"], int), np.asarray(record["predictions"], int)
    if name == "accuracy":
        return (weights @ (labels == predictions).astype(float)) / np.maximum(weights.sum(1), 1e-12)
    k = int(max(labels.max(initial=0), predictions.max(initial=0))) + 1
    confusion = np.stack([weights[:, (labels == t) & (predictions == p)].sum(1) for t in range(k) for p in range(k)], 1)
    confusion = confusion.reshape(-1, k, k)  # [replicate, true, predicted]
    true, predicted = confusion.sum(2), confusion.sum(1)
    if name == "balanced_accuracy":
        present = true > 0
        recall = np.where(present, np.diagonal(confusion, axis1=1, axis2=2) / np.maximum(true, 1e-12), 0.0)
        return recall.sum(1) / np.maximum(present.sum(1), 1)
    total, correct = confusion.sum((1, 2)), np.trace(confusion, axis1=1, axis2=2)
    numerator = correct * total - (true * predicted).sum(1)
    denominator = np.sqrt((total**2 - (predicted**2).sum(1)) * (total**2 - (true**2).sum(1)))
    return np.where(denominator > 0, numerator / np.maximum(denominator, 1e-12), 0.0)


def _documents(records: Records, seed) -> np.ndarray:
    documents = records.documents
    return np.asarray(documents[seed] if isinstance(documents, dict) else documents)


def _seed_values(records: Records, name: str, weights: dict, seeds: list) -> np.ndarray:
    """seeds x (replicates + 1): per pretraining seed, the median over its fine-tuning runs of the statistic."""
    return np.stack([np.median([statistic(name, r, weights[s]) for r in records.runs[s]], axis=0) for s in seeds])


def _check_paired(arms: dict[str, Records], seeds: list) -> dict:
    """Each seed's documents, the same for every arm (else the arms were scored on other examples)."""
    first_arm = next(iter(arms))
    documents = {s: _documents(arms[first_arm], s) for s in seeds}
    for arm, records in arms.items():
        for s in seeds:
            mine = _documents(records, s)
            if len(mine) != len(documents[s]) or not np.array_equal(mine, documents[s]):
                raise ValueError(f"Arm {arm!r} is scored on other examples than {first_arm!r}: no paired comparison.")
    return documents


def compare(arms: dict[str, Records], name: str, replicates: int = REPLICATES, seed: int = 0) -> dict:
    """Cells (mean over pretraining seeds, 95% interval) of a statistic for every arm, and the paired difference of
    every pair of arms, from one clustered bootstrap of documents and seeds shared by all arms.

    When every seed is scored on the same documents (one document split), a replicate draws the documents once for
    all seeds; when the split varies with the seed (``--vary_split``), each seed's documents are drawn on their own.

    Args:
        arms (`dict[str, Records]`): Per arm its records; every arm must hold the same examples and documents.
        name (`str`): ``accuracy``, ``mcc``, ``balanced_accuracy``, ``ratio`` or ``f1``.
        replicates (`int`, *optional*, defaults to 2000): Bootstrap replicates.
        seed (`int`, *optional*, defaults to 0): Seed of the draws.

    Returns:
        `dict` with ``cells`` (arm -> ``mean``, ``low``, ``high``), ``differences`` ((arm, other) -> ``mean``,
        ``low``, ``high``, ``separated``: the interval excludes 0), ``seeds`` (used by every arm), ``examples``
        and ``documents`` (per seed, of the first seed when they are the same) and ``replicates``.
    """
    seeds = sorted(set.intersection(*(set(r.runs) for r in arms.values())))
    if not seeds:
        raise ValueError("The arms share no pretraining seed: no paired comparison.")
    documents = _check_paired(arms, seeds)
    rng = np.random.default_rng(seed)
    shared = all(np.array_equal(documents[s], documents[seeds[0]]) for s in seeds)
    if shared:
        one = _weights(documents[seeds[0]], replicates, rng)
        weights = {s: one for s in seeds}
    else:
        weights = {s: _weights(documents[s], replicates, rng) for s in seeds}
    seed_draws = (
        rng.integers(len(seeds), size=(replicates, len(seeds))) if len(seeds) > 1 else np.zeros((replicates, 1), int)
    )
    values = {}
    for arm, records in arms.items():
        per_seed = _seed_values(records, name, weights, seeds)  # seeds x (1 + replicates)
        point = float(per_seed[:, 0].mean())
        replicate = per_seed[seed_draws, 1 + np.arange(replicates)[:, None]].mean(1)
        values[arm] = (point, replicate)
    cells = {
        arm: {"mean": point, "low": float(np.percentile(rep, 2.5)), "high": float(np.percentile(rep, 97.5))}
        for arm, (point, rep) in values.items()
    }
    differences = {}
    names = list(arms)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            diff = values[a][1] - values[b][1]
            low, high = float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5))
            differences[(a, b)] = {
                "mean": values[a][0] - values[b][0],
                "low": low,
                "high": high,
                "separated": low > 0 or high < 0,
            }
    return {
        "cells": cells,
        "differences": differences,
        "seeds": seeds,
        "examples": len(documents[seeds[0]]),
        "documents": int(len(np.unique(documents[seeds[0]]))),
        "replicates": replicates,
    }
