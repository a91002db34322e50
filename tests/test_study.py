"""The remove-NSP study: same start, same budget, same documents, its report read honestly, resumption."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from nsptask.arguments import DataArguments
from nsptask.study import AblateArguments, parse_arm, run_study

REDUCED = dict(
    arms=["mlm:full-sentences", "mlm+nsp:nsp"],
    seeds=[1, 2],
    token_budget=48_000,
    tokens_per_update=4096,
    eval_points=2,
    max_eval_samples=64,
    probe_examples=64,
    probe_epochs=1,
    downstream=["segment-tagging"],
    finetune_epochs=1,
)


def _data():
    return DataArguments.from_options(max_seq_length=64)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    run_study(AblateArguments(output_dir=str(root), **REDUCED), _data())
    return root


def test_arms_parse_and_bad_arms_are_rejected():
    assert parse_arm("mlm+nsp:sentence-pair") == ("mlm+nsp", "sentence-pair")
    assert parse_arm("mlm") == ("mlm", "full-sentences")
    with pytest.raises(ValueError, match="unknown objective 'bert'"):
        AblateArguments(arms=["bert:nsp"])
    with pytest.raises(ValueError, match="unknown format 'nspp'"):
        AblateArguments(arms=["mlm+nsp:nspp"])
    with pytest.raises(ValueError, match="needs data with its sentence label"):
        AblateArguments(arms=["mlm+nsp:full-sentences"])


def _encoder_and_mlm_head(model) -> dict:
    """The tensors every arm shares: the encoder and the MLM head (not a sentence head or BERT's pooler)."""
    state = model.state_dict()
    skip = ("pooler.", "seq_relationship", "sop_classifier", "sentence_head")
    return {k: v for k, v in state.items() if not any(s in k for s in skip)}


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_every_arm_starts_from_the_same_weights(tmp_path, tokenizer, family):
    from nsptask.modeling import build_model
    from nsptask.study import _initial_model

    tok = tokenizer
    if family == "roberta":
        from nsptask.corpus import iter_documents
        from nsptask.tokenization import train_tokenizer

        tok = train_tokenizer(
            (s for d in list(iter_documents())[:20] for s in d["sentences"]), model="bpe", vocab_size=1000
        )
    args = AblateArguments(output_dir=str(tmp_path), model_family=family, **REDUCED)
    init = _initial_model(args, _data(), tok, 1, tmp_path)
    arms = {objective: build_model(objective, tok, init)[0] for objective in ("mlm", "mlm+nsp", "mlm+sop")}
    shared = {objective: _encoder_and_mlm_head(model) for objective, model in arms.items()}
    reference = shared["mlm+nsp"]
    assert len(reference) > 10
    for objective, tensors in shared.items():
        common = set(tensors) & set(reference)
        assert len(common) >= len(reference) - 2, objective  # a masked-LM class may name one tied weight apart
        for key in common:
            torch.testing.assert_close(tensors[key], reference[key], rtol=0, atol=0, msg=f"{objective} {key}")
    # A seed is a different start.
    other = _encoder_and_mlm_head(build_model("mlm", tok, _initial_model(args, _data(), tok, 2, tmp_path))[0])
    assert any(not torch.equal(other[k], reference[k]) for k in other if k in reference)


def test_every_arm_starts_from_the_same_checkpoint_weights(tmp_path, tokenizer):
    import transformers

    from nsptask.modeling import build_model
    from nsptask.study import _initial_model

    config = transformers.BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    transformers.BertModel(config).save_pretrained(tmp_path / "encoder")  # a checkpoint without any head
    args = AblateArguments(output_dir=str(tmp_path), model_name_or_path=str(tmp_path / "encoder"), **REDUCED)
    init = _initial_model(args, _data(), tokenizer, 1, tmp_path)
    arms = {o: _encoder_and_mlm_head(build_model(o, tokenizer, init)[0]) for o in ("mlm", "mlm+nsp", "mlm+sop")}
    for objective, tensors in arms.items():
        common = set(tensors) & set(arms["mlm+nsp"])
        assert len(common) >= len(arms["mlm+nsp"]) - 2 and len(common) > 10, objective
        for key in common:
            assert torch.equal(tensors[key], arms["mlm+nsp"][key]), (objective, key)


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
        assert (
            run["intrinsic"]["mlm_accuracy"] == intrinsic["mlm_accuracy"] == pytest.approx(float(row["mlm_accuracy"]))
        )
        assert run["downstream"]["segment-tagging"]["score"] == pytest.approx(float(row["segment-tagging"]))
        assert segment["score"] == segment["metrics"]["eval_f1"]
        # The per-example records give back the score.
        tp, fp, fn = np.asarray(segment["examples"]["entity_counts"]).sum(0)
        assert 2 * tp / (2 * tp + fp + fn) == pytest.approx(segment["score"], abs=1e-6)
    # The table's cells are the means over seeds of the per-seed figures, each with its interval.
    for row in results["summary"]["rows"]:
        values = [r["intrinsic"]["mlm_accuracy"] for r in results["runs"] if r["arm"] == row["arm"]]
        cell = row["cells"]["mlm"]
        assert cell["mean"] == pytest.approx(sum(values) / len(values))
        assert cell["low"] <= cell["mean"] <= cell["high"]
        assert f"| {row['arm']} | " in report and f"{cell['mean'] * 100:.1f} (" in report
    assert "Runs finished: 4 of 4." in report
    # Of the weights, only the initial and the final pretrained models are kept (no --keep_checkpoints).
    kept = sorted(str(p.relative_to(study)) for p in study.rglob("*.safetensors"))
    assert kept and all(p.startswith("init/") or "/pretrain/" in p for p in kept), kept
    assert not list(study.rglob("checkpoint-*"))
    assert "| *majority class* |" in report and "| *topic overlap, no model* |" in report
    assert "## What this run shows" in report and "Avg" not in report
    assert "bootstrap over the test examples and over the 2 seeds" in report
    assert "ALBERT (Lan et al., 2020), Table 5" in report and "versions: python" in report


def test_every_arm_of_a_seed_starts_training_from_the_same_encoder(study):
    """Hashed by a callback from the model the Trainer holds at step 0 of each arm's pretraining."""
    results = json.loads((study / "results.json").read_text())
    by_seed = {}
    for run in results["runs"]:
        value = run["pretrain"]["initial_encoder_hash"]
        assert value, run["arm"]
        by_seed.setdefault(run["seed"], set()).add(value)
    assert all(len(v) == 1 for v in by_seed.values()), by_seed  # every arm of a seed: one start
    assert len(set.union(*by_seed.values())) == len(by_seed)  # seeds: different starts


def test_every_arm_gets_the_same_updates_and_tokens(study):
    results = json.loads((study / "results.json").read_text())
    runs = results["runs"]
    updates = {r["pretrain"]["updates"] for r in runs}
    assert updates == {round(REDUCED["token_budget"] / REDUCED["tokens_per_update"])}
    tokens = [r["pretrain"]["tokens_seen"] for r in runs]
    assert (max(tokens) - min(tokens)) / min(tokens) <= 0.02  # measured by the Trainer, within 2%
    # ... with different batch sizes: each arm's follows from its mean instance length. Sequences are counted from
    # the training batches (evaluation excluded): at most updates x batch (an epoch's last batch can be short).
    for r in runs:
        planned = r["pretrain"]["updates"] * r["pretrain"]["per_device_train_batch_size"]
        assert 0.8 * planned <= r["pretrain"]["sequences_seen"] <= planned
    assert "tokens per arm agree within" in (study / "report.md").read_text()


def test_every_arm_is_scored_on_the_same_documents(study):
    results = json.loads((study / "results.json").read_text())
    for seed in REDUCED["seeds"]:
        runs = [r for r in results["runs"] if r["seed"] == seed]
        for column in ("mlm", "nsp", "sop"):
            shapes = {(r["intrinsic"][column]["instances"], r["intrinsic"][column]["documents"]) for r in runs}
            assert len(shapes) == 1, (seed, column, shapes)
            # ... and the very same examples (token ids and labels), not just as many.
            assert len({r["intrinsic"][column]["examples_hash"] for r in runs}) == 1, (seed, column)
        # The majority class of an NSP column is the eval set's: the same pairs for every arm.
        assert len({r["intrinsic"]["nsp"]["majority"] for r in runs}) == 1
        segment = {r["downstream"]["segment-tagging"]["examples"]["examples_hash"] for r in runs}
        assert len(segment) == 1
    # Without --vary_split the seeds share the split and the data too: one evaluation set for the whole study.
    assert len({r["intrinsic"]["nsp"]["examples_hash"] for r in results["runs"]}) == 1


def test_the_nsp_arm_is_scored_with_its_own_head_and_the_mlm_arm_with_a_probe(study):
    results = json.loads((study / "results.json").read_text())
    by_arm = {r["arm"]: r["intrinsic"] for r in results["runs"]}
    assert by_arm["mlm+nsp:nsp"]["nsp_scored_with"] == "own head"
    assert by_arm["mlm+nsp:nsp"]["sop_scored_with"].startswith("probe")
    assert by_arm["mlm:full-sentences"]["nsp_scored_with"].startswith("probe")


def test_rerun_skips_finished_steps_and_redoes_a_missing_one(study, capsys):
    target = study / "runs" / "mlm_full-sentences" / "seed1" / "downstream" / "segment-tagging" / "done.json"
    kept = study / "runs" / "mlm-nsp_nsp" / "seed1" / "pretrain" / "done.json"
    before_kept = kept.stat().st_mtime_ns
    target.unlink()
    run_study(AblateArguments(output_dir=str(study), **REDUCED), _data())
    assert target.exists()
    assert kept.stat().st_mtime_ns == before_kept
    out = capsys.readouterr().out
    assert "resumed: 4 of 4 runs done" in out and "run 1/" not in out


def test_report_command_rebuilds_a_partial_study_and_compares_two(study, tmp_path, capsys):
    import shutil

    from nsptask.cli import main

    partial = tmp_path / "partial"
    shutil.copytree(study, partial)
    shutil.rmtree(partial / "runs" / "mlm-nsp_nsp" / "seed2")
    (partial / "report.md").unlink()
    assert main(["report", str(partial), "--compare", str(study / "results.json")]) == 0
    text = (partial / "report.md").read_text()
    assert "Runs finished: 3 of 4 (partial study" in text
    assert "## Side by side: " in text
    assert "| mlm+nsp:nsp |" in capsys.readouterr().out


# -- the report's logic on hand-made results -------------------------------------------------------------


def _run(arm, seed, nsp_correct, sop_correct, mlm=(50, 100), nsp_majority=0.5):
    return {
        "arm": arm,
        "seed": seed,
        "pretrain": {"tokens_seen": 1000, "updates": 10, "sequences_seen": 80, "per_device_train_batch_size": 8},
        "intrinsic": {
            "mlm": {"correct": [mlm[0]] * 4, "total": [mlm[1]] * 4, "instances": 4, "documents": 2},
            "nsp": {"correct": nsp_correct, "majority": nsp_majority, "instances": len(nsp_correct), "documents": 3},
            "sop": {"correct": sop_correct, "majority": 0.5, "instances": len(sop_correct), "documents": 3},
        },
        "downstream": {},
    }


def test_report_marks_chance_and_bolds_only_a_separated_best():
    from nsptask.report import cell_text, findings, summary_table

    rng = np.random.default_rng(0)

    def draws(p, n=400):
        return (rng.random(n) < p).astype(int).tolist()

    results = {
        "arms": ["mlm", "mlm+nsp:nsp", "mlm+sop:sop"],
        "tasks": [],
        "runs": [_run("mlm", s, draws(0.5), draws(0.5)) for s in (1, 2)]
        + [_run("mlm+nsp:nsp", s, draws(0.9), draws(0.52)) for s in (1, 2)]
        + [_run("mlm+sop:sop", s, draws(0.75), draws(0.85)) for s in (1, 2)],
        "baselines": {
            "split12345": {
                "nsp": {"accuracy": 0.86, "correct": draws(0.86)},
                "sop": {"accuracy": 0.5, "correct": draws(0.5)},
            }
        },
    }
    summary = summary_table(results)
    cells = {r["arm"]: r["cells"] for r in summary["rows"]}
    assert cells["mlm"]["nsp"]["at_chance"] and cell_text(cells["mlm"]["nsp"]).endswith("at chance")
    assert "**" not in cell_text(cells["mlm"]["nsp"])
    assert cells["mlm+nsp:nsp"]["nsp"].get("separated_best") and cell_text(cells["mlm+nsp:nsp"]["nsp"]).startswith("**")
    assert cells["mlm+nsp:nsp"]["sop"]["at_chance"]
    # Equal MLM for every arm: a tie is never bold.
    assert not any(c["mlm"].get("separated_best") for c in cells.values())
    text = findings(summary)
    assert any("ALBERT's first effect appears" in t for t in text)
    assert any("ALBERT's second effect appears" in t for t in text)
    assert any(t.startswith("MLM: the arms differ by 0.0 points") and "no best arm is shown" in t for t in text)
    # RoBERTa's question, on a downstream column: shown only when the two arms' intervals are apart.
    for mlm_p, nsp_p, expected in (
        (0.8, 0.6, "removing NSP scores higher"),
        (0.6, 0.8, "removing NSP scores lower"),
        (0.7, 0.7, "no difference is shown"),
        (0.2, 0.3, "both are at or below chance, so the comparison cannot be made"),
    ):
        with_task = {**results, "tasks": ["coherence"], "runs": [dict(r) for r in results["runs"]]}
        for run in with_task["runs"]:
            p = {"mlm": mlm_p, "mlm+nsp:nsp": nsp_p}.get(run["arm"], 0.7)
            run["downstream"] = {"coherence": {"examples": {"correct": draws(p, 600), "majority": 0.5}}}
        summary = summary_table(with_task)
        lines = [t for t in findings(summary) if "mlm against mlm+nsp:nsp" in t]
        assert len(lines) == 1 and expected in lines[0], (expected, lines)
    # The last case: below the majority class reads so, and the column claims no difference.
    cell = {r["arm"]: r["cells"] for r in summary["rows"]}["mlm"]["task:coherence"]
    assert cell["below_chance"] and cell_text(cell).endswith("below chance")
    # ... and only the arm above it is listed as above chance.
    lines = [t for t in findings(summary) if "above chance (majority 50.0%)" in t]
    assert any("mlm+sop:sop (" in t and "mlm (" not in t and "mlm+nsp:nsp (" not in t for t in lines), lines
    # Nothing learnt: the findings say so.
    flat = {**results, "runs": [_run(a, s, draws(0.5), draws(0.5)) for a in results["arms"] for s in (1, 2)]}
    text = findings(summary_table(flat))
    assert "No arm scores NSP above chance at this budget (majority class 50.0%)." in text


def test_bootstrap_interval_covers_what_it_says():
    from nsptask.report import bootstrap_interval

    rng = np.random.default_rng(1)
    one = (rng.random(400) < 0.7).astype(int)
    mean, low, high = bootstrap_interval("accuracy", [one])
    se = math.sqrt(0.7 * 0.3 / 400)
    assert mean == pytest.approx(one.mean())
    assert high - low == pytest.approx(2 * 1.96 * se, rel=0.2)  # the normal interval's width, within 20%
    # Two seeds that disagree widen the interval beyond one seed's.
    other = (rng.random(400) < 0.5).astype(int)
    _, low2, high2 = bootstrap_interval("accuracy", [one, other])
    assert high2 - low2 > high - low
    # F1 from (tp, fp, fn) rows.
    mean, _, _ = bootstrap_interval("f1", [np.array([[1, 0, 0], [0, 1, 1]])])
    assert mean == pytest.approx(2 * 1 / (2 * 1 + 1 + 1))


def test_the_study_runs_end_to_end_for_another_family(tmp_path):
    """RoBERTa with a byte-level BPE tokenizer: its arms get a sentence head where they need one, no token types,
    and the same report."""
    from nsptask.corpus import iter_documents
    from nsptask.tokenization import train_tokenizer

    tokenizer_dir = tmp_path / "bpe"
    train_tokenizer(
        (s for d in iter_documents() for s in d["sentences"]), model="bpe", vocab_size=2000, output_dir=tokenizer_dir
    )
    options = dict(REDUCED, seeds=[1], downstream=["segment-tagging", "nsp"])
    run_study(
        AblateArguments(output_dir=str(tmp_path / "study"), model_family="roberta", **options),
        DataArguments.from_options(max_seq_length=64, tokenizer_name_or_path=str(tokenizer_dir)),
    )
    results = json.loads((tmp_path / "study" / "results.json").read_text())
    assert len(results["runs"]) == 2
    config = json.loads((tmp_path / "study" / "init" / "seed1" / "config.json").read_text())
    assert config["model_type"] == "roberta" and config["architectures"] == ["RobertaForMaskedLMWithSentenceHead"]
    nsp_arm = next(r for r in results["runs"] if r["arm"] == "mlm+nsp:nsp")
    assert nsp_arm["intrinsic"]["nsp_scored_with"] == "own head"
    assert all(set(r["downstream"]) == {"segment-tagging", "nsp"} for r in results["runs"])
