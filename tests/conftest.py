"""Shared fixtures. Nothing in the tests may reach the Hugging Face Hub."""

from __future__ import annotations

import os
import tempfile

_CACHE = tempfile.mkdtemp(prefix="nsptask-tests-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("NSPTASK_CACHE", os.path.join(_CACHE, "nsptask"))
os.environ["HF_DATASETS_CACHE"] = os.path.join(_CACHE, "datasets")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tokenizer():
    from nsptask.tokenization import default_tokenizer

    return default_tokenizer()


@pytest.fixture(scope="session")
def bundled_tokenized(tokenizer):
    """Tokenized documents of the bundled corpus (all of them, with split flags)."""
    from nsptask.builder import PretrainingDataBuilder

    builder = PretrainingDataBuilder(config_name="nsp", tokenizer=tokenizer)
    return builder.tokenized_documents()


def split_documents(tokenized, split: str) -> list[np.ndarray]:
    """Token arrays of a split's usable documents, indexed like the instances' doc_index."""
    rows = [
        np.asarray(r["input_ids"], np.int32)
        for r in tokenized
        if r["is_validation"] == (split == "validation") and len(r["sentence_lengths"]) > 0
    ]
    return rows


def find(haystack: np.ndarray, needle: np.ndarray) -> list[int]:
    """All start positions of `needle` as a contiguous run in `haystack`."""
    if len(needle) == 0 or len(needle) > len(haystack):
        return []
    windows = np.lib.stride_tricks.sliding_window_view(haystack, len(needle))
    candidates = np.flatnonzero(windows[:, 0] == needle[0])
    return [int(c) for c in candidates if np.array_equal(windows[c], needle)]


def segments(input_ids, sep_id: int) -> tuple[np.ndarray, np.ndarray]:
    """A and B of a ``[CLS] A [SEP] B [SEP]`` instance."""
    ids = np.asarray(input_ids, np.int32)
    first_sep = int(np.flatnonzero(ids == sep_id)[0])
    return ids[1:first_sep], ids[first_sep + 1 : -1]
