"""The "remove NSP" study: several pretraining arms judged the same way, as one resumable run.

An *arm* is an objective with its data format (``mlm:full-sentences``, ``mlm+nsp:nsp``, ...). What is held
equal, and checked:

- **Same start.** For each seed one initial model with every head (encoder, MLM head, sentence head) is built
  once and saved in ``init/seedN``; every arm starts from it (an MLM-only arm loads its encoder and MLM head).
- **Same budget.** Every arm gets the same number of optimizer updates and the same number of tokens per update,
  counted over all processes: the batch size is scaled per arm from its mean instance length (RoBERTa's way for
  DOC-SENTENCES). The report states the tokens, updates and sequences each arm saw, measured from the Trainer.
- **Same documents.** One document split (``--validation_fraction``, ``--split_seed``; ``--vary_split`` changes it
  with the seed) for pretraining, intrinsic evaluation and the downstream tasks; downstream tasks split the
  held-out documents again on both sides of a pair. Intrinsic sets are seeded samples across all held-out
  documents, the same for every arm; MLM is scored on a neutral format (single-segment blocks within one
  document, ``doc-sentences``) with the same masks for every arm, beside each arm's in-format MLM.

Each (arm, seed) is then judged on held-out MLM, NSP and SOP accuracy (the arm's own sentence head where it was
trained for that task, else a fresh head (and pooler) trained briefly on a fixed labelled set with the encoder
frozen, as ALBERT scored its NSP model on SOP), and downstream: segment tagging, NSP and SOP as tasks, and any user tasks.
Per-example results are kept, so the report gives intervals (bootstrap over examples, and over seeds).

The study directory records every finished step in ``STEP/done.json``; a re-run skips what is done and
resumes an interrupted pretraining from its last checkpoint. Under ``accelerate launch`` every process
runs the same steps (the Trainer distributes each), and only the main process writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import transformers
from accelerate import PartialState
from seqeval.metrics.sequence_labeling import get_entities
from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from .arguments import DEFAULT_ARMS, KNOWN_ARMS, TOKEN_TASKS, AblateArguments, DataArguments, parse_arm
from .baselines import overlap_baseline
from .builder import PRETRAINING_DOCUMENTS_FILE, build_pretraining_dataset, training_document_hashes
from .collator import PretrainingCollator
from .finetuning import FinetuneArguments, finetune
from .modeling import build_model, load_pretraining_model, model_capabilities, sentence_label_argument
from .report import write_report
from .token_classification import word_predictions
from .tokenization import load_tokenizer
from .training import (
    BarsOnlyProgressCallback,
    NspTrainer,
    NspTrainingArguments,
    _model_columns,
    _rename_sentence_label,
    _with_index,
    pretrain,
    use_given_progress_callback,
)

__all__ = ["AblateArguments", "run_study", "parse_arm", "DEFAULT_ARMS", "KNOWN_ARMS", "initial_model_dir"]

logger = logging.getLogger(__name__)

MLM_EVAL_FORMAT = "doc-sentences"
EVAL_SAMPLE_SEED = 0


def _arm_dir(arm: str) -> str:
    return arm.replace("+", "-").replace(":", "_")


class _Step:
    """One resumable step: ``done.json`` marks it finished."""

    def __init__(self, path: Path):
        self.path = path
        self.done_file = path / "done.json"
        self.started = time.time()  # a step is made right before it runs: done.json records how long it took

    def result(self) -> dict | None:
        return json.loads(self.done_file.read_text()) if self.done_file.exists() else None

    def finish(self, result: dict) -> dict:
        result = {**result, "seconds": round(time.time() - self.started, 1)}
        if _is_main():
            self.path.mkdir(parents=True, exist_ok=True)
            tmp = self.done_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(result, indent=2, default=float))
            tmp.replace(self.done_file)
        return result


def _quiet_args(**kwargs) -> dict:
    return {"report_to": "none", "disable_tqdm": False, "dataloader_pin_memory": False, "save_total_limit": 1, **kwargs}


def _bars_only() -> list:
    """Callbacks for the study's runs: progress bars, no log dictionaries on the console (they stay in
    ``log_history``, which the learning curves read)."""
    return [BarsOnlyProgressCallback()]


def encoder_hash(model) -> str:
    """A hash of a model's encoder (its base model's embeddings and layers, names and values; not the pooler,
    which only a sentence head uses and an MLM-only class does not have)."""
    digest = hashlib.blake2b(digest_size=8)
    for name, tensor in sorted(model.base_model.state_dict().items()):
        if name.startswith("pooler."):
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _starting_weights():
    """A Trainer callback that hashes the encoder the training starts from (at step 0 only) into ``.value``."""

    class StartingWeights(TrainerCallback):
        value = None

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            if state.global_step == 0 and model is not None:
                self.value = encoder_hash(model)

    return StartingWeights()


def _quiet_trainer(trainer):
    trainer.add_callback(_bars_only()[0])
    return use_given_progress_callback(trainer)


def _study_data(
    data_args: DataArguments, args: AblateArguments, seed: int, data_format: str | None = None, max_seq_length=None
) -> DataArguments:
    """The study's data options for a seed (the split varies with it under --vary_split), a format and a length."""
    split = data_args.split
    if args.vary_split:
        split = replace(split, split_seed=split.split_seed + seed)
    instances = replace(data_args.instances, data_format=data_format or data_args.instances.data_format)
    if max_seq_length:
        instances = replace(instances, max_seq_length=max_seq_length)
    return replace(data_args, split=split, instances=instances)


def _split_seed(data_args, seed: int, vary: bool) -> int:
    return data_args.split.split_seed + seed if vary else data_args.split.split_seed


def _data(args: AblateArguments, data_args, data_format: str, tokenizer, seed: int, with_builder: bool = False):
    """A format's instances under the study's split (the same for every arm asking for the format and seed)."""
    return build_pretraining_dataset(
        tokenizer=tokenizer, data_args=_study_data(data_args, args, seed, data_format), return_builder=with_builder
    )


def _eval_sample(dataset, n: int):
    """A seeded sample of held-out instances across all held-out documents (not the first ones in corpus order),
    the same for every arm."""
    if len(dataset) <= n:
        return dataset
    return dataset.shuffle(seed=EVAL_SAMPLE_SEED).select(range(n))


def _documents_covered(dataset) -> int:
    columns = [c for c in ("doc_index", "b_doc_index", "last_doc_index") if c in dataset.column_names]
    return len({d for c in columns for d in dataset[c]})


def _examples_hash(dataset) -> str:
    """A hash of the scored examples (every token id, in order, and every label column): equal across arms exactly
    when they are scored on the same examples."""
    digest = hashlib.blake2b(digest_size=8)
    table = dataset.with_format("arrow")[:]
    for name in ("input_ids", "labels", "next_sentence_label", "sentence_order_label", "label"):
        if name in table.column_names:
            column = table[name]
            if hasattr(column.type, "value_type"):
                digest.update(pc.list_value_length(column).to_numpy(zero_copy_only=False).tobytes())
                column = pc.list_flatten(column)
            digest.update(name.encode() + column.to_numpy(zero_copy_only=False).astype(np.int64).tobytes())
    return digest.hexdigest()


def initial_model_dir(root: Path, seed: int) -> Path:
    return root / "init" / f"seed{seed}"


def _initial_model(args: AblateArguments, data_args, tokenizer, seed: int, root: Path) -> str:
    """Build the seed's initial model with every head once, and save it: every arm of this seed starts from it."""
    out = initial_model_dir(root, seed)
    if (out / "config.json").exists():
        return str(out)
    model, _ = build_model(
        "mlm+nsp",
        tokenizer,
        args.model_name_or_path,
        args.preset,
        seed=seed,
        family=args.model_family,
        max_position_embeddings=max(512, data_args.instances.max_seq_length),
    )
    if _is_main():
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    return str(out)


def _pretrain_arm(args: AblateArguments, data_args, arm: str, seed: int, tokenizer, init_dir: str, out: Path) -> dict:
    objective, data_format = parse_arm(arm)
    data, builder = _data(args, data_args, data_format, tokenizer, seed, with_builder=True)
    train = data["train"]
    mean_length = float(pc.mean(pc.list_value_length(train.data.column("input_ids"))).as_py())
    world = _world_size()
    batch = max(1, round(args.tokens_per_update / (mean_length * world)))
    eval_steps = max(1, args.updates // max(args.eval_points, 1))
    evaluation = _eval_sample(data["validation"], args.max_eval_samples)
    training_args = NspTrainingArguments(
        output_dir=str(out),
        objective=objective,
        model_name_or_path=init_dir,
        per_device_train_batch_size=batch,
        learning_rate=args.learning_rate,
        max_steps=args.updates,
        eval_strategy="steps",
        eval_steps=eval_steps,
        save_steps=eval_steps,
        logging_steps=max(1, eval_steps // 2),
        seed=seed,
        overwrite_output_dir=True,
        **_quiet_args(),
    )
    resume = out.is_dir() and get_last_checkpoint(str(out)) is not None
    start = _starting_weights()
    arm_data = _study_data(data_args, args, seed, data_format)
    result = pretrain(
        training_args,
        arm_data,
        train_dataset=train,
        eval_dataset=evaluation,
        tokenizer=tokenizer,
        callbacks=[*_bars_only(), start],
        resume_from_checkpoint=True if resume else None,
    )

    if _is_main():  # the record that lets the downstream tasks check they use no pretraining document
        np.save(out / PRETRAINING_DOCUMENTS_FILE, training_document_hashes(builder))
    state = result.trainer.state
    curve = [
        {k: v for k, v in entry.items() if k.startswith("eval_") or k in ("step", "num_input_tokens_seen")}
        for entry in state.log_history
        if "eval_loss" in entry
    ]
    if not args.keep_checkpoints:
        for checkpoint in out.glob("checkpoint-*"):
            shutil.rmtree(checkpoint, ignore_errors=True)
    final = curve[-1] if curve else {}
    return {
        "arm": arm,
        "objective": objective,
        "data_format": data_format,
        "seed": seed,
        "initial_model": init_dir,
        # A hash of the encoder's weights as the Trainer started from them (None after a resumption): equal for
        # every arm of a seed when they really start from the same weights.
        "initial_encoder_hash": start.value,
        "updates": int(state.global_step),
        "tokens_seen": int(state.num_input_tokens_seen),
        "sequences_seen": int(result.metrics["train_sequences_seen"]),
        "per_device_train_batch_size": batch,
        "world_size": world,
        "train_loss": result.metrics.get("train_loss"),
        "mean_instance_length": mean_length,
        "in_format_mlm_accuracy": final.get("eval_mlm_accuracy"),
        "in_format_eval_instances": len(evaluation),
        "learning_curve": curve,
        "model_dir": str(out),
    }


def _world_size() -> int:
    return PartialState().num_processes


def _predict(trainer, dataset):
    out = trainer.predict(dataset)
    return out.predictions, out.label_ids


def _mlm_examples(args, data_args, model_dir: str, tokenizer, seed: int, out: Path) -> dict:
    """MLM on the neutral format, the same instances and masks for every arm: per-sequence correct and total."""
    evaluation = _eval_sample(
        _data(args, data_args, MLM_EVAL_FORMAT, tokenizer, seed)["validation"], args.max_eval_samples
    )
    model = load_pretraining_model(model_dir, "mlm")
    capabilities = model_capabilities(model.config, tokenizer)

    trainer = NspTrainer(
        model=model,
        args=transformers.TrainingArguments(
            output_dir=str(out / "mlm"),
            per_device_eval_batch_size=64,
            remove_unused_columns=False,
            label_names=["labels"],
            **_quiet_args(),
        ),
        # A fixed masking seed: every arm sees exactly the same masked positions and replacements.
        data_collator=PretrainingCollator(tokenizer, seed=EVAL_SAMPLE_SEED, token_types=capabilities.token_types),
        mlm_key="labels",
    )
    _quiet_trainer(trainer)
    columns = ["input_ids", "attention_mask"] + (["token_type_ids"] if capabilities.token_types == "keep" else [])
    (predictions, _, counts), labels = _predict(trainer, _model_columns(_with_index(evaluation), columns))
    correct = ((predictions == labels) & (labels != -100)).sum(-1)
    return {
        "correct": correct.astype(int).tolist(),
        "total": (labels != -100).sum(-1).astype(int).tolist(),
        "instances": len(evaluation),
        "documents": _documents_covered(evaluation),
        "examples_hash": _examples_hash(evaluation),
    }


def _sentence_examples(args, data_args, pretrained: dict, task: str, tokenizer, seed: int, out: Path) -> dict:
    """NSP or SOP accuracy per held-out pair: with the arm's own head when it was trained for the task, else with
    a fresh head trained on a fixed labelled set, the encoder frozen."""
    data = _data(args, data_args, task, tokenizer, seed)
    evaluation = _eval_sample(data["validation"], args.max_eval_samples)
    label = "next_sentence_label" if task == "nsp" else "sentence_order_label"
    truth = np.asarray(evaluation[label])
    objective, data_format = pretrained["objective"], pretrained["data_format"]
    own_head = objective != "mlm" and (data_format == "sop") == (task == "sop")
    model_dir = pretrained["model_dir"]
    if own_head:
        model = load_pretraining_model(model_dir)
        capabilities = model_capabilities(model.config, tokenizer)
        key = sentence_label_argument(model)
        trainer = NspTrainer(
            model=model,
            args=transformers.TrainingArguments(
                output_dir=str(out / task),
                per_device_eval_batch_size=64,
                remove_unused_columns=False,
                label_names=[key],
                **_quiet_args(),
            ),
            data_collator=transformers.DataCollatorWithPadding(tokenizer),
            sentence_key=key,
        )
        columns = ["input_ids", "attention_mask", key] + (
            ["token_type_ids"] if capabilities.token_types == "keep" else []
        )
        dataset = _model_columns(_rename_sentence_label(evaluation, key), columns)
        predictions, _ = _predict(
            _quiet_trainer(trainer),
            dataset.remove_columns(["instance_index"]) if "instance_index" in dataset.column_names else dataset,
        )
        logits = predictions[-1] if isinstance(predictions, tuple) else predictions
        scored_with = "own head"
    else:
        train = data["train"].shuffle(seed=EVAL_SAMPLE_SEED).select(range(min(args.probe_examples, len(data["train"]))))
        logits = _probe(args, model_dir, train, evaluation, label, tokenizer, seed, out / task)
        scored_with = "probe (head trained, encoder frozen)"
    correct = (np.asarray(logits).argmax(-1) == truth).astype(int)
    share = float(truth.mean()) if len(truth) else 0.0
    return {
        "correct": correct.tolist(),
        "majority": max(share, 1 - share),
        "scored_with": scored_with,
        "instances": len(evaluation),
        "documents": _documents_covered(evaluation),
        "examples_hash": _examples_hash(evaluation),
    }


def _pairs(dataset, label: str, token_types: str):
    keep = ["input_ids", label] + (["token_type_ids"] if token_types == "keep" else [])
    return dataset.remove_columns([c for c in dataset.column_names if c not in keep]).rename_column(label, "labels")


def _probe(args, model_dir, train, evaluation, label, tokenizer, seed, out: Path):
    """A fresh sentence-classification head (with the family's pooler, if any) on the frozen encoder, trained briefly
    on a fixed labelled set;
    returns its logits on the evaluation pairs."""
    config = transformers.AutoConfig.from_pretrained(model_dir)
    config.num_labels = 2
    model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir, config=config)
    capabilities = model_capabilities(model.config, tokenizer)
    prefix = model.base_model_prefix + "."
    for name, parameter in model.named_parameters():
        parameter.requires_grad = not name.startswith(prefix) or ".pooler." in name
    trainer = transformers.Trainer(
        model=model,
        args=transformers.TrainingArguments(
            output_dir=str(out),
            num_train_epochs=args.probe_epochs,
            learning_rate=1e-3,
            per_device_train_batch_size=32,
            per_device_eval_batch_size=64,
            save_strategy="no",
            eval_strategy="no",
            seed=seed,
            **_quiet_args(),
        ),
        train_dataset=_pairs(train, label, capabilities.token_types),
        data_collator=transformers.DataCollatorWithPadding(tokenizer),
    )
    _quiet_trainer(trainer)
    trainer.train()
    return trainer.predict(_pairs(evaluation, label, capabilities.token_types)).predictions


def _intrinsic(args, data_args, pretrained: dict, seed: int, tokenizer, out: Path) -> dict:
    metrics: dict[str, Any] = {"mlm": _mlm_examples(args, data_args, pretrained["model_dir"], tokenizer, seed, out)}
    mlm = metrics["mlm"]
    metrics["mlm_accuracy"] = sum(mlm["correct"]) / max(sum(mlm["total"]), 1)
    for task in ("nsp", "sop"):
        result = _sentence_examples(args, data_args, pretrained, task, tokenizer, seed, out)
        metrics[task] = result
        metrics[f"{task}_accuracy"] = float(np.mean(result["correct"])) if result["correct"] else float("nan")
        metrics[f"{task}_scored_with"] = result["scored_with"]
    return metrics


def _baselines(args, data_args, tokenizer, seed: int) -> dict:
    """What topic alone scores on the held-out NSP and SOP pairs the arms are scored on (no model)."""
    result = {}
    for task, label in (("nsp", "next_sentence_label"), ("sop", "sentence_order_label")):
        data = _data(args, data_args, task, tokenizer, seed)
        evaluation = _eval_sample(data["validation"], args.max_eval_samples)
        result[task] = overlap_baseline(data["train"], evaluation, label, tokenizer.all_special_ids, per_example=True)
    return result


def _entity_counts(true_rows: list[list[str]], pred_rows: list[list[str]]) -> list[list[int]]:
    """Per sentence: (true positives, false positives, false negatives) of seqeval entities."""
    counts = []
    for true, pred in zip(true_rows, pred_rows):
        t, p = set(get_entities(true)), set(get_entities(pred))
        counts.append([len(t & p), len(p - t), len(t - p)])
    return counts


def _downstream(args, data_args, task: str, model_dir: str, seed: int, tokenizer, out: Path) -> dict:
    kwargs: dict[str, Any] = {}
    if task == "ner":
        kwargs = {"train_file": args.ner_train_file, "validation_file": args.ner_validation_file}
    elif task == "classification":
        kwargs = {
            "train_file": args.classification_train_file,
            "validation_file": args.classification_validation_file,
            "text_a_column": args.text_a_column,
            "text_b_column": args.text_b_column,
            "label_column": args.label_column,
        }
    finetune_args = FinetuneArguments(
        output_dir=str(out),
        task=task,
        model_name_or_path=model_dir,
        num_train_epochs=args.finetune_epochs,
        learning_rate=args.finetune_learning_rate,
        task_test_fraction=args.task_test_fraction,
        seed=seed,
        eval_strategy="no",
        save_strategy="no",
        overwrite_output_dir=True,
        **_quiet_args(),
        **kwargs,
    )
    task_data = _study_data(data_args, args, seed, max_seq_length=args.downstream_max_seq_length)
    result = finetune(finetune_args, task_data, tokenizer=tokenizer, callbacks=_bars_only())
    metric = "eval_f1" if task in TOKEN_TASKS else "eval_accuracy"
    # Per-example results on the task's test set (finetune's own evaluation), for the report's intervals.
    test, output = result.outputs["validation"]
    names = result.label_names
    predictions = np.asarray(output.predictions)
    examples: dict[str, Any] = {"instances": len(test), "examples_hash": _examples_hash(test)}
    if task in TOKEN_TASKS:
        true_tags, pred_tags = word_predictions(predictions.argmax(-1), np.asarray(output.label_ids), names)
        examples["entity_counts"] = _entity_counts(true_tags, pred_tags)
        if task == "segment-tagging":
            examples["documents"] = len(set(test["a_doc"]) | set(test["b_doc"]))
            switched = [s >= 0 for s in test["switch"]]
            share = float(np.mean(switched)) if switched else 0.0
            examples["window_majority"] = max(share, 1 - share)
        # The F1 of predicting the majority label on every text token (all L), the reference for "at chance".
        examples["majority_entity_counts"] = _entity_counts(true_tags, [_majority_row(row) for row in true_tags])
    else:
        labels = np.asarray(output.label_ids)
        examples["correct"] = (predictions.argmax(-1) == labels).astype(int).tolist()
        share = np.bincount(labels, minlength=len(names)) / max(len(labels), 1)
        examples["majority"] = float(share.max())
        if "a_doc" in test.column_names:
            examples["documents"] = len(set(test["a_doc"]) | set(test["b_doc"]))
    if not args.keep_checkpoints and _is_main():
        # The fine-tuned weights are not needed once the per-example results are recorded (the pretrained model
        # they came from is kept); without this, every arm, seed and task would leave a full model behind.
        for checkpoint in out.glob("checkpoint-*"):
            shutil.rmtree(checkpoint, ignore_errors=True)
        for weights in (*out.glob("*.safetensors"), *out.glob("*.bin"), *out.glob("*.safetensors.index.json")):
            weights.unlink(missing_ok=True)
    return {
        "score": result.metrics[metric],
        "metric": metric[5:],
        "metrics": {k: v for k, v in result.metrics.items() if k.startswith("eval_") and isinstance(v, (int, float))},
        "examples": examples,
    }


def _majority_row(row: list[str]) -> list[str]:
    """The row's text tokens all tagged with the row's most frequent entity type, as one IOB2 entity per run of
    text (special tokens, tagged O in the truth, stay O)."""
    kinds = [t.split("-")[-1] for t in row if t != "O"]
    kind = max(set(kinds), key=kinds.count) if kinds else None
    out, previous = [], "O"
    for tag in row:
        if tag == "O" or kind is None:
            out.append("O")
        else:
            out.append(("I-" if previous != "O" else "B-") + kind)
        previous = out[-1]
    return out


def downstream_tasks(args: AblateArguments) -> list[str]:
    tasks = list(args.downstream)
    if args.ner_train_file:
        tasks.append("ner")
    if args.classification_train_file:
        tasks.append("classification")
    return tasks


def _folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_study(args: AblateArguments, data_args=None) -> dict:
    """Run (or continue) a study and write its report. Returns the collected results.

    Args:
        args (`AblateArguments`): Arms, seeds, budget, model and evaluation options.
        data_args (`DataArguments`, *optional*): Corpus, tokenizer, length and split (default: the bundled corpus).

    Example:
        ```python
        >>> from nsptask.study import AblateArguments, run_study
        >>> results = run_study(AblateArguments(output_dir="study", arms=["mlm", "mlm+nsp"], seeds=[1]))  # doctest: +SKIP
        ```
    """
    data_args = (data_args or DataArguments()).resolve()
    transformers.logging.set_verbosity_error()  # per-run load reports would drown the progress bars
    transformers.utils.logging.disable_progress_bar()  # and so would the "Writing model shards" bars
    started = time.time()
    root = Path(args.output_dir)
    tokenizer = load_tokenizer(data_args.tokenizer_name_or_path or args.model_name_or_path)
    runs_total = len(args.arms) * len(args.seeds)
    done_before = sum(
        (root / "runs" / _arm_dir(a) / f"seed{s}" / "pretrain" / "done.json").exists()
        for a in args.arms
        for s in args.seeds
    )
    if _is_main():
        root.mkdir(parents=True, exist_ok=True)
        study = {"ablate": asdict(args), "data": data_args.to_dict(), "updates": args.updates}
        (root / "study.json").write_text(json.dumps(study, indent=2, default=str))
        if data_args.tokenizer_name_or_path is None and args.model_name_or_path is None:
            tokenizer.save_pretrained(root / "tokenizer")
        print(
            f"nsptask ablate: writing to {root.resolve()}"
            + (f" (resumed: {done_before} of {runs_total} runs done)" if done_before else "")
        )
    runs = []
    for seed in args.seeds:
        baseline_step = _Step(root / "baselines" / f"split{_split_seed(data_args, seed, args.vary_split)}")
        baseline_step.result() or baseline_step.finish(_baselines(args, data_args, tokenizer, seed))
        init_dir = None
        for arm in args.arms:
            run_dir = root / "runs" / _arm_dir(arm) / f"seed{seed}"
            pre_step = _Step(run_dir / "pretrain")
            pretrained = pre_step.result()
            if pretrained is None:
                init_dir = init_dir or _initial_model(args, data_args, tokenizer, seed, root)
                pretrained = pre_step.finish(
                    _pretrain_arm(args, data_args, arm, seed, tokenizer, init_dir, run_dir / "pretrain")
                )
            intr_step = _Step(run_dir / "intrinsic")
            intrinsic = intr_step.result() or intr_step.finish(
                _intrinsic(args, data_args, pretrained, seed, tokenizer, run_dir / "intrinsic")
            )
            downstream = {}
            for task in downstream_tasks(args):
                step = _Step(run_dir / "downstream" / task)
                downstream[task] = step.result() or step.finish(
                    _downstream(
                        args, data_args, task, pretrained["model_dir"], seed, tokenizer, run_dir / "downstream" / task
                    )
                )
            runs.append(
                {"arm": arm, "seed": seed, "pretrain": pretrained, "intrinsic": intrinsic, "downstream": downstream}
            )
    elapsed = time.time() - started
    if _is_main():
        timing_file = root / "timing.json"
        timing = json.loads(timing_file.read_text()) if timing_file.exists() else {"wall_seconds": 0.0, "sessions": 0}
        timing["wall_seconds"] += elapsed
        timing["sessions"] += 1
        timing["peak_rss_mb"] = max(timing.get("peak_rss_mb", 0.0), _peak_rss_mb())
        timing["cpus"] = os.cpu_count()
        timing["processes"] = _world_size()
        timing["size_mb"] = round(_folder_size(root) / 2**20, 1)
        timing_file.write_text(json.dumps(timing, indent=2))
        write_report(root)
        print(f"nsptask ablate: {root.resolve()} holds {timing['size_mb']:.0f} MB")
    return {"runs": runs, "wall_seconds": elapsed}


def _is_main() -> bool:
    return PartialState().is_main_process


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024
