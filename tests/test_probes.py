"""Corpus probes built from real held-out text: what each example is, no document in two task splits, the labels'
balance, the references without a model, and segment tagging scored so that one wrong sentence costs one entity."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from conftest import find

from nsptask.arguments import DataArguments
from nsptask.downstream import task_documents
from nsptask.probes import (
    SEGMENT_LABELS,
    _r_f1,
    build_probe,
    decode_sentences,
    overlap_predictions,
    segment_baselines,
    word_tag_rows,
)

LENGTH = 128


@pytest.fixture(scope="module")
def documents(tokenizer):
    return task_documents(DataArguments.from_options(max_seq_length=LENGTH), tokenizer)


@pytest.fixture(scope="module")
def probes(documents, tokenizer):
    names = (
        "sentence-position",
        "coherence-other-document",
        "coherence-same-document",
        "connective",
        "segment-tagging",
    )
    return {name: build_probe(name, documents, tokenizer, LENGTH, 12345) for name in names}


def _doc_tokens(documents) -> dict:
    return {split: dict(zip(d["doc_id"], d["input_ids"])) for split, d in documents.items()}


def _sentences(ids, tokenizer) -> list[np.ndarray]:
    """The sentences of ``[CLS] s1 [SEP] s2 [SEP] ...``."""
    ids = np.asarray(ids)
    seps = np.flatnonzero(ids == tokenizer.sep_token_id)
    starts = [1, *(seps[:-1] + 1)]
    return [ids[a:b] for a, b in zip(starts, seps)]


@pytest.mark.parametrize(
    "name",
    ["sentence-position", "coherence-other-document", "coherence-same-document", "connective", "segment-tagging"],
)
def test_no_document_is_in_two_task_splits_on_either_side(probes, name):
    data = probes[name]
    train = set(data["train"]["a_doc"]) | set(data["train"]["b_doc"])
    test = set(data["test"]["a_doc"]) | set(data["test"]["b_doc"])
    assert not train & test
    assert len(data["train"]) > 50 and len(data["test"]) > 20


def test_sentence_position_moves_one_of_five_consecutive_sentences_to_the_front(probes, documents, tokenizer):
    data, tokens = probes["sentence-position"]["train"], _doc_tokens(documents)["train"]
    counts = Counter(data["labels"])
    assert set(counts) == set(range(5)) and max(counts.values()) / len(data) < 0.3  # near 1/5 each
    for row in data.select(range(100)):
        shown = _sentences(row["input_ids"], tokenizer)
        assert len(shown) == 5 and row["a_doc"] == row["b_doc"]
        doc = np.asarray(tokens[row["a_doc"]])
        starts = [find(doc, s)[0] for s in shown]  # every sentence (maybe cut short) is the document's own
        moved = row["labels"]
        order = starts[1 : moved + 1] + [starts[0]] + starts[moved + 1 :]
        assert order == sorted(order)  # put back at its label's position, the five are in document order
        assert row["token_type_ids"][: len(shown[0]) + 2] == [0] * (len(shown[0]) + 2)


def _sentence_index(documents, split: str) -> dict:
    """Per document: a function from a token run to the index of the document sentence it starts."""
    out = {}
    for doc_id, ids, lengths in zip(
        documents[split]["doc_id"], documents[split]["input_ids"], documents[split]["sentence_lengths"]
    ):
        bounds = np.cumsum([0, *lengths])
        doc = np.asarray(ids)
        out[doc_id] = lambda run, doc=doc, bounds=bounds: [int(np.searchsorted(bounds, p)) for p in find(doc, run)]
    return out


@pytest.mark.parametrize("same", [False, True])
def test_coherence_replaces_one_sentence_from_another_or_a_far_part_of_the_document(probes, documents, tokenizer, same):
    data = probes["coherence-same-document" if same else "coherence-other-document"]["train"]
    index = _sentence_index(documents, "train")
    names = data.features["labels"].names
    labels = np.asarray(data["labels"])
    assert 0.4 < labels.mean() < 0.6  # balanced
    for row in data.select(range(150)):
        shown = _sentences(row["input_ids"], tokenizer)
        assert len(shown) == 6
        found = [index[row["a_doc"]](s) for s in shown]  # document sentences each shown sentence starts
        if names[row["labels"]] == "coherent":
            assert row["b_doc"] == row["a_doc"]
            first = found[0][0]
            assert all(first + k in f for k, f in enumerate(found))  # six consecutive sentences
        elif same:
            assert row["b_doc"] == row["a_doc"] and all(found)
            runs = [min(f) for f in found]
            assert sorted(np.diff(sorted(runs)))[-1] >= 3  # one of them from at least three sentences away
        else:
            assert row["b_doc"] != row["a_doc"]
            foreign = [s for s, f in zip(shown, found) if not f]
            assert len(foreign) == 1 and index[row["b_doc"]](foreign[0])


@pytest.mark.parametrize("name", ["coherence-other-document", "coherence-same-document", "sentence-position"])
def test_the_word_overlap_reference_is_fit_on_train_and_predicts_every_test_example(probes, name):
    """The topic reference (no model): a replaced sentence shares fewer word pieces with its window than the
    sentences it replaced (the feature carries the cue), and the fitted rule gives one label per test example."""
    train, test = probes[name]["train"], probes[name]["test"]
    predictions = overlap_predictions(train, test)
    assert len(predictions) == len(test) and set(predictions) <= set(range(len(train.features["labels"].names)))
    assert len(set(predictions)) > 1  # not a constant: the features separate something
    if name.startswith("coherence"):
        features, labels = np.asarray(train["overlap_features"]), np.asarray(train["labels"])
        replaced = train.features["labels"].names.index("replaced")
        assert features[labels == replaced, 0].mean() < features[labels != replaced, 0].mean()


def test_connective_is_removed_and_is_the_label(probes, documents, tokenizer):
    data = probes["connective"]
    names = data["train"].features["labels"].names
    assert len(names) == 5 and all(n.islower() for n in names)
    counts = Counter(data["train"]["labels"])
    assert sum(counts.values()) == len(data["train"]) and data.dropped["train"] > 0  # rarer connectives: counted
    tokens = _doc_tokens(documents)["train"]
    whole = data["train"].filter(lambda row: row["truncated"] == 0)  # a cut first sentence hides where it ended
    assert len(whole) >= 0.8 * len(data["train"])
    for row in whole.select(range(min(60, len(whole)))):
        first, rest = _sentences(row["input_ids"], tokenizer)
        doc = np.asarray(tokens[row["a_doc"]])
        following = doc[find(doc, first)[0] + len(first) :]
        removed = following[: find(following[:80], rest)[0]]  # what the probe cut from the second sentence
        assert tokenizer.decode(removed).lower().strip(" ,") == names[row["labels"]]


def test_segment_tagging_windows_are_whole_sentences_with_every_boundary_visible(probes, documents, tokenizer):
    data, tokens = probes["segment-tagging"]["train"], _doc_tokens(documents)["train"]
    switched = np.asarray(data["switch"]) >= 0
    assert 0.3 < switched.mean() < 0.6
    for row in data.select(range(150)):
        shown = _sentences(row["input_ids"], tokenizer)
        assert len(shown) == len(row["sentence_words"])
        labels = [SEGMENT_LABELS[i] if i >= 0 else None for i in row["labels"]]
        for k, sentence in enumerate(shown):
            source = row["b_doc"] if 0 <= row["switch"] <= k else row["a_doc"]
            found = find(np.asarray(tokens[source]), sentence)
            assert found, (k, row["switch"])
        starts = [k for k, tag in enumerate(labels) if tag and tag.startswith("B-")]
        assert len(starts) == len(shown)  # one B- per sentence, on its first word
        assert [labels[s][2:] for s in starts] == ["R" if 0 <= row["switch"] <= k else "L" for k in range(len(shown))]


def test_one_wrong_sentence_costs_one_entity_however_its_words_are_tagged():
    truth = [word_tag_rows([3, 4, 2], switch=2)]  # L L R
    assert truth == [["B-L", "I-L", "I-L", "B-L", "I-L", "I-L", "I-L", "B-R", "I-R"]]
    # The second sentence mostly tagged R, one of its words L: the sentence reads R, one entity wrong.
    words = [["B-L", "I-L", "I-L", "B-R", "I-R", "I-L", "I-R", "B-R", "I-R"]]
    decoded = decode_sentences(truth, words)
    assert decoded == [["B-L", "I-L", "I-L", "B-R", "I-R", "I-R", "I-R", "B-R", "I-R"]]
    from seqeval.metrics.sequence_labeling import get_entities

    true_entities, predicted = set(get_entities(truth[0])), set(get_entities(decoded[0]))
    assert len(true_entities - predicted) == 1 and len(predicted - true_entities) == 1  # one FN, one FP
    assert _r_f1(truth, decoded) == pytest.approx(2 * 1 / (2 * 1 + 1 + 0))


def test_segment_baselines_predicting_nothing_no_longer_wins(probes):
    """All-L finds no R sentence (R F1 0), and its overall F1 is its L share, not the old near-half; the overlap rule
    and the position prior, fit on the training windows, are the references to beat."""
    from nsptask.token_classification import seqeval_scores

    train, test = probes["segment-tagging"]["train"], probes["segment-tagging"]["test"]
    truth = [word_tag_rows(w, s) for w, s in zip(test["sentence_words"], test["switch"])]
    rows = segment_baselines(train, test)
    assert _r_f1(truth, rows["all-L"]) == 0
    scores = {name: _r_f1(truth, predicted) for name, predicted in rows.items()}
    assert scores["overlap rule"] > scores["position prior"] > 0.3, scores
    all_l = seqeval_scores(truth, rows["all-L"])
    assert all_l["per_type"]["R"]["f1-score"] == 0 and all_l["per_type"]["R"]["support"] > 100


def test_segment_baseline_fit_by_sentence_scores_as_by_word(probes):
    """The baselines are fit on one tag per sentence (fast); every sentence is one entity either way, so any switch
    choice scores the same R F1 as on the word rows the test split is scored on."""
    train = probes["segment-tagging"]["train"]
    words, switches = list(train["sentence_words"]), list(train["switch"])
    for choice in ([1 if len(w) > 1 else -1 for w in words], [len(w) - 1 for w in words], [-1] * len(words)):
        by_word = _r_f1(
            [word_tag_rows(w, s) for w, s in zip(words, switches)], [word_tag_rows(w, s) for w, s in zip(words, choice)]
        )
        by_sentence = _r_f1(
            [word_tag_rows([1] * len(w), s) for w, s in zip(words, switches)],
            [word_tag_rows([1] * len(w), s) for w, s in zip(words, choice)],
        )
        assert by_word == pytest.approx(by_sentence)
    assert any(sum(w) > len(w) for w in words)  # the word rows are longer: the check is not trivial
