"""Token classification: sub-word alignment, seqeval scoring, word-level prediction.

The label of a word goes on its first sub-token; the other sub-tokens get -100 (ignored) by default. With
``label_all_tokens=True`` training labels every sub-token (continuation pieces get the ``I-`` tag of the
word), but evaluation labels stay on first sub-tokens only, so predictions are always scored per *word*:
labelling all sub-tokens ``B-`` would otherwise inflate seqeval's entity counts (transformers #14043).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from seqeval.metrics import accuracy_score, classification_report
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.metrics.v1 import _precision_recall_fscore_support
from seqeval.reporters import DictReporter, StringReporter
from seqeval.scheme import IOB2

__all__ = [
    "tokenize_and_align_labels",
    "word_predictions",
    "seqeval_scores",
]

_AVERAGES = ("micro avg", "macro avg", "weighted avg")  # the rows of seqeval's report that are not entity types


def _continuation_ids(label_names: list[str]) -> list[int]:
    """For each label id, the id used on a word's later sub-tokens (B-X -> I-X when I-X exists)."""
    index = {name: i for i, name in enumerate(label_names)}
    return [index.get("I-" + name[2:], i) if name.startswith("B-") else i for i, name in enumerate(label_names)]


def tokenize_and_align_labels(
    batch: dict[str, list],
    *,
    tokenizer: Any,
    label_names: list[str],
    max_length: int = 128,
    label_all_tokens: bool = False,
    tokens_column: str = "tokens",
    tags_column: str = "ner_tags",
) -> dict[str, list]:
    """Tokenize pre-split words and align word labels to sub-tokens (batched map function).

    Words cut off by `max_length` are counted in ``words_truncated`` (one value per example).

    Args:
        batch (`dict[str, list]`): Columns `tokens_column` (words) and `tags_column` (label ids).
        tokenizer (`PreTrainedTokenizerFast`): A fast tokenizer (it gives word ids).
        label_names (`list[str]`): The label set (for the B- to I- mapping of continuation pieces).
        max_length (`int`, *optional*, defaults to 128): Truncation length.
        label_all_tokens (`bool`, *optional*, defaults to `False`): Label every sub-token.

    Returns:
        `dict[str, list]`: ``input_ids``, ``attention_mask``, ``token_type_ids`` (if the tokenizer makes them),
        ``labels``, ``words_truncated``.
    """
    encoded = tokenizer(batch[tokens_column], is_split_into_words=True, truncation=True, max_length=max_length)
    continuation = _continuation_ids(label_names)
    labels, truncated = [], []
    for i, word_labels in enumerate(batch[tags_column]):
        word_ids = encoded.word_ids(i)
        row, previous = [], None
        for word in word_ids:
            if word is None:
                row.append(-100)
            elif word != previous:
                row.append(word_labels[word])
            else:
                row.append(continuation[word_labels[word]] if label_all_tokens else -100)
            previous = word
        labels.append(row)
        seen = {w for w in word_ids if w is not None}
        truncated.append(len(word_labels) - len(seen))
    encoded["labels"] = labels
    encoded["words_truncated"] = truncated
    return dict(encoded)


def word_predictions(predictions: np.ndarray, labels: np.ndarray, label_names: list[str], word_tags=None):
    """Collapse sub-token predictions to words: keep the positions whose label is not -100 (first
    sub-tokens), as tag strings. Returns ``(true_tags, predicted_tags)`` lists of lists.

    With `word_tags` (each example's full list of gold tag ids, before truncation), the words that truncation cut
    off are scored too: gold from `word_tags`, predicted ``O``, so an entity cut off counts as missed."""
    true_tags, predicted_tags = [], []
    for i, (prediction, label) in enumerate(zip(predictions, labels)):
        keep = label != -100
        predicted = [label_names[j] for j in prediction[: len(label)][keep]]
        if word_tags is not None:
            gold = [label_names[j] for j in word_tags[i]]
            predicted += ["O"] * (len(gold) - len(predicted))
        else:
            gold = [label_names[j] for j in label[keep]]
        true_tags.append(gold)
        predicted_tags.append(predicted)
    return true_tags, predicted_tags


def seqeval_scores(true_tags: list[list[str]], predicted_tags: list[list[str]], mode: str | None = None) -> dict:
    """Entity-level scores with seqeval: micro and macro precision/recall/F1, a per-type report, token
    accuracy, and the text ``classification_report``.

    Args:
        true_tags, predicted_tags (`list[list[str]]`): Tags per word, per sentence.
        mode (`str`, *optional*): `None` for seqeval's default (conlleval-compatible) mode, ``"strict"`` for
            strict IOB2 matching.
    """
    kwargs: dict[str, Any] = {"mode": "strict", "scheme": IOB2} if mode == "strict" else {}
    if not any(t != "O" for row in true_tags + predicted_tags for t in row):
        # No entity on either side (seqeval's report cannot be made): nothing was found and nothing was missed.
        return {
            "precision": 0.0,
            "recall": 0.0,
            "f1": 0.0,
            "macro_f1": 0.0,
            "weighted_f1": 0.0,
            "accuracy": accuracy_score(true_tags, predicted_tags) if true_tags else 0.0,
            "per_type": {},
            "report": "no entity in the gold tags or the predictions",
        }
    # Strict mode: seqeval's report finds the entities once. Default mode: its report finds them five times (the
    # type names, then once per type and once per average), so they are counted once here and seqeval's own arithmetic does the rest. The
    # text report is written from these figures too.
    if mode == "strict":
        report = classification_report(true_tags, predicted_tags, output_dict=True, zero_division=0, **kwargs)
    else:
        report = _default_mode_report(true_tags, predicted_tags)
    micro, macro, weighted = report["micro avg"], report["macro avg"], report["weighted avg"]
    return {
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "macro_f1": float(macro["f1-score"]),
        "weighted_f1": float(weighted["f1-score"]),
        "accuracy": accuracy_score(true_tags, predicted_tags),
        "per_type": {k: {m: float(v) for m, v in row.items()} for k, row in report.items() if k not in _AVERAGES},
        "report": _text_report(report),
    }


def _default_mode_report(true_tags: list[list[str]], predicted_tags: list[list[str]]) -> dict:
    """seqeval's ``classification_report(..., output_dict=True, zero_division=0)`` in its default (conlleval)
    mode, with the entities of each side found once: the counts are made as seqeval's
    ``precision_recall_fscore_support`` makes them, and its ``_precision_recall_fscore_support`` turns them into
    the per-type and averaged figures."""
    found: dict[str, dict[str, set]] = {"true": defaultdict(set), "pred": defaultdict(set)}
    for side, tags in (("true", true_tags), ("pred", predicted_tags)):
        for type_name, start, end in get_entities(tags):
            found[side][type_name].add((start, end))
    names = sorted(set(found["true"]) | set(found["pred"]))
    true, pred = found["true"], found["pred"]
    counts = (
        np.array([len(pred.get(n, ())) for n in names], dtype=np.int32),
        np.array([len(true.get(n, set()) & pred.get(n, set())) for n in names], dtype=np.int32),
        np.array([len(true.get(n, ())) for n in names], dtype=np.int32),
    )
    reporter = DictReporter()

    def figures(average: str | None):
        return _precision_recall_fscore_support(
            true_tags,
            predicted_tags,
            average=average,
            zero_division=0,
            extract_tp_actual_correct=lambda *_: tuple(c.copy() for c in counts),
        )

    for row in zip(names, *figures(None)):
        reporter.write(*row)
    for average in ("micro", "macro", "weighted"):
        reporter.write(f"{average} avg", *figures(average))
    return reporter.report()


def _text_report(report: dict, digits: int = 4) -> str:
    """seqeval's text ``classification_report`` written by its own ``StringReporter`` from the figures of its
    ``output_dict=True`` report, rather than from a second pass over the tags."""
    names = [name for name in report if name not in _AVERAGES]
    reporter = StringReporter(width=max(max(map(len, names), default=0), len("weighted avg"), digits), digits=digits)
    for group in (names, _AVERAGES):
        for name in group:
            row = report[name]
            reporter.write(name, row["precision"], row["recall"], row["f1-score"], row["support"])
        reporter.write_blank()
    return reporter.report()
