"""Models: presets, checkpoints with and without heads, the sentence head for families without one, and the sparse
MLM head against the dense one (outputs, loss, gradients)."""

from __future__ import annotations

import pytest
import torch
import transformers

from nsptask.collator import PretrainingCollator
from nsptask.modeling import SparseMlmHead, build_model, load_pretraining_model, with_sentence_head

SMALL = dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=2, intermediate_size=128)


def _batch(tokenizer, n=6):
    from nsptask import build_pretraining_dataset

    data = build_pretraining_dataset(data_format="nsp", tokenizer=tokenizer, max_seq_length=64)["train"]
    features = [
        {"input_ids": data[i]["input_ids"], "token_type_ids": data[i]["token_type_ids"], "instance_index": i}
        for i in range(n)
    ]
    return PretrainingCollator(tokenizer, mlm_probability=0.2)(features)


@pytest.mark.parametrize(
    "make",
    [
        lambda v: transformers.BertForPreTraining(transformers.BertConfig(vocab_size=v, **SMALL)),
        lambda v: transformers.BertForMaskedLM(transformers.BertConfig(vocab_size=v, **SMALL)),
        lambda v: transformers.AlbertForPreTraining(
            transformers.AlbertConfig(vocab_size=v, embedding_size=32, **SMALL)
        ),
        lambda v: transformers.RobertaForMaskedLM(
            transformers.RobertaConfig(vocab_size=v, max_position_embeddings=130, type_vocab_size=1, **SMALL)
        ),
    ],
    ids=["bert-pretraining", "bert-mlm", "albert-pretraining", "roberta-mlm"],
)
def test_sparse_head_keeps_exactly_the_dense_logits_of_masked_rows(tokenizer, make):
    torch.manual_seed(0)
    model = make(len(tokenizer)).eval()
    batch = _batch(tokenizer)
    labels = batch.pop("labels")
    if (getattr(model.config, "type_vocab_size", 2) or 0) < 2:
        batch.pop("token_type_ids")
    with torch.no_grad():
        dense = model(**batch)
        sparse_head = SparseMlmHead(model)
        sparse_head.select(labels != -100, batch["attention_mask"])
        sparse = model(**batch)
    dense_logits = dense.logits if getattr(dense, "logits", None) is not None else dense.prediction_logits
    sparse_logits = sparse.logits if getattr(sparse, "logits", None) is not None else sparse.prediction_logits
    assert sparse_head.used and sparse_logits.shape[0] % 64 == 0  # rows rounded up to a multiple of 64
    torch.testing.assert_close(sparse_head.take(sparse_logits), dense_logits[labels != -100], rtol=1e-5, atol=1e-5)
    sparse_head.remove()
    with torch.no_grad():
        torch.testing.assert_close(
            model(**batch).logits if getattr(dense, "logits", None) is not None else model(**batch).prediction_logits,
            dense_logits,
        )  # removed: dense again


def test_presets_build_bert_shapes_with_the_tokenizer_vocabulary(tokenizer):
    model, info = build_model("mlm+nsp", tokenizer, preset="tiny")
    assert type(model).__name__ == "BertForPreTraining"
    assert model.config.hidden_size == 128 and model.config.num_hidden_layers == 2
    assert model.config.vocab_size == len(tokenizer)
    mlm, _ = build_model("mlm", tokenizer, preset="mini")
    assert type(mlm).__name__ == "BertForMaskedLM" and mlm.config.num_hidden_layers == 4


def test_a_family_without_a_sentence_head_gets_one_that_saves_and_loads_into_its_own_classes(tokenizer, tmp_path):
    roberta = transformers.RobertaForMaskedLM(
        transformers.RobertaConfig(vocab_size=len(tokenizer), max_position_embeddings=130, type_vocab_size=1, **SMALL)
    )
    roberta.save_pretrained(tmp_path / "mlm")
    model, info = build_model("mlm+nsp", tokenizer, str(tmp_path / "mlm"))
    assert type(model).__name__ == "RobertaForMaskedLMWithSentenceHead"
    assert any(k.startswith("sentence_head.") for k in info["missing_keys"])
    model.save_pretrained(tmp_path / "pre")
    again = load_pretraining_model(str(tmp_path / "pre"))
    assert type(again) is type(model)
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key
    classifier = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "pre", num_labels=2)
    assert type(classifier).__name__ == "RobertaForSequenceClassification"
    assert torch.equal(
        classifier.roberta.embeddings.word_embeddings.weight, model.roberta.embeddings.word_embeddings.weight
    )
    tagger = transformers.AutoModelForTokenClassification.from_pretrained(tmp_path / "pre", num_labels=5)
    assert type(tagger).__name__ == "RobertaForTokenClassification"
    masked = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "pre")
    assert type(masked).__name__ == "RobertaForMaskedLM"
    # Its forward takes MLM labels and the sentence label and returns both losses summed.
    batch = _batch(tokenizer)
    batch.pop("token_type_ids")
    out = model(**batch, sentence_label=torch.tensor([0, 1, 0, 1, 0, 1]))
    assert out.loss is not None and out.sentence_logits.shape == (6, 2)
    assert with_sentence_head(transformers.RobertaForMaskedLM) is type(model)  # one class per family


def test_encoder_checkpoint_gets_new_heads_and_reports_them(tokenizer, tmp_path):
    transformers.BertModel(transformers.BertConfig(vocab_size=len(tokenizer), **SMALL)).save_pretrained(tmp_path)
    model, info = build_model("mlm+nsp", tokenizer, str(tmp_path))
    assert type(model).__name__ == "BertForPreTraining"
    assert any(k.startswith("cls.") for k in info["missing_keys"])


def test_tokenizer_larger_than_the_model_vocabulary_is_rejected(tokenizer, tmp_path):
    transformers.BertForPreTraining(transformers.BertConfig(vocab_size=100, **SMALL)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="do not belong together"):
        build_model("mlm+nsp", tokenizer, str(tmp_path))
