"""The nsptask command, run in-process: help, errors, and the newcomer path from a prose file to predictions."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
from conftest import conll_sentences

from nsptask.cli import COMMANDS, main


def test_top_level_help_lists_the_commands_with_what_they_do(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command, spec in COMMANDS.items():
        assert f"  {command}" in out and spec.description[:40] in out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("nsptask 0.")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_subcommand_has_grouped_help_for_every_option(command, capsys):
    spec = COMMANDS[command]
    start = time.perf_counter()
    assert main([command, "--help"]) == 0
    seconds = time.perf_counter() - start
    out = capsys.readouterr().out
    for dataclass_type in spec.own(False) + spec.data:
        for field in dataclasses.fields(dataclass_type):
            assert f"--{field.name}" in out, (command, field.name)
            assert field.metadata.get("help"), f"{command} --{field.name} has no help"
    own_group = spec.own(False)[0]._argument_group_name
    # The command's own options lead; the data options (each group one of the data option objects) follow.
    assert out.index(f"{own_group}:") < (out.index("data:") if spec.data else len(out))
    if command in ("pretrain", "finetune"):
        assert "--help-all lists them" in out and "--adam_beta1" not in out
        assert main([command, "--help-all"]) == 0
        full = capsys.readouterr().out
        # nsptask's own groups come first, TrainingArguments' after them.
        assert (
            full.index(f"{own_group}:")
            < full.index("data:")
            < full.index("training options (transformers.TrainingArguments)")
        )
        for dataclass_type in spec.own(True):
            for field in dataclasses.fields(dataclass_type):
                if field.init:
                    assert f"--{field.name}" in full, (command, field.name)
    assert "data:" in out or command in ("predict", "report")
    del seconds  # timed by the CLI benchmark, not asserted here (shared machines are noisy)


def test_user_mistakes_end_in_one_line_before_any_work(tmp_path, capsys):
    cases = [
        (["ablate", "--arms", "mlm+nsp:nspp"], "unknown format 'nspp'"),
        (["ablate", "--arms", "bert"], "unknown objective 'bert'"),
        (["pretrain", "--model_name_or_path", "./no/such/model"], "no such model folder"),
        (["finetune", "--model_name_or_path", "runs/missing-model"], "no such model folder"),
        (["build", "--config", str(tmp_path / "missing.yaml")], "missing.yaml: no such file"),
        (["build", "--corpus", str(tmp_path / "nope.txt")], "no such corpus file"),
    ]
    for argv, expected in cases:
        start = time.perf_counter()
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (argv, err)
        assert time.perf_counter() - start < 30, argv  # no training, no Hub retries before the error


def test_a_path_like_name_is_never_taken_for_a_hub_id_even_online(tmp_path, monkeypatch):
    from nsptask.arguments import check_path_or_hub_id

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    for name in ("runs/missing-model", "./model", "a/b/c", "corpus.txt", "~/model"):
        with pytest.raises(ValueError, match="no such model folder on this machine"):
            check_path_or_hub_id(name, "model folder", "model_name_or_path")
    for name in ("bert-base-uncased", "BAAI/bge-small-en-v1.5", "owner/model"):  # Hub ids: left to the Hub
        check_path_or_hub_id(name, "model folder", "model_name_or_path")


def test_parser_enforces_choices_and_refuses_abbreviations(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["build", "--form", "nsp"])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit):
        main(["pretrain", "--objective", "mlm+nspp"])
    assert "invalid choice" in capsys.readouterr().err


def test_unknown_command_fails(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_build_saves_the_dataset_and_prints_the_report(tmp_path, capsys):
    from datasets import load_from_disk

    out_dir = tmp_path / "out"
    assert main(["build", "--data_format", "sop", "--max_seq_length", "64", "--output_dir", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    assert "format sop" in printed and "InOrder" in printed and "unknown" in printed
    data = load_from_disk(str(out_dir))
    report = json.loads((out_dir / "report.json").read_text())
    assert report["splits"]["train"]["instances"] == len(data["train"])
    assert (out_dir / "tokenizer" / "tokenizer.json").exists() and (out_dir / "nsptask_build.json").exists()


def test_yaml_config_sets_options_and_flags_override_it(tmp_path, capsys):
    config = tmp_path / "build.yaml"
    config.write_text("data_format: doc-sentences\nmax_seq_length: 48\nvalidation_fraction: 0.1\n")
    assert main(["build", "--config", str(config), "--max_seq_length", "40", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "doc-sentences"
    assert report["settings"]["max_seq_length"] == 40
    assert report["settings"]["validation_fraction"] == 0.1


def test_bad_corpus_is_reported_without_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xff\n")
    assert main(["build", "--corpus", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.txt, line 2" in err and "Traceback" not in err


def test_build_and_pretrain_share_one_cache_key_and_pretrain_reads_a_build(tmp_path, capsys):
    from nsptask.arguments import DataArguments
    from nsptask.builder import pretraining_builder
    from nsptask.tokenization import default_tokenizer

    common = [
        "--data_format",
        "nsp",
        "--max_seq_length",
        "64",
        "--validation_fraction",
        "0.2",
        "--data_cache_dir",
        str(tmp_path / "cache"),
    ]
    assert main(["build", *common, "--output_dir", str(tmp_path / "built")]) == 0
    # The same options through DataArguments (as pretrain parses them) make the same builder config id.
    data = DataArguments.from_options(
        data_format="nsp", max_seq_length=64, validation_fraction=0.2, data_cache_dir=str(tmp_path / "cache")
    )
    builder = pretraining_builder(data, default_tokenizer())

    def built_files():  # the builders' outputs (not the index files a shuffle of the evaluation set writes)
        return sorted((str(p), p.stat().st_mtime_ns) for p in (tmp_path / "cache").rglob("nsptask*.arrow"))

    cached = built_files()
    assert cached
    assert any(builder.config_id in p.parts for p in (tmp_path / "cache").rglob("*.arrow"))
    run = [
        "pretrain",
        *common,
        "--max_steps",
        "2",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--save_strategy",
        "no",
        "--max_eval_samples",
        "32",
        "--output_dir",
        str(tmp_path / "m1"),
    ]
    assert main(run) == 0
    assert built_files() == cached  # nothing was read, tokenized or built again
    capsys.readouterr()
    assert (
        main(
            [
                "pretrain",
                "--dataset",
                str(tmp_path / "built"),
                "--max_steps",
                "2",
                "--report_to",
                "none",
                "--disable_tqdm",
                "true",
                "--save_strategy",
                "no",
                "--max_eval_samples",
                "32",
                "--output_dir",
                str(tmp_path / "m2"),
            ]
        )
        == 0
    )
    record = json.loads((tmp_path / "m2" / "nsptask_data.json").read_text())
    assert record["dataset"] == str(tmp_path / "built") and record["pretraining_documents"] > 50
    # Without its tokenizer beside it, a dataset's ids cannot be read: an error, not a guessed tokenizer.
    import shutil

    shutil.copytree(tmp_path / "built", tmp_path / "bare", ignore=shutil.ignore_patterns("tokenizer"))
    assert main(["pretrain", "--dataset", str(tmp_path / "bare"), "--output_dir", str(tmp_path / "m3")]) == 1
    assert "--tokenizer_name_or_path" in capsys.readouterr().err


def test_output_dir_is_not_overwritten_silently(tmp_path, capsys):
    out = tmp_path / "model"
    args = [
        "pretrain",
        "--objective",
        "mlm",
        "--max_seq_length",
        "64",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--max_eval_samples",
        "32",
        "--save_steps",
        "2",
        "--output_dir",
        str(out),
    ]
    assert main([*args, "--max_steps", "4"]) == 0
    assert (out / "checkpoint-4").is_dir()
    assert main([*args, "--max_steps", "2"]) == 1
    assert "exists and is not empty" in capsys.readouterr().err
    assert main([*args, "--max_steps", "2", "--overwrite_output_dir"]) == 0
    assert (out / "checkpoint-2").is_dir() and not (out / "checkpoint-4").exists()


def _prose_file(path, n=60):
    from nsptask.corpus import iter_documents

    with open(path, "w") as f:
        for doc in list(iter_documents())[:n]:
            for k in range(0, len(doc["sentences"]), 6):
                f.write(" ".join(doc["sentences"][k : k + 6]) + "\n")
            f.write("\n")
    return path


def test_newcomer_path_from_a_prose_file_to_predictions(tmp_path, capsys):
    """Build a user's prose file, pretrain a few steps, fine-tune NSP, predict, evaluate, and the pipeline: each
    step's output is checked, not only its exit code."""
    from transformers import pipeline

    import nsptask.pipelines  # noqa: F401  registers the pipeline

    prose = _prose_file(tmp_path / "my_corpus.txt")
    assert main(["build", "--corpus", str(prose)]) == 1
    assert "--corpus_format text" in capsys.readouterr().err
    assert main(["build", "--corpus", str(prose), "--corpus_format", "text", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "my_corpus.txt" and report["corpus"]["unknown_token_rate"] < 0.01
    for split, entry in report["splits"].items():  # a skewed label balance is always pointed out
        skewed = not 0.4 <= entry["label_balance"] <= 0.6
        assert skewed == any(w.startswith(f"{split}: label balance") for w in report["warnings"]), split
    corpus = ["--corpus", str(prose), "--corpus_format", "text", "--max_seq_length", "64"]

    pre = tmp_path / "pre"
    assert (
        main(
            [
                "pretrain",
                *corpus,
                "--max_steps",
                "4",
                "--report_to",
                "none",
                "--disable_tqdm",
                "true",
                "--save_strategy",
                "no",
                "--output_dir",
                str(pre),
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed["steps"] == 4 and printed["eval_nsp_pairs"] > 0
    card = (pre / "README.md").read_text()
    assert "my_corpus.txt" in card and "bundled" not in card.lower()

    ft = tmp_path / "ft"
    assert (
        main(
            [
                "finetune",
                "--task",
                "nsp",
                "--model_name_or_path",
                str(pre),
                *corpus,
                "--num_train_epochs",
                "1",
                "--disable_tqdm",
                "true",
                "--save_strategy",
                "no",
                "--output_dir",
                str(ft),
            ]
        )
        == 0
    )
    capsys.readouterr()
    finetuned = json.loads((ft / "all_results.json").read_text())
    assert finetuned["eval_examples"] > 0 and 0 <= finetuned["eval_accuracy"] <= 1
    config = json.loads((ft / "config.json").read_text())
    assert config["nsptask"]["task"] == "nsp" and config["architectures"] == ["BertForSequenceClassification"]

    pair = ["--text", "The city grew along the river.", "--text_pair", "It became a trading port."]
    assert main(["predict", "--model", str(ft), *pair]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["predict", "--model", str(ft), *pair]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["is_next_probability"] == again["is_next_probability"]  # the trained head, not a random one
    assert first["label"] in ("IsNext", "NotNext")

    nsp = pipeline("next-sentence-prediction", model=str(ft))
    forms = [
        nsp("The city grew along the river.", text_pair="It became a trading port."),
        nsp("The city grew along the river.", "It became a trading port."),
        nsp({"text": "The city grew along the river.", "text_pair": "It became a trading port."}),
        nsp(("The city grew along the river.", "It became a trading port.")),
    ]
    for out in forms:
        assert out["is_next_probability"] == pytest.approx(first["is_next_probability"], abs=1e-5)
    with pytest.raises(ValueError, match="scores a pair of texts"):
        nsp("Only one sentence.")

    assert main(["evaluate", "--model_name_or_path", str(ft), *corpus]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["eval_accuracy"] == pytest.approx(finetuned["eval_accuracy"])
    assert evaluated["eval_examples"] == finetuned["eval_examples"]


def test_the_example_configs_parse():
    """examples/pretrain_base.yaml holds only options the pretrain parser knows."""
    from pathlib import Path

    import yaml

    from nsptask.cli import COMMANDS, _load_config

    path = str(Path(__file__).resolve().parents[1] / "examples" / "pretrain_base.yaml")
    values = _load_config(path, COMMANDS["pretrain"].own(True) + COMMANDS["pretrain"].data)
    assert values == yaml.safe_load(open(path))


@pytest.fixture(scope="module")
def cli_pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("pre") / "model"
    assert (
        main(
            [
                "pretrain",
                "--max_steps",
                "6",
                "--max_seq_length",
                "64",
                "--report_to",
                "none",
                "--disable_tqdm",
                "true",
                "--save_strategy",
                "no",
                "--max_eval_samples",
                "32",
                "--output_dir",
                str(out),
            ]
        )
        == 0
    )
    return out


def _user_task_files(tmp_path):
    """NER and classification files made of real sentences: capitalised words tagged as entities; pairs labelled
    by whether the second sentence follows the first."""
    from nsptask.corpus import iter_documents

    docs = [d["sentences"] for d in list(iter_documents())[:30]]
    conll = conll_sentences(docs)
    rows = []
    for i, sentences in enumerate(docs):
        for k in range(0, min(len(sentences) - 1, 10), 2):
            follows = (k // 2) % 2 == 0
            second = sentences[k + 1] if follows else docs[(i + 1) % len(docs)][k]
            rows.append({"sentence1": sentences[k], "sentence2": second, "label": "follows" if follows else "other"})
    files = {}
    for split, part in (("train", slice(0, 90)), ("dev", slice(90, None))):
        files[f"ner_{split}"] = tmp_path / f"ner_{split}.conll"
        files[f"ner_{split}"].write_text("\n\n".join(conll[part]) + "\n")
        files[f"cls_{split}"] = tmp_path / f"cls_{split}.jsonl"
        files[f"cls_{split}"].write_text("\n".join(json.dumps(r) for r in rows[part]) + "\n")
    return files


@pytest.mark.parametrize("task", ["nsp", "sop", "coherence", "segment-tagging", "ner", "classification"])
def test_every_task_fine_tunes_evaluates_and_predicts_through_the_cli(task, cli_pretrained, tmp_path, capsys):
    files = _user_task_files(tmp_path)
    data = {
        "ner": ["--train_file", str(files["ner_train"]), "--validation_file", str(files["ner_dev"])],
        "classification": ["--train_file", str(files["cls_train"]), "--validation_file", str(files["cls_dev"])],
    }.get(task, [])
    ft = tmp_path / "ft"
    assert (
        main(
            [
                "finetune",
                "--task",
                task,
                "--model_name_or_path",
                str(cli_pretrained),
                "--max_seq_length",
                "64",
                "--num_train_epochs",
                "1",
                "--disable_tqdm",
                "true",
                "--save_strategy",
                "no",
                "--output_dir",
                str(ft),
                *data,
            ]
        )
        == 0
    )
    capsys.readouterr()
    trained = json.loads((ft / "all_results.json").read_text())
    config = json.loads((ft / "config.json").read_text())
    assert config["nsptask"]["task"] == task
    evaluate_files = {
        "ner": ["--validation_file", str(files["ner_dev"])],
        "classification": ["--validation_file", str(files["cls_dev"])],
    }.get(task, [])
    assert main(["evaluate", "--model_name_or_path", str(ft), *evaluate_files]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    key = "eval_f1" if task in ("segment-tagging", "ner") else "eval_accuracy"
    assert evaluated[key] == pytest.approx(trained[key], abs=1e-6)  # the same head, data and documents
    labels = set(config["id2label"].values())
    if task in ("segment-tagging", "ner"):
        assert main(["predict", "--model", str(ft), "--text", "The city of Paris grew along the Seine river ."]) == 0
        result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert result["words"][-1] == "." and len(result["tags"]) == len(result["words"]) == 10  # a tag per word
        assert set(result["tags"]) <= labels
    else:
        pair = ["--text", "The city grew along the river.", "--text_pair", "It became a trading port."]
        outputs = []
        for _ in range(2):
            assert main(["predict", "--model", str(ft), *pair]) == 0
            outputs.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
        assert outputs[0] == outputs[1] and outputs[0]["label"] in labels


def test_build_logs_and_shows_progress_unless_quiet(tmp_path, capsys):
    """nsptask's logger and datasets' bars reach the console at --log_level; --quiet leaves errors only. Several
    runs in one process each print to the stderr of their own time."""
    common = ["build", "--max_seq_length", "48", "--output_dir"]
    for run, options in enumerate(([], ["--quiet"], ["--log_level", "warning"], [])):
        assert (
            main([*common, str(tmp_path / f"out{run}"), "--data_cache_dir", str(tmp_path / f"c{run}"), *options]) == 0
        )
        captured = capsys.readouterr()
        logged = "nsptask: tokenizing with" in captured.err
        bars = "Generating train split" in captured.err
        assert (logged, bars) == {0: (True, True), 1: (False, False), 2: (False, True), 3: (True, True)}[run], (
            captured.err
        )
        assert "build report" in captured.out  # the report is the command's output, quiet or not
