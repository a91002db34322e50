"""The build report: what was read, what was made, everything that was skipped with the reason, and
warnings about what would make a run mislead (unknown tokens, skewed labels, evaluation sets too small)."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from typing import Any

import numpy as np
import pyarrow.compute as pc

from .corpus import ignored_files
from .instances import PAIR_FORMATS, SequenceTemplate

__all__ = [
    "build_report",
    "format_report",
    "length_histogram",
    "describe_source",
    "check_unknown_counts",
    "MIN_EVAL_EXAMPLES",
    "UNK_WARN",
    "UNK_STOP",
]

logger = logging.getLogger(__name__)

# Below this many evaluation examples an accuracy's 95% interval is wider than about +-7 points.
MIN_EVAL_EXAMPLES = 200
LABEL_BALANCE_RANGE = (0.4, 0.6)
# Warn above this share of unknown tokens; stop above the second unless allowed.
UNK_WARN, UNK_STOP = 0.01, 0.05


def check_unknown_counts(unknown: int, tokens: int, cfg) -> float:
    """The share of unknown tokens; a warning above 1%, an error above 5% unless ``cfg.allow_unknown_tokens``."""
    rate = unknown / tokens if tokens else 0.0
    if rate > UNK_STOP and not cfg.allow_unknown_tokens:
        raise ValueError(unknown_tokens_message(rate, unknown, tokens, cfg))
    if rate > UNK_WARN:
        logger.warning("nsptask: %s", unknown_tokens_message(rate, unknown, tokens, cfg, warning=True))
    return rate


def unknown_tokens_message(rate: float, unknown: int, tokens: int, cfg, warning: bool = False) -> str:
    language = cfg.reader.language
    fix = (
        "Train a tokenizer on this corpus: nsptask tokenizer --corpus CORPUS"
        + (f" --language {language}" if language != "en" else "")
        + " --output_dir TOKENIZER, then pass --tokenizer_name_or_path TOKENIZER"
    )
    if warning:
        return f"{rate:.1%} of the corpus's tokens ({unknown:,} of {tokens:,}) are unknown to the tokenizer. {fix}."
    return (
        f"{rate:.1%} of the corpus's tokens ({unknown:,} of {tokens:,}) are unknown to the tokenizer (expected at most "
        f"{UNK_STOP:.0%}): the model would learn from [UNK] text. {fix}; or pass --allow_unknown_tokens "
        "(allow_unknown_tokens=True) to build anyway."
    )


def length_histogram(lengths: np.ndarray, max_seq_length: int, bins: int = 8) -> dict[str, int]:
    """Counts of instance lengths in `bins` equal ranges of ``1..max_seq_length``."""
    edges = np.linspace(0, max_seq_length, bins + 1).round().astype(int)
    counts, _ = np.histogram(lengths, bins=edges)
    return {f"{edges[i] + 1}-{edges[i + 1]}": int(c) for i, c in enumerate(counts)}


def _lengths(column) -> np.ndarray:
    return pc.list_value_length(column).to_numpy(zero_copy_only=False).astype(np.int64)


def describe_source(source: Any) -> str:
    """A short name of a corpus for reports and model cards."""
    if source is None:
        return "bundled English Wikipedia sample (103 articles)"
    fp = getattr(source, "_fingerprint", None)
    if fp is not None:
        return f"datasets.{type(source).__name__} ({getattr(source, 'info', None) and source.info.dataset_name or 'in memory'})"
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    names = [os.path.basename(os.path.normpath(os.fspath(i))) or os.fspath(i) for i in items]
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _split_entry(split: str, dataset, rows, n_tokens, unk, cfg, template, warnings: list[str]) -> dict[str, Any]:
    """One split's figures (`rows`: its documents' rows among the tokenized documents); warnings are appended."""
    table = dataset.with_format("arrow")[:]
    lengths = _lengths(table["input_ids"]) if len(table) else np.zeros(0, np.int64)
    split_tokens = int(n_tokens[rows].sum())
    split_unk = int(unk[rows].sum())
    entry: dict[str, Any] = {
        "documents": int(len(rows)),
        "source_tokens": split_tokens,
        "unknown_tokens": split_unk,
        "unknown_token_rate": round(split_unk / max(split_tokens, 1), 5),
        "instances": len(table),
        "instance_tokens": int(lengths.sum()),
        "mean_length": round(float(lengths.mean()), 2) if len(lengths) else 0.0,
        "padding_free_fill": round(float(lengths.mean()) / cfg.max_seq_length, 4) if len(lengths) else 0.0,
        "longest": int(lengths.max()) if len(lengths) else 0,
        "length_histogram": length_histogram(lengths, cfg.max_seq_length),
    }
    if entry["unknown_token_rate"] > UNK_WARN:
        warnings.append(
            f"{split}: {entry['unknown_token_rate']:.1%} of the tokens are unknown to the tokenizer; train one on "
            "this corpus with `nsptask tokenizer`."
        )
    if cfg.data_format in PAIR_FORMATS:
        labels = table[cfg.label_column].to_numpy()
        names = dataset.features[cfg.label_column].names
        entry["labels"] = {name: int((labels == i).sum()) for i, name in enumerate(names)}
        entry["label_balance"] = round(float(labels.mean()), 4) if len(labels) else 0.0
        entry["short_target_rate"] = round(float(table["short_target"].to_numpy(zero_copy_only=False).mean()), 4)
        truncated = int(np.asarray(table["truncated_tokens"]).sum())
        entry["truncated_tokens"] = truncated
        low, high = LABEL_BALANCE_RANGE
        if len(labels) and not low <= entry["label_balance"] <= high:
            warnings.append(
                f"{split}: label balance {entry['label_balance']:.2f} ({names[1]} share) lies outside "
                f"{low}-{high}: a constant prediction scores {max(entry['label_balance'], 1 - entry['label_balance']):.0%}. "
                "Documents too short for two segments make NotNext pairs only; check the corpus format "
                "(--corpus_format) and the documents' lengths."
            )
        if cfg.data_format == "sop":
            # All of an SOP instance comes from its own document: what is not in one was left unused.
            used = int(lengths.sum()) - template.pair_specials * len(lengths) + truncated
            entry["unused_tokens"] = split_tokens * cfg.dupe_factor - used
    else:
        separators = 0
        if cfg.data_format == "full-sentences":
            separators = int((table["last_doc_index"].to_numpy() - table["doc_index"].to_numpy()).sum())
        used = int(lengths.sum()) - template.single_specials * len(lengths) - separators
        entry["document_separators"] = separators
        entry["unused_tokens"] = split_tokens * cfg.dupe_factor - used
    if split == "validation" and len(table) < MIN_EVAL_EXAMPLES:
        warnings.append(
            f"validation: {len(table)} instances from {len(rows)} documents: too few to measure much (a 95% "
            f"interval on an accuracy is about +-{196 * (0.25 / max(len(table), 1)) ** 0.5:.0f} points). Use a "
            "larger corpus or --validation_fraction."
        )
    return entry


def build_report(builder, dataset_dict) -> dict[str, Any]:
    """Statistics of a build, from the builder's tokenized documents and the built splits.

    Args:
        builder (`PretrainingDataBuilder`): The builder that made `dataset_dict`.
        dataset_dict (`datasets.DatasetDict`): The built splits.

    Returns:
        `dict`: ``source``; ``corpus`` (documents read, used and skipped by reason; files ignored; sentences;
        tokens; unknown tokens and their rate; sentences cut because they were longer than an instance;
        sentences that tokenized to nothing); per split: documents, instances, label balance, short-target
        rate, truncated tokens, tokens left unused, unknown-token rate, mean length and a length histogram;
        and ``warnings``, the lines a user should read before training.
    """
    config = builder.config
    tokenized = builder.tokenized_documents()
    cfg = config.instances
    # The tokenizer's own count of special tokens (RoBERTa's pair template has four, BERT's three).
    template = SequenceTemplate.of(builder.tokenizer)
    docs = tokenized.with_format("arrow")[:]
    n_sentences = _lengths(docs["sentence_lengths"])
    n_tokens = _lengths(docs["input_ids"])
    unk = docs["unk_tokens"].to_numpy().astype(np.int64)
    skipped_reasons = docs["skipped"].to_pylist()
    skipped = Counter(s for s in skipped_reasons if s)
    no_tokens = int(((n_sentences == 0) & np.array([not s for s in skipped_reasons], dtype=bool)).sum())
    usable = n_sentences > 0
    warnings: list[str] = []
    source = describe_source(config.source)
    report: dict[str, Any] = {
        "format": cfg.data_format,
        "source": source,
        "settings": {
            "max_seq_length": cfg.max_seq_length,
            "short_seq_prob": cfg.short_seq_prob,
            "short_seq_mode": cfg.short_seq_mode,
            "nsp_probability": cfg.nsp_probability,
            "dupe_factor": cfg.dupe_factor,
            "seed": cfg.instance_seed,
            "validation_fraction": config.split.validation_fraction,
            "split_seed": config.split.split_seed,
            "pool_size": config.pools.pool_size,
            "pool_order": config.pools.pool_order,
            "shard": f"{config.pools.shard_index}/{config.pools.num_shards}",
        },
        "corpus": {
            "documents_read": len(docs),
            "documents_used": int(usable.sum()),
            "documents_skipped": dict(sorted(skipped.items())) | ({"no tokens": no_tokens} if no_tokens else {}),
            "sentences": int(n_sentences.sum()),
            "tokens": int(n_tokens.sum()),
            "unknown_tokens": int(unk.sum()),
            "unknown_token_rate": round(float(unk.sum() / max(n_tokens.sum(), 1)), 5),
            "sentences_cut_too_long": int(np.asarray(docs["sentences_split"]).sum()),
            "sentences_empty_after_tokenization": int(np.asarray(docs["sentences_empty"]).sum()),
        },
        "splits": {},
    }
    for split, dataset in dataset_dict.items():
        rows = builder.split_order(split)
        report["splits"][split] = _split_entry(split, dataset, rows, n_tokens, unk, cfg, template, warnings)
    ignored = ignored_files(config.source)
    report["corpus"]["files_ignored"] = ignored
    if ignored:
        warnings.insert(0, f"{len(ignored)} file(s) ignored as hidden or Spark/Hadoop markers: {ignored[:3]}")
    report["warnings"] = warnings
    return report


def format_report(report: dict[str, Any]) -> str:
    """The report as readable text (the CLI prints it); ``json.dumps(report)`` is the machine form."""
    lines = [f"nsptask build report: format {report['format']}, corpus {report.get('source', '?')}"]
    lines.append("settings: " + ", ".join(f"{k}={v}" for k, v in report["settings"].items()))
    c = report["corpus"]
    lines.append(
        f"corpus: {c['documents_read']} documents read, {c['documents_used']} used, {c['sentences']} sentences, "
        f"{c['tokens']} tokens ({c.get('unknown_token_rate', 0):.2%} unknown)"
    )
    lines.append(f"  skipped documents: {json.dumps(c['documents_skipped']) if c['documents_skipped'] else 'none'}")
    if c.get("files_ignored"):
        lines.append(f"  files ignored (hidden or Spark/Hadoop markers): {len(c['files_ignored'])}")
    lines.append(
        f"  sentences cut (longer than an instance): {c['sentences_cut_too_long']}; "
        f"sentences with no tokens (dropped): {c['sentences_empty_after_tokenization']}"
    )
    for split, s in report["splits"].items():
        lines.append(
            f"{split}: {s['documents']} documents -> {s['instances']} instances, mean length {s['mean_length']}"
        )
        if "labels" in s:
            lines.append(
                f"  labels {json.dumps(s['labels'])} (balance {s['label_balance']}), short targets "
                f"{s['short_target_rate']}, truncated tokens {s['truncated_tokens']}"
            )
        extra = {k: s[k] for k in ("unused_tokens", "document_separators") if k in s}
        if extra:
            lines.append("  " + ", ".join(f"{k} {v}" for k, v in extra.items()))
        lines.append("  lengths: " + ", ".join(f"{k}: {v}" for k, v in s["length_histogram"].items()))
    for warning in report.get("warnings", []):
        lines.append(f"WARNING: {warning}")
    return "\n".join(lines)
