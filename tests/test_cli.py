"""The nsptask command, run in-process."""

from __future__ import annotations

import json

import pytest

from nsptask.cli import COMMANDS, main


def test_top_level_help_lists_the_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_subcommand_has_help_for_every_option(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    arguments_type = COMMANDS[command][0]
    if not isinstance(arguments_type, type):
        arguments_type = arguments_type()
    for name, field in arguments_type.__dataclass_fields__.items():
        if not field.init:
            continue
        assert f"--{name}" in out
        assert field.metadata.get("help"), f"{command} --{name} has no help"


def test_build_saves_the_dataset_and_prints_the_report(tmp_path, capsys):
    from datasets import load_from_disk

    out_dir = tmp_path / "out"
    assert main(["build", "--format", "sop", "--max_seq_length", "64", "--output_dir", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    assert "format sop" in printed and "InOrder" in printed
    data = load_from_disk(str(out_dir))
    report = json.loads((out_dir / "report.json").read_text())
    assert report["splits"]["train"]["instances"] == len(data["train"])
    assert (out_dir / "tokenizer" / "tokenizer.json").exists()


def test_yaml_config_sets_options_and_flags_override_it(tmp_path, capsys):
    config = tmp_path / "build.yaml"
    config.write_text("format: doc-sentences\nmax_seq_length: 48\nvalidation_fraction: 0.1\n")
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


def test_unknown_command_fails(capsys):
    assert main(["frobnicate"]) == 2
