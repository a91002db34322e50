"""The build report: what was read, what was made, and everything that was skipped, with the reason."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np

from .instances import PAIR_FORMATS, InstanceConfig

__all__ = ["build_report", "format_report", "length_histogram"]


def length_histogram(lengths: np.ndarray, max_seq_length: int, bins: int = 8) -> dict[str, int]:
    """Counts of instance lengths in `bins` equal ranges of ``1..max_seq_length``."""
    edges = np.linspace(0, max_seq_length, bins + 1).round().astype(int)
    counts, _ = np.histogram(lengths, bins=edges)
    return {f"{edges[i] + 1}-{edges[i + 1]}": int(c) for i, c in enumerate(counts)}


def _lengths(column) -> np.ndarray:
    import pyarrow.compute as pc

    return pc.list_value_length(column).to_numpy(zero_copy_only=False).astype(np.int64)


def build_report(tokenized, dataset_dict, config) -> dict[str, Any]:
    """Statistics of a build, from the tokenized documents and the built splits.

    Args:
        tokenized (`datasets.Dataset`): Output of ``PretrainingDataBuilder.tokenized_documents()``.
        dataset_dict (`datasets.DatasetDict`): The built splits.
        config (`PretrainingConfig`): The build's configuration.

    Returns:
        `dict`: ``corpus`` (documents read, used and skipped by reason; sentences; tokens; sentences cut
        because they were longer than an instance; sentences that tokenized to nothing) and, per split,
        documents, instances, label balance, short-target rate, truncated tokens, tokens left unused,
        mean length and a length histogram.
    """
    cfg: InstanceConfig = config.instance_config
    docs = tokenized.with_format("arrow")[:]
    n_sentences = _lengths(docs["sentence_lengths"])
    n_tokens = _lengths(docs["input_ids"])
    skipped = Counter(s for s in docs["skipped"].to_pylist() if s)
    no_tokens = int(((n_sentences == 0) & np.array([not s for s in docs["skipped"].to_pylist()], dtype=bool)).sum())
    is_validation = docs["is_validation"].to_numpy(zero_copy_only=False)
    usable = n_sentences > 0
    report: dict[str, Any] = {
        "format": cfg.format,
        "settings": {
            "max_seq_length": cfg.max_seq_length,
            "short_seq_prob": cfg.short_seq_prob,
            "short_seq_mode": cfg.short_seq_mode,
            "nsp_probability": cfg.nsp_probability,
            "dupe_factor": cfg.dupe_factor,
            "seed": cfg.seed,
            "validation_fraction": config.validation_fraction,
            "pool_size": config.pool_size,
            "shard": f"{config.shard_index}/{config.num_shards}",
        },
        "corpus": {
            "documents_read": len(docs),
            "documents_used": int(usable.sum()),
            "documents_skipped": dict(sorted(skipped.items())) | ({"no tokens": no_tokens} if no_tokens else {}),
            "sentences": int(n_sentences.sum()),
            "tokens": int(n_tokens.sum()),
            "sentences_cut_too_long": int(np.asarray(docs["sentences_split"]).sum()),
            "sentences_empty_after_tokenization": int(np.asarray(docs["sentences_empty"]).sum()),
        },
        "splits": {},
    }
    for split, dataset in dataset_dict.items():
        in_split = usable & (is_validation == (split == "validation"))
        table = dataset.with_format("arrow")[:]
        lengths = _lengths(table["input_ids"]) if len(table) else np.zeros(0, np.int64)
        entry: dict[str, Any] = {
            "documents": int(in_split.sum()),
            "source_tokens": int(n_tokens[in_split].sum()),
            "instances": len(table),
            "instance_tokens": int(lengths.sum()),
            "mean_length": round(float(lengths.mean()), 2) if len(lengths) else 0.0,
            "padding_free_fill": round(float(lengths.mean()) / cfg.max_seq_length, 4) if len(lengths) else 0.0,
            "longest": int(lengths.max()) if len(lengths) else 0,
            "length_histogram": length_histogram(lengths, cfg.max_seq_length),
        }
        if cfg.format in PAIR_FORMATS:
            labels = table[cfg.label_column].to_numpy()
            names = dataset.features[cfg.label_column].names
            entry["labels"] = {name: int((labels == i).sum()) for i, name in enumerate(names)}
            entry["label_balance"] = round(float(labels.mean()), 4) if len(labels) else 0.0
            entry["short_target_rate"] = round(float(table["short_target"].to_numpy(zero_copy_only=False).mean()), 4)
            truncated = int(np.asarray(table["truncated_tokens"]).sum())
            entry["truncated_tokens"] = truncated
            if cfg.format == "sop":
                # All of an SOP instance comes from its own document: what is not in one was left unused.
                used = int(lengths.sum()) - 3 * len(lengths) + truncated
                entry["unused_tokens"] = int(n_tokens[in_split].sum()) * cfg.dupe_factor - used
        else:
            separators = 0
            if cfg.format == "full-sentences":
                separators = int((table["last_doc_index"].to_numpy() - table["doc_index"].to_numpy()).sum())
            used = int(lengths.sum()) - 2 * len(lengths) - separators
            entry["document_separators"] = separators
            entry["unused_tokens"] = int(n_tokens[in_split].sum()) * cfg.dupe_factor - used
        report["splits"][split] = entry
    return report


def format_report(report: dict[str, Any]) -> str:
    """The report as readable text (the CLI prints it); ``json.dumps(report)`` is the machine form."""
    lines = [f"nsptask build report: format {report['format']}"]
    lines.append("settings: " + ", ".join(f"{k}={v}" for k, v in report["settings"].items()))
    c = report["corpus"]
    lines.append(
        f"corpus: {c['documents_read']} documents read, {c['documents_used']} used, {c['sentences']} sentences, "
        f"{c['tokens']} tokens"
    )
    lines.append(f"  skipped documents: {json.dumps(c['documents_skipped']) if c['documents_skipped'] else 'none'}")
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
    return "\n".join(lines)
