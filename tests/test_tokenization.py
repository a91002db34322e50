"""The locally trained tokenizer, loading, checks, and the optional tokie fast path."""

from __future__ import annotations

import json
import re

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


@pytest.mark.parametrize("model", ["wordpiece", "bpe", "unigram"])
def test_trained_tokenizers_of_each_family_frame_pairs_and_reload(model, tmp_path):
    from transformers import AutoTokenizer

    from nsptask.tokenization import train_tokenizer

    tok = train_tokenizer(
        [s for d in list(iter_documents())[:20] for s in d["sentences"]],
        model=model,
        vocab_size=1000,
        output_dir=tmp_path,
    )
    encoded = tok("The city grew.", "It lies on a river.")
    assert encoded["input_ids"][0] == tok.cls_token_id and encoded["input_ids"][-1] == tok.sep_token_id
    assert tok.mask_token_id is not None and tok.pad_token_id is not None
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again("The city grew.")["input_ids"] == tok("The city grew.")["input_ids"]
    if model == "bpe":
        assert tok.unk_token_id is None or tok.unk_token_id not in tok("Ærøskøbing ☃ 北京")["input_ids"]  # bytes


def test_chinese_corpus_with_the_english_tokenizer_stops_and_a_trained_one_builds(tmp_path, capsys):
    from conftest import people_daily_corpus

    from nsptask import build_pretraining_dataset
    from nsptask.cli import main

    corpus = people_daily_corpus(tmp_path / "people_daily.txt")
    reader = {"corpus_format": "text", "language": "zh"}
    with pytest.raises(ValueError, match=r"(\d+\.\d)% of the corpus's tokens .* are unknown.*nsptask tokenizer"):
        build_pretraining_dataset(corpus, data_format="nsp", **reader)
    streamed = build_pretraining_dataset(corpus, data_format="nsp", **reader, streaming=True, pool_order="corpus")
    with pytest.raises(ValueError, match=r"% of the corpus's tokens .* are unknown"):  # streaming checks too
        next(iter(streamed["train"]))
    data, report = build_pretraining_dataset(
        corpus, data_format="nsp", **reader, allow_unknown_tokens=True, return_report=True
    )
    assert report["corpus"]["unknown_token_rate"] > 0.5 and any("unknown" in w for w in report["warnings"])
    out = tmp_path / "zh-tokenizer"
    assert (
        main(
            [
                "tokenizer",
                "--corpus",
                str(corpus),
                "--corpus_format",
                "text",
                "--language",
                "zh",
                "--vocab_size",
                "3000",
                "--output_dir",
                str(out),
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out.split("\nuse it with")[0])
    assert summary["unknown_token_rate"] < 0.01
    data, report = build_pretraining_dataset(
        corpus, data_format="nsp", tokenizer=str(out), **reader, return_report=True
    )
    assert report["corpus"]["unknown_token_rate"] < 0.01 and not any("unknown" in w for w in report["warnings"])
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    assert tok.tokenize("北京举行新年音乐会") == list("北京举行新年音乐会")  # one token per character


def test_chinese_headlines_stay_sentences_of_their_own(tmp_path):
    from conftest import people_daily_corpus

    corpus = people_daily_corpus(tmp_path / "people_daily.txt", n_docs=30)
    blocks = corpus.read_text(encoding="utf-8").strip().split("\n\n")
    docs = list(iter_documents(corpus, corpus_format="text", language="zh"))
    assert len(docs) == len(blocks) == 30
    for doc, block in zip(docs, blocks):
        assert doc["sentences"][0] == block.split("\n")[0]  # the headline, not joined to the first body line


@pytest.mark.parametrize("entry", ["api", "cli"])
def test_building_data_imports_neither_torch_nor_accelerate(tmp_path, entry):
    import subprocess
    import sys

    if entry == "api":
        call = f"from nsptask import build_pretraining_dataset\nbuild_pretraining_dataset(data_format='sop', max_seq_length=64, data_cache_dir={str(tmp_path)!r})\n"
    else:  # the `nsptask build` command, saving the dataset
        args = ["build", "--data_format", "sop", "--max_seq_length", "64", "--data_cache_dir", str(tmp_path / "c")]
        args += ["--output_dir", str(tmp_path / "out")]
        call = f"from nsptask.cli import main\nassert main({args!r}) == 0\n"
    code = (
        "import sys\n"
        + call
        + "print(sorted(m for m in ('torch', 'accelerate', 'transformers.modeling_utils') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("model", ["wordpiece", "unigram", "bpe"])
def test_chinese_tokenizers_never_join_two_characters(model, tmp_path):
    """WordPiece and Unigram: one token per CJK character. BPE: no token spans two characters (a character may be
    several byte tokens)."""
    from conftest import people_daily_corpus

    from nsptask.tokenization import train_tokenizer

    corpus = people_daily_corpus(tmp_path / "people_daily.txt")
    docs = list(iter_documents(corpus, corpus_format="text", language="zh"))
    sentences = [s for d in docs for s in d["sentences"]]
    cut = len(sentences) * 4 // 5
    tok = train_tokenizer(sentences[:cut], model=model, vocab_size=3000, language="zh")
    text = "".join(sentences[cut:])  # text the tokenizer was not trained on
    assert len(text) > 2000
    encoded = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    cjk = re.compile("[\u4e00-\u9fff]")
    spans = [text[a:b] for a, b in encoded["offset_mapping"] if b > a]
    assert spans and all(len(cjk.findall(span)) <= 1 for span in spans)
    if model != "bpe":  # every character is a token of its own (or the unknown token)
        pieces = [t.replace("##", "").replace("\u2581", "") for t in tok.convert_ids_to_tokens(encoded["input_ids"])]
        characters = [c for c in text if cjk.match(c)]
        chinese = [p for p in pieces if cjk.search(p)]
        assert all(len(p) == 1 for p in chinese)
        assert len(chinese) + pieces.count(tok.unk_token) >= len(characters) > 2000
