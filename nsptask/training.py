"""Pretraining glue: ``NspTrainingArguments`` and :func:`pretrain`, on the stock ``Trainer``.

nsptask supplies the data, the collator, the metrics and the defaults; ``transformers.Trainer`` trains,
``accelerate`` places devices (the same code runs on a laptop CPU and under ``accelerate launch`` on many
GPUs), and the stock ``transformers`` heads hold the weights.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from transformers.trainer_utils import IntervalStrategy

from .modeling import DEFAULT_FORMATS, OBJECTIVES, PRESETS, SENTENCE_FORMATS

__all__ = [
    "NspTrainingArguments",
    "NspTrainer",
    "pretrain",
    "PretrainResult",
    "MaskingEpochCallback",
    "BarsOnlyProgressCallback",
]

logger = logging.getLogger(__name__)


def _default_report_to() -> str:
    try:
        import tensorboard  # noqa: F401

        return "tensorboard"
    except ImportError:
        return "none"


@dataclass
class NspTrainingArguments(TrainingArguments):
    """``TrainingArguments`` plus what pretraining with nsptask needs. Defaults suit a CPU run of the ``tiny``
    preset on the bundled corpus; every ``TrainingArguments`` option still applies."""

    objective: str = field(
        default="mlm+nsp", metadata={"help": f"Pretraining objective: one of {', '.join(OBJECTIVES)}."}
    )
    data_format: str | None = field(
        default=None,
        metadata={
            "help": "Instance format: nsp, sentence-pair, sop, full-sentences, doc-sentences. Default: nsp for "
            "mlm+nsp and nsp, sop for mlm+sop and sop, full-sentences for mlm."
        },
    )
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Pretrained model (local path or Hub id). Default: a preset built from a config."},
    )
    preset: str = field(default="tiny", metadata={"help": f"Model size when no model is given: {', '.join(PRESETS)}."})
    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Tokenizer path or Hub id. Default: the model's, or nsptask's WordPiece tokenizer for presets."
        },
    )
    corpus: list[str] | None = field(
        default=None,
        metadata={"help": "Corpus files, directory or Hub dataset. Default: the bundled Wikipedia sample."},
    )
    corpus_format: str | None = field(
        default=None, metadata={"help": "sentences, text, json, csv, parquet or wikipedia (guessed from file names)."}
    )
    text_column: str = field(default="text", metadata={"help": "Text column of table and dataset corpora."})
    max_seq_length: int = field(default=128, metadata={"help": "Instance length, special tokens included."})
    dupe_factor: int = field(default=1, metadata={"help": "Times each document is turned into instances."})
    short_seq_prob: float = field(default=0.1, metadata={"help": "Probability of a shorter target length (NSP/SOP)."})
    instance_seed: int = field(default=12345, metadata={"help": "Seed of instance creation (Google's default)."})
    validation_fraction: float = field(default=0.05, metadata={"help": "Share of documents held out for evaluation."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Evaluate on at most this many instances."})
    mlm_probability: float = field(default=0.15, metadata={"help": "Share of tokens to predict."})
    masking: str = field(
        default="bernoulli",
        metadata={
            "help": "'bernoulli' (transformers: each token independently) or 'exact' (BERT: round(p*n) per sequence)."
        },
    )
    max_predictions_per_seq: int | None = field(
        default=None, metadata={"help": "Cap of the exact masking budget (Google: 20 at length 128)."}
    )
    whole_word_mask: bool = field(
        default=False, metadata={"help": "Mask whole words (WordPiece '##' pieces; Chinese via jieba)."}
    )
    sparse_mlm_head: bool = field(
        default=True, metadata={"help": "Compute the MLM head only at masked positions where the model allows it."}
    )
    pad_to_multiple_of: int = field(default=8, metadata={"help": "Pad batches to a multiple of this length."})
    dropout: float | None = field(
        default=None, metadata={"help": "Override the model's hidden and attention dropout (0 for exact comparisons)."}
    )
    num_proc: int | None = field(default=None, metadata={"help": "Processes for building the data."})
    # Defaults changed from TrainingArguments for a quick, offline CPU run.
    output_dir: str | None = field(default="nsptask-pretrain", metadata={"help": "Where checkpoints and the model go."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Batch size per device for training."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Batch size per device for evaluation."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate (AdamW)."})
    warmup_steps: float = field(default=0.06, metadata={"help": "Warm-up steps, or a fraction of all steps if < 1."})
    num_train_epochs: float = field(default=1.0, metadata={"help": "Epochs (ignored when max_steps > 0)."})
    logging_steps: float = field(default=20, metadata={"help": "Log every N steps."})
    eval_strategy: IntervalStrategy | str = field(
        default="steps", metadata={"help": "When to evaluate: no, steps, epoch."}
    )
    eval_steps: float | None = field(default=100, metadata={"help": "Evaluate every N steps."})
    save_steps: float = field(default=200, metadata={"help": "Save a checkpoint every N steps."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Keep at most this many checkpoints."})
    batch_eval_metrics: bool = field(
        default=True, metadata={"help": "Compute metrics batch by batch, so evaluation memory stays flat."}
    )
    report_to: None | str | list[str] = field(
        default_factory=_default_report_to, metadata={"help": "Loggers: tensorboard where installed, else none."}
    )

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.data_format is None:
            self.data_format = DEFAULT_FORMATS[self.objective]
        if self.objective == "mlm" and self.data_format not in (
            "full-sentences",
            "doc-sentences",
            "nsp",
            "sop",
            "sentence-pair",
        ):
            raise ValueError(f"Unknown data_format {self.data_format!r}")
        if self.objective != "mlm" and self.data_format not in SENTENCE_FORMATS[self.objective]:
            raise ValueError(
                f"objective {self.objective!r} needs data with its sentence label: data_format one of "
                f"{SENTENCE_FORMATS[self.objective]}, got {self.data_format!r}. For packed text "
                "(full-sentences, doc-sentences) use objective 'mlm'."
            )
        if self.model_name_or_path is None and self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        if self.masking not in ("bernoulli", "exact"):
            raise ValueError(f"masking must be 'bernoulli' or 'exact', got {self.masking!r}")
        if self.include_num_input_tokens_seen in ("no", False):
            self.include_num_input_tokens_seen = "non_padding"  # tokens seen go into the model card
        super().__post_init__()

    @property
    def sentence_task(self) -> str:
        return "sop" if self.data_format == "sop" else "nsp"


class MaskingEpochCallback(TrainerCallback):
    """Tells the collator which epoch it is, so masks change every epoch (dynamic masking)."""

    def __init__(self, collator):
        self.collator = collator

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.collator.epoch = int(state.epoch or 0)


class PaddingStatsCallback(TrainerCallback):
    """Adds the share of padding tokens in the batches so far to the training logs."""

    def __init__(self, collator):
        self.collator = collator

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None and "loss" in logs:
            logs["padding_fraction"] = round(self.collator.padding_fraction, 4)


class BarsOnlyProgressCallback(ProgressCallback):
    """Progress bars without the log dictionaries the stock ``ProgressCallback`` writes under them.

    Pass it in ``callbacks`` to :func:`pretrain` or :func:`~nsptask.finetune` and it replaces the stock
    progress (or printer) callback; the logs still reach ``state.log_history`` and every ``report_to`` logger.
    With ``disable_tqdm=True`` it is removed as well, so nothing is printed. ``nsptask ablate`` uses it so that a study's console shows bars, not hundreds of dictionaries.
    """

    def on_log(self, args, state, control, logs=None, **kwargs):
        return None


def use_given_progress_callback(trainer: Trainer) -> Trainer:
    """Drop the stock progress or printer callback when the caller passed its own ``ProgressCallback``;
    with ``disable_tqdm`` the caller's goes too, so nothing is printed."""
    callbacks = trainer.callback_handler.callbacks
    given = [cb for cb in callbacks if isinstance(cb, ProgressCallback) and type(cb) is not ProgressCallback]
    if given:
        for cb in list(callbacks):
            if type(cb) in (ProgressCallback, PrinterCallback) or type(cb).__name__ == "NotebookProgressCallback":
                trainer.remove_callback(cb)
        if trainer.args.disable_tqdm:
            for cb in given:
                trainer.remove_callback(cb)
    return trainer


class NspTrainer(Trainer):
    """The stock ``Trainer``, except that its model card is nsptask's (objective, data, metrics); the
    card is what ``push_to_hub`` uploads."""

    nsptask_card: dict[str, Any] | None = None

    def create_model_card(self, *args, **kwargs) -> None:
        if self.nsptask_card is None or not self.is_world_process_zero():
            return super().create_model_card(*args, **kwargs)
        from .model_card import write_model_card

        write_model_card(self.args.output_dir, **self.nsptask_card)


@dataclass
class PretrainResult:
    """What :func:`pretrain` returns."""

    trainer: Any
    metrics: dict[str, float]
    data_report: dict[str, Any] | None
    model_info: dict[str, Any]


def prepare_pretraining_data(args: NspTrainingArguments, tokenizer):
    """Build (or load from the cache) the train and validation instances for `args`."""
    from .builder import build_pretraining_dataset

    reader_kwargs: dict[str, Any] = {"text_column": args.text_column}
    if args.corpus_format:
        reader_kwargs["format"] = args.corpus_format
    source = args.corpus[0] if args.corpus and len(args.corpus) == 1 else args.corpus
    with args.main_process_first(desc="nsptask: building pretraining data"):
        data, report = build_pretraining_dataset(
            source,
            format=args.data_format,
            tokenizer=tokenizer,
            num_proc=args.num_proc,
            return_report=True,
            reader_kwargs=reader_kwargs,
            max_seq_length=args.max_seq_length,
            dupe_factor=args.dupe_factor,
            short_seq_prob=args.short_seq_prob,
            seed=args.instance_seed,
            validation_fraction=args.validation_fraction,
        )
    return data, report


def pretrain(
    args: NspTrainingArguments,
    *,
    train_dataset=None,
    eval_dataset=None,
    tokenizer=None,
    model=None,
    callbacks: list | None = None,
    resume_from_checkpoint: str | bool | None = None,
) -> PretrainResult:
    """Pretrain a model with one objective and save it with its tokenizer, metrics and model card.

    Args:
        args (`NspTrainingArguments`): Everything about the run.
        train_dataset, eval_dataset (`datasets.Dataset`, *optional*): Instances built by nsptask; built
            from ``args.corpus`` when not given.
        tokenizer (*optional*): Tokenizer; from ``args`` when not given.
        model (*optional*): A model; built from ``args`` (preset or checkpoint) when not given.
        callbacks (`list`, *optional*): More ``TrainerCallback``s.
        resume_from_checkpoint (`str` or `bool`, *optional*): Passed to ``Trainer.train``.

    Returns:
        `PretrainResult` with the trainer, the final evaluation metrics, the data report and model info.

    Example:
        ```python
        >>> from nsptask import NspTrainingArguments, pretrain
        >>> args = NspTrainingArguments(output_dir="out", objective="mlm+sop", max_steps=20, report_to="none")
        >>> result = pretrain(args)
        >>> sorted(k for k in result.metrics if k.startswith("eval_sop"))
        ['eval_sop_accuracy', 'eval_sop_f1']
        ```
    """
    from .collator import PretrainingCollator
    from .metrics import preprocess_logits_for_metrics, pretraining_compute_metrics
    from .modeling import build_model, enable_sparse_mlm, sentence_label_argument
    from .tokenization import check_pair_tokenizer, load_tokenizer

    if tokenizer is None:
        tokenizer = load_tokenizer(args.tokenizer_name_or_path or args.model_name_or_path)
    check_pair_tokenizer(tokenizer, needs_pair=args.data_format in ("nsp", "sop", "sentence-pair"))
    if model is None:
        model, model_info = build_model(
            args.objective, tokenizer, args.model_name_or_path, args.preset, seed=args.seed, dropout=args.dropout
        )
    else:
        model_info = {"missing_keys": [], "unexpected_keys": []}
    report = None
    if train_dataset is None:
        data, report = prepare_pretraining_data(args, tokenizer)
        train_dataset = data["train"]
        if eval_dataset is None and "validation" in data:
            eval_dataset = data["validation"]
    if eval_dataset is not None and args.max_eval_samples is not None:
        eval_dataset = eval_dataset.select(range(min(args.max_eval_samples, len(eval_dataset))))

    label_argument = sentence_label_argument(model) if args.objective != "mlm" else None
    train_dataset = _rename_sentence_label(train_dataset, label_argument)
    eval_dataset = _rename_sentence_label(eval_dataset, label_argument) if eval_dataset is not None else None
    has_mlm = args.objective.startswith("mlm")
    args.label_names = (["labels"] if has_mlm else []) + ([label_argument] if label_argument else [])
    args.label_names = list(dict.fromkeys(args.label_names))
    sparse = bool(args.sparse_mlm_head and has_mlm and enable_sparse_mlm(model))

    collator = PretrainingCollator(
        tokenizer,
        mlm=has_mlm,
        mlm_probability=args.mlm_probability,
        masking=args.masking,
        max_predictions_per_seq=args.max_predictions_per_seq,
        whole_word_mask=args.whole_word_mask,
        pad_to_multiple_of=args.pad_to_multiple_of,
        seed=args.seed,
    )
    trainer = NspTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset if args.eval_strategy != "no" or eval_dataset is not None else None,
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=pretraining_compute_metrics(args.objective, args.sentence_task, sparse=sparse),
        preprocess_logits_for_metrics=None if sparse else preprocess_logits_for_metrics,
        callbacks=[MaskingEpochCallback(collator), PaddingStatsCallback(collator), *(callbacks or [])],
    )
    use_given_progress_callback(trainer)
    train_output = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    metrics = dict(train_output.metrics)
    if eval_dataset is not None:
        metrics.update(trainer.evaluate())
    metrics["train_padding_fraction"] = round(collator.padding_fraction, 4)
    metrics["num_input_tokens_seen"] = int(trainer.state.num_input_tokens_seen)
    trainer.nsptask_card = {
        "objective": args.objective,
        "data_format": args.data_format,
        "model_name": Path(args.output_dir).name,
        "base_model": args.model_name_or_path,
        "preset": None if args.model_name_or_path else args.preset,
        "architecture": type(model).__name__,
        "num_parameters": int(sum(p.numel() for p in model.parameters())),
        "steps": int(trainer.state.global_step),
        "tokens_seen": int(trainer.state.num_input_tokens_seen),
        "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
        "data_report": report,
        "training": {
            "learning_rate": args.learning_rate,
            "per_device_train_batch_size": args.per_device_train_batch_size,
            "gradient_accumulation_steps": args.gradient_accumulation_steps,
            "world_size": args.world_size,
            "max_seq_length": args.max_seq_length,
            "mlm_probability": args.mlm_probability,
            "masking": args.masking,
            "whole_word_mask": args.whole_word_mask,
            "sparse_mlm_head": sparse,
            "seed": args.seed,
        },
        "hub_model_id": args.hub_model_id,
    }
    trainer.save_model()
    if trainer.is_world_process_zero():
        trainer.create_model_card()
        trainer.save_metrics("all", metrics)
        if report is not None:
            Path(args.output_dir, "data_report.json").write_text(json.dumps(report, indent=2))
    if args.push_to_hub:
        trainer.push_to_hub(commit_message=f"nsptask: {args.objective} on {args.data_format}")
    return PretrainResult(trainer=trainer, metrics=metrics, data_report=report, model_info=model_info)


def _rename_sentence_label(dataset, label_argument: str | None):
    """Give the dataset's sentence label the name of the model's argument (SOP data on a BERT NSP head
    becomes ``next_sentence_label``; NSP data on ALBERT's head becomes ``sentence_order_label``)."""
    if dataset is None or label_argument is None:
        return dataset
    for name in ("next_sentence_label", "sentence_order_label"):
        if name in dataset.column_names and name != label_argument:
            return dataset.rename_column(name, label_argument)
    return dataset
