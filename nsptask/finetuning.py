"""Fine-tuning and evaluation downstream, on the stock ``Trainer``.

Tasks (``--task``; their data is made by :mod:`nsptask.downstream`):

| task | data | model head | metrics |
|---|---|---|---|
| ``nsp``, ``sop``, ``coherence`` | built from held-out corpus documents | sequence classification | accuracy, F1 (binary, macro), Matthews |
| ``classification`` | TSV / CSV / JSONL / Parquet files: one or two text columns and a label | sequence classification | as above (binary metrics for two labels) |
| ``segment-tagging`` | built from held-out corpus documents | token classification | seqeval over L/R spans, per-label report, window and switch-position accuracy |
| ``ner`` | CoNLL files | token classification | seqeval (micro/macro P/R/F1, per type, token accuracy) |

A fresh head is put on any checkpoint (nsptask's own, a local path, a Hub id), initialised from the run's seed;
label names and the task go into the model config (``id2label``, ``nsptask``), so ``predict``, ``evaluate`` and the
pipeline reload the model with the head it was trained with. Corpus tasks are made from the documents the
checkpoint's pretraining held out (its recorded split), and a task document that the checkpoint was pretrained on is
an error. ``DataCollatorWithPadding`` / ``DataCollatorForTokenClassification``, early stopping and best-model
selection on a named metric are the stock ones.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import transformers
from seqeval.metrics.sequence_labeling import get_entities
from transformers import TrainingArguments
from transformers.trainer_utils import IntervalStrategy

from .arguments import (
    CORPUS_TASKS,
    DATA_RECORD_FILE,
    TASKS,
    TOKEN_TASKS,
    DataArguments,
    EvaluateArguments,
    FinetuneOptions,
    TaskOptions,
    check_output_dir,
    check_path_or_hub_id,
)
from .builder import PRETRAINING_DOCUMENTS_FILE
from .downstream import load_task_data
from .metrics import classification_compute_metrics, task_collator_and_metrics
from .model_card import ModelCardInfo
from .modeling import load_pretraining_model, model_capabilities, task_model
from .probes import decode_sentences, segment_window_scores
from .stats import describe_source
from .token_classification import seqeval_scores, word_predictions
from .tokenization import load_tokenizer
from .training import NspTrainer, quiet_pin_memory, use_given_progress_callback

__all__ = [
    "FinetuneArguments",
    "EvaluateArguments",
    "finetune",
    "evaluate_model",
    "evaluate_split",
    "FinetuneResult",
    "classification_compute_metrics",
    "load_finetuned_model",
    "predict_words",
    "TASKS",
]

logger = logging.getLogger(__name__)

# Columns the task data keeps for scoring and accounting, not model inputs.
BOOKKEEPING_COLUMNS = (
    "a_doc",
    "b_doc",
    "switch",
    "truncated",
    "words_truncated",
    "word_tags",
    "documents",
    "overlap_features",
    "sentence_words",
    "boundary_overlaps",
)


def _model_inputs(dataset, token_types: str = "keep"):
    drop = [c for c in BOOKKEEPING_COLUMNS if c in dataset.column_names]
    if token_types == "drop" and "token_type_ids" in dataset.column_names:
        drop.append("token_type_ids")
    return dataset.remove_columns(drop)


@dataclass
class FinetuneArguments(FinetuneOptions, TrainingArguments):
    """``TrainingArguments`` plus what downstream fine-tuning needs (:class:`nsptask.arguments.FinetuneOptions`;
    the corpus, tokenizer, length and split are :class:`nsptask.arguments.DataArguments`)."""

    def __post_init__(self):
        TaskOptions.__post_init__(self)
        if self.task in ("classification", "ner") and not self.train_file:
            raise ValueError(f"task {self.task!r} needs --train_file (and --validation_file or --test_file to score).")
        check_path_or_hub_id(self.model_name_or_path, "model folder", "model_name_or_path")
        selects = self.load_best_model_at_end or self.early_stopping_patience
        if self.task in CORPUS_TASKS and selects and not self.task_validation_fraction:
            raise ValueError(
                "--load_best_model_at_end and --early_stopping_patience choose a model on the evaluation set, which "
                f"for the corpus task {self.task!r} is its test set unless there is a task validation set: pass "
                "--task_validation_fraction (e.g. 0.15) to select on it and score the test set once at the end."
            )
        if self.metric_for_best_model is None:
            self.metric_for_best_model = "f1" if self.task in TOKEN_TASKS else "accuracy"
        TrainingArguments.__post_init__(self)
        quiet_pin_memory(self)


@dataclass
class FinetuneResult:
    """What :func:`finetune` returns: the trainer, the metrics, the label names, the seqeval text report, and per
    evaluated split its data and raw predictions (``outputs[split] = (dataset, PredictionOutput)``)."""

    trainer: Any
    metrics: dict[str, float]
    label_names: list[str]
    report: str = ""
    outputs: dict = field(default_factory=dict)


def finetune(
    args: FinetuneArguments, data_args=None, *, tokenizer=None, data=None, label_names=None, callbacks=None
) -> FinetuneResult:
    """Fine-tune a checkpoint on a downstream task and evaluate it.

    Args:
        args (`FinetuneArguments`): The run.
        data_args (`DataArguments`, *optional*): Corpus, tokenizer, length and split (split default: the
            checkpoint's recorded pretraining split, else 0.2 / 12345).
        tokenizer (*optional*): Defaults to the model's.
        data (`datasets.DatasetDict`, *optional*): Prepared task data (model inputs and ``labels``); built from
            the options when not given, in which case `label_names` comes with it.
        label_names (`list[str]`, *optional*): Label names of `data`.
        callbacks (`list`, *optional*): More ``TrainerCallback``s.

    Returns:
        `FinetuneResult` with the trainer, the final metrics (``eval_*``, and ``test_*`` when a test set is
        given; segment tagging adds the per-label report and the window and switch-position accuracies) and
        label names.

    Example:
        ```python
        >>> from nsptask.finetuning import FinetuneArguments, finetune
        >>> args = FinetuneArguments(output_dir="out", task="segment-tagging", model_name_or_path="runs/tiny-nsp")
        >>> finetune(args).metrics["eval_f1"]  # doctest: +SKIP
        ```
    """
    if args.model_name_or_path is None:
        raise ValueError(
            "Fine-tuning needs a checkpoint: --model_name_or_path (nsptask's pretrain output, a path or a Hub id)."
        )
    check_output_dir(args, resume=bool(args.resume_from_checkpoint))
    data_args = (data_args or DataArguments()).resolve(args.model_name_or_path)
    tokenizer = tokenizer or load_tokenizer(data_args.tokenizer_name_or_path or args.model_name_or_path)
    if data is None:
        with args.main_process_first(desc="nsptask: preparing the task data"):
            data, label_names = load_task_data(
                args, data_args, tokenizer, args.model_name_or_path, num_proc=args.preprocessing_num_workers
            )
    if label_names is None:
        raise ValueError("Pass label_names with prepared data.")
    for split, part in data.items():
        if len(part) == 0:
            raise ValueError(f"The {split} split of task {args.task!r} is empty.")
    train = data["train"]
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    model, capabilities = task_model(
        args.model_name_or_path,
        args.task in TOKEN_TASKS,
        label_names,
        tokenizer,
        args.seed,
        data_args.instances.max_seq_length,
        args.attn_implementation,
    )
    token_types = "drop" if args.single_segment else capabilities.token_types
    collator, compute_metrics = task_collator_and_metrics(args.task, tokenizer, label_names, args.seqeval_mode)
    callbacks = list(callbacks or [])
    if args.early_stopping_patience:
        callbacks.append(transformers.EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
    evaluation = data.get("validation")
    if evaluation is None and args.eval_strategy != "no":
        if args.load_best_model_at_end:
            raise ValueError("--load_best_model_at_end chooses a model on the validation set: give --validation_file.")
        logger.info("nsptask: no validation set, so no evaluation during training; the test set is scored at the end.")
        args.eval_strategy = IntervalStrategy.NO
    trainer = NspTrainer(
        model=model,
        args=args,
        train_dataset=_model_inputs(train, token_types),
        eval_dataset=_model_inputs(evaluation, token_types) if evaluation is not None else None,
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=compute_metrics,
        callbacks=callbacks,
    )
    use_given_progress_callback(trainer)
    metrics = dict(trainer.train(resume_from_checkpoint=args.resume_from_checkpoint).metrics)
    metrics.update(_truncation_counts(data))
    report, outputs = "", {}
    for split, prefix in (("validation", "eval"), ("test", "test")):
        if split in data:
            scores, output = evaluate_split(
                trainer,
                data[split],
                args.task,
                label_names,
                prefix,
                token_types,
                return_output=True,
                seqeval_mode=args.seqeval_mode,
            )
            metrics.update(scores)
            outputs[split] = (data[split], output)
            report = getattr(trainer, "last_report", "") or getattr(compute_metrics, "last_report", "") or report
    _save(trainer, args, data_args, label_names, metrics, report)
    return FinetuneResult(
        trainer=trainer, metrics=metrics, label_names=list(label_names), report=report, outputs=outputs
    )


def _truncation_counts(data) -> dict[str, int]:
    """Tokens or words truncation cut off, and examples the task data left out, per split (nothing silently)."""
    counts = {
        f"{split}_truncated": int(np.sum(part[c]))
        for split, part in data.items()
        for c in ("truncated", "words_truncated")
        if c in part.column_names
    }
    counts.update({f"{split}_left_out": int(n) for split, n in getattr(data, "dropped", {}).items()})
    return counts


def _save(trainer, args: FinetuneArguments, data_args: DataArguments, label_names, metrics, report: str) -> None:
    """The fine-tuned model with its task record, metrics, report and card (the card is what ``push_to_hub`` uploads
    too, :meth:`NspTrainer.create_model_card`)."""
    model = trainer.model
    token_task = args.task in TOKEN_TASKS
    model.config.nsptask = {
        "task": args.task,
        "head": "token-classification" if token_task else "sequence-classification",
        "task_test_fraction": args.task_test_fraction or 0.3,
        "task_validation_fraction": args.task_validation_fraction or 0.0,
        "max_seq_length": data_args.instances.max_seq_length,
        "task_seed": data_args.instances.instance_seed,
        "single_segment": args.single_segment,
    }
    trainer.save_model()
    if trainer.is_world_process_zero():
        trainer.save_metrics("all", metrics)
        _copy_records(args.model_name_or_path, args.output_dir)
        if report:
            Path(args.output_dir, "classification_report.txt").write_text(report)
    trainer.nsptask_card = ModelCardInfo(
        objective=f"finetune:{args.task}",
        data_format=args.task,
        metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float))},
        model_name=Path(args.output_dir).name,
        base_model=args.model_name_or_path,
        architecture=type(model).__name__,
        num_parameters=int(sum(p.numel() for p in model.parameters())),
        steps=int(trainer.state.global_step),
        training={
            "labels": ", ".join(label_names),
            "learning_rate": args.learning_rate,
            "epochs": args.num_train_epochs,
        },
        task={"type": "token-classification" if token_task else "text-classification", "name": args.task},
        hub_model_id=args.hub_model_id,
        language=data_args.reader.language,
        dataset_name=_task_source(args, data_args),
        license=args.model_license,
    )
    if trainer.is_world_process_zero():
        trainer.create_model_card()
    if args.push_to_hub:
        trainer.push_to_hub(commit_message=f"nsptask: fine-tuned on {args.task}")


def _task_source(args, data_args) -> str:
    if args.task in CORPUS_TASKS:
        return describe_source(data_args.source)
    return ", ".join(Path(f).name for f in (args.train_file, args.validation_file, args.test_file) if f)


def _copy_records(model_dir: str | None, output_dir: str) -> None:
    """Carry the base model's pretraining record into the fine-tuned model, so ``evaluate`` can check it too."""
    if model_dir is None or not Path(model_dir).is_dir():
        return
    for name in (DATA_RECORD_FILE, PRETRAINING_DOCUMENTS_FILE):
        source = Path(model_dir, name)
        if source.is_file() and source.resolve() != Path(output_dir, name).resolve():
            shutil.copy(source, Path(output_dir, name))


def evaluate_split(
    trainer,
    dataset,
    task: str,
    label_names: list[str],
    prefix: str = "eval",
    token_types: str = "keep",
    return_output: bool = False,
    seqeval_mode: str | None = None,
):
    """Evaluate on one split. Token tasks get the seqeval scores over every word (micro, macro and weighted F1; per
    entity type precision, recall, F1 and support). Segment tagging is scored by sentence: each sentence takes the
    side most of its words are tagged with (:func:`nsptask.probes.decode_sentences`), one entity per sentence, ``R``
    the headline; it adds the word-level F1 as tagged (``word_level_f1``) and the window and switch-position
    accuracies. With `return_output`, also return the ``PredictionOutput``. `seqeval_mode`: ``"strict"`` for strict
    IOB2 matching (:func:`nsptask.token_classification.seqeval_scores`)."""
    rescored = "word_tags" in dataset.column_names and "words_truncated" in dataset.column_names
    hook = trainer.compute_metrics
    if rescored:
        trainer.compute_metrics = None  # scored below, over every word: the hook would score the same words twice
    try:
        output = trainer.predict(_model_inputs(dataset, token_types), metric_key_prefix=prefix)
    finally:
        trainer.compute_metrics = hook
    metrics = dict(output.metrics)
    if rescored:
        # Score every word, also those truncation cut off (predicted O there): an entity cut off is a miss.
        predictions = np.asarray(output.predictions).argmax(-1)
        true_tags, predicted_tags = word_predictions(
            predictions, np.asarray(output.label_ids), label_names, word_tags=dataset["word_tags"]
        )
        if task == "segment-tagging":
            # Word-level entities as tagged, then the headline: every sentence one entity (decode_sentences).
            raw = seqeval_scores(true_tags, predicted_tags, seqeval_mode)
            metrics.update({f"{prefix}_word_level_f1": raw["f1"]})
            metrics.update({f"{prefix}_word_level_f1_{k}": row["f1-score"] for k, row in raw["per_type"].items()})
            predicted_tags = decode_sentences(true_tags, predicted_tags)
            metrics.update({f"{prefix}_{k}": v for k, v in segment_window_scores(true_tags, predicted_tags).items()})
        scores = seqeval_scores(true_tags, predicted_tags, seqeval_mode)
        for key in ("precision", "recall", "f1", "macro_f1", "weighted_f1", "accuracy"):
            metrics[f"{prefix}_{key}"] = float(scores[key])
        for entity, row in scores["per_type"].items():
            for name in ("precision", "recall", "f1-score", "support"):
                metrics[f"{prefix}_{name.replace('-score', '')}_{entity}"] = float(row[name])
        metrics[f"{prefix}_words_truncated"] = int(np.sum(dataset["words_truncated"]))
        trainer.last_report = scores["report"]
    return (metrics, output) if return_output else metrics


def load_finetuned_model(path: str, **kwargs):
    """Reload a model with the head it was trained with, as recorded in its config: a fine-tuned classifier or
    tagger, or a pretraining model with its MLM and sentence heads. Never a fresh random head."""
    config = transformers.AutoConfig.from_pretrained(path)
    head = (getattr(config, "nsptask", None) or {}).get("head")
    architecture = (config.architectures or [""])[0]
    if head == "token-classification" or architecture.endswith("ForTokenClassification"):
        return transformers.AutoModelForTokenClassification.from_pretrained(path, **kwargs)
    if head == "sequence-classification" or architecture.endswith("ForSequenceClassification"):
        return transformers.AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
    return load_pretraining_model(path, **kwargs)


def _recorded_task(args: EvaluateArguments, record: dict) -> None:
    """Complete the evaluation's task options from what the model's config recorded (in place)."""
    args.task = args.task or record.get("task")
    if args.task is None:
        raise ValueError(f"{args.model_name_or_path} records no task (it was not fine-tuned by nsptask): pass --task.")
    if record.get("task") and args.task != record["task"]:
        raise ValueError(f"{args.model_name_or_path} was fine-tuned on {record['task']!r}, not {args.task!r}.")
    if args.task in ("ner", "classification") and not args.validation_file and not args.test_file:
        raise ValueError(f"Task {args.task!r} needs --validation_file (or --test_file) to evaluate on.")
    args.task_test_fraction = args.task_test_fraction or record.get("task_test_fraction") or 0.3
    args.task_validation_fraction = record.get("task_validation_fraction") or 0.0


def evaluate_model(args: EvaluateArguments, data_args=None, *, tokenizer=None) -> dict[str, Any]:
    """Evaluate a fine-tuned model on its task's held-out data (the corpus task's test documents, or the given
    files), without training. Writes ``eval_results.json`` (and the seqeval report) into the output folder."""
    config = transformers.AutoConfig.from_pretrained(args.model_name_or_path)
    record = getattr(config, "nsptask", None) or {}
    _recorded_task(args, record)
    data_args = (data_args or DataArguments()).resolve(args.model_name_or_path, record.get("max_seq_length"))
    if record.get("task_seed") is not None:
        # The seed of the task split it was tuned on.
        data_args.instances = replace(data_args.instances, instance_seed=record["task_seed"])
    tokenizer = tokenizer or load_tokenizer(data_args.tokenizer_name_or_path or args.model_name_or_path)
    expected = [config.id2label[i] for i in range(len(config.id2label))]
    data, label_names = load_task_data(args, data_args, tokenizer, args.model_name_or_path, label_names=expected)
    if list(label_names) != expected:
        raise ValueError(
            f"The data's labels {list(label_names)} differ from the model's {expected}: evaluate with data labelled "
            "like the model's training data."
        )
    capabilities = model_capabilities(config, tokenizer, data_args.instances.max_seq_length)
    token_types = "drop" if record.get("single_segment") else capabilities.token_types
    collator, compute_metrics = task_collator_and_metrics(args.task, tokenizer, label_names, args.seqeval_mode)
    output_dir = args.output_dir or args.model_name_or_path
    trainer = transformers.Trainer(
        model=load_finetuned_model(args.model_name_or_path),
        args=TrainingArguments(
            output_dir=output_dir,
            per_device_eval_batch_size=args.per_device_eval_batch_size,
            report_to="none",
            dataloader_pin_memory=False,
        ),
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=compute_metrics,
    )
    metrics: dict[str, Any] = {}
    for split, prefix in (("validation", "eval"), ("test", "test")):
        if split in data:
            metrics.update(
                evaluate_split(
                    trainer, data[split], args.task, label_names, prefix, token_types, seqeval_mode=args.seqeval_mode
                )
            )
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    Path(output_dir, "eval_results.json").write_text(json.dumps(metrics, indent=2))
    # Token tasks are scored over every word by evaluate_split (trainer.last_report), the others by the hook.
    report = getattr(trainer, "last_report", "") or getattr(compute_metrics, "last_report", "")
    if report:
        Path(output_dir, "classification_report.txt").write_text(report)
    return metrics


def predict_words(model, tokenizer, texts: list[str], stride: int = 32, max_length: int | None = None) -> list[dict]:
    """Tag every word of each text with a token-classification model, through transformers' token-classification
    pipeline: texts longer than the model are cut into overlapping windows (`stride` tokens of overlap, the
    pipeline's own), and each word takes the tag of its first sub-token (``aggregation_strategy="first"``)."""
    max_length = max_length or min(tokenizer.model_max_length, model.config.max_position_embeddings)
    stride = min(stride, max_length // 2 - 2)
    windowed = copy.copy(tokenizer)  # the pipeline windows at the tokenizer's model_max_length
    windowed.model_max_length = max_length
    tagger = transformers.pipeline(
        "token-classification",
        model=model,
        tokenizer=windowed,
        aggregation_strategy="first",
        stride=stride,
        device=model.device,
    )
    results = []
    for text in texts:
        words = text.split()
        joined = " ".join(words)
        starts = np.cumsum([0] + [len(w) + 1 for w in words[:-1]]) if words else np.zeros(0, int)
        tags = ["O"] * len(words)
        for entity in tagger(joined) if words else []:
            covered = [i for i, start in enumerate(starts) if entity["start"] <= start < entity["end"]]
            for n, i in enumerate(covered):
                tags[i] = ("B-" if n == 0 else "I-") + entity["entity_group"]
        entities = [
            {"type": kind, "text": " ".join(words[start : end + 1]), "start": start, "end": end}
            for kind, start, end in get_entities(tags)
        ]
        encoded = windowed(joined, truncation=True, stride=stride, return_overflowing_tokens=True)
        results.append({"words": words, "tags": tags, "entities": entities, "windows": len(encoded["input_ids"])})
    return results
