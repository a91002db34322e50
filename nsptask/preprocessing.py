"""Batched, pure, module-level preprocessing functions for ``datasets.Dataset.map``.

Bind their options with ``functools.partial`` so that ``num_proc`` pickles them and the ``datasets``
fingerprint cache recognises a repeated call::

    from functools import partial
    tokenized = documents.map(
        partial(tokenize_documents, tokenizer=tokenizer, max_sentence_tokens=125),
        batched=True, remove_columns=documents.column_names, desc="Tokenizing",
    )
"""

from __future__ import annotations

import hashlib
import weakref
from typing import Any

import numpy as np

__all__ = ["tokenize_documents", "validation_flags", "is_validation_document", "TOKENIZED_COLUMNS"]

TOKENIZED_COLUMNS = (
    "doc_id",
    "input_ids",
    "sentence_lengths",
    "skipped",
    "is_validation",
    "sentences_split",
    "sentences_empty",
)


def is_validation_document(doc_id: str, validation_fraction: float, split_seed: int) -> bool:
    """Whether a document belongs to the validation split: a hash of its id, so the split is the same in
    streaming and in-memory builds, on any number of processes, and a document is never in both."""
    if validation_fraction <= 0:
        return False
    digest = hashlib.blake2b(f"{split_seed}\0{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64 < validation_fraction


def validation_flags(doc_ids: list[str], validation_fraction: float, split_seed: int) -> list[bool]:
    return [is_validation_document(d, validation_fraction, split_seed) for d in doc_ids]


_PLAIN_BACKENDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def plain_backend(tokenizer: Any):
    """A copy of the tokenizer's Rust backend with truncation and padding off.

    A fast tokenizer keeps the truncation and padding of its last ``tokenizer(..., truncation=True,
    max_length=...)`` call in its backend; encoding corpus sentences with that backend directly would cut
    them silently. The copy is made once per tokenizer.
    """
    backend = _PLAIN_BACKENDS.get(tokenizer)
    if backend is None:
        from tokenizers import Tokenizer

        backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        backend.no_truncation()
        backend.no_padding()
        _PLAIN_BACKENDS[tokenizer] = backend
    return backend


def _encode(tokenizer: Any, sentences: list[str], backend: str) -> tuple[np.ndarray, np.ndarray]:
    """Flat token ids and per-sentence lengths, without special tokens."""
    if not sentences:
        return np.zeros(0, np.int32), np.zeros(0, np.int64)
    if backend == "tokie":
        from .tokenization import TokieEncoder

        encoder = _TOKIE_CACHE.get(tokenizer)
        if encoder is None:
            encoder = _TOKIE_CACHE[tokenizer] = TokieEncoder(tokenizer)
        ids, lengths = encoder.encode_flat(sentences)
        return ids.astype(np.int32), lengths.astype(np.int64)
    encodings = plain_backend(tokenizer).encode_batch_fast(sentences, add_special_tokens=False)
    lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
    ids = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int32, count=int(lengths.sum()))
    return ids, lengths


_TOKIE_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def tokenize_documents(
    batch: dict[str, list],
    *,
    tokenizer: Any,
    max_sentence_tokens: int,
    validation_fraction: float = 0.0,
    split_seed: int = 0,
    backend: str = "hf",
) -> dict[str, list]:
    """Tokenize a batch of documents sentence by sentence (batched map function).

    Sentences longer than `max_sentence_tokens` are cut into pieces of at most that many tokens, and
    sentences that tokenize to nothing are dropped; both are counted per document
    (``sentences_split``, ``sentences_empty``), so the build report accounts for them.

    Args:
        batch (`dict[str, list]`): Columns ``doc_id``, ``sentences``, ``skipped`` of the document dataset.
        tokenizer (`PreTrainedTokenizerFast`): Fast tokenizer; special tokens are not added here.
        max_sentence_tokens (`int`): Longest sentence kept whole.
        validation_fraction (`float`, *optional*, defaults to 0.0): Share of documents for validation.
        split_seed (`int`, *optional*, defaults to 0): Seed of the document-level split.
        backend (`str`, *optional*, defaults to `"hf"`): ``"hf"`` (the tokenizer's Rust backend) or ``"tokie"``
            (optional fast path with identical ids, checked by a parity test).

    Returns:
        `dict[str, list]` with ``doc_id``, ``input_ids`` (flat ids of the document), ``sentence_lengths``,
        ``skipped``, ``is_validation``, ``sentences_split``, ``sentences_empty``.
    """
    doc_sentences = batch["sentences"]
    flat = [s for sentences in doc_sentences for s in sentences]
    ids, lengths = _encode(tokenizer, flat, backend)
    bounds = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=bounds[1:])
    out_ids, out_lengths, n_split, n_empty = [], [], [], []
    k = 0
    for sentences in doc_sentences:
        n = len(sentences)
        doc_lengths = lengths[k : k + n]
        out_ids.append(ids[bounds[k] : bounds[k + n]])
        kept: list[int] = []
        split = 0
        for length in doc_lengths.tolist():
            if length > max_sentence_tokens:
                pieces, rest = divmod(length, max_sentence_tokens)
                kept.extend([max_sentence_tokens] * pieces + ([rest] if rest else []))
                split += 1
            elif length:
                kept.append(length)
        out_lengths.append(kept)
        n_split.append(split)
        n_empty.append(int((doc_lengths == 0).sum()))
        k += n
    return {
        "doc_id": batch["doc_id"],
        "input_ids": out_ids,
        "sentence_lengths": out_lengths,
        "skipped": batch["skipped"],
        "is_validation": validation_flags(batch["doc_id"], validation_fraction, split_seed),
        "sentences_split": n_split,
        "sentences_empty": n_empty,
    }
