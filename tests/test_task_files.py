"""A user's classification files as GLUE distributes them, read as GLUE's loaders read them, and nothing silently:
every malformed row an error naming file, line and column, or a counted skip."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import MRPC_HEADER, mrpc_files

from nsptask.downstream import load_classification_data
from nsptask.errors import CorpusError
from nsptask.task_files import read_task_file


def test_mrpc_as_distributed_reads_every_row_with_its_quotes(tmp_path):
    """MRPC's msr_paraphrase_*.txt: BOM, header, tabs, quote characters that open and never close. A CSV reader
    honouring quotes merges rows (pandas: "Expected 5 fields in line 102, saw 6"); QUOTE_NONE keeps them apart."""
    train, _ = mrpc_files(tmp_path, n=80)
    table = read_task_file(str(train))
    assert table.columns == ("#1 String", "#2 String", "Quality")
    assert len(table.labels) == 80 and sorted(set(table.labels)) == ["0", "1"]
    assert table.text[0].startswith('"')  # the unclosed quote stays part of the sentence
    assert any('He said "' in t for t in table.text_pair)
    assert not table.skipped


def test_glue_headers_pick_their_columns_and_keep_the_label_spelling(tmp_path):
    mnli = tmp_path / "dev_matched.tsv"
    mnli.write_text(
        "index\tpromptID\tpairID\tgenre\tsentence1\tsentence2\tlabel1\tgold_label\n"
        "0\t1\t1n\tgov\tThe cat sat.\tA cat was sitting.\tentailment\tentailment\n"
        "1\t2\t2c\tgov\tIt rained all day.\tThe day was dry.\tcontradiction\tcontradiction\n"
    )
    table = read_task_file(str(mnli))
    assert table.columns == ("sentence1", "sentence2", "gold_label")
    assert table.labels == ["entailment", "contradiction"]
    sst = tmp_path / "train.tsv"
    sst.write_text("sentence\tlabel\nit 's a charming and often affecting journey . \t1\nunflinchingly bleak\t0\n")
    table = read_task_file(str(sst))
    assert table.columns == ("sentence", None, "label") and table.text_pair is None and table.labels == ["1", "0"]


@pytest.mark.parametrize(
    "body, message",
    [
        ("1\t1\t2\tA sentence.\tAnother one.\n\t3\t4\tThird sentence.\tFourth one.\n", "line 3: missing label"),
        ("1\t1\t2\tA sentence.\t\n", "line 2: empty text (column '#2 String')"),
        ("1\t1\t2\tA sentence.\n", "line 2: ragged row (4 fields, the header has 5)"),
        ("", "no data rows"),
    ],
)
def test_a_malformed_tsv_row_is_an_error_naming_file_line_and_column(tmp_path, body, message):
    path = tmp_path / "bad.tsv"
    path.write_text(MRPC_HEADER + "\n" + body)
    with pytest.raises(CorpusError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        read_task_file(str(path))
    assert str(path) in str(error.value)


def test_bad_rows_skip_leaves_them_out_and_counts_them(tmp_path):
    path = tmp_path / "bad.tsv"
    rows = ["1\t1\t2\tGood one.\tFine.", "\t1\t2\tNo label.\tHere.", "0\t1\t2\tShort row.", "0\t1\t2\tGood two.\tOk."]
    path.write_text(MRPC_HEADER + "\n" + "\n".join(rows) + "\n")
    table = read_task_file(str(path), bad_rows="skip")
    assert table.labels == ["1", "0"] and dict(table.skipped) == {"missing label": 1, "ragged row": 1}
    data = load_classification_data({"train": str(path), "test": str(path)}, bad_rows="skip")
    assert data.skipped["train"] == {"missing label": 1, "ragged row": 1}


def test_jsonl_labels_keep_their_type_and_mixing_types_is_an_error(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps({"sentence1": "A b.", "sentence2": "C d.", "label": v}) for v in (1, 0, 1)))
    assert read_task_file(str(good)).labels == ["1", "0", "1"]
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("\n".join(json.dumps({"sentence1": "A b.", "sentence2": "C d.", "label": v}) for v in (1, "1")))
    with pytest.raises(CorpusError, match=r"line 2, column 'label': the labels mix int and str"):
        read_task_file(str(mixed))
    null = tmp_path / "null.jsonl"
    null.write_text("\n".join(json.dumps({"sentence1": "A b.", "sentence2": "C d.", "label": v}) for v in (1, None)))
    with pytest.raises(CorpusError, match=r"line 2: missing label"):
        read_task_file(str(null))


def test_csv_and_parquet_read_with_their_own_quoting_and_types(tmp_path):
    csv_file = tmp_path / "train.csv"
    csv_file.write_text('sentence1,sentence2,label\n"One, two.","Three ""four"".",yes\n')
    table = read_task_file(str(csv_file))
    assert table.text == ["One, two."] and table.text_pair == ['Three "four".'] and table.labels == ["yes"]
    parquet = tmp_path / "train.parquet"
    pq.write_table(pa.table({"sentence": ["Good.", "Bad."], "label": [1, 0]}), parquet)
    assert read_task_file(str(parquet)).labels == ["1", "0"]


def test_a_label_only_in_the_test_file_is_named(tmp_path):
    train, test = tmp_path / "train.tsv", tmp_path / "test.tsv"
    train.write_text("sentence\tlabel\nGood film.\tpos\nBad film.\tneg\n")
    test.write_text("sentence\tlabel\nOk film.\tneutral\n")
    with pytest.raises(ValueError, match=r"has label 'neutral', which the training labels \['neg', 'pos'\]"):
        load_classification_data({"train": str(train), "test": str(test)})


def test_finetune_on_mrpc_train_and_test_files_without_a_validation_file(tmp_path):
    """GLUE gives train and test; without --validation_file the run trains, then scores the test file once."""
    import transformers

    from nsptask.arguments import DataArguments
    from nsptask.finetuning import FinetuneArguments, finetune
    from nsptask.tokenization import default_tokenizer

    train, test = mrpc_files(tmp_path, n=40)
    tokenizer = default_tokenizer()
    config = transformers.BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    transformers.BertModel(config).save_pretrained(tmp_path / "encoder")
    tokenizer.save_pretrained(tmp_path / "encoder")
    args = FinetuneArguments(
        output_dir=str(tmp_path / "ft"),
        task="classification",
        model_name_or_path=str(tmp_path / "encoder"),
        train_file=str(train),
        test_file=str(test),
        num_train_epochs=1,
        disable_tqdm=True,
    )
    result = finetune(args, DataArguments.from_options(max_seq_length=64))
    assert result.label_names == ["0", "1"]
    assert "test_accuracy" in result.metrics and "eval_accuracy" not in result.metrics
    assert len(result.outputs["test"][0]) == 20
