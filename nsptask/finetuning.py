"""Fine-tuning and evaluation downstream, on the stock ``Trainer``.

Tasks (``--task``):

| task | data | model head | metrics |
|---|---|---|---|
| ``nsp``, ``sop``, ``coherence`` | built from held-out corpus documents | sequence classification | accuracy, F1 (binary, macro), Matthews |
| ``classification`` | CSV / JSONL / Parquet files: one or two text columns and a label | sequence classification | as above (binary metrics for two labels) |
| ``segment-tagging`` | built from held-out corpus documents | token classification | seqeval over L/R spans, per-label report, window and switch-position accuracy |
| ``ner`` | CoNLL files | token classification | seqeval (micro/macro P/R/F1, per type, token accuracy) |

A fresh head is put on any checkpoint (nsptask's own, a local path, a Hub id); label names and the task go
into the model config (``id2label``, ``nsptask``), so ``predict``, ``evaluate`` and the pipeline reload the
model with the head it was trained with. Corpus tasks are made from the documents the checkpoint's pretraining
held out (its recorded split), and a task document that the checkpoint was pretrained on is an error.
``DataCollatorWithPadding`` / ``DataCollatorForTokenClassification``, early stopping and best-model selection on
a named metric are the stock ones.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from transformers import TrainingArguments

from .arguments import EvaluateArguments, FinetuneOptions
from .modeling import check_vocabulary

__all__ = [
    "FinetuneArguments",
    "EvaluateArguments",
    "finetune",
    "evaluate_model",
    "FinetuneResult",
    "classification_compute_metrics",
    "load_finetuned_model",
    "TASKS",
]

logger = logging.getLogger(__name__)

TASKS = ("nsp", "sop", "coherence", "classification", "segment-tagging", "ner")
TOKEN_TASKS = ("segment-tagging", "ner")
CORPUS_TASKS = ("nsp", "sop", "coherence", "segment-tagging")
# Columns the task data keeps for scoring and accounting, not model inputs.
BOOKKEEPING_COLUMNS = ("a_doc", "b_doc", "switch", "truncated", "words_truncated", "word_tags")


def _collator_and_metrics(task: str, tokenizer, label_names: list[str], seqeval_mode: str | None):
    """The stock collator and the compute_metrics hook of a task."""
    import transformers

    from .token_classification import token_classification_compute_metrics

    if task in TOKEN_TASKS:
        collator = transformers.DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=8)
        return collator, token_classification_compute_metrics(label_names, seqeval_mode)
    collator = transformers.DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8)
    return collator, classification_compute_metrics(len(label_names))


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
        from .arguments import check_path_or_hub_id
        from .training import quiet_pin_memory

        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.task in ("classification", "ner") and not self.train_file:
            raise ValueError(f"task {self.task!r} needs --train_file (and --validation_file to evaluate).")
        for name in ("train_file", "validation_file", "test_file"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise ValueError(f"--{name} {path}: no such file. Expected a CoNLL, CSV, JSONL or Parquet file.")
        check_path_or_hub_id(self.model_name_or_path, "model folder", "model_name_or_path")
        if self.text_b_column in ("none", ""):
            self.text_b_column = None
        if self.seqeval_mode == "default":
            self.seqeval_mode = None
        if not 0 < self.task_test_fraction < 1:
            raise ValueError(f"--task_test_fraction must lie in (0, 1), got {self.task_test_fraction}")
        if not 0 <= self.task_validation_fraction < 1 - self.task_test_fraction:
            raise ValueError(
                f"--task_validation_fraction must lie in [0, 1 - task_test_fraction), got "
                f"{self.task_validation_fraction} with --task_test_fraction {self.task_test_fraction}."
            )
        selects = self.load_best_model_at_end or self.early_stopping_patience
        if self.task in CORPUS_TASKS and selects and self.task_validation_fraction == 0:
            raise ValueError(
                "--load_best_model_at_end and --early_stopping_patience choose a model on the evaluation set, which "
                f"for the corpus task {self.task!r} is its test set unless there is a task validation set: pass "
                "--task_validation_fraction (e.g. 0.15) to select on it and score the test set once at the end."
            )
        if self.metric_for_best_model is None:
            self.metric_for_best_model = "f1" if self.task in TOKEN_TASKS else "accuracy"
        super().__post_init__()
        quiet_pin_memory(self)


def classification_compute_metrics(num_labels: int):
    """Accuracy, macro F1, and for two labels binary F1 (label 1 positive) and Matthews correlation; with the
    majority-class accuracy and the number of examples scored. Computed by the ``evaluate`` module nsptask ships
    (:func:`nsptask.metrics.load_metric`), which loads offline."""
    from .metrics import load_metric

    metric = load_metric("classification")

    def compute_metrics(eval_pred) -> dict[str, float]:
        logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        predictions = np.asarray(logits).argmax(-1)
        return metric.compute(
            predictions=predictions, references=np.asarray(eval_pred.label_ids), num_labels=num_labels
        )

    return compute_metrics


@dataclass
class FinetuneResult:
    """What :func:`finetune` returns: the trainer, the metrics, the label names, the seqeval text report, and per
    evaluated split its data and raw predictions (``outputs[split] = (dataset, PredictionOutput)``)."""

    trainer: Any
    metrics: dict[str, float]
    label_names: list[str]
    report: str = ""
    outputs: dict = field(default_factory=dict)


def _corpus_task(task: str, data_args, tokenizer, test_fraction: float, seed: int, validation_fraction: float = 0.0):
    from . import downstream

    common = dict(
        max_seq_length=data_args.max_seq_length,
        validation_fraction=data_args.validation_fraction,
        split_seed=data_args.split_seed,
        test_fraction=test_fraction,
        task_validation_fraction=validation_fraction,
        reader_kwargs=data_args.reader_kwargs(),
        tokenizer_backend=data_args.tokenizer_backend,
        cache_dir=data_args.data_cache_dir,
        num_proc=data_args.num_proc,
        seed=data_args.instance_seed,
    )
    if task == "segment-tagging":
        return downstream.build_segment_tagging(data_args.source, tokenizer, **common), list(downstream.SEGMENT_LABELS)
    data = downstream.build_sentence_task(task, data_args.source, tokenizer, **common)
    return data, data["train"].features["labels"].names


def check_task_leak(model_dir: str | None, documents: dict, allow: bool) -> None:
    """Stop when a corpus task would be built from documents the model was pretrained on (its record
    ``pretraining_documents.npy``), unless allowed."""
    from .downstream import PRETRAINING_DOCUMENTS_FILE, pretraining_overlap

    overlap, total, recorded = pretraining_overlap(model_dir, list(documents.values()))
    if not recorded:
        if model_dir is not None and Path(model_dir).is_dir():
            logger.warning(
                "nsptask: %s has no record of its pretraining documents; the leak check is skipped.", model_dir
            )
        return
    if overlap and not allow:
        raise ValueError(
            f"{overlap} of the task's {total} documents were in {model_dir}'s pretraining data "
            f"({PRETRAINING_DOCUMENTS_FILE}): expected a task made from documents held out of pretraining. Use the "
            "split the model was pretrained with (the defaults read it from the model's nsptask_data.json), or pass "
            "--allow_pretraining_documents to go on anyway."
        )


# The weights a fine-tuning class adds on top of an encoder (classifier, pooler, ModernBERT's head): new by design.
_HEAD_WEIGHTS = re.compile(r"(^|\.)(classifier|pre_classifier|pooler|score|head)\.")


def check_encoder_loaded(model_dir: str, loading: dict) -> None:
    """Stop when the checkpoint gave the fine-tuning model less than its whole encoder: the missing weights would
    start from random values and the run would measure nothing about the pretraining."""
    missing = [k for k in loading.get("missing_keys", []) if not _HEAD_WEIGHTS.search(k)]
    if missing:
        raise ValueError(
            f"{model_dir}: {len(missing)} encoder weights are missing from the checkpoint (e.g. {missing[:3]}); "
            "expected a checkpoint of the whole encoder (only the task head is new). Check --model_name_or_path: "
            "it must be a pretrained encoder of the same family and size."
        )


def _load_task_data(args, data_args, tokenizer, seed: int = 12345):
    """The task's DatasetDict (train/validation[/test]) with model inputs and ``labels``, and its label names.
    Corpus tasks: ``train`` and ``validation`` (= the task's test documents), or with a task validation fraction
    ``train``, ``validation`` (the task validation documents) and ``test``."""
    import datasets

    from . import downstream

    if args.task in CORPUS_TASKS:
        fraction = getattr(args, "task_test_fraction", None) or 0.3
        held = getattr(args, "task_validation_fraction", None) or 0.0
        raw, names = _corpus_task(args.task, data_args, tokenizer, fraction, seed, held)
        docs = downstream.task_documents(
            data_args.source,
            tokenizer,
            validation_fraction=data_args.validation_fraction,
            split_seed=data_args.split_seed,
            test_fraction=fraction,
            task_validation_fraction=held,
            seed=data_args.instance_seed,
            max_seq_length=data_args.max_seq_length,
            reader_kwargs=data_args.reader_kwargs(),
            tokenizer_backend=data_args.tokenizer_backend,
            cache_dir=data_args.data_cache_dir,
        )
        docs.pop("_builder")
        check_task_leak(args.model_name_or_path, docs, getattr(args, "allow_pretraining_documents", False))
        if "validation" in raw:
            return datasets.DatasetDict(
                {"train": raw["train"], "validation": raw["validation"], "test": raw["test"]}
            ), names
        return datasets.DatasetDict({"train": raw["train"], "validation": raw["test"]}), names
    files = {
        "train": getattr(args, "train_file", None),
        "validation": args.validation_file,
        "test": args.test_file,
    }
    files = {k: v for k, v in files.items() if v}
    if args.task == "ner":
        from .conll import label_list, read_conll
        from .token_classification import tokenize_and_align_labels

        encoding = getattr(data_args, "encoding", "utf-8") if data_args is not None else "utf-8"
        read = {k: read_conll(v, repair_iob=args.repair_iob, encoding=encoding) for k, v in files.items()}
        names = label_list(read["train"].tags) if "train" in read else None
        if names is None:
            names = list(getattr(args, "label_names", None) or [])
        out = datasets.DatasetDict()
        for split, conll in read.items():
            raw = conll.to_dataset(names)
            out[split] = raw.map(
                partial(
                    tokenize_and_align_labels,
                    tokenizer=tokenizer,
                    label_names=names,
                    max_length=data_args.max_seq_length,
                    label_all_tokens=getattr(args, "label_all_tokens", False) and split == "train",
                ),
                batched=True,
                remove_columns=["tokens"],
                desc=f"Aligning labels ({split})",
            ).rename_column("ner_tags", "word_tags")  # every word's gold tag: truncated entities count as missed
        return out, names
    raw = downstream.load_classification_data(
        files,
        text_column=args.text_a_column,
        text_pair_column=args.text_b_column,
        label_column=args.label_column,
        label_names=getattr(args, "label_names", None),
    )
    names = next(iter(raw.values())).features["labels"].names
    tokenized = datasets.DatasetDict()
    for split, part in raw.items():
        tokenized[split] = part.map(
            partial(
                downstream.tokenize_pairs,
                tokenizer=tokenizer,
                text_column=args.text_a_column,
                text_pair_column=args.text_b_column,
                max_length=data_args.max_seq_length,
            ),
            batched=True,
            remove_columns=[c for c in part.column_names if c != "labels"],
            desc=f"Tokenizing ({split})",
        )
    return tokenized, names


def _head_class(task: str):
    import transformers

    return (
        transformers.AutoModelForTokenClassification
        if task in TOKEN_TASKS
        else transformers.AutoModelForSequenceClassification
    )


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
    import transformers

    from .arguments import DataArguments
    from .modeling import model_capabilities
    from .tokenization import load_tokenizer
    from .training import NspTrainer, check_output_dir, use_given_progress_callback

    if args.model_name_or_path is None:
        raise ValueError(
            "Fine-tuning needs a checkpoint: --model_name_or_path (nsptask's pretrain output, a path or a Hub id)."
        )
    data_args = (data_args or DataArguments()).resolve(args.model_name_or_path)
    check_output_dir(args, resume=bool(args.resume_from_checkpoint))
    if tokenizer is None:
        tokenizer = load_tokenizer(data_args.tokenizer_name_or_path or args.model_name_or_path)
    config = transformers.AutoConfig.from_pretrained(args.model_name_or_path)
    capabilities = model_capabilities(config, tokenizer, data_args.max_seq_length)
    if data is None:
        with args.main_process_first(desc="nsptask: preparing the task data"):
            data, label_names = _load_task_data(args, data_args, tokenizer, seed=data_args.instance_seed)
    if label_names is None:
        raise ValueError("Pass label_names with prepared data.")
    for split, part in data.items():
        if len(part) == 0:
            raise ValueError(f"The {split} split of task {args.task!r} is empty.")
    train = data["train"]
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    id2label = dict(enumerate(label_names))
    config.num_labels = len(label_names)
    config.id2label, config.label2id = id2label, {v: k for k, v in id2label.items()}
    model, loading = _head_class(args.task).from_pretrained(
        args.model_name_or_path, config=config, ignore_mismatched_sizes=True, output_loading_info=True
    )
    check_encoder_loaded(args.model_name_or_path, loading)
    check_vocabulary(tokenizer, model)
    collator, compute_metrics = _collator_and_metrics(args.task, tokenizer, label_names, args.seqeval_mode)
    callbacks = list(callbacks or [])
    if args.early_stopping_patience:
        callbacks.append(transformers.EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
    trainer = NspTrainer(
        model=model,
        args=args,
        train_dataset=_model_inputs(train, capabilities.token_types),
        eval_dataset=_model_inputs(data["validation"], capabilities.token_types) if "validation" in data else None,
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=compute_metrics,
        callbacks=callbacks,
    )
    use_given_progress_callback(trainer)
    train_output = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    metrics = dict(train_output.metrics)
    counts = {
        f"{split}_truncated": int(np.sum(part[c]))
        for split, part in data.items()
        for c in ("truncated", "words_truncated")
        if c in part.column_names
    }
    metrics.update(counts)
    report = ""
    outputs = {}
    for split in ("validation", "test"):
        if split not in data:
            continue
        prefix = "eval" if split == "validation" else "test"
        scores, output = evaluate_split(
            trainer, data[split], args.task, label_names, prefix, capabilities.token_types, return_output=True
        )
        metrics.update(scores)
        outputs[split] = (data[split], output)
        report = getattr(compute_metrics, "last_report", "") or report
    model.config.nsptask = {
        "task": args.task,
        "head": "token-classification" if args.task in TOKEN_TASKS else "sequence-classification",
        "task_test_fraction": args.task_test_fraction,
        "task_validation_fraction": args.task_validation_fraction,
        "max_seq_length": data_args.max_seq_length,
        "task_seed": data_args.instance_seed,
    }
    trainer.save_model()
    if trainer.is_world_process_zero():
        trainer.save_metrics("all", metrics)
        _copy_records(args.model_name_or_path, args.output_dir)
        if report:
            Path(args.output_dir, "classification_report.txt").write_text(report)
    token_task = args.task in TOKEN_TASKS
    # The card is what push_to_hub uploads too (NspTrainer.create_model_card).
    trainer.nsptask_card = dict(
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
        language=data_args.language,
        dataset_name=_task_source(args, data_args),
    )
    if trainer.is_world_process_zero():
        trainer.create_model_card()
    if args.push_to_hub:
        trainer.push_to_hub(commit_message=f"nsptask: fine-tuned on {args.task}")
    return FinetuneResult(
        trainer=trainer, metrics=metrics, label_names=list(label_names), report=report, outputs=outputs
    )


def _task_source(args, data_args) -> str:
    from .stats import describe_source

    if args.task in CORPUS_TASKS:
        return describe_source(data_args.source)
    return ", ".join(Path(f).name for f in (getattr(args, "train_file", None), args.validation_file) if f)


def _copy_records(model_dir: str | None, output_dir: str) -> None:
    """Carry the base model's pretraining record into the fine-tuned model, so ``evaluate`` can check it too."""
    from .arguments import DATA_RECORD_FILE
    from .builder import PRETRAINING_DOCUMENTS_FILE

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
):
    """Evaluate on one split. Token tasks get the seqeval scores; segment tagging adds the per-label
    (``L``/``R``/``O``) token report and the window and switch-position accuracies. With `return_output`, also
    return the ``PredictionOutput``."""
    output = trainer.predict(_model_inputs(dataset, token_types), metric_key_prefix=prefix)
    metrics = dict(output.metrics)
    if "word_tags" in dataset.column_names and "words_truncated" in dataset.column_names:
        # Score every word, also those truncation cut off (predicted O there): an entity cut off is a miss.
        from .token_classification import seqeval_scores, word_predictions

        predictions = np.asarray(output.predictions).argmax(-1)
        true_tags, predicted_tags = word_predictions(
            predictions, np.asarray(output.label_ids), label_names, word_tags=dataset["word_tags"]
        )
        scores = seqeval_scores(true_tags, predicted_tags, getattr(trainer.args, "seqeval_mode", None))
        for key in ("precision", "recall", "f1", "macro_f1", "accuracy"):
            metrics[f"{prefix}_{key}"] = float(scores[key])
        for entity, row in scores["per_type"].items():
            metrics[f"{prefix}_f1_{entity}"] = row["f1-score"]
        metrics[f"{prefix}_words_truncated"] = int(np.sum(dataset["words_truncated"]))
    if task == "segment-tagging":
        from sklearn.metrics import classification_report

        from .downstream import segment_metrics

        predictions = np.asarray(output.predictions).argmax(-1)
        metrics.update({f"{prefix}_{k}": v for k, v in segment_metrics(predictions, dataset).items()})
        gold, pred = [], []
        for row_pred, row_labels in zip(predictions, dataset["labels"]):
            for p, g in zip(row_pred, row_labels):
                gold.append(label_names[g].split("-")[-1])
                pred.append(label_names[p].split("-")[-1])
        report = classification_report(gold, pred, labels=["L", "R", "O"], output_dict=True, zero_division=0)
        for name in ("L", "R", "O"):
            for k in ("precision", "recall", "f1-score", "support"):
                metrics[f"{prefix}_label_{name}_{k.replace('-score', '')}"] = float(report[name][k])
    return (metrics, output) if return_output else metrics


def load_finetuned_model(path: str, **kwargs):
    """Reload a model with the head it was trained with, as recorded in its config: a fine-tuned classifier or
    tagger, or a pretraining model with its MLM and sentence heads. Never a fresh random head."""
    import transformers

    from .modeling import load_pretraining_model

    config = transformers.AutoConfig.from_pretrained(path)
    head = (getattr(config, "nsptask", None) or {}).get("head")
    architecture = (config.architectures or [""])[0]
    if head == "token-classification" or architecture.endswith("ForTokenClassification"):
        return transformers.AutoModelForTokenClassification.from_pretrained(path, **kwargs)
    if head == "sequence-classification" or architecture.endswith("ForSequenceClassification"):
        return transformers.AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
    return load_pretraining_model(path, **kwargs)


def evaluate_model(args: EvaluateArguments, data_args=None, *, tokenizer=None) -> dict[str, Any]:
    """Evaluate a fine-tuned model on its task's held-out data (the corpus task's test documents, or the given
    files), without training. Writes ``eval_results.json`` (and the seqeval report) into the output folder."""
    import transformers

    from .arguments import DataArguments
    from .modeling import model_capabilities
    from .tokenization import load_tokenizer

    config = transformers.AutoConfig.from_pretrained(args.model_name_or_path)
    record = getattr(config, "nsptask", None) or {}
    task = args.task or record.get("task")
    if task is None:
        raise ValueError(f"{args.model_name_or_path} records no task (it was not fine-tuned by nsptask): pass --task.")
    if record.get("task") and task != record["task"]:
        raise ValueError(f"{args.model_name_or_path} was fine-tuned on {record['task']!r}, not {task!r}.")
    if task in ("ner", "classification") and not args.validation_file and not args.test_file:
        raise ValueError(f"Task {task!r} needs --validation_file (or --test_file) to evaluate on.")
    data_args = (data_args or DataArguments()).resolve(args.model_name_or_path, record.get("max_seq_length"))
    if record.get("task_seed") is not None:
        data_args.instance_seed = record["task_seed"]  # the seed of the task split and instances it was tuned on
    tokenizer = tokenizer or load_tokenizer(data_args.tokenizer_name_or_path or args.model_name_or_path)
    expected = [config.id2label[i] for i in range(len(config.id2label))]
    options = _TaskOptions(
        task=task,
        model_name_or_path=args.model_name_or_path,
        validation_file=args.validation_file,
        test_file=args.test_file,
        text_a_column=args.text_a_column,
        text_b_column=args.text_b_column,
        label_column=args.label_column,
        repair_iob=args.repair_iob,
        label_names=expected,
        task_test_fraction=args.task_test_fraction or record.get("task_test_fraction") or 0.3,
        task_validation_fraction=record.get("task_validation_fraction") or 0.0,
        allow_pretraining_documents=args.allow_pretraining_documents,
    )
    data, label_names = _load_task_data(options, data_args, tokenizer, seed=data_args.instance_seed)
    if list(label_names) != expected:
        raise ValueError(
            f"The data's labels {list(label_names)} differ from the model's {expected}: evaluate with data labelled "
            "like the model's training data."
        )
    model = load_finetuned_model(args.model_name_or_path)
    capabilities = model_capabilities(config, tokenizer, data_args.max_seq_length)
    collator, compute_metrics = _collator_and_metrics(task, tokenizer, label_names, args.seqeval_mode)
    output_dir = args.output_dir or args.model_name_or_path
    trainer = transformers.Trainer(
        model=model,
        args=transformers.TrainingArguments(
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
    for split in ("validation", "test"):
        if split in data:
            metrics.update(
                evaluate_split(
                    trainer,
                    data[split],
                    task,
                    label_names,
                    "eval" if split == "validation" else "test",
                    capabilities.token_types,
                )
            )
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    Path(output_dir, "eval_results.json").write_text(json.dumps(metrics, indent=2))
    if getattr(compute_metrics, "last_report", ""):
        Path(output_dir, "classification_report.txt").write_text(compute_metrics.last_report)
    return metrics


@dataclass
class _TaskOptions:
    """The task options :func:`_load_task_data` reads, for evaluation."""

    task: str
    model_name_or_path: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    text_a_column: str = "sentence1"
    text_b_column: str | None = "sentence2"
    label_column: str = "label"
    repair_iob: bool = False
    label_names: list[str] | None = None
    task_test_fraction: float = 0.3
    task_validation_fraction: float = 0.0
    allow_pretraining_documents: bool = False


def predict_words(model, tokenizer, texts: list[str], stride: int = 32, max_length: int | None = None) -> list[dict]:
    """Tag every word of each text with a token-classification model. Texts longer than the model are cut
    into overlapping windows (`stride` tokens of overlap), and each word takes its tag from the window
    where it is most central, so no word is left untagged."""
    import torch
    from seqeval.metrics.sequence_labeling import get_entities

    max_length = max_length or min(tokenizer.model_max_length, model.config.max_position_embeddings)
    id2label = model.config.id2label
    results = []
    model.eval()
    for text in texts:
        words = text.split()
        encoded = tokenizer(
            words,
            is_split_into_words=True,
            truncation=True,
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
            padding=True,
            return_tensors="pt",
        )
        inputs = {k: v for k, v in encoded.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        with torch.no_grad():
            predictions = model(**inputs).logits.argmax(-1).tolist()
        best: dict[int, tuple[float, str]] = {}
        for window in range(len(predictions)):
            word_ids = encoded.word_ids(window)
            positions = [i for i, w in enumerate(word_ids) if w is not None]
            first, last = positions[0], positions[-1]
            previous = None
            for i, w in enumerate(word_ids):
                if w is None or w == previous:
                    previous = w
                    continue
                centrality = min(i - first, last - i)
                if w not in best or centrality > best[w][0]:
                    best[w] = (centrality, id2label[predictions[window][i]])
                previous = w
        tags = [best[i][1] if i in best else "O" for i in range(len(words))]
        entities = [
            {"type": kind, "text": " ".join(words[start : end + 1]), "start": start, "end": end}
            for kind, start, end in get_entities(tags)
        ]
        results.append({"words": words, "tags": tags, "entities": entities, "windows": len(predictions)})
    return results
