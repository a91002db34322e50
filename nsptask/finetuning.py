"""Fine-tuning and evaluation downstream, on the stock ``Trainer``.

Tasks (``--task``):

| task | data | model head | metrics |
|---|---|---|---|
| ``nsp``, ``sop``, ``coherence`` | built from held-out corpus documents | sequence classification | accuracy, F1 (binary, macro), Matthews |
| ``classification`` | CSV / JSONL / Parquet files: one or two text columns and a label | sequence classification | as above (binary metrics for two labels) |
| ``segment-tagging`` | built from held-out corpus documents | token classification | seqeval over L/R spans, per-label report, exact-boundary accuracy |
| ``ner`` | CoNLL files | token classification | seqeval (micro/macro P/R/F1, per type, token accuracy) |

A fresh head is put on any checkpoint (nsptask's own, a local path, a Hub id); label names go into the
model config (``id2label``). ``DataCollatorWithPadding`` / ``DataCollatorForTokenClassification``,
early stopping and best-model selection on a named metric are the stock ones.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from transformers import TrainingArguments
from transformers.trainer_utils import IntervalStrategy

from .modeling import check_vocabulary

__all__ = ["FinetuneArguments", "finetune", "FinetuneResult", "classification_compute_metrics", "TASKS"]

logger = logging.getLogger(__name__)

TASKS = ("nsp", "sop", "coherence", "classification", "segment-tagging", "ner")
TOKEN_TASKS = ("segment-tagging", "ner")
# Columns the task data keeps for scoring and accounting, not model inputs.
BOOKKEEPING_COLUMNS = ("doc_index", "boundary", "continuation", "truncated", "words_truncated")


def _collator_and_metrics(task: str, tokenizer, label_names: list[str], seqeval_mode: str | None):
    """The stock collator and the compute_metrics hook of a task."""
    import transformers

    from .token_classification import token_classification_compute_metrics

    if task in TOKEN_TASKS:
        collator = transformers.DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=8)
        return collator, token_classification_compute_metrics(label_names, seqeval_mode)
    collator = transformers.DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8)
    return collator, classification_compute_metrics(len(label_names))


def _model_inputs(dataset):
    return dataset.remove_columns([c for c in BOOKKEEPING_COLUMNS if c in dataset.column_names])


@dataclass
class FinetuneArguments(TrainingArguments):
    """``TrainingArguments`` plus what downstream fine-tuning needs."""

    task: str = field(default="nsp", metadata={"help": f"Downstream task: one of {', '.join(TASKS)}."})
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Checkpoint to fine-tune (nsptask's own, a local path or a Hub id)."}
    )
    tokenizer_name_or_path: str | None = field(default=None, metadata={"help": "Tokenizer (default: the model's)."})
    corpus: list[str] | None = field(
        default=None, metadata={"help": "Corpus for nsp/sop/coherence/segment-tagging. Default: the bundled sample."}
    )
    train_file: str | None = field(default=None, metadata={"help": "Training file (CoNLL for ner; CSV/JSONL/Parquet)."})
    validation_file: str | None = field(default=None, metadata={"help": "Evaluation file, same format."})
    test_file: str | None = field(default=None, metadata={"help": "Optional test file, evaluated at the end."})
    text_column: str = field(default="sentence1", metadata={"help": "First text column (classification)."})
    text_pair_column: str | None = field(
        default="sentence2", metadata={"help": "Second text column; 'none' for single-sentence tasks."}
    )
    label_column: str = field(default="label", metadata={"help": "Label column (classification)."})
    max_seq_length: int = field(default=128, metadata={"help": "Truncation length (counted when it cuts)."})
    validation_fraction: float = field(
        default=0.2,
        metadata={"help": "Corpus tasks: share of documents held out of pretraining the task is built from."},
    )
    task_test_fraction: float = field(
        default=0.3, metadata={"help": "Corpus tasks: share of those documents for testing."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Fine-tune on at most this many examples."})
    label_all_tokens: bool = field(
        default=False, metadata={"help": "Token tasks: label every sub-token in training (scoring stays per word)."}
    )
    seqeval_mode: str | None = field(
        default=None, metadata={"help": "seqeval mode: none (default) or 'strict' (IOB2)."}
    )
    repair_iob: bool = field(default=False, metadata={"help": "CoNLL: turn IOB1 I- tags that start an entity into B-."})
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "Stop after this many evaluations without improvement (needs eval steps)."}
    )
    # Defaults changed from TrainingArguments for a quick CPU run.
    output_dir: str | None = field(default="nsptask-finetune", metadata={"help": "Where the fine-tuned model goes."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Batch size per device for training."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Batch size per device for evaluation."})
    learning_rate: float = field(default=5e-4, metadata={"help": "Peak learning rate."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Epochs."})
    warmup_steps: float = field(default=0.1, metadata={"help": "Warm-up steps, or a fraction of all steps if < 1."})
    eval_strategy: IntervalStrategy | str = field(default="epoch", metadata={"help": "When to evaluate."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to save (must match eval for best model)."})
    save_total_limit: int | None = field(default=1, metadata={"help": "Checkpoints kept."})
    logging_steps: float = field(default=20, metadata={"help": "Log every N steps."})
    report_to: None | str | list[str] = field(default="none", metadata={"help": "Loggers (tensorboard, ...)."})

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.task in ("classification", "ner") and not self.train_file:
            raise ValueError(f"task {self.task!r} needs --train_file (and --validation_file to evaluate).")
        if self.text_pair_column in ("none", ""):
            self.text_pair_column = None
        if self.seqeval_mode not in (None, "strict", "default"):
            raise ValueError(f"seqeval_mode must be 'strict' or left out, got {self.seqeval_mode!r}")
        if self.metric_for_best_model is None:
            self.metric_for_best_model = "f1" if self.task in TOKEN_TASKS else "accuracy"
        super().__post_init__()


def classification_compute_metrics(num_labels: int):
    """Accuracy, macro F1, and for two labels binary F1 (label 1 positive) and Matthews correlation."""
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    def compute_metrics(eval_pred) -> dict[str, float]:
        logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        predictions = np.asarray(logits).argmax(-1)
        labels = np.asarray(eval_pred.label_ids)
        out = {
            "accuracy": float(accuracy_score(labels, predictions)),
            "f1_macro": float(f1_score(labels, predictions, average="macro", zero_division=0)),
        }
        if num_labels == 2:
            out["f1"] = float(f1_score(labels, predictions, zero_division=0))
            out["matthews_correlation"] = float(matthews_corrcoef(labels, predictions))
        majority = np.bincount(labels, minlength=num_labels).max() / max(len(labels), 1)
        out["majority_baseline"] = float(majority)
        return out

    return compute_metrics


@dataclass
class FinetuneResult:
    trainer: Any
    metrics: dict[str, float]
    label_names: list[str]
    report: str = ""


def _load_task_data(args: FinetuneArguments, tokenizer):
    """The task's DatasetDict (train/validation[/test]) with model inputs and ``labels``, and its label names."""
    import datasets

    from . import downstream

    source = args.corpus[0] if args.corpus and len(args.corpus) == 1 else args.corpus
    if args.task in ("nsp", "sop", "coherence"):
        data = downstream.build_sentence_task(
            args.task,
            source,
            tokenizer,
            max_seq_length=args.max_seq_length,
            validation_fraction=args.validation_fraction,
            test_fraction=args.task_test_fraction,
        )
        return datasets.DatasetDict({"train": data["train"], "validation": data["test"]}), data["train"].features[
            "labels"
        ].names
    if args.task == "segment-tagging":
        data = downstream.build_segment_tagging(
            source,
            tokenizer,
            max_seq_length=args.max_seq_length,
            validation_fraction=args.validation_fraction,
            test_fraction=args.task_test_fraction,
        )
        return datasets.DatasetDict({"train": data["train"], "validation": data["test"]}), downstream.SEGMENT_LABELS
    if args.task == "ner":
        from .conll import label_list, read_conll
        from .token_classification import tokenize_and_align_labels

        files = {"train": args.train_file, "validation": args.validation_file, "test": args.test_file}
        read = {k: read_conll(v, repair_iob=args.repair_iob) for k, v in files.items() if v}
        names = label_list(read["train"].tags)
        out = datasets.DatasetDict()
        for split, conll in read.items():
            raw = conll.to_dataset(names)
            out[split] = raw.map(
                partial(
                    tokenize_and_align_labels,
                    tokenizer=tokenizer,
                    label_names=names,
                    max_length=args.max_seq_length,
                    label_all_tokens=args.label_all_tokens and split == "train",
                ),
                batched=True,
                remove_columns=raw.column_names,
                desc=f"Aligning labels ({split})",
            )
        return out, names
    files = {"train": args.train_file, "validation": args.validation_file, "test": args.test_file}
    raw = downstream.load_classification_data(
        {k: v for k, v in files.items() if v},
        text_column=args.text_column,
        text_pair_column=args.text_pair_column,
        label_column=args.label_column,
    )
    names = raw["train"].features["labels"].names
    tokenized = datasets.DatasetDict()
    for split, part in raw.items():
        tokenized[split] = part.map(
            partial(
                downstream.tokenize_pairs,
                tokenizer=tokenizer,
                text_column=args.text_column,
                text_pair_column=args.text_pair_column,
                max_length=args.max_seq_length,
            ),
            batched=True,
            remove_columns=[c for c in part.column_names if c != "labels"],
            desc=f"Tokenizing ({split})",
        )
    return tokenized, names


def finetune(args: FinetuneArguments, *, tokenizer=None, data=None, label_names=None, callbacks=None) -> FinetuneResult:
    """Fine-tune a checkpoint on a downstream task and evaluate it.

    Args:
        args (`FinetuneArguments`): The run.
        tokenizer (*optional*): Defaults to the model's.
        data (`datasets.DatasetDict`, *optional*): Prepared task data (model inputs and ``labels``); built from
            ``args`` when not given, in which case `label_names` comes with it.
        label_names (`list[str]`, *optional*): Label names of `data`.
        callbacks (`list`, *optional*): More ``TrainerCallback``s.

    Returns:
        `FinetuneResult` with the trainer, the final metrics (``eval_*``, and ``test_*`` when a test set is
        given; segment tagging adds the per-label report and the exact-boundary accuracies) and label names.

    Example:
        ```python
        >>> from nsptask.finetuning import FinetuneArguments, finetune
        >>> args = FinetuneArguments(output_dir="out", task="segment-tagging", model_name_or_path="runs/tiny-nsp")
        >>> finetune(args).metrics["eval_f1"]  # doctest: +SKIP
        ```
    """
    import transformers

    from .tokenization import load_tokenizer

    if args.model_name_or_path is None:
        raise ValueError(
            "Fine-tuning needs a checkpoint: --model_name_or_path (nsptask's pretrain output, a path or a Hub id)."
        )
    if tokenizer is None:
        tokenizer = load_tokenizer(args.tokenizer_name_or_path or args.model_name_or_path)
    if data is None:
        with args.main_process_first(desc="nsptask: preparing the task data"):
            data, label_names = _load_task_data(args, tokenizer)
    if label_names is None:
        raise ValueError("Pass label_names with prepared data.")
    for split, part in data.items():
        if len(part) == 0:
            raise ValueError(f"The {split} split of task {args.task!r} is empty.")
    train = data["train"]
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    token_task = args.task in TOKEN_TASKS
    auto = (
        transformers.AutoModelForTokenClassification if token_task else transformers.AutoModelForSequenceClassification
    )
    id2label = dict(enumerate(label_names))
    model = auto.from_pretrained(
        args.model_name_or_path,
        num_labels=len(label_names),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        ignore_mismatched_sizes=True,
    )
    check_vocabulary(tokenizer, model)
    collator, compute_metrics = _collator_and_metrics(args.task, tokenizer, label_names, args.seqeval_mode)
    callbacks = list(callbacks or [])
    if args.early_stopping_patience:
        callbacks.append(transformers.EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
    from .training import NspTrainer, use_given_progress_callback

    trainer = NspTrainer(
        model=model,
        args=args,
        train_dataset=_model_inputs(train),
        eval_dataset=_model_inputs(data["validation"]) if "validation" in data else None,
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=compute_metrics,
        callbacks=callbacks,
    )
    use_given_progress_callback(trainer)
    train_output = trainer.train()
    metrics = dict(train_output.metrics)
    counts = {
        f"{split}_truncated": int(np.sum(part[c]))
        for split, part in data.items()
        for c in ("truncated", "words_truncated")
        if c in part.column_names
    }
    metrics.update(counts)
    report = ""
    for split in ("validation", "test"):
        if split not in data:
            continue
        prefix = "eval" if split == "validation" else "test"
        metrics.update(evaluate_split(trainer, data[split], args.task, label_names, prefix))
        report = getattr(compute_metrics, "last_report", "") or report
    trainer.save_model()
    if trainer.is_world_process_zero():
        trainer.save_metrics("all", metrics)
        if report:
            Path(args.output_dir, "classification_report.txt").write_text(report)
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
    )
    if trainer.is_world_process_zero():
        trainer.create_model_card()
    if args.push_to_hub:
        trainer.push_to_hub(commit_message=f"nsptask: fine-tuned on {args.task}")
    return FinetuneResult(trainer=trainer, metrics=metrics, label_names=list(label_names), report=report)


def evaluate_split(trainer, dataset, task: str, label_names: list[str], prefix: str = "eval") -> dict[str, Any]:
    """Evaluate on one split. Token tasks get the seqeval scores; segment tagging adds the per-label
    (``L``/``R``/``O``) token report and the exact-boundary accuracy for true and random continuations."""
    output = trainer.predict(_model_inputs(dataset), metric_key_prefix=prefix)
    metrics = dict(output.metrics)
    if task == "segment-tagging":
        from sklearn.metrics import classification_report

        from .downstream import boundary_accuracy

        predictions = np.asarray(output.predictions).argmax(-1)
        metrics.update({f"{prefix}_{k}": v for k, v in boundary_accuracy(predictions, dataset).items()})
        gold, pred = [], []
        for row_pred, row_labels in zip(predictions, dataset["labels"]):
            for p, g in zip(row_pred, row_labels):
                gold.append(label_names[g].split("-")[-1])
                pred.append(label_names[p].split("-")[-1])
        report = classification_report(gold, pred, labels=["L", "R", "O"], output_dict=True, zero_division=0)
        for name in ("L", "R", "O"):
            for k in ("precision", "recall", "f1-score", "support"):
                metrics[f"{prefix}_label_{name}_{k.replace('-score', '')}"] = float(report[name][k])
    return metrics


def evaluate_model(args: FinetuneArguments, *, tokenizer=None) -> dict[str, Any]:
    """Evaluate a fine-tuned model (``args.model_name_or_path``, whose config holds ``id2label``) on its task's
    validation (and test) data, without training. Writes ``eval_results.json`` (and the seqeval report)."""
    import transformers

    from .tokenization import load_tokenizer

    if args.model_name_or_path is None:
        raise ValueError("nsptask evaluate needs --model_name_or_path (a fine-tuned model).")
    tokenizer = tokenizer or load_tokenizer(args.tokenizer_name_or_path or args.model_name_or_path)
    config = transformers.AutoConfig.from_pretrained(args.model_name_or_path)
    data, label_names = _load_task_data(args, tokenizer)
    expected = [config.id2label[i] for i in range(len(config.id2label))]
    if list(label_names) != expected:
        raise ValueError(
            f"The data's labels {list(label_names)} differ from the model's {expected}: evaluate with data labelled "
            "like the model's training data."
        )
    token_task = args.task in TOKEN_TASKS
    auto = (
        transformers.AutoModelForTokenClassification if token_task else transformers.AutoModelForSequenceClassification
    )
    model = auto.from_pretrained(args.model_name_or_path)
    collator, compute_metrics = _collator_and_metrics(args.task, tokenizer, label_names, args.seqeval_mode)
    trainer = transformers.Trainer(
        model=model, args=args, processing_class=tokenizer, data_collator=collator, compute_metrics=compute_metrics
    )
    metrics: dict[str, Any] = {}
    for split in ("validation", "test"):
        if split in data:
            metrics.update(
                evaluate_split(
                    trainer, data[split], args.task, label_names, "eval" if split == "validation" else "test"
                )
            )
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    Path(args.output_dir, "eval_results.json").write_text(json.dumps(metrics, indent=2))
    if getattr(compute_metrics, "last_report", ""):
        Path(args.output_dir, "classification_report.txt").write_text(compute_metrics.last_report)
    return metrics


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
