"""``compute_metrics`` hooks for the pretraining objectives, computed locally (nothing is fetched).

MLM accuracy, loss and perplexity on masked positions, and the sentence task's accuracy and F1,
reported under separate names: ``eval_mlm_accuracy``, ``eval_mlm_loss``, ``eval_mlm_perplexity``,
``eval_nsp_accuracy``, ``eval_nsp_f1`` (or ``eval_sop_...``).

Evaluation memory does not grow with the evaluation set times the vocabulary (transformers #12878): with
the sparse head the model already returns argmax predictions; otherwise
:func:`preprocess_logits_for_metrics` takes the argmax of each batch before the Trainer gathers it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["pretraining_compute_metrics", "preprocess_logits_for_metrics", "binary_f1"]


def preprocess_logits_for_metrics(logits: Any, labels: Any) -> Any:
    """Keep only argmax predictions of vocabulary-sized logits (batch x length x vocab -> batch x length);
    small outputs (sentence logits, sparse predictions) pass through unchanged."""
    import torch

    if isinstance(logits, (tuple, list)):
        return type(logits)(preprocess_logits_for_metrics(x, labels) for x in logits)
    if isinstance(logits, torch.Tensor) and logits.dim() == 3:
        return logits.argmax(-1)
    return logits


def binary_f1(predictions: np.ndarray, labels: np.ndarray, positive: int = 1) -> float:
    """F1 of the positive class."""
    tp = int(((predictions == positive) & (labels == positive)).sum())
    fp = int(((predictions == positive) & (labels != positive)).sum())
    fn = int(((predictions != positive) & (labels == positive)).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def pretraining_compute_metrics(objective: str, sentence_task: str = "nsp", sparse: bool = True) -> Callable:
    """Build the ``compute_metrics`` function for an objective.

    Args:
        objective (`str`): ``mlm+nsp``, ``mlm+sop``, ``mlm``, ``nsp`` or ``sop``.
        sentence_task (`str`, *optional*, defaults to `"nsp"`): Prefix of the sentence metrics (``nsp``/``sop``).
        sparse (`bool`, *optional*, defaults to `True`): Whether the model returns sparse-head outputs.

    Returns:
        A function ``EvalPrediction -> dict[str, float]``.
    """
    has_mlm = objective.startswith("mlm")
    has_sentence = objective != "mlm"

    def compute_metrics(eval_pred) -> dict[str, float]:
        predictions = eval_pred.predictions
        label_ids = eval_pred.label_ids
        if not isinstance(predictions, (tuple, list)):
            predictions = (predictions,)
        if not isinstance(label_ids, (tuple, list)):
            label_ids = (label_ids,)
        metrics: dict[str, float] = {}
        if has_mlm:
            mlm_labels = np.asarray(label_ids[0])
            mlm_predictions = np.asarray(predictions[0])
            length = min(mlm_labels.shape[1], mlm_predictions.shape[1])
            mlm_labels, mlm_predictions = mlm_labels[:, :length], mlm_predictions[:, :length]
            mask = mlm_labels != -100
            metrics["mlm_accuracy"] = float((mlm_predictions[mask] == mlm_labels[mask]).mean()) if mask.any() else 0.0
            if sparse:
                loss_sum, count = np.asarray(predictions[1]).sum(), np.asarray(predictions[2]).sum()
                loss = float(loss_sum / max(count, 1))
                metrics["mlm_loss"] = loss
                metrics["mlm_perplexity"] = float(math.exp(min(loss, 50.0)))
        if has_sentence:
            logits = np.asarray(predictions[-1])
            labels = np.asarray(label_ids[-1]).reshape(-1)
            predicted = logits.reshape(len(labels), -1).argmax(-1)
            metrics[f"{sentence_task}_accuracy"] = float((predicted == labels).mean())
            metrics[f"{sentence_task}_f1"] = binary_f1(predicted, labels)
        return metrics

    return compute_metrics
