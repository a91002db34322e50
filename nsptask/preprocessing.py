"""Batched, pure, module-level preprocessing functions for ``datasets.Dataset.map``, and the keys that
decide where a document goes.

Bind their options with ``functools.partial`` so that ``num_proc`` pickles them and the ``datasets``
fingerprint cache recognises a repeated call::

    from functools import partial
    tokenized = documents.map(
        partial(tokenize_documents, tokenizer=tokenizer, max_sentence_tokens=125),
        batched=True, remove_columns=documents.column_names, desc="Tokenizing",
    )

Every document carries ``doc_key``, a 64-bit hash of its id. The train/validation split
(:func:`is_validation_document`) and the seeded shuffle of documents before pooling (:func:`order_keys`)
are functions of that key and a seed, computed the same way by every engine (one process, ``num_proc``
processes, a Dask cluster), so a document's split and pool never depend on where or how it was read.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .tokenization import encode_flat, needs_prefix_space

__all__ = [
    "tokenize_documents",
    "document_key",
    "is_validation_document",
    "validation_flags",
    "order_keys",
    "salted_keys",
    "TOKENIZED_COLUMNS",
]

TOKENIZED_COLUMNS = (
    "doc_id",
    "doc_key",
    "input_ids",
    "sentence_lengths",
    "skipped",
    "sentences_split",
    "sentences_empty",
    "unk_tokens",
    "text_hash",
)

_MASK64 = (1 << 64) - 1


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def document_key(doc_id: str) -> int:
    """The 64-bit key of a document id (BLAKE2b)."""
    return _hash64(doc_id)


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _splitmix64_array(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x += np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def salted_keys(keys: np.ndarray, seed: int, salt: str) -> np.ndarray:
    """64-bit values of document keys mixed with a seed and a purpose (`salt`): independent random numbers per
    document for each use (the split, the shuffle before pooling, a task's split)."""
    return _splitmix64_array(np.asarray(keys, dtype=np.uint64) ^ np.uint64(_hash64(f"{salt}:{seed}")))


def is_validation_document(doc_id: str, validation_fraction: float, split_seed: int) -> bool:
    """Whether a document belongs to the validation split: a hash of its id and the split seed, so the split
    is the same in streaming and in-memory builds, on any number of processes or machines, and a document is
    never in both."""
    if validation_fraction <= 0:
        return False
    value = _splitmix64(document_key(doc_id) ^ _hash64(f"split:{split_seed}"))
    return value / 2**64 < validation_fraction


def validation_flags(doc_keys: np.ndarray, validation_fraction: float, split_seed: int) -> np.ndarray:
    """:func:`is_validation_document` for an array of document keys, vectorised."""
    keys = np.asarray(doc_keys, dtype=np.uint64)
    if validation_fraction <= 0:
        return np.zeros(len(keys), dtype=bool)
    values = salted_keys(keys, split_seed, "split")
    # value / 2**64 < fraction  <=>  value < fraction * 2**64 (as float64: the same rounding as the scalar form)
    return values.astype(np.float64) / 2.0**64 < validation_fraction


def order_keys(doc_keys: np.ndarray, seed: int) -> np.ndarray:
    """Sort keys of the seeded global shuffle of documents before pooling: documents are pooled in the order
    of these keys (a random permutation that depends only on the seed and the document ids)."""
    return salted_keys(doc_keys, seed, "pool")


@contextmanager
def tokenizer_threads(single: bool) -> Iterator[None]:
    """Let the Rust tokenizer use its own threads (`single=False`) or one thread only: a build with
    ``num_proc`` processes gives each process one core, so their tokenizers must not spawn threads of their
    own (no oversubscription)."""
    if not single:
        yield
        return
    previous = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = previous


def tokenize_documents(
    batch: dict[str, list],
    *,
    tokenizer: Any,
    max_sentence_tokens: int,
    backend: str = "hf",
) -> dict[str, list]:
    """Tokenize a batch of documents sentence by sentence (batched map function).

    Sentences are encoded as the tokenizer encodes running text: for byte-level BPE (RoBERTa), a sentence
    that follows another one in its document keeps its leading space (``'ĠThe'``), so instances hold the
    tokens the model sees when the same text is encoded whole. Sentences longer than `max_sentence_tokens`
    are cut into pieces of at most that many tokens, and sentences that tokenize to nothing are dropped; both
    are counted per document (``sentences_split``, ``sentences_empty``), as are unknown tokens
    (``unk_tokens``), so the build report accounts for them.

    Args:
        batch (`dict[str, list]`): Columns ``doc_id``, ``sentences``, ``skipped`` of the document dataset.
        tokenizer (`PreTrainedTokenizerFast`): Fast tokenizer; special tokens are not added here.
        max_sentence_tokens (`int`): Longest sentence kept whole.
        backend (`str`, *optional*, defaults to `"hf"`): ``"hf"`` (the tokenizer's Rust backend) or ``"tokie"``
            (optional fast path with identical ids, checked by a parity test).

    Returns:
        `dict[str, list]` with ``doc_id``, ``doc_key`` (64-bit hash of the id), ``input_ids`` (flat ids of the
        document), ``sentence_lengths``, ``skipped``, ``sentences_split``, ``sentences_empty``,
        ``unk_tokens`` and ``text_hash`` (64-bit hash of the document's text, for leak checks).
    """
    doc_sentences = batch["sentences"]
    prefix = needs_prefix_space(tokenizer)
    if prefix:
        flat = [(" " + s if i else s) for sentences in doc_sentences for i, s in enumerate(sentences)]
    else:
        flat = [s for sentences in doc_sentences for s in sentences]
    # "tokie" is checked against hf on its first batch too: a difference is an error, never other ids.
    ids, lengths = encode_flat(tokenizer, flat, "tokie-checked" if backend == "tokie" else backend)
    bounds = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=bounds[1:])
    unk_id = tokenizer.unk_token_id
    out_ids, out_lengths, n_split, n_empty, n_unk = [], [], [], [], []
    k = 0
    for sentences in doc_sentences:
        n = len(sentences)
        doc_lengths = lengths[k : k + n]
        doc_ids = ids[bounds[k] : bounds[k + n]]
        out_ids.append(doc_ids)
        n_unk.append(int((doc_ids == unk_id).sum()) if unk_id is not None else 0)
        if n and int(doc_lengths.max()) > max_sentence_tokens:
            kept: list[int] = []
            split = 0
            for length in doc_lengths.tolist():
                if length > max_sentence_tokens:
                    pieces, rest = divmod(length, max_sentence_tokens)
                    kept.extend([max_sentence_tokens] * pieces + ([rest] if rest else []))
                    split += 1
                elif length:
                    kept.append(length)
        else:
            kept = doc_lengths[doc_lengths > 0].tolist()
            split = 0
        out_lengths.append(kept)
        n_split.append(split)
        n_empty.append(int((doc_lengths == 0).sum()))
        k += n
    return {
        "doc_id": batch["doc_id"],
        "doc_key": [document_key(d) for d in batch["doc_id"]],
        "input_ids": out_ids,
        "sentence_lengths": out_lengths,
        "skipped": batch["skipped"],
        "sentences_split": n_split,
        "sentences_empty": n_empty,
        "unk_tokens": n_unk,
        "text_hash": [_hash64("\n".join(s)) for s in doc_sentences],
    }
