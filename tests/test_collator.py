"""Dynamic masking: budgets, 80/10/10, special tokens, whole words, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nsptask.collator import PretrainingCollator


@pytest.fixture(scope="module")
def features(tokenizer):
    from nsptask import build_pretraining_dataset

    data = build_pretraining_dataset(data_format="nsp", tokenizer=tokenizer)["train"]
    return [{**data[i], "instance_index": i} for i in range(256)]


def _stats(collator, features):
    batch = collator(features)
    ids, labels, attention = batch["input_ids"].numpy(), batch["labels"].numpy(), batch["attention_mask"].numpy()
    return batch, ids, labels, attention


def test_special_tokens_and_padding_are_never_masked(tokenizer, features):
    collator = PretrainingCollator(tokenizer, mlm_probability=0.5)
    _, ids, labels, attention = _stats(collator, features)
    special = np.isin(labels, tokenizer.all_special_ids)
    assert not special.any()
    assert (labels[attention == 0] == -100).all()
    assert ids.shape[1] % 8 == 0


def test_bernoulli_budget_masks_fifteen_percent_on_average(tokenizer, features):
    collator = PretrainingCollator(tokenizer, masking="bernoulli")
    _, _, labels, attention = _stats(collator, features)
    share = (labels != -100).sum() / attention.sum()
    assert 0.135 < share < 0.16
    per_sequence = (labels != -100).sum(1)
    assert per_sequence.std() > 1.5  # independent draws vary per sequence


def test_exact_budget_masks_round_p_n_capped(tokenizer, features):
    collator = PretrainingCollator(tokenizer, masking="exact", max_predictions_per_seq=20)
    _, _, labels, attention = _stats(collator, features)
    lengths = attention.sum(1)
    expected = np.minimum(20, np.maximum(1, np.round(lengths * 0.15))).astype(int)
    np.testing.assert_array_equal((labels != -100).sum(1), expected)


def test_eighty_ten_ten_and_random_tokens_are_never_special(tokenizer, features):
    collator = PretrainingCollator(tokenizer, mlm_probability=0.3)
    _, ids, labels, _ = _stats(collator, features)
    chosen = labels != -100
    masked = ids[chosen] == tokenizer.mask_token_id
    kept = ids[chosen] == labels[chosen]
    replaced = ~masked & ~kept
    n = chosen.sum()
    assert abs(masked.sum() / n - 0.8) < 0.02
    assert abs(kept.sum() / n - 0.1) < 0.02 + 1 / 8000  # a random draw can hit the original token
    assert abs(replaced.sum() / n - 0.1) < 0.02
    assert not np.isin(ids[chosen][replaced], tokenizer.all_special_ids).any()


def test_masks_depend_on_index_and_epoch_not_on_batching(tokenizer, features):
    collator = PretrainingCollator(tokenizer, seed=3)
    together = collator(features[:8])["labels"]
    apart = [collator([f])["labels"][0] for f in features[:8]]
    for row, single in zip(together, apart):
        assert row[: len(single)].tolist() == single.tolist()
    collator.epoch = 1
    assert not np.array_equal(collator(features[:8])["labels"], together)


def test_duplicate_instances_get_independent_masks(tokenizer, features):
    """Masks are drawn per occurrence: the same tokens at two indices of the dataset are masked differently (a
    dupe_factor copy or an exact duplicate is not masked the same way), and each index always the same way."""
    collator = PretrainingCollator(tokenizer, seed=3, mlm_probability=0.3)
    copies = [{**features[0], "instance_index": i} for i in range(12)]
    labels = collator(copies)["labels"].numpy()
    masks = {tuple(np.flatnonzero(row != -100)) for row in labels}
    assert len(masks) > 8
    again = collator([{**features[0], "instance_index": 5}])["labels"][0].numpy()
    np.testing.assert_array_equal(again, labels[5, : len(again)])
    # Without an index (a feature from elsewhere) the tokens seed the draw.
    bare = [{k: v for k, v in features[0].items() if k != "instance_index"}] * 2
    first, second = collator(bare)["labels"].numpy()
    np.testing.assert_array_equal(first, second)


def test_labels_follow_left_padding(tokenizer, features):
    import copy

    left = copy.deepcopy(tokenizer)
    left.padding_side = "left"
    chosen = sorted(features[:32], key=lambda f: len(f["input_ids"]))[::4]
    right_batch = PretrainingCollator(tokenizer, seed=1)(chosen)
    left_batch = PretrainingCollator(left, seed=1)(chosen)
    for i, feature in enumerate(chosen):
        n = len(feature["input_ids"])
        right_labels = right_batch["labels"][i, :n]
        left_labels = left_batch["labels"][i, -n:]
        assert left_labels.tolist() == right_labels.tolist()
        assert (left_batch["attention_mask"][i, -n:] == 1).all()
        assert (left_batch["labels"][i, : left_batch["labels"].shape[1] - n] == -100).all()
        positions = left_labels != -100
        assert (left_labels[positions] == torch.tensor(feature["input_ids"])[positions]).all()


def test_whole_word_masking_masks_every_piece_of_a_word(tokenizer, features):
    collator = PretrainingCollator(tokenizer, whole_word_mask=True, mlm_probability=0.3)
    for feature in features[:64]:
        ids = np.asarray(feature["input_ids"])
        _, labels = collator.mask_sequence(ids)
        tokens = tokenizer.convert_ids_to_tokens(ids.tolist())
        chosen = labels != -100
        for i in range(1, len(tokens)):
            if tokens[i].startswith("##") and ids[i - 1] not in tokenizer.all_special_ids:
                assert chosen[i] == chosen[i - 1], (tokens[i - 1], tokens[i])


@pytest.mark.parametrize("model", ["wordpiece", "bpe", "unigram"])
def test_whole_words_follow_the_tokenizers_own_word_starts(model):
    """WordPiece ('##', the shipped BERT vocabulary) and SentencePiece/Unigram ('▁'): the collator's words are the
    tokenizer's own words (``word_ids()``, from its pre-tokenizer, not from the markers). Byte-level
    BPE ('Ġ'): they are the text's whitespace words, as transformers' own whole-word masking finds them from
    character offsets (its pre-tokenizer also splits punctuation off a word, which a whole-word mask keeps)."""
    from nsptask.corpus import iter_documents
    from nsptask.tokenization import train_tokenizer

    sentences = [s for d in list(iter_documents())[:30] for s in d["sentences"]]
    if model == "wordpiece":
        from nsptask.tokenization import default_tokenizer

        tok = default_tokenizer()
    else:
        tok = train_tokenizer(sentences, model=model, vocab_size=1500)
    collator = PretrainingCollator(tok, whole_word_mask=True)
    checked = 0
    for sentence in sentences[:300]:
        encoded = tok(sentence, return_offsets_mapping=True, add_special_tokens=False)
        ids, offsets = np.asarray(encoded["input_ids"]), encoded["offset_mapping"]
        groups = collator._groups(ids, np.arange(len(ids)))
        # The whitespace word each token belongs to: the word holding its first non-space character (a token that is
        # only a space, SentencePiece's lone '▁', belongs to the word after it).
        word_of_char = np.cumsum(
            [not c.isspace() and (i == 0 or sentence[i - 1].isspace()) for i, c in enumerate(sentence)] + [1]
        )
        words = []
        for start, end in offsets:
            p = start
            while p < end and sentence[p].isspace():
                p += 1
            words.append(int(word_of_char[p]) if p < end else int(word_of_char[min(end, len(sentence))]))
        if model in ("wordpiece", "unigram"):
            words = encoded.word_ids()
        starts = [i for i in range(len(ids)) if i == 0 or words[i] != words[i - 1]]
        assert [int(g[0]) for g in groups] == starts, sentence
        checked += sum(len(g) > 1 for g in groups)
    assert checked > 100  # many words have several pieces


def test_chinese_whole_words_come_from_jieba():
    pytest.importorskip("jieba")
    from nsptask.tokenization import train_wordpiece_tokenizer

    tok = train_wordpiece_tokenizer(["北京是中国的首都。我们喜欢北京。"] * 20, vocab_size=200)
    collator = PretrainingCollator(tok, whole_word_mask=True)
    ids = np.asarray(tok("北京是中国的首都")["input_ids"])
    groups = collator._groups(ids, np.flatnonzero(~collator._special[ids]))
    words = ["".join(tok.convert_ids_to_tokens(ids[g].tolist())) for g in groups]
    assert "北京" in words and "首都" in words


def test_sentence_labels_pass_through_and_padding_is_counted(tokenizer, features):
    collator = PretrainingCollator(tokenizer)
    chosen = sorted(features, key=lambda f: len(f["input_ids"]))[:: len(features) // 16][:16]
    batch = collator(chosen)
    assert batch["next_sentence_label"].tolist() == [f["next_sentence_label"] for f in chosen]
    lengths = [len(f["input_ids"]) for f in chosen]
    padded = batch["input_ids"].shape[1] * len(chosen)
    assert collator.padding_fraction == pytest.approx((padded - sum(lengths)) / padded)
    assert collator.padding_fraction > 0.01
    assert "doc_index" in batch  # unused columns are passed on; the Trainer removes them before


def test_whole_word_masking_refuses_a_tokenizer_without_a_known_word_convention():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel({"[PAD]": 0, "[UNK]": 1, "[MASK]": 2, "a": 3, "b": 4}, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", mask_token="[MASK]")
    PretrainingCollator(tok)  # single-token masking works with any tokenizer
    with pytest.raises(ValueError, match="Whole-word masking needs the tokenizer's word convention"):
        PretrainingCollator(tok, whole_word_mask=True)
