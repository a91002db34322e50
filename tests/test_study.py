"""The remove-NSP study: same start, same budget, same documents and inputs, per-example records the report's
paired intervals are made from, resumption, user benchmark files as columns."""

from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import conll_files, mrpc_files

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
    downstream=["segment-tagging", "sentence-position"],
    finetune_epochs=1,
    finetune_seeds=2,
    downstream_max_seq_length=96,
)


def _data():
    return DataArguments.from_options(max_seq_length=64)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    run_study(AblateArguments(output_dir=str(root), **REDUCED), _data())
    return root


def _results(study) -> dict:
    return json.loads((study / "results.json").read_text())


def test_arms_parse_and_bad_arms_are_rejected():
    assert parse_arm("mlm+nsp:sentence-pair") == ("mlm+nsp", "sentence-pair")
    assert parse_arm("mlm") == ("mlm", "full-sentences")
    with pytest.raises(ValueError, match="unknown objective 'bert'"):
        AblateArguments(arms=["bert:nsp"])
    with pytest.raises(ValueError, match="unknown format 'nspp'"):
        AblateArguments(arms=["mlm+nsp:nspp"])
    with pytest.raises(ValueError, match="needs data with its sentence label"):
        AblateArguments(arms=["mlm+nsp:full-sentences"])
    with pytest.raises(ValueError, match="NAME=TRAIN,TEST"):
        AblateArguments(task_files=["mrpc=only_one_file.tsv"])
    with pytest.raises(ValueError, match="finetune_seeds"):
        AblateArguments(finetune_seeds=0)


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


@pytest.mark.slow  # the reduced study: about 3 minutes
def test_reduced_study_writes_a_report_json_csv_and_plots_that_agree(study):
    report = (study / "report.md").read_text()
    results = _results(study)
    rows = list(csv.DictReader(open(study / "results.csv")))
    assert (study / "scores.png").stat().st_size > 1000 and (study / "learning_curves.png").stat().st_size > 1000
    assert len(results["runs"]) == len(rows) == 4
    for run, row in zip(results["runs"], rows):
        assert run["intrinsic"]["mlm_accuracy"] == pytest.approx(float(row["mlm_accuracy"]))
        fts = run["downstream"]["segment-tagging"]
        assert [ft["finetune_seed"] for ft in fts] == [1, 2]
        assert fts[0]["score"] == pytest.approx(float(row["segment-tagging_ft1"]))
    assert "Runs finished: 4 of 4." in report
    # Of the weights, only the initial and the final pretrained models are kept (no --keep_checkpoints).
    kept = sorted(str(p.relative_to(study)) for p in study.rglob("*.safetensors"))
    assert kept and all(p.startswith("init/") or "/pretrain/" in p for p in kept), kept
    assert not list(study.rglob("checkpoint-*"))
    for reference in ("majority class", "word overlap", "all-L", "position prior", "overlap rule"):
        assert f"| *{reference}, no model* |" in report, reference
    assert "Matthews correlation (0 = chance" in report and "## What this run shows" in report
    assert "resamples documents and pretraining seeds" in report and "Avg" not in report
    assert "ALBERT (Lan et al., 2020), Table 5" in report and "versions: python" in report
    assert "R precision" in report and "weighted F1" in report  # segment tagging's seqeval rows


@pytest.mark.slow  # the reduced study: about 3 minutes
def test_per_example_records_give_back_every_score(study):
    """The report's intervals are made from per-example records: they must reproduce the runs' own metrics."""
    from nsptask.intervals import statistic

    for run in _results(study)["runs"]:
        for ft in run["downstream"]["segment-tagging"]:
            counts = np.asarray(ft["examples"]["counts"])
            assert statistic("f1", {"counts": counts}, np.ones((1, len(counts))))[0] == pytest.approx(
                ft["metrics"]["eval_f1_R"], abs=1e-6
            )
            assert ft["score"] == ft["metrics"]["eval_f1_R"] and ft["metric"] == "f1_R"
            overall = np.asarray(ft["examples"]["counts_all"])
            assert statistic("f1", {"counts": overall}, np.ones((1, len(overall))))[0] == pytest.approx(
                ft["metrics"]["eval_f1"], abs=1e-6
            )
        for ft in run["downstream"]["sentence-position"]:
            record = ft["examples"]
            accuracy = np.mean(np.equal(record["predictions"], record["labels"]))
            assert accuracy == pytest.approx(ft["metrics"]["eval_accuracy"]) == pytest.approx(ft["score"])
            assert len(record["documents"]) == len(record["labels"])
        for task in ("nsp", "sop"):
            record = run["intrinsic"][task]
            assert np.mean(np.equal(record["predictions"], record["labels"])) == run["intrinsic"][f"{task}_accuracy"]


@pytest.mark.slow  # the reduced study: about 3 minutes
def test_every_run_records_the_encoder_it_started_from(study):
    """Every arm of a seed loads the same initial encoder (and the Trainer starts from it at step 0); seeds differ;
    every fine-tuning run starts from its arm's final pretrained encoder."""
    results = _results(study)
    by_seed: dict[int, set] = {}
    for run in results["runs"]:
        pre = run["pretrain"]
        assert pre["initial_encoder_hash"] and pre["step0_encoder_hash"] == pre["initial_encoder_hash"]
        by_seed.setdefault(run["seed"], set()).add(pre["initial_encoder_hash"])
        assert pre["final_encoder_hash"] != pre["initial_encoder_hash"]  # it trained
        for fts in run["downstream"].values():
            assert {ft["start_encoder_hash"] for ft in fts} == {pre["final_encoder_hash"]}
    assert all(len(v) == 1 for v in by_seed.values()), by_seed  # every arm of a seed: one start
    assert len(set.union(*by_seed.values())) == len(by_seed)  # seeds: different starts
    assert "every arm loaded the same initial encoder" in (study / "report.md").read_text()


@pytest.mark.slow  # the reduced study: about 3 minutes
def test_every_arm_gets_the_same_updates_and_tokens(study):
    runs = _results(study)["runs"]
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


@pytest.mark.slow  # the reduced study: about 3 minutes
def test_every_arm_is_scored_on_the_same_examples(study):
    results = _results(study)
    runs = results["runs"]
    for column in ("mlm", "nsp", "sop"):
        assert len({r["intrinsic"][column]["examples_hash"] for r in runs}) == 1, column  # one split: one set
    for task in REDUCED["downstream"]:
        hashes = {ft["examples"]["examples_hash"] for r in runs for ft in r["downstream"][task]}
        assert len(hashes) == 1, task
        # ... and the references without a model are scored on those examples too.
        baseline = next(iter(results["baselines"].values()))["tasks"][task]
        assert baseline["documents"] == runs[0]["downstream"][task][0]["examples"]["documents"]


@pytest.mark.slow  # the reduced study: about 3 minutes
def test_single_segment_arms_are_probed_and_fine_tuned_as_they_were_pretrained(study):
    """The MLM-only arm never trained token type 1: its fine-tuning runs feed every token as segment 0."""
    runs = _results(study)["runs"]
    for run in runs:
        single = run["arm"].startswith("mlm:")
        assert run["pretrain"]["single_segment"] is single
        assert all(ft["single_segment"] is single for fts in run["downstream"].values() for ft in fts)
    config = json.loads(
        next((study / "runs" / "mlm_full-sentences" / "seed1" / "downstream").rglob("config.json")).read_text()
    )
    assert config["nsptask"]["single_segment"] is True
    assert "one segment (token type 0 only, as pretrained)" in (study / "report.md").read_text()


@pytest.mark.slow  # the reduced study: about 3 minutes
def test_the_nsp_arm_is_scored_with_its_own_head_and_the_mlm_arm_with_a_probe(study):
    by_arm = {r["arm"]: r["intrinsic"] for r in _results(study)["runs"]}
    assert by_arm["mlm+nsp:nsp"]["nsp_scored_with"] == "own head"
    assert by_arm["mlm+nsp:nsp"]["sop_scored_with"].startswith("probe")
    assert by_arm["mlm:full-sentences"]["nsp_scored_with"].startswith("probe")


def test_a_probe_head_is_the_same_for_the_same_seed(tmp_path, tokenizer):
    """Fairness: a head trained on a frozen encoder is initialised from the run's seed, not from whatever the global
    generator holds."""
    from nsptask.study import _data as study_data
    from nsptask.study import _initial_model, _probe
    from nsptask.training import BarsOnlyProgressCallback

    args = AblateArguments(output_dir=str(tmp_path), **REDUCED)
    init = _initial_model(args, _data(), tokenizer, 1, tmp_path)
    data = study_data(args, _data(), "nsp", tokenizer, 1)
    train, evaluation = data["train"].select(range(32)), data["validation"].select(range(16))
    outputs = []
    for noise in (0, 1):
        torch.manual_seed(1000 + noise)  # a different global state before each call
        logits = _probe(args, init, train, evaluation, "next_sentence_label", tokenizer, 7, tmp_path / str(noise),
                        BarsOnlyProgressCallback(), single=False)  # fmt: skip
        outputs.append(np.asarray(logits))
    np.testing.assert_array_equal(outputs[0], outputs[1])


@pytest.mark.slow  # the reduced study: about 3 minutes
def test_rerun_skips_finished_steps_and_redoes_a_missing_one(study, caplog):
    target = study / "runs" / "mlm_full-sentences" / "seed1" / "downstream" / "segment-tagging" / "ft2" / "done.json"
    kept = study / "runs" / "mlm-nsp_nsp" / "seed1" / "pretrain" / "done.json"
    before_kept = kept.stat().st_mtime_ns
    target.unlink()
    with caplog.at_level(logging.INFO, logger="nsptask"):
        run_study(AblateArguments(output_dir=str(study), **REDUCED), _data())
    assert target.exists()
    assert kept.stat().st_mtime_ns == before_kept
    announced = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[")]
    total = 2 * (1 + 2 * (2 + 2 * 2))  # seeds x (references + arms x (pretrain, intrinsic, tasks x fine-tuning seeds))
    # seed 1: [1] references, [2] pretrain, [3] intrinsic, [4] fine-tuning seed 1, [5] fine-tuning seed 2
    tag = f"[5/{total}] fine-tune segment-tagging: mlm:full-sentences, seed 1, fine-tuning seed 2"
    assert announced[0] == tag and len(announced) == 2, announced  # only the missing step runs, in its place
    assert re.fullmatch(re.escape(tag) + r": done in \d+\.\d s; segment-tagging f1_R \d+\.\d%", announced[1])
    assert any("resumed: 4 of 4 pretraining runs done" in r.getMessage() for r in caplog.records)


@pytest.mark.slow  # the reduced study: about 3 minutes
def test_report_command_rebuilds_a_partial_study_and_compares_two(study, tmp_path, capsys):
    import shutil

    from nsptask.cli import main

    partial = tmp_path / "partial"
    shutil.copytree(study, partial)
    shutil.rmtree(partial / "runs" / "mlm-nsp_nsp" / "seed2")
    (partial / "report.md").unlink()
    long_run = Path(__file__).resolve().parents[1] / "docs" / "results" / "long" / "results.json"
    assert main(["report", str(partial), "--compare", str(study / "results.json"), str(long_run)]) == 0
    text = (partial / "report.md").read_text()
    assert "Runs finished: 3 of 4 (partial study" in text
    assert text.count("## Side by side: ") == 2
    assert "## Side by side: long\n\n_an nsptask 0.1 study: its intrinsic columns only" in text  # the committed run
    assert "| mlm+nsp:nsp |" in capsys.readouterr().out


@pytest.mark.slow
def test_a_study_takes_glue_and_conll_files_as_columns_with_three_finetuning_seeds(tmp_path):
    """A user's benchmark files as study columns: MRPC in its distributed layout (BOM, header, quote characters in
    sentences) and a CoNLL NER file, each fine-tuned three times per pretrained model."""
    train, test = mrpc_files(tmp_path, n=80)
    ner_train, ner_test = conll_files(tmp_path)
    options = dict(REDUCED, seeds=[1], downstream=[], finetune_seeds=3)
    options["task_files"] = [f"mrpc={train},{test}", f"wnut={ner_train},{ner_test}"]
    run_study(AblateArguments(output_dir=str(tmp_path / "study"), **options), _data())
    results = _results(tmp_path / "study")
    assert results["tasks"] == ["mrpc", "wnut"]
    for run in results["runs"]:
        assert [ft["finetune_seed"] for ft in run["downstream"]["mrpc"]] == [1, 2, 3]
        mrpc = run["downstream"]["mrpc"][0]
        assert len(mrpc["examples"]["labels"]) == 40 and mrpc["metric"] == "accuracy"
        assert mrpc["metrics"]["test_accuracy"] == mrpc["score"]  # scored on the test file
        assert run["downstream"]["wnut"][0]["metric"] == "f1" and "counts" in run["downstream"]["wnut"][0]["examples"]
    report = (tmp_path / "study" / "report.md").read_text()
    assert "| arm | MLM | NSP | SOP | mrpc | wnut F1 |" in report
    assert "3 fine-tuning seeds" in report


@pytest.mark.slow
def test_the_study_runs_end_to_end_for_another_family(tmp_path):
    """RoBERTa with a byte-level BPE tokenizer: its arms get a sentence head where they need one, no token types,
    and the same report."""
    from nsptask.corpus import iter_documents
    from nsptask.tokenization import train_tokenizer

    tokenizer_dir = tmp_path / "bpe"
    train_tokenizer(
        (s for d in iter_documents() for s in d["sentences"]), model="bpe", vocab_size=2000, output_dir=tokenizer_dir
    )
    options = dict(REDUCED, seeds=[1], downstream=["segment-tagging", "nsp"], finetune_seeds=1)
    run_study(
        AblateArguments(output_dir=str(tmp_path / "study"), model_family="roberta", **options),
        DataArguments.from_options(max_seq_length=64, tokenizer_name_or_path=str(tokenizer_dir)),
    )
    results = _results(tmp_path / "study")
    assert len(results["runs"]) == 2
    config = json.loads((tmp_path / "study" / "init" / "seed1" / "config.json").read_text())
    assert config["model_type"] == "roberta" and config["architectures"] == ["RobertaForMaskedLMWithSentenceHead"]
    nsp_arm = next(r for r in results["runs"] if r["arm"] == "mlm+nsp:nsp")
    assert nsp_arm["intrinsic"]["nsp_scored_with"] == "own head"
    assert all(set(r["downstream"]) == {"segment-tagging", "nsp"} for r in results["runs"])
    report = (tmp_path / "study" / "report.md").read_text()
    assert "objective fine-tuned again" in report  # the nsp column repeats an objective, and the report says so


def test_ablate_passes_precision_attention_loaders_and_loggers_to_every_run(tmp_path, tokenizer):
    """The run options of ablate reach the TrainingArguments of its pretraining and of its fine-tuning runs."""
    from nsptask.arguments import TaskOptions
    from nsptask.study import StudyTask, _finetune_args, _pretraining_args

    args = AblateArguments(
        output_dir=str(tmp_path),
        attn_implementation="eager",
        dataloader_num_workers=2,
        report_to="tensorboard",
        **REDUCED,
    )
    pre = _pretraining_args(args, "mlm+nsp", str(tmp_path), 8, 1, tmp_path / "pre")
    task = StudyTask("sentence-position", TaskOptions(task="sentence-position"), None, ["0", "1"])
    ft = _finetune_args(args, task, str(tmp_path), 2, True, tmp_path / "ft")
    for run in (pre, ft):
        assert run.dataloader_num_workers == 2 and run.report_to == ["tensorboard"]
        assert run.attn_implementation == "eager" and not run.bf16 and not run.fp16
    assert ft.seed == 2 and ft.single_segment and ft.task == "sentence-position"
    assert pre.max_steps == args.updates and pre.seed == 1


# -- the report's logic on hand-made results -------------------------------------------------------------


def _label(correct, labels) -> dict:
    labels = np.asarray(labels)
    return {"predictions": np.where(correct, labels, 1 - labels).tolist(), "labels": labels.tolist()}


def _hand_made(p: dict, n: int = 600, seeds=(1, 2), task_p: dict | None = None) -> dict:
    """Results of three arms whose NSP/SOP correctness rates are `p[arm] = (nsp, sop)`; examples from 60 documents."""
    rng = np.random.default_rng(0)
    documents = np.repeat(np.arange(60), n // 60).tolist()
    labels = (rng.random(n) < 0.5).astype(int)
    runs = []
    for arm, (nsp, sop) in p.items():
        for seed in seeds:
            intrinsic = {
                "mlm": {"correct": [50] * 10, "total": [100] * 10, "documents": list(range(10))},
                "nsp": {**_label(rng.random(n) < nsp, labels), "documents": documents},
                "sop": {**_label(rng.random(n) < sop, labels), "documents": documents},
            }
            downstream = {}
            if task_p:
                downstream["coherence-same-document"] = [
                    {
                        "finetune_seed": f,
                        "metrics": {},
                        "examples": {**_label(rng.random(n) < task_p[arm], labels), "documents": documents},
                    }
                    for f in (1, 2, 3)
                ]
            runs.append(
                {"arm": arm, "seed": seed, "pretrain": {"seed": seed}, "intrinsic": intrinsic, "downstream": downstream}
            )
    reference = {
        "documents": documents,
        "references": {"majority class": {"predictions": [0] * n, "labels": labels.tolist()}},
    }
    baselines = {
        "split12345": {
            "intrinsic": {"nsp": reference, "sop": reference},
            "tasks": {"coherence-same-document": reference},
        }
    }
    return {
        "config": {"ablate": {"arms": list(p), "seeds": list(seeds)}, "data": {"split_seed": 12345}},
        "arms": list(p),
        "tasks": ["coherence-same-document"] if task_p else [],
        "runs": runs,
        "baselines": baselines,
    }


def test_report_marks_chance_by_mcc_and_bolds_only_a_separated_best():
    from nsptask.report import cell_text, findings, summary_table

    results = _hand_made({"mlm": (0.5, 0.5), "mlm+nsp:nsp": (0.9, 0.52), "mlm+sop:sop": (0.75, 0.85)})
    summary = summary_table(results)
    nsp, sop = summary["per_column"]["nsp"]["cells"], summary["per_column"]["sop"]["cells"]
    assert nsp["mlm"]["at_chance"] and cell_text(nsp["mlm"]).endswith("at chance") and "**" not in cell_text(nsp["mlm"])
    assert nsp["mlm+nsp:nsp"].get("separated_best") and cell_text(nsp["mlm+nsp:nsp"]).startswith("**")
    assert sop["mlm+nsp:nsp"]["at_chance"]
    assert nsp["majority class"]["mcc"]["mean"] == 0 and nsp["majority class"]["at_chance"]
    # Equal MLM for every arm: a tie is never bold.
    assert not any(c.get("separated_best") for c in summary["per_column"]["mlm"]["cells"].values())
    text = findings(summary)
    assert any("ALBERT's first effect appears" in t for t in text)
    assert any("ALBERT's second effect appears" in t for t in text)
    assert "MLM: no arm is separated from every other by its paired differences." in text
    # Nothing learnt: the findings say so.
    flat = _hand_made({"mlm": (0.5, 0.5), "mlm+nsp:nsp": (0.5, 0.5)})
    assert "No arm scores NSP above chance at this budget (every MCC interval reaches 0)." in findings(
        summary_table(flat)
    )


@pytest.mark.parametrize(
    "mlm_p, nsp_p, expected",
    [
        (0.8, 0.6, "removing NSP scores higher"),
        (0.6, 0.8, "removing NSP scores lower"),
        (0.7, 0.7, "no difference is shown"),
        (0.5, 0.5, "both are at chance, so removing NSP cannot be judged here"),
    ],
)
def test_removing_nsp_is_judged_by_a_paired_difference(mlm_p, nsp_p, expected):
    from nsptask.report import findings, summary_table

    results = _hand_made({"mlm": (0.5, 0.5), "mlm+nsp:nsp": (0.5, 0.5)}, task_p={"mlm": mlm_p, "mlm+nsp:nsp": nsp_p})
    lines = [t for t in findings(summary_table(results)) if t.startswith("Coherence (same doc), mlm minus mlm+nsp:nsp")]
    assert len(lines) == 1 and expected in lines[0], (expected, lines)
    assert (
        "paired over the same 600 examples from 60 documents, 2 pretraining seed(s) x 3 fine-tuning seeds" in lines[0]
    )


def test_the_committed_long_run_reads_as_a_legacy_study_with_its_intrinsic_columns():
    """``nsptask report STUDY --compare docs/results/long/results.json`` (docs/study.md): that file is nsptask 0.1's
    (one downstream run per task, no per-example documents), shown by its intrinsic columns."""
    from nsptask.report import is_legacy, legacy_table

    saved = json.loads((Path(__file__).resolve().parents[1] / "docs/results/long/results.json").read_text())
    assert is_legacy(saved)
    table = legacy_table(saved)
    assert table.splitlines()[0] == "| arm | MLM | NSP | SOP |"
    nsp_row = next(line for line in table.splitlines() if line.startswith("| mlm+nsp:nsp |"))
    assert nsp_row.split(" | ")[2].startswith("65.4")  # the NSP arm's NSP cell, as that run's summary has it


@pytest.mark.parametrize("overlap_p, says_topic", [(0.8, True), (None, False)])
def test_the_report_says_when_word_overlap_alone_solves_part_of_a_probe(overlap_p, says_topic):
    """The topic line comes from the word-overlap reference's own MCC interval on the probe's examples: said when it
    is above chance (80% right), not when it is at chance (a constant rule)."""
    from nsptask.report import findings, summary_table

    results = _hand_made({"mlm": (0.5, 0.5), "mlm+nsp:nsp": (0.5, 0.5)}, task_p={"mlm": 0.5, "mlm+nsp:nsp": 0.5})
    labels = np.asarray(results["baselines"]["split12345"]["tasks"]["coherence-same-document"]["references"][
        "majority class"]["labels"])  # fmt: skip
    if overlap_p is None:  # a constant rule: MCC 0, whatever its accuracy
        predicted = np.ones_like(labels)
    else:
        predicted = np.where(np.random.default_rng(5).random(len(labels)) < overlap_p, labels, 1 - labels)
    overlap = {"predictions": predicted.tolist(), "labels": labels.tolist()}
    task_refs = dict(results["baselines"]["split12345"]["tasks"]["coherence-same-document"])
    task_refs["references"] = {**task_refs["references"], "word overlap": overlap}
    results["baselines"]["split12345"]["tasks"]["coherence-same-document"] = task_refs
    text = findings(summary_table(results))
    topic = [t for t in text if "topic solves part of this probe" in t]
    assert bool(topic) == says_topic, text


def test_an_entity_column_is_at_chance_unless_its_paired_difference_with_the_best_rule_is_above_zero():
    """Segment tagging's R F1 has no majority class: an arm is at chance when it does not beat the best reference
    without a model (here an overlap rule right on 60% of the windows) by a separated paired difference."""
    from nsptask.report import summary_table

    results = _hand_made({"mlm": (0.5, 0.5), "mlm+nsp:nsp": (0.5, 0.5)})
    n = 600
    documents = np.repeat(np.arange(60), n // 60).tolist()
    rng = np.random.default_rng(3)

    def counts(p):  # one R sentence per window: found (tp) or missed (fn, and a wrong sentence: fp)
        found = rng.random(n) < p
        return [[1, 0, 0] if f else [0, 1, 1] for f in found]

    rule = counts(0.6)
    for run in results["runs"]:
        p = 0.9 if run["arm"] == "mlm" else None
        records = [{"counts": counts(p) if p else rule, "documents": documents} for _ in (1, 2, 3)]
        run["downstream"]["segment-tagging"] = [
            {"finetune_seed": f, "metrics": {}, "examples": r} for f, r in zip((1, 2, 3), records)
        ]
    results["tasks"] = ["segment-tagging"]
    results["baselines"]["split12345"]["tasks"] = {
        "segment-tagging": {"documents": documents, "references": {"overlap rule": {"counts": rule}}}
    }
    cells = summary_table(results)["per_column"]["segment-tagging"]["cells"]
    assert not cells["mlm"]["at_chance"] and cells["mlm"]["versus"] == "overlap rule"
    assert cells["mlm+nsp:nsp"]["at_chance"]  # the rule's own predictions: no difference


def test_an_arm_or_a_reference_scored_on_other_examples_is_left_out_and_said():
    """Paired differences need the same examples: an arm whose examples hash differs from the first arm's, or
    references made on other examples, are set aside and the report says so, rather than paired with the rest."""
    from nsptask.report import findings, summary_table

    p = {"mlm": (0.5, 0.5), "mlm+nsp:nsp": (0.5, 0.5), "mlm+sop:sop": (0.5, 0.5)}
    results = _hand_made(p, task_p={"mlm": 0.8, "mlm+nsp:nsp": 0.6, "mlm+sop:sop": 0.7})
    for run in results["runs"]:
        for ft in run["downstream"]["coherence-same-document"]:
            ft["examples"]["examples_hash"] = "other" if run["arm"] == "mlm+sop:sop" else "same"
    results["baselines"]["split12345"]["tasks"]["coherence-same-document"]["examples_hash"] = "same"
    column = summary_table(results)["per_column"]["coherence-same-document"]
    assert column["arms"] == ["mlm", "mlm+nsp:nsp"] and column["skipped"] == ["mlm+sop:sop"]
    assert column["references"] == ["majority class"]
    said = "Coherence (same doc): mlm+sop:sop scored on other examples, left out of the comparison."
    assert said in findings(summary_table(results))

    tasks = results["baselines"]["split12345"]["tasks"]
    tasks["coherence-same-document"] = {**tasks["coherence-same-document"], "examples_hash": "stale"}
    column = summary_table(results)["per_column"]["coherence-same-document"]
    assert column["references"] == [] and "majority class" not in column["cells"]
    assert "the references without a model" in column["skipped"]


def test_an_entity_column_without_its_references_claims_no_arm_above_chance():
    """Segment tagging's chance line is its best reference: references made on other examples leave it unknown, so no
    arm is called above chance (nor bold), and the report says why."""
    from nsptask.report import cell_text, findings, summary_table

    results = _hand_made({"mlm": (0.5, 0.5), "mlm+nsp:nsp": (0.5, 0.5)})
    n, rng = 600, np.random.default_rng(3)
    documents = np.repeat(np.arange(60), n // 60).tolist()
    for run in results["runs"]:
        p = 0.9 if run["arm"] == "mlm" else 0.3
        counts = [[[1, 0, 0] if f else [0, 1, 1] for f in rng.random(n) < p] for _ in (1, 2, 3)]
        run["downstream"]["segment-tagging"] = [
            {"finetune_seed": f, "metrics": {}, "examples": {"counts": c, "documents": documents, "examples_hash": "a"}}
            for f, c in zip((1, 2, 3), counts)
        ]
    results["tasks"] = ["segment-tagging"]
    rule = {"counts": [[1, 0, 0]] * n}
    results["baselines"]["split12345"]["tasks"] = {
        "segment-tagging": {"documents": documents, "examples_hash": "b", "references": {"overlap rule": rule}}
    }
    summary = summary_table(results)
    cells = summary["per_column"]["segment-tagging"]["cells"]
    assert all(cells[arm]["at_chance"] for arm in ("mlm", "mlm+nsp:nsp"))
    assert not any(c.get("separated_best") for c in cells.values()) and "**" not in cell_text(cells["mlm"])
    assert any("the references without a model scored on other examples" in t for t in findings(summary))


def test_references_are_made_again_when_a_resumed_study_adds_a_task(tmp_path):
    from nsptask.study import _references_step

    data = _data().resolve()
    first = AblateArguments(output_dir=str(tmp_path), **{**REDUCED, "downstream": ["connective"]})
    step = _references_step(first, data, tmp_path, 1)
    step.finish({"intrinsic": {}, "tasks": {"connective": {"references": {}}}})
    assert _references_step(first, data, tmp_path, 1).result() is not None  # resumed as it was: done
    more = AblateArguments(output_dir=str(tmp_path), **{**REDUCED, "downstream": ["connective", "segment-tagging"]})
    assert _references_step(more, data, tmp_path, 1).result() is None  # a task was added: made again


def test_task_options_reach_a_task_files_column_and_bad_ones_are_named(tmp_path):
    train, test = mrpc_files(tmp_path, n=20)
    ner_train, ner_test = conll_files(tmp_path)
    files = [f"mrpc={train},{test}", f"wnut={ner_train},{ner_test}"]
    options = ["mrpc.bad_rows=skip", "mrpc.label_column=Quality", "mrpc.text_b_column=#2 String", "wnut.repair_iob=yes"]
    tasks = AblateArguments(task_files=files, task_options=options).user_tasks
    assert (tasks["mrpc"].bad_rows, tasks["mrpc"].label_column, tasks["mrpc"].text_b_column) == (
        "skip",
        "Quality",
        "#2 String",
    )
    assert tasks["wnut"].repair_iob is True and tasks["wnut"].task == "ner"
    assert AblateArguments(task_files=files).user_tasks["mrpc"].bad_rows == "error"  # the default otherwise
    for bad, says in (
        ("sst2.bad_rows=skip", "one of the --task_files tasks (mrpc, wnut)"),
        ("mrpc.dupe_factor=2", "OPTION one of text_a_column"),
        ("mrpc.bad_rows=drop", "expected one of error, skip, got 'drop'"),
        ("wnut.repair_iob=maybe", "expected true or false"),
        ("mrpc.text_b_column", "NAME.OPTION=VALUE"),  # no value: not read as an empty column name
        ("mrpc.label_column=", "NAME.OPTION=VALUE"),
        ("mrpc.repair_iob=true", "repair_iob is a CoNLL (ner) option; mrpc is a classification task"),
        ("wnut.bad_rows=skip", "bad_rows is a classification option; wnut is a CoNLL (ner) task"),
        ("mrpc.seqeval_mode=strict", "OPTION one of text_a_column"),  # the report counts entities in default mode
    ):
        with pytest.raises(ValueError, match=re.escape(says)):
            AblateArguments(task_files=files, task_options=[bad])


def test_a_study_on_a_build_studies_its_corpus_with_its_tokenizer(tmp_path, monkeypatch):
    """A build holds one format; ``ablate --dataset`` studies the corpus, split and tokenizer its record names (each
    arm's format built from that corpus), and a build whose corpus is not on this machine is an error naming it."""
    import nsptask.study as study_module
    from nsptask.cli import main
    from nsptask.tokenization import default_tokenizer

    tokenizer = default_tokenizer()
    tokenizer.add_tokens(["nsptaskmarker"])
    tokenizer.save_pretrained(tmp_path / "tok")
    corpus = tmp_path / "corpus.txt.gz"  # the bundled articles, as a corpus of the user's
    corpus.write_bytes((Path(__file__).resolve().parents[1] / "nsptask" / "data" / "enwiki_sample.txt.gz").read_bytes())
    build = ["build", "--corpus", str(corpus), "--validation_fraction", "0.3", "--max_seq_length", "48"]
    build += ["--tokenizer_name_or_path", str(tmp_path / "tok"), "--data_cache_dir", str(tmp_path / "cache")]
    assert main([*build, "--output_dir", str(tmp_path / "built")]) == 0
    seen = {}

    def start(args, data_args, root, tokenizer):  # where run_study begins its work: stop there, keep what it got
        seen.update(data_args=data_args, tokenizer=tokenizer)
        raise KeyboardInterrupt

    monkeypatch.setattr(study_module, "_start", start)
    with pytest.raises(KeyboardInterrupt):
        run_study(
            AblateArguments(output_dir=str(tmp_path / "study"), **REDUCED),
            DataArguments(dataset=str(tmp_path / "built")),
        )
    assert str(corpus) in str(seen["data_args"].corpus) and seen["data_args"].split.validation_fraction == 0.3
    assert seen["data_args"].dataset is None and "nsptaskmarker" in seen["tokenizer"].get_vocab()
    corpus.unlink()
    with pytest.raises(ValueError, match="its record names a corpus this machine cannot read"):
        run_study(
            AblateArguments(output_dir=str(tmp_path / "study"), **REDUCED),
            DataArguments(dataset=str(tmp_path / "built")),
        )
