"""Models: presets, objective/model checks, and the sparse MLM head against the dense one."""

from __future__ import annotations

import pytest
import torch
import transformers

from nsptask.collator import PretrainingCollator
from nsptask.modeling import build_model, enable_sparse_mlm


def _batch(tokenizer, label_name="next_sentence_label", n=6):
    from nsptask import build_pretraining_dataset

    data = build_pretraining_dataset(format="nsp", tokenizer=tokenizer, max_seq_length=64)["train"]
    features = [{k: data[i][k] for k in ("input_ids", "token_type_ids", "next_sentence_label")} for i in range(n)]
    batch = PretrainingCollator(tokenizer, mlm_probability=0.2)(features)
    if label_name != "next_sentence_label":
        batch[label_name] = batch.pop("next_sentence_label")
    return batch


SMALL = dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=2, intermediate_size=128)


@pytest.mark.parametrize(
    "make",
    [
        lambda v: transformers.BertForPreTraining(transformers.BertConfig(vocab_size=v, **SMALL)),
        lambda v: transformers.BertForMaskedLM(transformers.BertConfig(vocab_size=v, **SMALL)),
        lambda v: transformers.AlbertForPreTraining(
            transformers.AlbertConfig(vocab_size=v, embedding_size=32, **SMALL)
        ),
        lambda v: transformers.RobertaForMaskedLM(
            transformers.RobertaConfig(vocab_size=v, max_position_embeddings=130, type_vocab_size=2, **SMALL)
        ),
    ],
    ids=["bert-pretraining", "bert-mlm", "albert-pretraining", "roberta-mlm"],
)
def test_sparse_mlm_head_loss_equals_the_dense_head(tokenizer, make):
    torch.manual_seed(0)
    model = make(len(tokenizer)).eval()
    label_name = (
        "sentence_order_label"
        if "Albert" in type(model).__name__ and "PreTraining" in type(model).__name__
        else "next_sentence_label"
    )
    batch = _batch(tokenizer, label_name)
    if "PreTraining" not in type(model).__name__:
        batch.pop(label_name)
    with torch.no_grad():
        dense = model(**batch)
        assert enable_sparse_mlm(model)
        sparse = model(**batch)
    torch.testing.assert_close(sparse.loss, dense.loss, rtol=1e-5, atol=1e-5)
    # Evaluation outputs are small and consistent with the labels.
    labels = batch["labels"]
    assert sparse.mlm_predictions.shape == labels.shape
    assert ((sparse.mlm_predictions == -100) == (labels == -100)).all()
    assert torch.equal(sparse.mlm_count, (labels != -100).sum(-1))
    dense_logits = dense.logits if hasattr(dense, "logits") and dense.logits is not None else dense.prediction_logits
    expected = dense_logits.argmax(-1)[labels != -100]
    assert torch.equal(sparse.mlm_predictions[labels != -100], expected)


def test_sparse_head_gradients_match_the_dense_head(tokenizer):
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(tokenizer), **SMALL)
    dense_model = transformers.BertForPreTraining(config).eval()
    sparse_model = transformers.BertForPreTraining(config).eval()
    sparse_model.load_state_dict(dense_model.state_dict())
    enable_sparse_mlm(sparse_model)
    batch = _batch(tokenizer)
    dense_model(**batch).loss.backward()
    sparse_model(**batch).loss.backward()
    for (name, p), q in zip(dense_model.named_parameters(), sparse_model.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_presets_build_bert_shapes_with_the_tokenizer_vocabulary(tokenizer):
    model, info = build_model("mlm+nsp", tokenizer, preset="tiny")
    assert type(model).__name__ == "BertForPreTraining"
    assert model.config.hidden_size == 128 and model.config.num_hidden_layers == 2
    assert model.config.vocab_size == len(tokenizer)
    mlm, _ = build_model("mlm", tokenizer, preset="mini")
    assert type(mlm).__name__ == "BertForMaskedLM" and mlm.config.num_hidden_layers == 4


def test_objective_without_a_sentence_head_is_an_error_that_says_what_to_use(tokenizer, tmp_path):
    roberta = transformers.RobertaForMaskedLM(
        transformers.RobertaConfig(vocab_size=len(tokenizer), max_position_embeddings=130, **SMALL)
    )
    roberta.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"'roberta' model without one\. Use objective 'mlm'"):
        build_model("mlm+nsp", tokenizer, str(tmp_path))
    model, _ = build_model("mlm", tokenizer, str(tmp_path))
    assert type(model).__name__ == "RobertaForMaskedLM"


def test_encoder_checkpoint_gets_new_heads_and_reports_them(tokenizer, tmp_path):
    transformers.BertModel(transformers.BertConfig(vocab_size=len(tokenizer), **SMALL)).save_pretrained(tmp_path)
    model, info = build_model("mlm+nsp", tokenizer, str(tmp_path))
    assert type(model).__name__ == "BertForPreTraining"
    assert any(k.startswith("cls.") for k in info["missing_keys"])


def test_tokenizer_larger_than_the_model_vocabulary_is_rejected(tokenizer, tmp_path):
    transformers.BertForPreTraining(transformers.BertConfig(vocab_size=100, **SMALL)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="do not belong together"):
        build_model("mlm+nsp", tokenizer, str(tmp_path))
