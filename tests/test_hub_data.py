"""Data on the Hub, offline: a build pushed in the Hub layout and read back by ``pretrain --dataset`` with its
tokenizer, Hub corpora with a configuration and a revision, and cache keys that follow them and the algorithm."""

from __future__ import annotations

import json
import shutil

import datasets
import numpy as np
import pytest
from huggingface_hub import DatasetCard, ModelCard
from transformers import AutoConfig, AutoTokenizer

from nsptask import arguments, publishing
from nsptask import builder as builder_module
from nsptask.arguments import DataArguments
from nsptask.builder import pretraining_builder
from nsptask.cli import main
from nsptask.corpus import iter_documents
from nsptask.tokenization import default_tokenizer

TRAIN = ["--max_steps", "2", "--report_to", "none", "--disable_tqdm", "true", "--save_strategy", "no"]


def test_build_pushed_to_the_hub_is_pretrained_on_from_its_repo_with_its_tokenizer(tmp_path, monkeypatch, capsys):
    hub = tmp_path / "hub"  # stands for huggingface.co: what push_build uploads, snapshot_download gives back
    pushed = []

    def upload(repo_id, folder, private=False):
        shutil.copytree(folder, hub / repo_id)
        pushed.append((repo_id, private))
        return f"https://huggingface.co/datasets/{repo_id}"

    def download(repo_id, repo_type):
        assert repo_type == "dataset"
        return str(hub / repo_id)

    monkeypatch.setattr(publishing, "push_build", upload)
    monkeypatch.setattr(publishing, "snapshot_download", download)
    monkeypatch.setattr(arguments, "_hub_offline", lambda: False)  # Hub ids are accepted; nothing else goes online
    # A tokenizer of its own (one added word), so reading it back cannot be confused with the default one.
    tokenizer = default_tokenizer()
    tokenizer.add_tokens(["nsptaskmarker"])
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    common = ["--data_format", "sop", "--max_seq_length", "64", "--data_cache_dir", str(tmp_path / "cache")]
    common += ["--tokenizer_name_or_path", str(tmp_path / "tokenizer")]
    assert main(["build", *common, "--push_to_hub", "someone/sop-data", "--private"]) == 0
    assert "pretrain with: nsptask pretrain --dataset someone/sop-data" in capsys.readouterr().out
    assert pushed == [("someone/sop-data", True)]
    repo = hub / "someone" / "sop-data"
    shards = sorted(p.name for p in (repo / "data").glob("*.parquet"))
    assert shards and {name.split("-")[0] for name in shards} == {"train", "validation"}
    assert (repo / "tokenizer" / "tokenizer.json").is_file()
    card = DatasetCard.load(repo / "README.md")  # huggingface_hub's own parser of the card's YAML
    assert {c["split"] for c in card.data.configs[0]["data_files"]} == {"train", "validation"}

    # The repo's instances are the build's, row for row.
    local = pretraining_builder(
        DataArguments.from_options(data_format="sop", max_seq_length=64, data_cache_dir=str(tmp_path / "cache")),
        tokenizer,
    )
    local.download_and_prepare()
    read, record, _ = publishing.load_build_output("someone/sop-data")
    assert record["format"] == "sop"
    assert read["train"]["input_ids"] == local.as_dataset()["train"]["input_ids"]

    out = tmp_path / "model"
    assert (
        main(["pretrain", "--dataset", "someone/sop-data", "--objective", "mlm+sop", *TRAIN, "--output_dir", str(out)])
        == 0
    )
    saved = AutoTokenizer.from_pretrained(out)  # the repo's tokenizer, not the default
    assert "nsptaskmarker" in saved.get_vocab() and len(saved) == len(tokenizer) == len(default_tokenizer()) + 1
    assert AutoConfig.from_pretrained(out).vocab_size >= len(tokenizer)
    recorded = json.loads((out / "nsptask_data.json").read_text())
    assert recorded["dataset"] == "someone/sop-data" and recorded["pretraining_documents"] > 50
    assert ModelCard.load(out / "README.md").data.datasets == ["someone/sop-data"]  # the repo it was pretrained on


def _hub_rows():
    return [
        {"id": str(i), "title": f"Doc {i}", "text": "\n".join(d["sentences"])} for i, d in enumerate(iter_documents())
    ]


def test_hub_corpus_reads_its_configuration_and_revision_and_keys_the_cache_by_them(tmp_path, monkeypatch):
    calls = []

    def load_dataset(name, config=None, *, split=None, revision=None, streaming=False):
        calls.append((name, config, split, revision, streaming))
        return datasets.Dataset.from_list(_hub_rows())

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr(arguments, "_hub_offline", lambda: False)  # the Hub name is accepted; the load is the fake
    tokenizer = default_tokenizer()

    def hub_builder(revision):
        data = DataArguments.from_options(
            corpus="wikimedia/wikipedia",
            dataset_config_name="20231101.en",
            dataset_revision=revision,
            doc_id_column="id",
            max_seq_length=64,
            data_cache_dir=str(tmp_path / "cache"),
        )
        return pretraining_builder(data, tokenizer)

    first = hub_builder("abc123")
    first.download_and_prepare()
    assert calls and all(c == ("wikimedia/wikipedia", "20231101.en", "train", "abc123", True) for c in calls)
    assert len(first.as_dataset()["train"]) > 100
    other = hub_builder("def456")
    assert other.config_id != first.config_id and other.config.fingerprint() != first.config.fingerprint()
    assert hub_builder("abc123").config_id == first.config_id  # the same revision: the same cache entry
    calls.clear()
    other.download_and_prepare()
    assert {c[3] for c in calls} == {"def456"}  # a new revision is read again, not taken from the cache


def test_a_new_algorithm_version_rebuilds_instead_of_reusing_the_cache(tmp_path, monkeypatch):
    data = DataArguments.from_options(data_format="nsp", max_seq_length=64, data_cache_dir=str(tmp_path / "cache"))
    tokenizer = default_tokenizer()
    before = pretraining_builder(data, tokenizer)
    before.download_and_prepare()
    files = {p for p in (tmp_path / "cache").rglob("nsptask*.arrow")}
    monkeypatch.setattr(builder_module, "ALGORITHM_VERSION", builder_module.ALGORITHM_VERSION + "-next")
    after = pretraining_builder(data, tokenizer)
    assert after.config_id != before.config_id
    after.download_and_prepare()
    new = {p for p in (tmp_path / "cache").rglob("nsptask*.arrow")} - files
    assert new  # built again under the new key
    assert np.array_equal(
        np.asarray(after.as_dataset()["train"]["input_ids"][:50], dtype=object),
        np.asarray(before.as_dataset()["train"]["input_ids"][:50], dtype=object),
    )  # (the algorithm itself did not change here, so neither did the instances)


def test_preprocessing_workers_tokenize_task_files_as_one_process_does(tmp_path, monkeypatch):
    from conftest import conll_files, mrpc_files

    from nsptask.arguments import TaskOptions
    from nsptask.downstream import load_task_data

    mrpc_train, mrpc_test = mrpc_files(tmp_path, n=60)
    ner_train, ner_test = conll_files(tmp_path)
    data_args, tokenizer = DataArguments.from_options(max_seq_length=64), default_tokenizer()
    processes = []
    real_map = datasets.Dataset.map

    def spy(self, *args, **kwargs):
        processes.append(kwargs.get("num_proc"))
        return real_map(self, *args, **kwargs)

    monkeypatch.setattr(datasets.Dataset, "map", spy)
    for task in (
        TaskOptions(task="classification", train_file=str(mrpc_train), test_file=str(mrpc_test)),
        TaskOptions(task="ner", train_file=str(ner_train), test_file=str(ner_test)),
    ):
        processes.clear()
        one, one_names = load_task_data(task, data_args, tokenizer)
        two, two_names = load_task_data(task, data_args, tokenizer, num_proc=2)
        assert processes == [None] * len(one) + [2] * len(two), task.task  # each split mapped by two processes
        assert one_names == two_names and set(one) == set(two) == {"train", "test"}
        for split in one:
            assert one[split].to_dict() == two[split].to_dict(), (task.task, split)


def test_a_build_whose_record_is_not_json_is_named_with_its_line(tmp_path, capsys):
    from nsptask.builder import BUILD_RECORD_FILE

    assert main(["build", "--max_seq_length", "48", "--output_dir", str(tmp_path / "built")]) == 0
    capsys.readouterr()
    record = tmp_path / "built" / BUILD_RECORD_FILE
    text = record.read_text()
    record.write_text(text[: len(text) // 2])  # cut short, as an interrupted copy leaves it
    assert main(["pretrain", "--dataset", str(tmp_path / "built"), *TRAIN, "--output_dir", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    assert f"{record}, line " in err and "expected the JSON record" in err and "Traceback" not in err
    with pytest.raises(ValueError, match="expected the JSON record"):
        publishing.corpus_of_build(DataArguments(dataset=str(tmp_path / "built")))
    record.write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        publishing.load_build_output(str(tmp_path / "built"))
