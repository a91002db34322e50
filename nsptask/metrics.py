"""``compute_metrics`` hooks for the pretraining objectives, computed locally (nothing is fetched).

MLM accuracy, loss and perplexity on masked positions, and the sentence task's accuracy and F1,
reported under separate names with their sample sizes: ``eval_mlm_accuracy``, ``eval_mlm_loss``,
``eval_mlm_perplexity``, ``eval_mlm_tokens``, ``eval_nsp_accuracy``, ``eval_nsp_f1``, ``eval_nsp_pairs`` (or
``eval_sop_...``).

Evaluation memory does not grow with the evaluation set times the vocabulary (transformers #12878):
:class:`nsptask.training.NspTrainer` returns argmax predictions at masked positions, per-sequence loss sums and
sentence logits, never vocabulary-sized logits. For other trainers, :func:`preprocess_logits_for_metrics`
takes the argmax of each batch before the Trainer gathers it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from importlib import resources
from typing import Any

import evaluate
import numpy as np
import torch
import transformers

from .arguments import TOKEN_TASKS
from .probes import decode_sentences
from .token_classification import word_predictions

__all__ = [
    "pretraining_compute_metrics",
    "preprocess_logits_for_metrics",
    "classification_compute_metrics",
    "token_classification_compute_metrics",
    "task_collator_and_metrics",
    "load_metric",
]


def load_metric(name: str):
    """Load one of the ``evaluate`` modules nsptask ships (``seqeval``, ``classification``) from its own folder:
    ``evaluate.load("seqeval")`` would fetch the script from the Hub, which offline fails."""
    return evaluate.load(str(resources.files("nsptask") / "evaluation" / name))


def preprocess_logits_for_metrics(logits: Any, labels: Any) -> Any:
    """Keep only argmax predictions of vocabulary-sized logits (batch x length x vocab -> batch x length);
    small outputs (sentence logits, sparse predictions) pass through unchanged."""
    if isinstance(logits, (tuple, list)):
        return type(logits)(preprocess_logits_for_metrics(x, labels) for x in logits)
    if isinstance(logits, torch.Tensor) and logits.dim() == 3:
        return logits.argmax(-1)
    return logits


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def pretraining_compute_metrics(objective: str, sentence_task: str = "nsp") -> Callable:
    """Build the ``compute_metrics`` function for an objective.

    The function accumulates counts, so it works both ways the Trainer calls it: once on the whole
    evaluation set, or batch by batch with ``batch_eval_metrics=True`` (nsptask's default), where nothing
    is kept between batches but a few counters and evaluation memory stays flat however large the set.

    Args:
        objective (`str`): ``mlm+nsp``, ``mlm+sop``, ``mlm``, ``nsp`` or ``sop``.
        sentence_task (`str`, *optional*, defaults to `"nsp"`): Prefix of the sentence metrics (``nsp``/``sop``).

    The predictions are :class:`~nsptask.training.NspTrainer`'s evaluation outputs: ``(mlm_predictions,
    mlm_loss_sum, mlm_count, sentence_logits)``, the MLM ones when the objective has MLM, the last when it has a
    sentence task.

    Returns:
        A function ``(EvalPrediction, compute_result=True) -> dict[str, float]``.
    """
    has_mlm = objective.startswith("mlm")
    has_sentence = objective != "mlm"
    totals: dict[str, float] = {}

    def compute_metrics(eval_pred, compute_result: bool = True) -> dict[str, float]:
        predictions = eval_pred.predictions
        label_ids = eval_pred.label_ids
        if not isinstance(predictions, (tuple, list)):
            predictions = (predictions,)
        if not isinstance(label_ids, (tuple, list)):
            label_ids = (label_ids,)
        if has_mlm:
            mlm_labels = _numpy(label_ids[0])
            mlm_predictions = _numpy(predictions[0])
            length = min(mlm_labels.shape[1], mlm_predictions.shape[1])
            mlm_labels, mlm_predictions = mlm_labels[:, :length], mlm_predictions[:, :length]
            mask = mlm_labels != -100
            totals["mlm_correct"] = totals.get("mlm_correct", 0) + int(
                (mlm_predictions[mask] == mlm_labels[mask]).sum()
            )
            totals["mlm_total"] = totals.get("mlm_total", 0) + int(mask.sum())
            totals["mlm_loss_sum"] = totals.get("mlm_loss_sum", 0.0) + float(_numpy(predictions[1]).sum())
            totals["mlm_count"] = totals.get("mlm_count", 0) + int(_numpy(predictions[2]).sum())
        if has_sentence:
            labels = _numpy(label_ids[-1]).reshape(-1)
            predicted = _numpy(predictions[-1]).reshape(len(labels), -1).argmax(-1)
            for name, value in (
                ("tp", (predicted == 1) & (labels == 1)),
                ("fp", (predicted == 1) & (labels != 1)),
                ("fn", (predicted != 1) & (labels == 1)),
                ("correct", predicted == labels),
            ):
                totals[name] = totals.get(name, 0) + int(value.sum())
            totals["sentences"] = totals.get("sentences", 0) + len(labels)
        if not compute_result:
            return {}
        metrics: dict[str, float] = {}
        if has_mlm:
            metrics["mlm_accuracy"] = totals["mlm_correct"] / max(totals["mlm_total"], 1)
            loss = totals["mlm_loss_sum"] / max(totals["mlm_count"], 1)
            metrics["mlm_loss"] = loss
            metrics["mlm_perplexity"] = float(math.exp(min(loss, 50.0)))
            metrics["mlm_tokens"] = int(totals["mlm_total"])
        if has_sentence:
            tp, fp, fn = totals["tp"], totals["fp"], totals["fn"]
            metrics[f"{sentence_task}_accuracy"] = totals["correct"] / max(totals["sentences"], 1)
            metrics[f"{sentence_task}_f1"] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
            metrics[f"{sentence_task}_pairs"] = int(totals["sentences"])
            positives, n = tp + fn, max(totals["sentences"], 1)
            # What always answering the evaluation set's more frequent label scores: the chance line.
            metrics[f"{sentence_task}_majority"] = max(positives, totals["sentences"] - positives) / n
        totals.clear()
        return metrics

    return compute_metrics


def classification_compute_metrics(num_labels: int) -> Callable:
    """Accuracy, macro F1, and for two labels binary F1 (label 1 positive) and Matthews correlation; with the
    majority-class accuracy and the number of examples scored. Computed by the ``evaluate`` module nsptask ships
    (:func:`load_metric`), which loads offline."""
    metric = load_metric("classification")

    def compute_metrics(eval_pred) -> dict[str, float]:
        logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        predictions = np.asarray(logits).argmax(-1)
        return metric.compute(
            predictions=predictions, references=np.asarray(eval_pred.label_ids), num_labels=num_labels
        )

    return compute_metrics


def token_classification_compute_metrics(
    label_names: list[str], mode: str | None = None, sentences: bool = False
) -> Callable:
    """``compute_metrics`` for token classification: seqeval on word-level predictions, through the ``evaluate``
    module nsptask ships (:func:`nsptask.metrics.load_metric`), as transformers' ``run_ner`` does with the Hub's.

    Returns a function whose result has ``precision``, ``recall``, ``f1``, ``macro_f1``, ``accuracy`` and
    ``f1_<TYPE>`` per entity type; the last text report is kept in ``compute_metrics.last_report``. With
    `sentences` (segment tagging), the word predictions are read as sentences first
    (:func:`nsptask.probes.decode_sentences`).
    """
    metric = load_metric("seqeval")

    def compute_metrics(eval_pred) -> dict[str, float]:
        predictions = np.asarray(eval_pred.predictions)
        if predictions.ndim == 3:
            predictions = predictions.argmax(-1)
        true_tags, predicted_tags = word_predictions(predictions, np.asarray(eval_pred.label_ids), label_names)
        if sentences:
            predicted_tags = decode_sentences(true_tags, predicted_tags)
        scores = metric.compute(predictions=predicted_tags, references=true_tags, mode=mode)
        compute_metrics.last_report = scores["report"]
        compute_metrics.last_scores = scores
        out = {k: float(scores[k]) for k in ("precision", "recall", "f1", "macro_f1", "accuracy")}
        for entity, row in scores["per_type"].items():
            out[f"f1_{entity}"] = row["f1-score"]
        return out

    compute_metrics.last_report = ""
    compute_metrics.last_scores = {}
    return compute_metrics


def task_collator_and_metrics(task: str, tokenizer, label_names: list[str], seqeval_mode: str | None = None):
    """The stock collator and the ``compute_metrics`` hook of a downstream task: token tasks get
    ``DataCollatorForTokenClassification`` and seqeval, sentence tasks ``DataCollatorWithPadding`` and the
    classification scores."""
    if task in TOKEN_TASKS:
        collator = transformers.DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=8)
        return collator, token_classification_compute_metrics(label_names, seqeval_mode, task == "segment-tagging")
    collator = transformers.DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8)
    return collator, classification_compute_metrics(len(label_names))
