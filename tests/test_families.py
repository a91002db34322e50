"""Any encoder, any tokenizer: the family x objective matrix, loss scaling under accumulation, capabilities.

Every model is built from a real family config (RoBERTa with one token type, DeBERTa-v2 in its v3 layout with no
token types, ALBERT and DeBERTa with a Unigram vocabulary, RoBERTa and ModernBERT with byte-level BPE) and a
tokenizer trained here with `tokenizers` on the bundled corpus.
"""

from __future__ import annotations

import re

import pytest
import torch
import transformers

from nsptask.arguments import DataArguments
from nsptask.modeling import FAMILY_TOKENIZERS, build_model, load_pretraining_model
from nsptask.training import NspTrainingArguments, pretrain

FAMILIES = ["bert", "roberta", "albert", "deberta-v2", "modernbert", "distilbert"]
OBJECTIVES = {"mlm": "full-sentences", "mlm+nsp": "nsp", "mlm+sop": "sop"}


@pytest.fixture(scope="session")
def family_tokenizers(tmp_path_factory, tokenizer):
    """One saved tokenizer per tokenizer model: the shipped WordPiece, and BPE and Unigram trained here."""
    from nsptask.corpus import iter_documents
    from nsptask.tokenization import train_tokenizer

    root = tmp_path_factory.mktemp("tokenizers")
    sentences = [s for d in iter_documents() for s in d["sentences"]][:8000]
    paths = {"wordpiece": root / "wordpiece"}
    tokenizer.save_pretrained(paths["wordpiece"])
    for model in ("bpe", "unigram"):
        paths[model] = root / model
        train_tokenizer(sentences, model=model, vocab_size=2000, output_dir=paths[model])
    return {family: str(paths[FAMILY_TOKENIZERS[family]]) for family in FAMILIES}


def _args(out, objective, family, **kwargs):
    defaults = dict(
        output_dir=str(out),
        objective=objective,
        model_family=family,
        max_steps=2,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=16,
        max_eval_samples=16,
        report_to="none",
        disable_tqdm=True,
        save_strategy="no",
        eval_strategy="no",
        logging_steps=1,
    )
    return NspTrainingArguments(**{**defaults, **kwargs})


# The weights a fine-tuning class adds on top of an encoder (classifier, pooler, ModernBERT's head).
HEAD_WEIGHTS = re.compile(r"(^|\.)(classifier|pre_classifier|pooler|score|head)\.")


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_pretrains_each_objective_reloads_and_fine_tunes(family, family_tokenizers, tmp_path):
    from nsptask.finetuning import FinetuneArguments, finetune
    from nsptask.tokenization import load_tokenizer

    tokenizer = load_tokenizer(family_tokenizers[family])
    data = DataArguments.from_options(max_seq_length=64, tokenizer_name_or_path=family_tokenizers[family])
    for objective, data_format in OBJECTIVES.items():
        out = tmp_path / objective
        result = pretrain(_args(out, objective, family), data)
        model = result.trainer.model.eval()
        assert result.trainer.state.global_step == 2
        assert model.config.nsptask["data_format"] == data_format
        reloaded = load_pretraining_model(str(out)).eval()
        assert type(reloaded) is type(model)
        batch = tokenizer(["The city grew along the river."], ["It became a port."], return_tensors="pt")
        if (getattr(model.config, "type_vocab_size", 0) or 0) < 2:
            batch.pop("token_type_ids", None)
        with torch.no_grad():
            before, after = model(**batch), reloaded(**batch)
        torch.testing.assert_close(
            after.logits if hasattr(after, "logits") and after.logits is not None else after.prediction_logits,
            before.logits if hasattr(before, "logits") and before.logits is not None else before.prediction_logits,
        )
        if objective != "mlm":
            from nsptask.modeling import sentence_logits

            torch.testing.assert_close(sentence_logits(after), sentence_logits(before))
        # Every objective's checkpoint gives the fine-tuning classes its whole encoder: only task heads are new.
        for head_class in (
            transformers.AutoModelForSequenceClassification,
            transformers.AutoModelForTokenClassification,
        ):
            tuned, info = head_class.from_pretrained(str(out), num_labels=3, output_loading_info=True)
            new_weights = [k for k in info["missing_keys"] if not HEAD_WEIGHTS.search(k)]
            assert not new_weights, (objective, head_class.__name__, new_weights)
            torch.testing.assert_close(
                tuned.get_input_embeddings().weight, model.get_input_embeddings().weight, rtol=0, atol=0
            )
    # The pretrained encoder loads into the family's own classes for fine-tuning: a pair task and segment tagging.
    for task in ("nsp", "segment-tagging"):
        ft = finetune(
            FinetuneArguments(
                output_dir=str(tmp_path / f"ft-{task}"),
                task=task,
                model_name_or_path=str(tmp_path / "mlm+nsp"),
                num_train_epochs=1,
                max_train_samples=32,
                disable_tqdm=True,
                save_strategy="no",
                eval_strategy="no",
            ),
            data,
        )
        head = "TokenClassification" if task == "segment-tagging" else "SequenceClassification"
        assert type(ft.trainer.model).__name__.endswith(head)
        assert ft.metrics["eval_examples" if task == "nsp" else "eval_windows"] > 0


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
def test_accumulation_k_updates_like_a_batch_k_times_larger(family, sparse, family_tokenizers, tmp_path):
    """One SGD step (lr 1, no dropout): the parameter update with batch 8 x accumulation 2 equals batch 16 x 1.
    (Adam's first step is almost scale-free, so SGD is what shows a doubled loss.)"""
    data = DataArguments.from_options(max_seq_length=64, tokenizer_name_or_path=family_tokenizers[family])
    updates = []
    for batch, accumulation in ((16, 1), (8, 2)):
        args = _args(
            tmp_path / f"b{batch}",
            "mlm+nsp",
            family,
            max_steps=1,
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=accumulation,
            optim="sgd",
            learning_rate=1.0,
            warmup_steps=0,
            lr_scheduler_type="constant",
            dropout=0.0,
            sparse_mlm_head=sparse,
            seed=7,
        )
        model, _ = build_model("mlm+nsp", _tokenizer(family_tokenizers[family]), family=family, seed=7, dropout=0.0)
        before = {k: v.detach().clone() for k, v in model.named_parameters()}
        result = pretrain(args, data, model=model)
        head = result.trainer.sparse_head
        # The sparse head really projected only the masked rows (not the whole batch), or was not used at all.
        assert (head is not None and head.used and 0 < head.count < 16 * 64 // 2) == sparse, (sparse, head)
        updates.append({k: (v.detach() - before[k]) for k, v in model.named_parameters()})
    one, accumulated = updates
    largest = max(float(u.abs().max()) for u in one.values())
    assert largest > 1e-3  # the step moved the weights
    for key in one:
        torch.testing.assert_close(accumulated[key], one[key], rtol=0, atol=1e-5, msg=key)


def _tokenizer(path):
    from nsptask.tokenization import load_tokenizer

    return load_tokenizer(path)


def test_sparse_head_gives_the_dense_heads_loss_and_gradients(family_tokenizers, tmp_path):
    """The sparse head computes the same loss and gradients as the dense head, through the same Trainer code."""
    from nsptask.collator import PretrainingCollator
    from nsptask.modeling import SparseMlmHead
    from nsptask.training import NspTrainer

    for family in ("bert", "roberta", "modernbert"):
        tokenizer = _tokenizer(family_tokenizers[family])
        model, _ = build_model("mlm+nsp", tokenizer, family=family, seed=3, dropout=0.0)
        pairs = [tokenizer(f"Sentence number {i} of the city.", "It grew.") for i in range(6)]
        features = [
            {"input_ids": p["input_ids"], "instance_index": i, "sentence_label": i % 2} for i, p in enumerate(pairs)
        ]
        from nsptask.modeling import sentence_label_argument

        key = sentence_label_argument(model)
        features = [{**f, key: f.pop("sentence_label")} for f in features]
        batch = PretrainingCollator(tokenizer, mlm_probability=0.3, token_types="drop")(features)
        losses, grads = [], []
        for sparse in (None, SparseMlmHead(model)):
            import transformers

            trainer = NspTrainer(
                model=model,
                args=transformers.TrainingArguments(str(tmp_path), report_to="none"),
                mlm_key="labels",
                sentence_key=key,
                sparse_head=sparse,
            )
            model.zero_grad()
            loss = trainer.compute_loss(model, dict(batch))
            loss.backward()
            losses.append(loss.detach())
            grads.append({k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None})
            if sparse is not None:
                assert sparse.used
                sparse.remove()
        torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-6)
        for k in grads[0]:
            torch.testing.assert_close(grads[1][k], grads[0][k], rtol=1e-4, atol=1e-6, msg=f"{family} {k}")


def test_capabilities_adapt_token_types_and_refuse_what_cannot_work(family_tokenizers):
    import transformers

    from nsptask.modeling import model_capabilities, preset_config

    expected = {
        "bert": "keep",
        "albert": "keep",
        "roberta": "drop",
        "deberta-v2": "drop",
        "modernbert": "drop",
        "distilbert": "drop",
    }
    for family, token_types in expected.items():
        tokenizer = _tokenizer(family_tokenizers[family])
        config = preset_config(family, "tiny", tokenizer)
        capabilities = model_capabilities(config, tokenizer, 128)
        assert capabilities.token_types == token_types, family
        assert capabilities.word_start is not None
    roberta = preset_config("roberta", "tiny", _tokenizer(family_tokenizers["roberta"]), max_position_embeddings=128)
    with pytest.raises(ValueError, match="longer than the roberta model's 128 positions"):
        model_capabilities(roberta, _tokenizer(family_tokenizers["roberta"]), 256)
    gpt2 = transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2)
    from nsptask.modeling import model_class_for

    with pytest.raises(ValueError, match="no masked-language-modelling class"):
        model_class_for(gpt2, "mlm+nsp")


def test_pair_instances_use_the_tokenizers_own_template(family_tokenizers):
    """RoBERTa's pairs are <s> A </s></s> B </s>, as its tokenizer frames them; BERT's [CLS] A [SEP] B [SEP]."""
    from nsptask import build_pretraining_dataset
    from nsptask.instances import SequenceTemplate

    roberta = _tokenizer(family_tokenizers["roberta"])
    template = SequenceTemplate.from_tokenizer(roberta)
    assert template.pair_middle == (roberta.sep_token_id, roberta.sep_token_id) and template.pair_specials == 4
    data = build_pretraining_dataset(data_format="nsp", tokenizer=roberta, max_seq_length=64)["train"]
    for ids in data["input_ids"][:200]:
        assert len(ids) <= 64 and ids[0] == roberta.cls_token_id and ids[-1] == roberta.sep_token_id
        first = ids.index(roberta.sep_token_id)
        assert ids[first + 1] == roberta.sep_token_id
    bert = _tokenizer(family_tokenizers["bert"])
    assert SequenceTemplate.from_tokenizer(bert) == SequenceTemplate.bert(bert.cls_token_id, bert.sep_token_id)


@pytest.mark.parametrize("model_type", ["wordpiece", "bpe", "unigram"])
def test_sentences_are_encoded_as_the_tokenizer_encodes_running_text(model_type, family_tokenizers):
    """A document's tokens (its sentences one after another, as instances slice them) equal the tokenizer's
    encoding of the document's text as a whole: for byte-level BPE the sentences after the first keep their
    leading space ('ĠThe', not 'The')."""
    from nsptask.corpus import iter_documents
    from nsptask.preprocessing import tokenize_documents
    from nsptask.tokenization import plain_backend

    family = {"wordpiece": "bert", "bpe": "roberta", "unigram": "albert"}[model_type]
    tokenizer = _tokenizer(family_tokenizers[family])
    docs = list(iter_documents())[:10]
    out = tokenize_documents(
        {
            "doc_id": [d["doc_id"] for d in docs],
            "sentences": [d["sentences"] for d in docs],
            "skipped": ["" for _ in docs],
        },
        tokenizer=tokenizer,
        max_sentence_tokens=10_000,
    )
    backend = plain_backend(tokenizer)
    for doc, ids in zip(docs, out["input_ids"]):
        whole = backend.encode(" ".join(doc["sentences"]), add_special_tokens=False).ids
        assert list(ids) == whole
    if model_type == "bpe":  # without the leading space the stream would differ: the check can fail
        naive = [i for s in docs[0]["sentences"] for i in backend.encode(s, add_special_tokens=False).ids]
        assert naive != backend.encode(" ".join(docs[0]["sentences"]), add_special_tokens=False).ids


def test_fine_tuning_stops_when_the_checkpoint_lacks_encoder_weights(tokenizer, tmp_path):
    import json

    from nsptask.finetuning import FinetuneArguments, finetune

    config = transformers.BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    transformers.BertForMaskedLM(config).save_pretrained(tmp_path / "encoder")
    tokenizer.save_pretrained(tmp_path / "encoder")
    config_file = tmp_path / "encoder" / "config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "num_hidden_layers": 2}))
    args = FinetuneArguments(
        output_dir=str(tmp_path / "ft"), task="nsp", model_name_or_path=str(tmp_path / "encoder"), report_to="none"
    )
    with pytest.raises(ValueError, match=r"encoder weights are missing from the checkpoint .*layer\.1\."):
        finetune(args, DataArguments.from_options(max_seq_length=64))
