"""The remove-NSP study: a reduced study end to end, its report, resumption, the report command."""

from __future__ import annotations

import csv
import json

import pytest

from nsptask.study import AblateArguments, parse_arm, run_study

REDUCED = dict(
    arms=["mlm:full-sentences", "mlm+nsp:nsp"],
    seeds=[1, 2],
    token_budget=12_000,
    max_seq_length=64,
    eval_points=2,
    max_eval_samples=64,
    probe_examples=64,
    probe_epochs=1,
    downstream=["segment-tagging"],
    finetune_epochs=1,
)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    run_study(AblateArguments(output_dir=str(root), **REDUCED))
    return root


def test_arms_parse_and_bad_arms_are_rejected():
    assert parse_arm("mlm+nsp:sentence-pair") == ("mlm+nsp", "sentence-pair")
    assert parse_arm("mlm") == ("mlm", "full-sentences")
    with pytest.raises(ValueError, match="unknown objective 'bert'"):
        AblateArguments(arms=["bert:nsp"])


def test_reduced_study_writes_a_report_json_csv_and_plots_that_agree(study):
    report = (study / "report.md").read_text()
    results = json.loads((study / "results.json").read_text())
    rows = list(csv.DictReader(open(study / "results.csv")))
    assert (study / "scores.png").stat().st_size > 1000 and (study / "learning_curves.png").stat().st_size > 1000
    assert len(results["runs"]) == len(rows) == 4
    for run, row in zip(results["runs"], rows):
        run_dir = study / "runs" / run["arm"].replace("+", "-").replace(":", "_") / f"seed{run['seed']}"
        intrinsic = json.loads((run_dir / "intrinsic" / "done.json").read_text())
        segment = json.loads((run_dir / "downstream" / "segment-tagging" / "done.json").read_text())
        # results.json and results.csv hold exactly the per-run files' figures.
        assert (
            run["intrinsic"]["mlm_accuracy"] == intrinsic["mlm_accuracy"] == pytest.approx(float(row["mlm_accuracy"]))
        )
        assert run["downstream"]["segment-tagging"]["score"] == pytest.approx(float(row["segment-tagging"]))
        assert segment["score"] == segment["metrics"]["eval_f1"]
        all_results = json.loads((run_dir / "downstream" / "segment-tagging" / "all_results.json").read_text())
        assert all_results["eval_f1"] == pytest.approx(segment["score"])
    # The table's cells are the means over seeds of those figures.
    for summary in results["summary"]:
        values = [r["intrinsic"]["mlm_accuracy"] for r in results["runs"] if r["arm"] == summary["arm"]]
        mean = sum(values) / len(values)
        assert summary["mlm_accuracy"][0] == pytest.approx(mean)
        assert f"| {summary['arm']} | " in report
        assert f"{mean * 100:.1f} ±" in report
    assert "Runs finished: 4 of 4." in report
    # The model-free topic line: computed once per study, in results.json and the report.
    baselines = json.loads((study / "baselines" / "done.json").read_text())
    assert results["baselines"] == baselines
    assert f"NSP {baselines['nsp']['accuracy'] * 100:.1f}" in report and "Topic alone, no model" in report
    assert "ALBERT (Lan et al., 2020), Table 5" in report and "versions: python" in report


def test_every_arm_sees_about_the_same_number_of_tokens(study):
    results = json.loads((study / "results.json").read_text())
    tokens = [r["pretrain"]["tokens_seen"] for r in results["runs"]]
    batch_tokens = 32 * 64
    assert max(tokens) - min(tokens) <= batch_tokens
    assert all(t >= REDUCED["token_budget"] for t in tokens)


def test_the_nsp_arm_is_scored_with_its_own_head_and_the_mlm_arm_with_a_probe(study):
    results = json.loads((study / "results.json").read_text())
    by_arm = {r["arm"]: r["intrinsic"] for r in results["runs"]}
    assert by_arm["mlm+nsp:nsp"]["nsp_scored_with"] == "own head"
    assert by_arm["mlm+nsp:nsp"]["sop_scored_with"].startswith("probe")
    assert by_arm["mlm:full-sentences"]["nsp_scored_with"].startswith("probe")


def test_rerun_skips_finished_steps_and_redoes_a_missing_one(study):
    target = study / "runs" / "mlm_full-sentences" / "seed1" / "downstream" / "segment-tagging" / "done.json"
    kept = study / "runs" / "mlm-nsp_nsp" / "seed1" / "pretrain" / "done.json"
    before_kept = kept.stat().st_mtime_ns
    target.unlink()
    run_study(AblateArguments(output_dir=str(study), **REDUCED))
    assert target.exists()
    assert kept.stat().st_mtime_ns == before_kept


def test_report_command_rebuilds_a_partial_study_and_compares_two(study, tmp_path, capsys):
    import shutil

    from nsptask.cli import main

    partial = tmp_path / "partial"
    shutil.copytree(study, partial)
    shutil.rmtree(partial / "runs" / "mlm-nsp_nsp" / "seed2")
    (partial / "report.md").unlink()
    assert main(["report", str(partial), "--compare", str(study)]) == 0
    text = (partial / "report.md").read_text()
    assert "Runs finished: 3 of 4 (partial study" in text
    assert f"## Side by side: {study.name}" in text
    assert "| mlm+nsp:nsp |" in capsys.readouterr().out
