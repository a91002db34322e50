"""The "remove NSP" study: several pretraining arms judged the same way, as one resumable run.

An *arm* is an objective with its data format (``mlm:full-sentences``, ``mlm+nsp:nsp``, ...). What is held
equal, and checked:

- **Same start.** For each seed one initial model with every head (encoder, MLM head, sentence head) is built
  once and saved in ``init/seedN``; every arm starts from it. Each pretraining run records the hash of the encoder
  it loaded from there (``initial_encoder_hash``) and, when the run starts at step 0, of the encoder the Trainer
  started from (``step0_encoder_hash``); every fine-tuning run records the hash it started from
  (``start_encoder_hash``), equal to its arm's final encoder (``final_encoder_hash``).
- **Same budget.** Every arm gets the same number of optimizer updates and the same number of tokens per update,
  counted over all processes: the batch size is scaled per arm from its mean instance length (RoBERTa's way for
  DOC-SENTENCES). The report states the tokens, updates and sequences each arm saw, measured from the Trainer.
- **Same documents.** One document split (``--validation_fraction``, ``--split_seed``; ``--vary_split`` changes it
  with the seed) for pretraining, intrinsic evaluation and the downstream tasks; downstream tasks split the
  held-out documents again by document. Intrinsic sets are seeded samples across all held-out documents, the same
  for every arm; MLM is scored on a neutral format (single-segment blocks within one document, ``doc-sentences``)
  with the same masks for every arm, beside each arm's in-format MLM.
- **Same inputs it trained on.** An arm pretrained on single segments (``full-sentences``, ``doc-sentences``) never
  trained token type 1, so its probes and fine-tuning runs feed every token as segment 0 (``single_segment``);
  the report states each arm's input format.

Each (arm, seed) is judged on held-out MLM, NSP and SOP (the arm's own sentence head where it was trained for that
task, else a fresh head, seeded, trained briefly with the encoder frozen, as ALBERT scored its NSP model on SOP),
and downstream: the corpus probes of :mod:`nsptask.probes` (not the objectives) and any user tasks
(``--task_files``), each fine-tuned ``--finetune_seeds`` times (fine-tuning seeds 1..N, the same for every arm, apart
from the pretraining seeds). Every score is kept per example with its document, and the references that need no
model (majority class, word overlap, the segment-tagging rules) are scored on the same examples, so the report's
intervals and comparisons are paired and clustered by document (:mod:`nsptask.intervals`).

The study directory records every finished step in ``STEP/done.json``; a re-run skips what is done and resumes an
interrupted pretraining from its last checkpoint. Under ``accelerate launch`` every process runs the same steps
(the Trainer distributes each), and only the main process writes. Each step is announced on the ``nsptask`` logger
as ``[k/N] what, arm, seed``, its training and scoring bars carry the same label, and a closing line gives its time
and headline figure.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import resource
import shutil
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow.compute as pc
import transformers
from accelerate import PartialState
from seqeval.metrics.sequence_labeling import get_entities
from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from .arguments import (
    DEFAULT_ARMS,
    KNOWN_ARMS,
    AblateArguments,
    DataArguments,
    TaskOptions,
    parse_arm,
)
from .baselines import overlap_baseline
from .builder import PRETRAINING_DOCUMENTS_FILE, build_pretraining_dataset, training_document_hashes
from .collator import PretrainingCollator
from .downstream import build_corpus_task, check_task_leak, evaluation_splits, load_task_data, task_documents
from .finetuning import FinetuneArguments, finetune
from .instances import PAIR_FORMATS
from .modeling import build_model, load_pretraining_model, model_capabilities, sentence_label_argument
from .probes import decode_sentences, overlap_predictions, segment_baselines
from .publishing import corpus_of_build
from .report import REPEATS_OBJECTIVE, write_report
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

__all__ = [
    "AblateArguments",
    "run_study",
    "parse_arm",
    "DEFAULT_ARMS",
    "KNOWN_ARMS",
    "initial_model_dir",
    "encoder_hash",
    "REPEATS_OBJECTIVE",
]

logger = logging.getLogger(__name__)

MLM_EVAL_FORMAT = "doc-sentences"
EVAL_SAMPLE_SEED = 0


def _arm_dir(arm: str) -> str:
    return arm.replace("+", "-").replace(":", "_")


def single_segment(arm: str) -> bool:
    """Whether an arm pretrained on single segments (its format has no segment B), so never trained token type 1."""
    return parse_arm(arm)[1] not in PAIR_FORMATS


class _Step:
    """One resumable step: ``done.json`` marks it finished."""

    def __init__(self, path: Path, covers=None):
        self.path = path
        self.done_file = path / "done.json"
        self.covers = covers  # optional: whether a recorded result still covers what this run asks of the step
        self.started = time.time()  # a step is made right before it runs: done.json records how long it took

    def result(self) -> dict | None:
        done = json.loads(self.done_file.read_text()) if self.done_file.exists() else None
        if done is not None and self.covers is not None and not self.covers(done):
            return None
        return done

    def finish(self, result: dict) -> dict:
        result = {**result, "seconds": round(time.time() - self.started, 1)}
        if _is_main():
            self.path.mkdir(parents=True, exist_ok=True)
            tmp = self.done_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(result, indent=2, default=float))
            tmp.replace(self.done_file)
        return result


class _Progress:
    """Numbered steps: ``[k/N] label`` on the ``nsptask`` logger when a step runs, the label on its bars."""

    def __init__(self, total: int):
        self.total, self.count = total, 0
        self.freeze = gc.get_freeze_count() == 0  # never touch what a caller froze itself

    def run(self, step: _Step, label: str, work) -> dict:
        """The step's recorded result, or `work(bars)` run and recorded; `bars` is the step's labelled callback."""
        self.count += 1
        tag = f"[{self.count}/{self.total}] {label}"
        done = step.result()
        if done is not None:
            logger.debug("%s: done before", tag)
            return done
        logger.info("%s", tag)
        step.started = time.time()
        if self.freeze:
            _freeze_survivors()
        result = step.finish(work(BarsOnlyProgressCallback(description=tag)))
        logger.info("%s: done in %.1f s%s", tag, result["seconds"], _headline(result))
        return result


def _headline(result: dict) -> str:
    """A finished step's headline figure for its progress line: a fine-tuning run's score, the held-out MLM, NSP
    and SOP accuracies, or a pretraining run's tokens and in-format MLM accuracy."""
    if result.get("score") is not None:
        return f"; {result['task']} {result['metric']} {100 * result['score']:.1f}%"
    scores = [(k, result.get(f"{k}_accuracy")) for k in ("mlm", "nsp", "sop")]
    if any(v is not None for _, v in scores):
        return "; " + ", ".join(f"{k.upper()} accuracy {100 * v:.1f}%" for k, v in scores if v is not None)
    if "tokens_seen" in result:
        mlm = result.get("in_format_mlm_accuracy")
        tokens = f"; {result['tokens_seen']:,} tokens in {result['updates']} updates"
        return tokens + (f", MLM accuracy {100 * mlm:.1f}% (its own format)" if mlm is not None else "")
    return ""


def _freeze_survivors() -> None:
    """Collect the garbage of the steps before, then move what is left (the imported libraries, the task data, the
    results so far) out of the garbage collector's sight: every ``Trainer.train`` starts with accelerate's
    ``free_memory``, a full ``gc.collect()`` that would otherwise walk all of it again in every training run.
    ``run_study`` gives them back to the collector (and collects) after each seed and when it ends, so what a seed
    leaves is freed before the next."""
    gc.collect()
    gc.freeze()


def _quiet_args(**kwargs) -> dict:
    return {"report_to": "none", "disable_tqdm": False, "dataloader_pin_memory": False, "save_total_limit": 1, **kwargs}


def _run_args(args: AblateArguments) -> dict:
    """The run options the study passes to every pretraining and fine-tuning run."""
    return _quiet_args(
        report_to=args.report_to,
        bf16=args.bf16,
        fp16=args.fp16,
        dataloader_num_workers=args.dataloader_num_workers,
    )


def encoder_hash(model) -> str:
    """A hash of a model's encoder (its base model's embeddings and layers, names and values; not the pooler,
    which only a sentence head uses and an MLM-only class does not have)."""
    digest = hashlib.blake2b(digest_size=8)
    for name, tensor in sorted(model.base_model.state_dict().items()):
        if name.startswith("pooler."):
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class StartingWeights(TrainerCallback):
    """Hashes the encoder a training run starts from (at step 0 only) into ``value``."""

    value: str | None = None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step == 0 and model is not None:
            self.value = encoder_hash(model)


def _quiet_trainer(trainer, bars: BarsOnlyProgressCallback):
    trainer.add_callback(bars)
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


def _instance_documents(dataset) -> list[int]:
    """Each instance's (first) document: the cluster the report's bootstrap resamples."""
    return [int(d) for d in dataset["doc_index"]]


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
    PartialState().wait_for_everyone()
    return str(out)


def _pretraining_args(args: AblateArguments, objective: str, init_dir: str, batch: int, seed: int, out: Path):
    eval_steps = max(1, args.updates // max(args.eval_points, 1))
    return NspTrainingArguments(
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
        attn_implementation=args.attn_implementation,
        **_run_args(args),
    )


def _pretrain_arm(args, data_args, arm: str, seed: int, tokenizer, init_dir: str, out: Path, bars) -> dict:
    objective, data_format = parse_arm(arm)
    data, builder = _data(args, data_args, data_format, tokenizer, seed, with_builder=True)
    train = data["train"]
    mean_length = float(pc.mean(pc.list_value_length(train.data.column("input_ids"))).as_py())
    world = _world_size()
    batch = max(1, round(args.tokens_per_update / (mean_length * world)))
    evaluation = _eval_sample(data["validation"], args.max_eval_samples)
    training_args = _pretraining_args(args, objective, init_dir, batch, seed, out)
    resume = out.is_dir() and get_last_checkpoint(str(out)) is not None
    initial_hash = encoder_hash(load_pretraining_model(init_dir, objective))  # what this arm's class loads
    start = StartingWeights()
    result = pretrain(
        training_args,
        _study_data(data_args, args, seed, data_format),
        train_dataset=train,
        eval_dataset=evaluation,
        tokenizer=tokenizer,
        callbacks=[bars, start],
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
    if not args.keep_checkpoints and _is_main():
        for checkpoint in out.glob("checkpoint-*"):
            shutil.rmtree(checkpoint, ignore_errors=True)
    final = curve[-1] if curve else {}
    return {
        "arm": arm,
        "objective": objective,
        "data_format": data_format,
        "single_segment": single_segment(arm),
        "seed": seed,
        "initial_model": init_dir,
        # Hashes of the encoder: as loaded from the seed's initial model (always), as the Trainer started from it
        # (None after a resumption), and as trained. The first two are equal for every arm of a seed.
        "initial_encoder_hash": initial_hash,
        "step0_encoder_hash": start.value,
        "final_encoder_hash": encoder_hash(result.trainer.model),
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


# -- intrinsic ---------------------------------------------------------------------------------------------


def _mlm_examples(args, data_args, model_dir: str, tokenizer, seed: int, out: Path, bars) -> dict:
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
            **_run_args(args),
        ),
        # A fixed masking seed: every arm sees exactly the same masked positions and replacements.
        data_collator=PretrainingCollator(tokenizer, seed=EVAL_SAMPLE_SEED, token_types=capabilities.token_types),
        mlm_key="labels",
    )
    _quiet_trainer(trainer, bars)
    columns = ["input_ids", "attention_mask"] + (["token_type_ids"] if capabilities.token_types == "keep" else [])
    output = trainer.predict(_model_columns(_with_index(evaluation), columns))
    (predictions, _, _), labels = output.predictions, output.label_ids
    correct = ((predictions == labels) & (labels != -100)).sum(-1)
    return {
        "correct": correct.astype(int).tolist(),
        "total": (labels != -100).sum(-1).astype(int).tolist(),
        "documents": _instance_documents(evaluation),
        "examples_hash": _examples_hash(evaluation),
    }


def _own_head_logits(args, model_dir: str, evaluation, tokenizer, out: Path, bars):
    model = load_pretraining_model(model_dir)
    capabilities = model_capabilities(model.config, tokenizer)
    key = sentence_label_argument(model)
    trainer = NspTrainer(
        model=model,
        args=transformers.TrainingArguments(
            output_dir=str(out),
            per_device_eval_batch_size=64,
            remove_unused_columns=False,
            label_names=[key],
            **_run_args(args),
        ),
        data_collator=transformers.DataCollatorWithPadding(tokenizer),
        sentence_key=key,
    )
    columns = ["input_ids", "attention_mask", key] + (["token_type_ids"] if capabilities.token_types == "keep" else [])
    dataset = _model_columns(_rename_sentence_label(evaluation, key), columns)
    if "instance_index" in dataset.column_names:
        dataset = dataset.remove_columns(["instance_index"])
    predictions = _quiet_trainer(trainer, bars).predict(dataset).predictions
    return predictions[-1] if isinstance(predictions, tuple) else predictions


def _sentence_examples(args, data_args, pretrained: dict, task: str, tokenizer, seed: int, out: Path, bars) -> dict:
    """NSP or SOP predictions per held-out pair: with the arm's own head when it was trained for the task, else with
    a fresh head (seeded) trained on a fixed labelled set, the encoder frozen."""
    data = _data(args, data_args, task, tokenizer, seed)
    evaluation = _eval_sample(data["validation"], args.max_eval_samples)
    label = "next_sentence_label" if task == "nsp" else "sentence_order_label"
    objective, data_format = pretrained["objective"], pretrained["data_format"]
    own_head = objective != "mlm" and (data_format == "sop") == (task == "sop")
    if own_head:
        logits = _own_head_logits(args, pretrained["model_dir"], evaluation, tokenizer, out / task, bars)
        scored_with = "own head"
    else:
        train = data["train"].shuffle(seed=EVAL_SAMPLE_SEED).select(range(min(args.probe_examples, len(data["train"]))))
        single = pretrained.get("single_segment", False)
        logits = _probe(
            args, pretrained["model_dir"], train, evaluation, label, tokenizer, seed, out / task, bars, single
        )
        scored_with = "probe (head trained, encoder frozen)"
    return {
        "predictions": np.asarray(logits).argmax(-1).astype(int).tolist(),
        "labels": [int(v) for v in evaluation[label]],
        "documents": _instance_documents(evaluation),
        "scored_with": scored_with,
        "examples_hash": _examples_hash(evaluation),
    }


def _pairs(dataset, label: str, token_types: str):
    keep = ["input_ids", label] + (["token_type_ids"] if token_types == "keep" else [])
    return dataset.remove_columns([c for c in dataset.column_names if c not in keep]).rename_column(label, "labels")


def _probe(args, model_dir, train, evaluation, label, tokenizer, seed, out: Path, bars, single: bool):
    """A fresh sentence-classification head (with the family's pooler, if any), initialised from `seed`, on the frozen
    encoder, trained briefly on a fixed labelled set; returns its logits on the evaluation pairs."""
    config = transformers.AutoConfig.from_pretrained(model_dir)
    config.num_labels = 2
    transformers.set_seed(seed)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir, config=config)
    token_types = "drop" if single else model_capabilities(model.config, tokenizer).token_types
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
            **_run_args(args),
        ),
        train_dataset=_pairs(train, label, token_types),
        data_collator=transformers.DataCollatorWithPadding(tokenizer),
    )
    _quiet_trainer(trainer, bars)
    trainer.train()
    return trainer.predict(_pairs(evaluation, label, token_types)).predictions


def _intrinsic(args, data_args, pretrained: dict, seed: int, tokenizer, out: Path, bars) -> dict:
    mlm = _mlm_examples(args, data_args, pretrained["model_dir"], tokenizer, seed, out, bars)
    metrics: dict[str, Any] = {"mlm": mlm, "mlm_accuracy": sum(mlm["correct"]) / max(sum(mlm["total"]), 1)}
    for task in ("nsp", "sop"):
        result = _sentence_examples(args, data_args, pretrained, task, tokenizer, seed, out, bars)
        metrics[task] = result
        metrics[f"{task}_accuracy"] = float(np.mean(np.equal(result["predictions"], result["labels"])))
        metrics[f"{task}_scored_with"] = result["scored_with"]
    return metrics


# -- downstream --------------------------------------------------------------------------------------------


@dataclass
class StudyTask:
    """One downstream column: its options, its data (as fine-tuning sees it), label names, and the task documents
    (corpus tasks: checked against each arm's pretraining documents)."""

    name: str
    options: TaskOptions
    data: datasets.DatasetDict
    label_names: list[str]
    documents: dict | None = None

    @property
    def scored_split(self) -> str:
        """The split the study scores: ``test`` when the task has one besides its validation set."""
        return "test" if "test" in self.data else "validation"

    @property
    def token_task(self) -> bool:
        return self.options.token_task


def downstream_tasks(args: AblateArguments) -> list[str]:
    """The study's downstream columns: its corpus tasks, then the user tasks by name."""
    return list(args.downstream) + list(args.user_tasks)


def _study_tasks(args: AblateArguments, data_args: DataArguments, tokenizer, seed: int) -> dict[str, StudyTask]:
    """Every downstream task's data for a seed's split, built once (all corpus tasks from one pass over the held-out
    documents) and shared by every arm and fine-tuning seed."""
    task_data = _study_data(data_args, args, seed, max_seq_length=args.downstream_max_seq_length)
    tasks: dict[str, StudyTask] = {}
    if args.downstream:
        split = TaskOptions(task_test_fraction=args.task_test_fraction)
        documents = task_documents(task_data, tokenizer, split)
        for name in args.downstream:
            options = replace(split, task=name)
            raw, names = build_corpus_task(options, task_data, tokenizer, documents)
            tasks[name] = StudyTask(name, options, evaluation_splits(raw), names, documents)
    for name, options in args.user_tasks.items():
        data, names = load_task_data(options, task_data, tokenizer)
        tasks[name] = StudyTask(name, options, data, names)
    return tasks


def _finetune_args(args: AblateArguments, task: StudyTask, model_dir: str, ft_seed: int, single: bool, out: Path):
    task_fields = {f.name: getattr(task.options, f.name) for f in fields(TaskOptions)}
    return FinetuneArguments(
        **task_fields,
        output_dir=str(out),
        model_name_or_path=model_dir,
        num_train_epochs=args.finetune_epochs,
        learning_rate=args.finetune_learning_rate,
        seed=ft_seed,
        single_segment=single,
        attn_implementation=args.attn_implementation,
        eval_strategy="no",
        save_strategy="no",
        overwrite_output_dir=True,
        **_run_args(args),
    )


def _entity_counts(true_rows, predicted_rows, kind: str | None = None) -> list[list[int]]:
    """Per example: (true positives, false positives, false negatives) of seqeval entities (of one `kind`, or all)."""
    counts = []
    for true, predicted in zip(true_rows, predicted_rows):
        t = {e for e in get_entities(true) if kind is None or e[0] == kind}
        p = {e for e in get_entities(predicted) if kind is None or e[0] == kind}
        counts.append([len(t & p), len(p - t), len(t - p)])
    return counts


def _task_documents(task: StudyTask, dataset) -> list:
    """Each scored example's cluster: its (first) document for corpus tasks; for files, which give no documents, the
    example itself."""
    if "a_doc" in dataset.column_names:
        return list(dataset["a_doc"])
    return list(range(len(dataset)))


def _examples_record(task: StudyTask, dataset, output) -> dict:
    """A fine-tuning run's per-example results on the scored split, as :class:`nsptask.intervals.Records` reads them."""
    predictions = np.asarray(output.predictions).argmax(-1)
    record: dict[str, Any] = {"documents": _task_documents(task, dataset), "examples_hash": _examples_hash(dataset)}
    if task.token_task:
        true, predicted = word_predictions(
            predictions, np.asarray(output.label_ids), task.label_names, word_tags=dataset["word_tags"]
        )
        if task.name == "segment-tagging":
            predicted = decode_sentences(true, predicted)  # one entity per sentence, as the run's metrics score it
            record["counts"] = _entity_counts(true, predicted, "R")
            record["counts_all"] = _entity_counts(true, predicted)
        else:
            record["counts"] = _entity_counts(true, predicted)
    else:
        record["predictions"] = predictions.astype(int).tolist()
        record["labels"] = np.asarray(output.label_ids).astype(int).tolist()
    return record


def _downstream(args, task: StudyTask, pretrained: dict, ft_seed: int, tokenizer, data_args, out: Path, bars) -> dict:
    single = pretrained.get("single_segment", False)
    start = StartingWeights()
    result = finetune(
        _finetune_args(args, task, pretrained["model_dir"], ft_seed, single, out),
        data_args,
        tokenizer=tokenizer,
        data=task.data,
        label_names=task.label_names,
        callbacks=[bars, start],
    )
    dataset, output = result.outputs[task.scored_split]
    prefix = "test" if task.scored_split == "test" else "eval"
    metric = "f1_R" if task.name == "segment-tagging" else ("f1" if task.token_task else "accuracy")
    if not args.keep_checkpoints and _is_main():
        # The per-example results are what the report needs; the fine-tuned weights would be a full model per arm,
        # seed, task and fine-tuning seed (the pretrained model they came from is kept).
        for checkpoint in out.glob("checkpoint-*"):
            shutil.rmtree(checkpoint, ignore_errors=True)
        for weights in (*out.glob("*.safetensors"), *out.glob("*.bin"), *out.glob("*.safetensors.index.json")):
            weights.unlink(missing_ok=True)
    return {
        "task": task.name,
        "finetune_seed": ft_seed,
        "single_segment": single,
        "start_encoder_hash": start.value,
        "score": result.metrics.get(f"{prefix}_{metric}"),
        "metric": metric,
        "metrics": {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))},
        "examples": _examples_record(task, dataset, output),
    }


# -- references without a model ------------------------------------------------------------------------------


def _label_reference(test, predictions) -> dict:
    return {
        "predictions": np.asarray(predictions).astype(int).tolist(),
        "labels": [int(v) for v in test["labels"]],
    }


def _task_references(task: StudyTask) -> dict:
    """What needs no model on the task's scored examples: the training split's majority label, the word-overlap
    reference (corpus probes) or the segment-tagging rules, each per example."""
    train, test = task.data["train"], task.data[task.scored_split]
    scored = {"documents": _task_documents(task, test), "examples_hash": _examples_hash(test)}
    if task.name == "segment-tagging":
        truth = [[task.label_names[t] for t in row] for row in test["word_tags"]]
        rows = segment_baselines(train, test)
        refs = {name: {"counts": _entity_counts(truth, predicted, "R")} for name, predicted in rows.items()}
        return {"kind": "entities", **scored, "references": refs}
    if task.token_task:  # NER from files: predicting O everywhere finds nothing (F1 0)
        return {"kind": "entities", **scored, "references": {}}
    majority = int(np.bincount(np.asarray(train["labels"]), minlength=len(task.label_names)).argmax())
    refs = {"majority class": _label_reference(test, np.full(len(test), majority))}
    if "overlap_features" in test.column_names:
        refs["word overlap"] = _label_reference(test, overlap_predictions(train, test))
    return {"kind": "label", **scored, "references": refs}


def _baselines(args, data_args, tokenizer, seed: int, tasks: dict[str, StudyTask]) -> dict:
    """The references on the held-out NSP and SOP pairs the arms are scored on (majority, topic overlap) and on every
    downstream task's scored examples."""
    result: dict[str, Any] = {"intrinsic": {}, "tasks": {}}
    for task, label in (("nsp", "next_sentence_label"), ("sop", "sentence_order_label")):
        data = _data(args, data_args, task, tokenizer, seed)
        evaluation = _eval_sample(data["validation"], args.max_eval_samples)
        overlap = overlap_baseline(data["train"], evaluation, label, tokenizer.all_special_ids, per_example=True)
        labels = [int(v) for v in evaluation[label]]
        majority = int(np.bincount(np.asarray(data["train"][label]), minlength=2).argmax())
        result["intrinsic"][task] = {
            "documents": _instance_documents(evaluation),
            "examples_hash": _examples_hash(evaluation),
            "references": {
                "majority class": {"predictions": [majority] * len(labels), "labels": labels},
                "word overlap": {"predictions": overlap["predictions"], "labels": labels},
            },
        }
    for name, task in tasks.items():
        result["tasks"][name] = _task_references(task)
    return result


# -- the run -----------------------------------------------------------------------------------------------


def _folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _start(args: AblateArguments, data_args: DataArguments, root: Path, tokenizer) -> None:
    if not _is_main():
        return
    root.mkdir(parents=True, exist_ok=True)
    study = {"ablate": asdict(args), "data": data_args.to_dict(), "updates": args.updates}
    (root / "study.json").write_text(json.dumps(study, indent=2, default=str))
    if data_args.tokenizer_name_or_path is None and args.model_name_or_path is None:
        tokenizer.save_pretrained(root / "tokenizer")
    runs_total = len(args.arms) * len(args.seeds)
    done = sum(
        (root / "runs" / _arm_dir(a) / f"seed{s}" / "pretrain" / "done.json").exists()
        for a in args.arms
        for s in args.seeds
    )
    logger.info(
        "nsptask ablate: %s arms x %s seeds, %s downstream task(s) x %s fine-tuning seed(s); writing to %s%s",
        len(args.arms),
        len(args.seeds),
        len(downstream_tasks(args)),
        args.finetune_seeds,
        root.resolve(),
        f" (resumed: {done} of {runs_total} pretraining runs done)" if done else "",
    )


def _finish(root: Path, started: float) -> None:
    if not _is_main():
        return
    timing_file = root / "timing.json"
    timing = json.loads(timing_file.read_text()) if timing_file.exists() else {"wall_seconds": 0.0, "sessions": 0}
    timing["wall_seconds"] += time.time() - started
    timing["sessions"] += 1
    timing["peak_rss_mb"] = max(timing.get("peak_rss_mb", 0.0), _peak_rss_mb())
    timing["cpus"] = os.cpu_count()
    timing["processes"] = _world_size()
    timing["size_mb"] = round(_folder_size(root) / 2**20, 1)
    timing_file.write_text(json.dumps(timing, indent=2))
    report = write_report(root)
    logger.info("nsptask ablate: report in %s; the study holds %.0f MB", report, timing["size_mb"])


def _run_arm(args, data_args, arm: str, seed: int, tokenizer, root: Path, tasks, progress: _Progress, init) -> dict:
    """One arm of one seed: pretraining, intrinsic scores, every downstream task and fine-tuning seed."""
    run_dir = root / "runs" / _arm_dir(arm) / f"seed{seed}"
    pretrained = progress.run(
        _Step(run_dir / "pretrain"),
        f"pretrain {arm}, seed {seed} ({args.updates} updates)",
        lambda bars: _pretrain_arm(args, data_args, arm, seed, tokenizer, init(), run_dir / "pretrain", bars),
    )
    intrinsic = progress.run(
        _Step(run_dir / "intrinsic"),
        f"score MLM, NSP, SOP: {arm}, seed {seed}",
        lambda bars: _intrinsic(args, data_args, pretrained, seed, tokenizer, run_dir / "intrinsic", bars),
    )
    downstream: dict[str, list] = {}
    task_data = _study_data(data_args, args, seed, max_seq_length=args.downstream_max_seq_length)

    def work(name: str, ft_seed: int, out: Path):
        def run(bars):
            task = tasks()[name]
            if task.documents is not None:
                check_task_leak(pretrained["model_dir"], task.documents, allow=False)
            return _downstream(args, task, pretrained, ft_seed, tokenizer, task_data, out, bars)

        return run

    for name in downstream_tasks(args):
        downstream[name] = []
        for ft_seed in range(1, args.finetune_seeds + 1):
            out = run_dir / "downstream" / name / f"ft{ft_seed}"
            label = f"fine-tune {name}: {arm}, seed {seed}, fine-tuning seed {ft_seed}"
            downstream[name].append(progress.run(_Step(out), label, work(name, ft_seed, out)))
    return {"arm": arm, "seed": seed, "pretrain": pretrained, "intrinsic": intrinsic, "downstream": downstream}


def _lazy(make):
    """`make()` once, when first asked for (a resumed study whose steps are all done builds nothing)."""
    cache: list = []

    def get():
        if not cache:
            cache.append(make())
        return cache[0]

    return get


def run_study(args: AblateArguments, data_args: DataArguments | None = None) -> dict:
    """Run (or continue) a study and write its report. Returns the collected results.

    Args:
        args (`AblateArguments`): Arms, seeds, budget, model, downstream tasks and evaluation options.
        data_args (`DataArguments`, *optional*): Corpus, tokenizer, length and split (default: the bundled corpus).

    Returns:
        `dict` with ``runs`` (per arm and seed: ``pretrain``, ``intrinsic``, ``downstream``) and ``wall_seconds``.

    Example:
        ```python
        >>> from nsptask.study import AblateArguments, run_study
        >>> results = run_study(AblateArguments(output_dir="study", arms=["mlm", "mlm+nsp"], seeds=[1]))  # doctest: +SKIP
        ```
    """
    data_args = data_args or DataArguments()
    if data_args.dataset:  # a build holds one format: the study rebuilds every arm's from the build's corpus
        data_args = corpus_of_build(data_args)
    data_args = data_args.resolve()
    transformers.logging.set_verbosity_error()  # per-run load reports would drown the progress bars
    transformers.utils.logging.disable_progress_bar()  # and so would the "Writing model shards" bars
    started = time.time()
    root = Path(args.output_dir)
    tokenizer = load_tokenizer(data_args.tokenizer_name_or_path or args.model_name_or_path)
    _start(args, data_args, root, tokenizer)
    per_arm = 2 + len(downstream_tasks(args)) * args.finetune_seeds
    progress = _Progress(len(args.seeds) * (1 + len(args.arms) * per_arm))
    runs = []
    try:
        for seed in args.seeds:
            tasks = _lazy(lambda s=seed: _study_tasks(args, data_args, tokenizer, s))
            progress.run(
                _references_step(args, data_args, root, seed),
                f"references without a model (majority, word overlap), seed {seed}'s split",
                lambda bars, s=seed, t=tasks: _baselines(args, data_args, tokenizer, s, t()),
            )
            init = _lazy(lambda s=seed: _initial_model(args, data_args, tokenizer, s, root))
            for arm in args.arms:
                runs.append(_run_arm(args, data_args, arm, seed, tokenizer, root, tasks, progress, init))
            del tasks, init
            _thaw(progress)  # the seed's task data and initial model can go now
    finally:
        _thaw(progress)
    _finish(root, started)
    return {"runs": runs, "wall_seconds": time.time() - started}


def _thaw(progress: _Progress) -> None:
    """What :func:`_freeze_survivors` set aside is the collector's again, and collected."""
    if progress.freeze and gc.get_freeze_count():  # (after the last seed, the end has nothing left to thaw)
        gc.unfreeze()
        gc.collect()


def _references_step(args: AblateArguments, data_args: DataArguments, root: Path, seed: int) -> _Step:
    """The step of the references without a model on a seed's split; done only when it covers every downstream task
    of this run (a study resumed with more tasks computes them again, so no column is left without references)."""
    names = set(downstream_tasks(args))
    path = root / "baselines" / f"split{_split_seed(data_args, seed, args.vary_split)}"
    return _Step(path, covers=lambda done: names <= set(done.get("tasks", {})))


def _is_main() -> bool:
    return PartialState().is_main_process


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024
