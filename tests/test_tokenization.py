"""The locally trained tokenizer, loading, checks, and the optional tokie fast path."""

from __future__ import annotations

import numpy as np
import pytest

from nsptask.corpus import iter_documents
from nsptask.tokenization import TokieEncoder, check_pair_tokenizer, train_wordpiece_tokenizer

TEXTS = ["The Quick brown fox jumps over the lazy dog.", "Café au lait, naïve résumé.", "北京是中国的首都。"] * 50


def test_trained_tokenizer_is_bert_style_and_reloads(tmp_path):
    from transformers import AutoTokenizer

    tok = train_wordpiece_tokenizer(TEXTS, vocab_size=300, output_dir=tmp_path)
    encoded = tok("The fox", "the dog")
    assert encoded["input_ids"][0] == tok.cls_token_id
    assert encoded["input_ids"].count(tok.sep_token_id) == 2
    assert encoded["token_type_ids"][-1] == 1
    assert tok.convert_ids_to_tokens(tok("jumps")["input_ids"])[1:-1][0] in ("jumps", "jump", "j")
    assert tok.tokenize("北京") == ["北", "京"]  # CJK characters are split one per token
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded("The fox")["input_ids"] == encoded["input_ids"][:4]


def test_uncased_and_cased_tokenizers_differ_as_expected():
    uncased = train_wordpiece_tokenizer(TEXTS, vocab_size=300)
    cased = train_wordpiece_tokenizer(TEXTS, vocab_size=300, lowercase=False)
    assert uncased.tokenize("Café") == uncased.tokenize("cafe")
    assert cased.tokenize("Café") != cased.tokenize("cafe")


def test_default_tokenizer_has_the_requested_vocabulary(tokenizer):
    assert len(tokenizer) == 8000
    assert tokenizer.tokenize("anarchism")[0].startswith("anarch")


def test_tokenizer_without_cls_and_sep_is_rejected_with_the_fix():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel({"a": 0, "<unk>": 1}, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>")
    with pytest.raises(ValueError, match=r"no cls_token or sep_token.*BERT-style tokenizer"):
        check_pair_tokenizer(tok)


def test_tokie_fast_path_gives_identical_ids_on_the_bundled_corpus(tokenizer):
    pytest.importorskip("tokie")
    sentences = [s for doc in iter_documents() for s in doc["sentences"]]
    ids, lengths = TokieEncoder(tokenizer).encode_flat(sentences)
    reference = tokenizer(sentences, add_special_tokens=False)["input_ids"]
    mismatches = [i for i, (n, ref) in enumerate(zip(lengths.tolist(), reference)) if n != len(ref)]
    assert not mismatches
    np.testing.assert_array_equal(ids, np.concatenate([np.array(r, np.uint32) for r in reference]))
