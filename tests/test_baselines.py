"""The model-free topic baseline: real text, held-out documents."""

from __future__ import annotations

import pytest

from nsptask import build_pretraining_dataset
from nsptask.baselines import overlap_baseline


@pytest.fixture(scope="module")
def baselines(tokenizer):
    out = {}
    for task, label in (("nsp", "next_sentence_label"), ("sop", "sentence_order_label")):
        data = build_pretraining_dataset(data_format=task, tokenizer=tokenizer)
        out[task] = overlap_baseline(data["train"], data["validation"], label, tokenizer.all_special_ids)
    return out


def test_word_piece_overlap_solves_nsp_on_held_out_documents(baselines):
    nsp = baselines["nsp"]
    assert nsp["num_pairs"] > 200
    assert nsp["direction"] == -1  # more shared word pieces: label 0, IsNext (BERT's convention)
    assert nsp["accuracy"] > nsp["majority"] + 0.2


def test_word_piece_overlap_cannot_tell_the_order_of_sop_pairs(baselines):
    sop = baselines["sop"]
    assert sop["num_pairs"] > 200
    assert sop["train_accuracy"] < 0.56
    assert sop["accuracy"] < sop["majority"] + 0.03


def test_overlap_is_symmetric_and_ignores_special_tokens(tokenizer):
    from datasets import Dataset

    ordered = tokenizer("the river flows", "into the sea")
    swapped = tokenizer("into the sea", "the river flows")
    data = Dataset.from_dict(
        {
            "input_ids": [ordered["input_ids"], swapped["input_ids"]],
            "token_type_ids": [ordered["token_type_ids"], swapped["token_type_ids"]],
            "label": [0, 1],
        }
    )
    result = overlap_baseline(data, data, "label", tokenizer.all_special_ids)
    assert result["train_accuracy"] == 0.5  # both orders get the same score, so no threshold separates them
