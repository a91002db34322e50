"""Properties of the instance algorithms, checked on the bundled Wikipedia corpus."""

from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import find, segments, split_documents

from nsptask import build_pretraining_dataset
from nsptask.instances import trimmed_lengths


@pytest.fixture(scope="module")
def nsp_data(tokenizer):
    return build_pretraining_dataset(data_format="nsp", tokenizer=tokenizer)


def _google_truncate_lengths(len_a: int, len_b: int, max_num_tokens: int) -> tuple[int, int]:
    """Google's truncate_seq_pair loop, on lengths."""
    while len_a + len_b > max_num_tokens:
        if len_a > len_b:
            len_a -= 1
        else:
            len_b -= 1
    return len_a, len_b


def test_trimmed_lengths_equal_googles_truncation_loop():
    rng = random.Random(0)
    for _ in range(5000):
        a, b, m = rng.randint(1, 300), rng.randint(1, 300), rng.randint(2, 300)
        assert trimmed_lengths(a, b, m) == _google_truncate_lengths(a, b, m)


@pytest.mark.parametrize("fmt", ["nsp", "sentence-pair", "sop", "full-sentences", "doc-sentences"])
def test_no_instance_longer_than_max_seq_length(tokenizer, fmt):
    data = build_pretraining_dataset(data_format=fmt, tokenizer=tokenizer, max_seq_length=64)
    for split in data.values():
        lengths = [len(ids) for ids in split["input_ids"]]
        assert max(lengths) <= 64
        assert min(lengths) >= 3
        first = np.array([ids[0] for ids in split["input_ids"]])
        last = np.array([ids[-1] for ids in split["input_ids"]])
        assert (first == tokenizer.cls_token_id).all() and (last == tokenizer.sep_token_id).all()


def test_nsp_label_balance_is_half_within_three_points(tokenizer):
    # Per-chunk draw of the short target: many draws, so the balance settles near the coin's 0.5.
    data = build_pretraining_dataset(
        data_format="nsp", tokenizer=tokenizer, short_seq_mode="instance", dupe_factor=5, validation_fraction=0
    )
    labels = np.array(data["train"]["next_sentence_label"])
    assert len(labels) > 20_000
    assert abs(labels.mean() - 0.5) <= 0.03


def test_nsp_label_balance_is_half_for_googles_default_without_short_targets(tokenizer):
    data = build_pretraining_dataset(
        data_format="nsp", tokenizer=tokenizer, short_seq_prob=0.0, dupe_factor=5, validation_fraction=0
    )
    labels = np.array(data["train"]["next_sentence_label"])
    assert abs(labels.mean() - 0.5) <= 0.03


def test_short_target_rate_equals_short_seq_prob_over_many_draws(tokenizer):
    # Google's default draws once per (document, dupe): count draws, not instances.
    data = build_pretraining_dataset(
        data_format="nsp", tokenizer=tokenizer, dupe_factor=20, validation_fraction=0, short_seq_prob=0.1
    )
    docs = np.array(data["train"]["doc_index"])
    short = np.array(data["train"]["short_target"])
    run_starts = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]])
    draws = short[run_starts]
    # Within a (document, dupe) run, every instance shares the draw.
    run_ids = np.cumsum(np.r_[True, docs[1:] != docs[:-1]]) - 1
    assert (short == draws[run_ids]).all()
    assert len(draws) == len(set(docs.tolist())) * 20 == 103 * 20
    assert abs(draws.mean() - 0.1) <= 0.02  # 3 standard errors at 2060 draws
    # Per-chunk draw: the rate per instance is the probability.
    data = build_pretraining_dataset(
        data_format="nsp", tokenizer=tokenizer, dupe_factor=5, validation_fraction=0, short_seq_mode="instance"
    )
    assert abs(np.mean(data["train"]["short_target"]) - 0.1) <= 0.01


def test_short_targets_make_shorter_instances(nsp_data):
    train = nsp_data["train"]
    lengths = np.array([len(x) for x in train["input_ids"]])
    short = np.array(train["short_target"])
    assert lengths[short].mean() < lengths[~short].mean() - 20


def test_isnext_b_follows_a_in_the_same_document(nsp_data, bundled_builder, tokenizer):
    docs = split_documents(bundled_builder, "train")
    train = nsp_data["train"].select(range(1500))
    checked = 0
    for row in train:
        if row["next_sentence_label"] != 0:
            continue
        a, b = segments(row["input_ids"], tokenizer.sep_token_id)
        assert row["b_doc_index"] == row["doc_index"]
        doc = docs[row["doc_index"]]
        a_pos, b_pos = find(doc, a), find(doc, b)
        assert a_pos and b_pos
        # B starts after A ends; the gap is what truncation trimmed from A's end and B's front.
        gaps = [bp - (ap + len(a)) for ap in a_pos for bp in b_pos if bp >= ap + len(a)]
        assert gaps and min(gaps) <= row["truncated_tokens"]
        if row["truncated_tokens"] == 0:
            assert min(gaps) == 0
        checked += 1
    assert checked > 500


def test_notnext_b_comes_from_another_document(nsp_data, bundled_builder, tokenizer):
    docs = split_documents(bundled_builder, "train")
    train = nsp_data["train"].select(range(1500))
    checked = 0
    for row in train:
        if row["next_sentence_label"] != 1:
            continue
        a, b = segments(row["input_ids"], tokenizer.sep_token_id)
        assert row["b_doc_index"] != row["doc_index"]
        assert find(docs[row["doc_index"]], a)
        assert find(docs[row["b_doc_index"]], b)
        checked += 1
    assert checked > 500


def test_segments_are_whole_sentences_unless_truncated(nsp_data, bundled_builder, tokenizer):
    rows = bundled_builder.split_documents("train")
    train = nsp_data["train"].select(range(800))
    for row in train:
        if row["truncated_tokens"]:
            continue
        doc = rows[row["doc_index"]]
        bounds = set(np.cumsum([0, *doc["sentence_lengths"]]).tolist())
        a, _ = segments(row["input_ids"], tokenizer.sep_token_id)
        positions = find(np.asarray(doc["input_ids"], np.int32), a)
        assert any(p in bounds and p + len(a) in bounds for p in positions)


def test_token_type_ids_mark_segment_b(nsp_data, tokenizer):
    row = nsp_data["train"][0]
    ids, types = np.array(row["input_ids"]), np.array(row["token_type_ids"])
    first_sep = int(np.flatnonzero(ids == tokenizer.sep_token_id)[0])
    assert (types[: first_sep + 1] == 0).all() and (types[first_sep + 1 :] == 1).all()


def test_sop_swaps_exactly_the_labelled_instances(tokenizer, bundled_builder):
    data = build_pretraining_dataset(data_format="sop", tokenizer=tokenizer)
    docs = split_documents(bundled_builder, "train")
    labels = np.array(data["train"]["sentence_order_label"])
    assert abs(labels.mean() - 0.5) <= 0.03
    for row in data["train"].select(range(1200)):
        first, second = segments(row["input_ids"], tokenizer.sep_token_id)
        assert row["b_doc_index"] == row["doc_index"]
        doc = docs[row["doc_index"]]
        p1, p2 = find(doc, first), find(doc, second)
        in_order = any(q >= p + len(first) for p in p1 for q in p2)
        swapped = any(p >= q + len(second) for p in p1 for q in p2)
        if row["sentence_order_label"] == 0:
            assert in_order
        else:
            assert swapped


def test_sentence_pair_segments_are_single_sentences(tokenizer, bundled_builder):
    data = build_pretraining_dataset(data_format="sentence-pair", tokenizer=tokenizer)
    rows = bundled_builder.split_documents("train")
    labels = np.array(data["train"]["next_sentence_label"])
    assert abs(labels.mean() - 0.5) <= 0.03
    for row in data["train"].select(range(500)):
        if row["truncated_tokens"]:
            continue
        a, b = segments(row["input_ids"], tokenizer.sep_token_id)
        doc_a, doc_b = rows[row["doc_index"]], rows[row["b_doc_index"]]
        assert len(a) in doc_a["sentence_lengths"] and len(b) in doc_b["sentence_lengths"]


@pytest.mark.parametrize("fmt", ["full-sentences", "doc-sentences"])
def test_packed_formats_use_every_token_once_in_corpus_order(tokenizer, bundled_builder, fmt):
    data = build_pretraining_dataset(data_format=fmt, tokenizer=tokenizer, max_seq_length=96)
    docs = split_documents(bundled_builder, "train")
    special = {tokenizer.cls_token_id, tokenizer.sep_token_id}
    stream = np.concatenate([np.array(x[1:-1], np.int32) for x in data["train"]["input_ids"]])
    separators = int(np.isin(stream, list(special)).sum())
    text = stream[~np.isin(stream, list(special))]
    np.testing.assert_array_equal(text, np.concatenate(docs))
    first, last = np.array(data["train"]["doc_index"]), np.array(data["train"]["last_doc_index"])
    if fmt == "doc-sentences":
        assert separators == 0 and (first == last).all()
    else:
        assert separators == int((last - first).sum()) > 0
        assert (last > first).any()


def test_dupe_factor_repeats_documents_with_different_choices(tokenizer):
    once = build_pretraining_dataset(data_format="nsp", tokenizer=tokenizer, validation_fraction=0)["train"]
    twice = build_pretraining_dataset(data_format="nsp", tokenizer=tokenizer, validation_fraction=0, dupe_factor=2)[
        "train"
    ]
    assert 1.8 * len(once) < len(twice) < 2.2 * len(once)
    first = {tuple(x) for x in once["input_ids"]}
    both = {tuple(x) for x in twice["input_ids"]}
    assert first <= both  # dupe 0 is the single build
    assert len(both - first) > 0.8 * len(first)  # dupe 1 made other choices
