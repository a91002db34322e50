"""Pretraining glue: ``NspTrainingArguments``, :class:`NspTrainer` and :func:`pretrain`, on the stock ``Trainer``.

nsptask supplies the data, the collator, the metrics and the defaults; ``transformers.Trainer`` trains,
``accelerate`` places devices (the same code runs on a laptop CPU and under ``accelerate launch`` on many
GPUs), and the stock ``transformers`` heads hold the weights.

:class:`NspTrainer` overrides three methods of the stock ``Trainer``: ``compute_loss`` (the MLM and sentence
losses from the model's logits, normalised over the whole accumulated batch on every process, so gradient
accumulation k gives the update of a batch k times larger for every family, sparse head or dense),
``get_batch_samples`` (to count the masked tokens and sentences of each accumulated batch) and
``create_model_card``.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import ExportableState, PrinterCallback, ProgressCallback

from .arguments import PretrainOptions
from .builder import BUILD_RECORD_FILE, PRETRAINING_DOCUMENTS_FILE, training_document_hashes  # noqa: F401
from .modeling import DEFAULT_FORMATS, FAMILIES, OBJECTIVES, PRESETS, SENTENCE_FORMATS

__all__ = [
    "NspTrainingArguments",
    "NspTrainer",
    "pretrain",
    "PretrainResult",
    "MaskingEpochCallback",
    "BarsOnlyProgressCallback",
    "load_build_output",
    "check_output_dir",
]

logger = logging.getLogger(__name__)


@dataclass
class NspTrainingArguments(PretrainOptions, TrainingArguments):
    """``TrainingArguments`` plus the model and objective options of pretraining with nsptask
    (:class:`nsptask.arguments.PretrainOptions`; the data options are :class:`nsptask.arguments.DataArguments`).
    Defaults suit a CPU run of the ``tiny`` preset on the bundled corpus; every ``TrainingArguments`` option still
    applies."""

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.model_name_or_path is None and self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        if self.model_family not in FAMILIES:
            raise ValueError(f"model_family must be one of {FAMILIES}, got {self.model_family!r}")
        if self.masking not in ("bernoulli", "exact"):
            raise ValueError(f"masking must be 'bernoulli' or 'exact', got {self.masking!r}")
        if not 0 < self.mlm_probability < 1:
            raise ValueError(f"mlm_probability must lie in (0, 1), got {self.mlm_probability}")
        from .arguments import check_path_or_hub_id

        check_path_or_hub_id(self.model_name_or_path, "model folder", "model_name_or_path")
        if self.include_num_input_tokens_seen in ("no", False):
            self.include_num_input_tokens_seen = "non_padding"  # tokens seen go into the model card
        super().__post_init__()
        quiet_pin_memory(self)

    def data_format(self, data_args) -> str:
        """The instance format for this objective: the data options' choice, checked, or the objective's default."""
        data_format = data_args.data_format or DEFAULT_FORMATS[self.objective]
        check_objective_format(self.objective, data_format)
        return data_format


def quiet_pin_memory(args) -> None:
    """Pinned memory only helps with a GPU; on a CPU-only machine torch warns at every data loader."""
    import torch

    if args.dataloader_pin_memory and not torch.cuda.is_available():
        args.dataloader_pin_memory = False


def check_objective_format(objective: str, data_format: str) -> None:
    """An objective with data that lacks its label is an error, before any work."""
    if objective != "mlm" and data_format not in SENTENCE_FORMATS[objective]:
        raise ValueError(
            f"objective {objective!r} needs data with its sentence label: data_format one of "
            f"{SENTENCE_FORMATS[objective]}, got {data_format!r}. For packed text (full-sentences, doc-sentences) "
            "use objective 'mlm'."
        )


def sentence_task_of(data_format: str) -> str:
    return "sop" if data_format == "sop" else "nsp"


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


class SequenceCounter(TrainerCallback, ExportableState):
    """The number of training sequences the model has seen, over all processes (counted from the batches
    :class:`NspTrainer` takes, evaluation excluded); saved in checkpoints and restored on resumption."""

    def __init__(self):
        self.sequences = 0

    def state(self) -> dict:
        return {"args": {}, "attributes": {"sequences": self.sequences}}


class BarsOnlyProgressCallback(ProgressCallback):
    """Progress bars without the log dictionaries the stock ``ProgressCallback`` writes under them.

    Pass it in ``callbacks`` to :func:`pretrain` or :func:`~nsptask.finetune` and it replaces the stock
    progress (or printer) callback; the logs still reach ``state.log_history`` and every ``report_to`` logger.
    With ``disable_tqdm=True`` it is removed as well, so nothing is printed. ``nsptask ablate`` uses it so that a
    study's console shows bars, not hundreds of dictionaries.
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
    """The stock ``Trainer`` with pretraining losses computed from the model's outputs.

    For pretraining (``mlm_key`` or ``sentence_key`` given), the labels are taken out of the inputs, the model
    runs its own ``forward`` (with the vocabulary projection restricted to masked rows when a
    :class:`~nsptask.modeling.SparseMlmHead` is given), and the loss is
    ``sum of MLM token losses / masked tokens + sum of sentence losses / sentences``, both counted over the whole
    accumulated batch on all processes; in evaluation, per batch. Evaluation returns small outputs (argmax
    predictions at masked positions, per-sequence MLM loss sums and counts, sentence logits), so evaluation
    memory does not grow with the vocabulary. Its model card is nsptask's (objective, data, metrics); the card is
    what ``push_to_hub`` uploads.

    Args:
        mlm_key (`str`, *optional*): The MLM label column (``labels``) when the objective has MLM.
        sentence_key (`str`, *optional*): The sentence label the model takes (``next_sentence_label``, ...).
        sparse_head (`SparseMlmHead`, *optional*): Restricts the MLM head to masked positions.
    """

    nsptask_card: dict[str, Any] | None = None

    def __init__(self, *args, mlm_key: str | None = None, sentence_key: str | None = None, sparse_head=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.mlm_key, self.sentence_key, self.sparse_head = mlm_key, sentence_key, sparse_head
        self._window = None
        if self.pretraining:
            # The loss is normalised here over the accumulated batch: the Trainer must neither pass loss kwargs
            # to the model (which would ignore them) nor divide by the accumulation steps.
            self.model_accepts_loss_kwargs = False
            self.loss_is_scaled_for_ga = True

    @property
    def sequence_counter(self) -> SequenceCounter | None:
        """The :class:`SequenceCounter` among the callbacks, looked up each time: on resumption the Trainer
        replaces each stateful callback with a new instance restored from the checkpoint."""
        return next((cb for cb in self.callback_handler.callbacks if isinstance(cb, SequenceCounter)), None)

    @property
    def pretraining(self) -> bool:
        return self.mlm_key is not None or self.sentence_key is not None

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        batch_samples, num_items = super().get_batch_samples(epoch_iterator, num_batches, device)
        if self.pretraining:
            import torch

            tokens = sum(int((b[self.mlm_key] != -100).sum()) for b in batch_samples if self.mlm_key in b)
            sentences = sum(len(b[self.sentence_key]) for b in batch_samples if self.sentence_key in b)
            sequences = sum(len(b["input_ids"]) for b in batch_samples)
            counts = torch.tensor([tokens, sentences, sequences], device=device, dtype=torch.long)
            if self.args.world_size > 1:
                counts = self.accelerator.gather(counts).view(-1, 3).sum(0)
            self._window = counts.tolist()[:2]
            counter = self.sequence_counter
            if counter is not None:
                counter.sequences += int(counts[2])
        return batch_samples, num_items

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not self.pretraining:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        import torch
        import torch.nn.functional as F

        from .modeling import mlm_logits, sentence_logits

        inputs = dict(inputs)
        labels = inputs.pop(self.mlm_key, None) if self.mlm_key else None
        sentence_label = inputs.pop(self.sentence_key, None) if self.sentence_key else None
        sparse = self.sparse_head
        if sparse is not None and labels is not None:
            sparse.select(labels != -100, inputs.get("attention_mask"))
        try:
            outputs = model(**inputs)
        finally:
            if sparse is not None:
                sparse.clear()
        training = model.training and self._window is not None
        world = self.accelerator.num_processes if training else 1
        loss = None
        small: dict[str, Any] = {}
        if labels is not None:
            selected = labels != -100
            logits = mlm_logits(outputs)
            rows = sparse.take(logits) if sparse is not None and sparse.used else logits[selected]
            targets = labels[selected]
            per_token = F.cross_entropy(rows.float(), targets, reduction="none")
            # `rows.sum() * 0` keeps every head parameter in the graph when nothing is masked (DDP needs it).
            total = per_token.sum() + rows.sum() * 0.0
            count = self._window[0] if training else targets.numel()
            loss = total * world / max(count, 1)
            if not model.training:
                predictions = torch.full_like(labels, -100)
                predictions[selected] = rows.argmax(-1)
                small["mlm_predictions"] = predictions
                small["mlm_loss_sum"] = torch.zeros(labels.shape[0], device=labels.device).index_add(
                    0, selected.nonzero(as_tuple=True)[0], per_token.detach()
                )
                small["mlm_count"] = selected.sum(-1)
        if sentence_label is not None:
            logits = sentence_logits(outputs)
            total = F.cross_entropy(logits.float().view(-1, 2), sentence_label.view(-1), reduction="sum")
            count = self._window[1] if training else sentence_label.numel()
            sentence_loss = total * world / max(count, 1)
            loss = sentence_loss if loss is None else loss + sentence_loss
            if not model.training:
                small["sentence_logits"] = logits
        if not return_outputs:
            return loss
        return loss, {"loss": loss, **small}

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


def check_output_dir(args, resume: bool) -> None:
    """An existing, non-empty output folder is not silently overwritten: stop, unless resuming or told to
    overwrite (then its old checkpoints go, so no stale checkpoint stays beside the new ones)."""
    out = Path(args.output_dir)
    if not out.is_dir() or not any(out.iterdir()) or resume:
        return
    if not getattr(args, "overwrite_output_dir", False):
        raise ValueError(
            f"--output_dir {out} exists and is not empty: expected a new or empty folder. Pass "
            "--overwrite_output_dir to replace what is there, --resume_from_checkpoint to continue a run, or another "
            "--output_dir."
        )
    for checkpoint in out.glob("checkpoint-*"):
        shutil.rmtree(checkpoint, ignore_errors=True)


def load_build_output(path: str):
    """Read a dataset made by ``nsptask build --output_dir`` (a ``save_to_disk`` folder or the Dask engine's
    Parquet shards), locally or from the Hub. Returns ``(DatasetDict, record)``; the record says which format,
    tokenizer and split made it (``{}`` for a dataset from elsewhere)."""
    import datasets

    folder = Path(path)
    record: dict = {}
    if folder.is_dir():
        if (folder / BUILD_RECORD_FILE).is_file():
            record = json.loads((folder / BUILD_RECORD_FILE).read_text())
        if (folder / "dataset_dict.json").is_file():
            return datasets.load_from_disk(str(folder)), record
        files = {
            split.name: sorted(str(p) for p in split.glob("*.parquet")) for split in folder.iterdir() if split.is_dir()
        }
        files = {k: v for k, v in files.items() if v}
        if not files:
            raise ValueError(
                f"--dataset {path}: expected the output of `nsptask build --output_dir` (dataset_dict.json, or one "
                f"folder of Parquet shards per split); found {sorted(p.name for p in folder.iterdir())[:8]}."
            )
        return datasets.load_dataset("parquet", data_files=files), record
    return datasets.load_dataset(path), record


def _with_index(dataset):
    from .collator import INDEX_COLUMN

    if dataset is None or INDEX_COLUMN in dataset.column_names:
        return dataset
    import numpy as np

    return dataset.add_column(INDEX_COLUMN, np.arange(len(dataset), dtype=np.int64))


def _model_columns(dataset, keep: list[str]):
    from .collator import INDEX_COLUMN

    if dataset is None:
        return None
    wanted = [c for c in dataset.column_names if c in keep or c == INDEX_COLUMN]
    return dataset.select_columns(wanted)


def prepare_pretraining_data(args: NspTrainingArguments, data_args, tokenizer):
    """Build (or load from the cache, or read from ``--dataset``) the train and validation instances.

    Returns:
        `(DatasetDict, report, pretraining document hashes or None)`.
    """
    import numpy as np

    from .builder import build_pretraining_dataset

    data_format = args.data_format(data_args)
    if data_args.dataset:
        data, record = load_build_output(data_args.dataset)
        # The record says which corpus and split made the build: the model's record must say the same.
        for name, value in (record.get("data_arguments") or {}).items():
            if name not in ("dataset", "num_proc", "data_cache_dir", "shard_index", "num_shards") and hasattr(
                data_args, name
            ):
                setattr(data_args, name, value)
        built = record.get("format")
        if built and built != data_format:
            raise ValueError(
                f"--dataset {data_args.dataset} holds {built!r} instances, and objective {args.objective!r} trains on "
                f"{data_format!r}. Build the data with --data_format {data_format}, or pass --data_format {built} "
                "if the objective allows it."
            )
        hashes_file = Path(data_args.dataset) / PRETRAINING_DOCUMENTS_FILE
        hashes = np.load(hashes_file) if hashes_file.is_file() else None
        return data, record.get("report"), hashes
    with args.main_process_first(desc="nsptask: building pretraining data"):
        data, report, builder = build_pretraining_dataset(
            tokenizer=tokenizer, return_report=True, return_builder=True, **data_args.builder_kwargs(data_format)
        )
    return data, report, training_document_hashes(builder)


def write_data_record(output_dir: str, data_args, data_format: str, report: dict | None, hashes) -> None:
    """Write ``nsptask_data.json`` (the data and split a model was pretrained on) and
    ``pretraining_documents.npy`` (the text hashes of its training documents) beside the model: fine-tuning
    and evaluation read them to hold the same documents out and refuse to test on training documents."""
    import numpy as np

    from .arguments import DATA_RECORD_FILE
    from .stats import describe_source

    record = {
        "format": data_format,
        "source": report.get("source") if report else describe_source(data_args.source),
        "corpus": data_args.corpus,
        "dataset": data_args.dataset,
        "split": {"validation_fraction": data_args.validation_fraction, "split_seed": data_args.split_seed},
        "data_arguments": data_args.to_dict(),
        "pretraining_documents": int(len(hashes)) if hashes is not None else None,
    }
    Path(output_dir, DATA_RECORD_FILE).write_text(json.dumps(record, indent=2, default=str))
    if hashes is not None:
        np.save(Path(output_dir, PRETRAINING_DOCUMENTS_FILE), np.asarray(hashes, dtype=np.uint64))


def pretrain(
    args: NspTrainingArguments,
    data_args=None,
    *,
    train_dataset=None,
    eval_dataset=None,
    tokenizer=None,
    model=None,
    callbacks: list | None = None,
    resume_from_checkpoint: str | bool | None = None,
) -> PretrainResult:
    """Pretrain a model with one objective and save it with its tokenizer, metrics, data record and model card.

    Args:
        args (`NspTrainingArguments`): The model, objective and training options.
        data_args (`DataArguments`, *optional*): The corpus and data options (default: the bundled corpus).
        train_dataset, eval_dataset (`datasets.Dataset`, *optional*): Instances built by nsptask; built from
            ``data_args`` when not given.
        tokenizer (*optional*): Tokenizer; from the options (or the ``--dataset``'s) when not given.
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
    from .arguments import DataArguments
    from .collator import PretrainingCollator
    from .metrics import pretraining_compute_metrics
    from .modeling import build_model, enable_sparse_mlm, model_capabilities, sentence_label_argument
    from .tokenization import check_pair_tokenizer, load_tokenizer

    data_args = data_args or DataArguments()
    data_args.resolve()
    data_format = args.data_format(data_args)
    check_output_dir(args, resume=bool(resume_from_checkpoint))
    if tokenizer is None:
        name = data_args.tokenizer_name_or_path
        if name is None and data_args.dataset:
            if not Path(data_args.dataset, "tokenizer").is_dir():
                # Token ids mean nothing without the tokenizer that made them: never guess it.
                raise ValueError(
                    f"--dataset {data_args.dataset}: expected a local `nsptask build --output_dir` folder with its "
                    "tokenizer/ beside the splits; found none. Pass --tokenizer_name_or_path with the tokenizer the "
                    "dataset was built with."
                )
            name = str(Path(data_args.dataset, "tokenizer"))
        tokenizer = load_tokenizer(name or args.model_name_or_path)
    check_pair_tokenizer(tokenizer, needs_pair=data_format in ("nsp", "sop", "sentence-pair"))
    if model is None:
        model, model_info = build_model(
            args.objective,
            tokenizer,
            args.model_name_or_path,
            args.preset,
            seed=args.seed,
            dropout=args.dropout,
            family=args.model_family,
            max_position_embeddings=max(512, data_args.max_seq_length),
        )
    else:
        model_info = {"missing_keys": [], "unexpected_keys": []}
    has_mlm = args.objective.startswith("mlm")
    capabilities = model_capabilities(
        model.config, tokenizer, data_args.max_seq_length, args.whole_word_mask and has_mlm
    )
    report, hashes = None, None
    if train_dataset is None:
        data, report, hashes = prepare_pretraining_data(args, data_args, tokenizer)
        train_dataset = data["train"]
        if eval_dataset is None and "validation" in data:
            eval_dataset = data["validation"]
    if eval_dataset is not None and args.max_eval_samples is not None and len(eval_dataset) > args.max_eval_samples:
        # A seeded sample across all held-out documents, not the first instances in corpus order.
        eval_dataset = eval_dataset.shuffle(seed=args.seed).select(range(args.max_eval_samples))

    label_argument = sentence_label_argument(model) if args.objective != "mlm" else None
    train_dataset = _rename_sentence_label(train_dataset, label_argument)
    eval_dataset = _rename_sentence_label(eval_dataset, label_argument)
    mlm_key = "labels" if has_mlm else None
    label_names = ([mlm_key] if mlm_key else []) + ([label_argument] if label_argument else [])
    args.label_names = list(dict.fromkeys(label_names))
    args.remove_unused_columns = False  # nsptask selects the columns: the instance index must reach the collator
    args.restore_callback_states_from_checkpoint = True  # the sequence count continues after a resumption
    inputs = ["input_ids", "attention_mask"] + (["token_type_ids"] if capabilities.token_types == "keep" else [])
    keep = inputs + ([label_argument] if label_argument else [])
    train_dataset = _model_columns(_with_index(train_dataset), keep)
    eval_dataset = _model_columns(_with_index(eval_dataset), keep)
    sparse = enable_sparse_mlm(model) if (args.sparse_mlm_head and has_mlm) else None

    collator = PretrainingCollator(
        tokenizer,
        mlm=has_mlm,
        mlm_probability=args.mlm_probability,
        masking=args.masking,
        max_predictions_per_seq=args.max_predictions_per_seq,
        whole_word_mask=args.whole_word_mask,
        pad_to_multiple_of=args.pad_to_multiple_of,
        seed=args.seed,
        token_types=capabilities.token_types,
    )
    trainer = NspTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset if args.eval_strategy != "no" or eval_dataset is not None else None,
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=pretraining_compute_metrics(args.objective, sentence_task_of(data_format)),
        callbacks=[
            MaskingEpochCallback(collator),
            PaddingStatsCallback(collator),
            SequenceCounter(),
            *(callbacks or []),
        ],
        mlm_key=mlm_key,
        sentence_key=label_argument,
        sparse_head=sparse,
    )
    use_given_progress_callback(trainer)
    train_output = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    metrics = dict(train_output.metrics)
    if eval_dataset is not None:
        metrics.update(trainer.evaluate())
        metrics["eval_samples"] = len(eval_dataset)
    metrics["train_padding_fraction"] = round(collator.padding_fraction, 4)
    metrics["num_input_tokens_seen"] = int(trainer.state.num_input_tokens_seen)
    metrics["train_sequences_seen"] = int(trainer.sequence_counter.sequences)
    model.config.nsptask = {"objective": args.objective, "data_format": data_format, "head": "pretraining"}
    trainer.nsptask_card = {
        "objective": args.objective,
        "data_format": data_format,
        "model_name": Path(args.output_dir).name,
        "base_model": args.model_name_or_path,
        "preset": None if args.model_name_or_path else f"{args.model_family} {args.preset}",
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
            "max_seq_length": data_args.max_seq_length,
            "mlm_probability": args.mlm_probability,
            "masking": args.masking,
            "whole_word_mask": args.whole_word_mask,
            "sparse_mlm_head": sparse is not None,
            "seed": args.seed,
        },
        "hub_model_id": args.hub_model_id,
        "language": data_args.language,
    }
    if sparse is not None:
        sparse.remove()
    trainer.save_model()
    if trainer.is_world_process_zero():
        trainer.create_model_card()
        trainer.save_metrics("all", metrics)
        write_data_record(args.output_dir, data_args, data_format, report, hashes)
        if report is not None:
            Path(args.output_dir, "data_report.json").write_text(json.dumps(report, indent=2))
    if args.push_to_hub:
        trainer.push_to_hub(commit_message=f"nsptask: {args.objective} on {data_format}")
    return PretrainResult(trainer=trainer, metrics=metrics, data_report=report, model_info=model_info)


def _rename_sentence_label(dataset, label_argument: str | None):
    """Give the dataset's sentence label the name of the model's argument (SOP data on a BERT NSP head
    becomes ``next_sentence_label``; NSP data on ALBERT's head becomes ``sentence_order_label``; either becomes
    ``sentence_label`` on a family's masked-LM model with nsptask's sentence head)."""
    if dataset is None or label_argument is None:
        return dataset
    for name in ("next_sentence_label", "sentence_order_label"):
        if name in dataset.column_names and name != label_argument:
            return dataset.rename_column(name, label_argument)
    return dataset
