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

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import ExportableState, PrinterCallback, ProgressCallback

from .arguments import (
    FAMILIES,
    OBJECTIVES,
    DataArguments,
    PretrainOptions,
    check_output_dir,
    check_path_or_hub_id,
)
from .collator import INDEX_COLUMN, PretrainingCollator
from .metrics import pretraining_compute_metrics
from .model_card import ModelCardInfo, write_model_card
from .modeling import (
    PRESETS,
    build_model,
    enable_sparse_mlm,
    mlm_logits,
    model_capabilities,
    sentence_label_argument,
    sentence_logits,
)
from .publishing import PretrainingData, pretraining_data
from .tokenization import check_pair_tokenizer

__all__ = [
    "NspTrainingArguments",
    "NspTrainer",
    "pretrain",
    "PretrainResult",
    "MaskingEpochCallback",
    "BarsOnlyProgressCallback",
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
        check_path_or_hub_id(self.model_name_or_path, "model folder", "model_name_or_path")
        if self.include_num_input_tokens_seen in ("no", False):
            self.include_num_input_tokens_seen = "non_padding"  # tokens seen go into the model card
        super().__post_init__()
        quiet_pin_memory(self)


def quiet_pin_memory(args) -> None:
    """Pinned memory only helps with a GPU; on a CPU-only machine torch warns at every data loader."""
    if args.dataloader_pin_memory and not torch.cuda.is_available():
        args.dataloader_pin_memory = False


def sentence_task_of(data_format: str) -> str:
    return "sop" if data_format == "sop" else "nsp"


class MaskingEpochCallback(TrainerCallback):
    """Tells the collator which epoch it is, so masks change every epoch (dynamic masking); the collator keeps the
    epoch in shared memory, so data loader workers (persistent or not) see it too."""

    def __init__(self, collator):
        self.collator = collator

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.collator.epoch = int(state.epoch or 0)


class SequenceCounter(TrainerCallback, ExportableState):
    """What the training loop took, over all processes: sequences, real tokens and padding cells, counted from the
    batches :class:`NspTrainer` takes (whichever data loader worker made them; evaluation excluded); the share of
    padding goes into the training logs. Saved in checkpoints and restored on resumption."""

    def __init__(self):
        self.sequences = self.tokens = self.padding = 0

    def state(self) -> dict:
        return {"args": {}, "attributes": {"sequences": self.sequences, "tokens": self.tokens, "padding": self.padding}}

    @property
    def padding_fraction(self) -> float:
        total = self.tokens + self.padding
        return self.padding / total if total else 0.0

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None and "loss" in logs:
            logs["padding_fraction"] = round(self.padding_fraction, 4)


class BarsOnlyProgressCallback(ProgressCallback):
    """Progress bars without the log dictionaries the stock ``ProgressCallback`` writes under them.

    Pass it in ``callbacks`` to :func:`pretrain` or :func:`~nsptask.finetune` and it replaces the stock
    progress (or printer) callback; the logs still reach ``state.log_history`` and every ``report_to`` logger.
    With ``disable_tqdm=True`` it is removed as well, so nothing is printed. ``nsptask ablate`` uses it so that a
    study's console shows bars, not hundreds of dictionaries, each bar labelled with its step.

    Args:
        description (`str`, *optional*): The label of the training and evaluation bars (e.g. ``"[3/40] pretrain
            mlm+nsp:nsp, seed 1"``).
    """

    def __init__(self, description: str | None = None):
        super().__init__()
        self.description = description

    def on_train_begin(self, args, state, control, **kwargs):
        super().on_train_begin(args, state, control, **kwargs)
        if self.training_bar is not None and self.description:
            self.training_bar.set_description(self.description)

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        new = self.prediction_bar is None
        super().on_prediction_step(args, state, control, eval_dataloader=eval_dataloader, **kwargs)
        if new and self.prediction_bar is not None and self.description:
            self.prediction_bar.set_description(self.description + ", scoring")

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

    nsptask_card: ModelCardInfo | None = None

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
            tokens = sum(int((b[self.mlm_key] != -100).sum()) for b in batch_samples if self.mlm_key in b)
            sentences = sum(len(b[self.sentence_key]) for b in batch_samples if self.sentence_key in b)
            sequences = sum(len(b["input_ids"]) for b in batch_samples)
            real = sum(int(b["attention_mask"].sum()) for b in batch_samples)
            cells = sum(b["attention_mask"].numel() for b in batch_samples)
            counts = torch.tensor([tokens, sentences, sequences, real, cells - real], device=device, dtype=torch.long)
            if self.args.world_size > 1:
                counts = self.accelerator.gather(counts).view(-1, 5).sum(0)
            self._window = counts.tolist()[:2]
            counter = self.sequence_counter
            if counter is not None:
                counter.sequences += int(counts[2])
                counter.tokens += int(counts[3])
                counter.padding += int(counts[4])
        return batch_samples, num_items

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not self.pretraining:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
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
        write_model_card(self.args.output_dir, self.nsptask_card)


@dataclass
class PretrainResult:
    """What :func:`pretrain` returns."""

    trainer: Any
    metrics: dict[str, float]
    data_report: dict[str, Any] | None
    model_info: dict[str, Any]


def _with_index(dataset):
    if dataset is None or INDEX_COLUMN in dataset.column_names:
        return dataset
    return dataset.add_column(INDEX_COLUMN, np.arange(len(dataset), dtype=np.int64))


def _with_length(dataset, name: str):
    """A length column for ``--train_sampling_strategy group_by_length`` (or ``batch_rebalance``), computed by Arrow
    at once: the Trainer would otherwise measure every row in Python before training."""
    if dataset is None or name in dataset.column_names:
        return dataset
    lengths = pc.list_value_length(dataset.data.column("input_ids")).to_numpy(zero_copy_only=False)
    return dataset.add_column(name, lengths.astype(np.int32))


def _model_columns(dataset, keep: list[str]):
    if dataset is None:
        return None
    wanted = [c for c in dataset.column_names if c in keep or c == INDEX_COLUMN]
    return dataset.select_columns(wanted)


def _model_datasets(args: NspTrainingArguments, train_dataset, eval_dataset, label_argument, token_types: str):
    """The columns the model and the collator take (labels renamed for the model's head, an instance index for
    the masks), and the seeded evaluation sample."""
    if eval_dataset is not None and args.max_eval_samples is not None and len(eval_dataset) > args.max_eval_samples:
        # A seeded sample across all held-out documents, not the first instances in corpus order.
        eval_dataset = eval_dataset.shuffle(seed=args.seed).select(range(args.max_eval_samples))
    inputs = ["input_ids", "attention_mask"] + (["token_type_ids"] if token_types == "keep" else [])
    keep = inputs + ([label_argument] if label_argument else [])
    train, evaluation = (
        _model_columns(_with_index(_rename_sentence_label(d, label_argument)), keep)
        for d in (train_dataset, eval_dataset)
    )
    if args.train_sampling_strategy in ("group_by_length", "batch_rebalance"):
        train = _with_length(train, args.length_column_name)
    return train, evaluation


def _pretraining_trainer(
    args, model, tokenizer, train_dataset, eval_dataset, label_argument, capabilities, data_format, callbacks
) -> NspTrainer:
    """The stock Trainer (NspTrainer) for a pretraining run: its collator, metrics, counters and sparse MLM head."""
    has_mlm = args.objective.startswith("mlm")
    mlm_key = "labels" if has_mlm else None
    args.label_names = list(
        dict.fromkeys(([mlm_key] if mlm_key else []) + ([label_argument] if label_argument else []))
    )
    args.remove_unused_columns = False  # nsptask selects the columns: the instance index must reach the collator
    args.restore_callback_states_from_checkpoint = True  # the sequence count continues after a resumption
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
        length_column=args.length_column_name,
    )
    trainer = NspTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset if args.eval_strategy != "no" or eval_dataset is not None else None,
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=pretraining_compute_metrics(args.objective, sentence_task_of(data_format)),
        callbacks=[MaskingEpochCallback(collator), SequenceCounter(), *(callbacks or [])],
        mlm_key=mlm_key,
        sentence_key=label_argument,
        sparse_head=sparse,
    )
    return use_given_progress_callback(trainer)


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
        ['eval_sop_accuracy', 'eval_sop_f1', 'eval_sop_majority', 'eval_sop_pairs']
        ```
    """
    check_output_dir(args, resume=bool(resume_from_checkpoint))
    data = pretraining_data(data_args or DataArguments(), args, tokenizer, build=train_dataset is None)
    tokenizer = data.tokenizer
    check_pair_tokenizer(tokenizer, needs_pair=data.data_format in ("nsp", "sop", "sentence-pair"))
    model_info = {"missing_keys": [], "unexpected_keys": []}
    if model is None:
        model, model_info = build_model(
            args.objective,
            tokenizer,
            args.model_name_or_path,
            args.preset,
            seed=args.seed,
            dropout=args.dropout,
            family=args.model_family,
            max_position_embeddings=max(512, data.max_seq_length),
            attn_implementation=args.attn_implementation,
        )
    has_mlm = args.objective.startswith("mlm")
    capabilities = model_capabilities(model.config, tokenizer, data.max_seq_length, args.whole_word_mask and has_mlm)
    if train_dataset is None:
        train_dataset = data.dataset["train"]
        if eval_dataset is None and "validation" in data.dataset:
            eval_dataset = data.dataset["validation"]
    label_argument = sentence_label_argument(model) if args.objective != "mlm" else None
    train_dataset, eval_dataset = _model_datasets(
        args, train_dataset, eval_dataset, label_argument, capabilities.token_types
    )
    trainer = _pretraining_trainer(
        args, model, tokenizer, train_dataset, eval_dataset, label_argument, capabilities, data.data_format, callbacks
    )
    sparse = trainer.sparse_head
    metrics = dict(trainer.train(resume_from_checkpoint=resume_from_checkpoint).metrics)
    if eval_dataset is not None:
        metrics.update(trainer.evaluate())
        metrics["eval_samples"] = len(eval_dataset)
    metrics["train_padding_fraction"] = round(trainer.sequence_counter.padding_fraction, 4)
    metrics["num_input_tokens_seen"] = int(trainer.state.num_input_tokens_seen)
    metrics["train_sequences_seen"] = int(trainer.sequence_counter.sequences)
    if sparse is not None:
        sparse.remove()
    _save_pretrained(trainer, args, data, metrics, sparse is not None)
    return PretrainResult(trainer=trainer, metrics=metrics, data_report=data.report, model_info=model_info)


def check_saved_weights(trainer) -> None:
    """Stop when the saved model is not the model that was trained: ``from_pretrained`` of the output folder must
    give every weight the run trained, bit for bit (under FSDP with a sharded state dict ``save_model`` writes no
    Hugging Face weights at all). Every process takes part in gathering the trained weights; the main one compares."""
    trained = trainer.accelerator.get_state_dict(trainer.model)
    if not trainer.is_world_process_zero():
        return
    folder = Path(trainer.args.output_dir)
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
    if not files:
        raise ValueError(
            f"{folder}: the trained model was not saved as Hugging Face weights (no *.safetensors): with FSDP use "
            "fsdp_state_dict_type FULL_STATE_DICT (examples/accelerate_fsdp.yaml), which gathers the weights to save."
        )
    saved = {}
    for path in files:
        saved.update(load_file(str(path)) if path.suffix == ".safetensors" else torch.load(path, weights_only=True))
    missing = [k for k in trained if k not in saved and not _tied(trainer.model, k)]
    different = [k for k in trained if k in saved and not torch.equal(trained[k].cpu(), saved[k].cpu())]
    if missing or different:
        raise ValueError(
            f"{folder}: the saved weights are not the trained ones ({len(missing)} missing, e.g. {missing[:3]}; "
            f"{len(different)} different, e.g. {different[:3]}). Check the accelerate config's state-dict settings."
        )


def _tied(model, name: str) -> bool:
    """Whether a weight is tied to another one (saved once, as the other)."""
    keys = getattr(model, "_tied_weights_keys", None) or []
    if isinstance(keys, dict):
        keys = list(keys)
    return any(name == k or name.endswith(k) for k in keys)


def _save_pretrained(trainer, args, data: PretrainingData, metrics, sparse: bool):
    """The model with its tokenizer, metrics, data record and card; pushed to the Hub when asked."""
    model = trainer.model
    model.config.nsptask = {"objective": args.objective, "data_format": data.data_format, "head": "pretraining"}
    trainer.nsptask_card = ModelCardInfo(
        objective=args.objective,
        data_format=data.data_format,
        model_name=Path(args.output_dir).name,
        base_model=args.model_name_or_path,
        preset=None if args.model_name_or_path else f"{args.model_family} {args.preset}",
        architecture=type(model).__name__,
        num_parameters=int(sum(p.numel() for p in model.parameters())),
        steps=int(trainer.state.global_step),
        tokens_seen=int(trainer.state.num_input_tokens_seen),
        metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float))},
        data_report=data.report,
        training={
            "learning_rate": args.learning_rate,
            "per_device_train_batch_size": args.per_device_train_batch_size,
            "gradient_accumulation_steps": args.gradient_accumulation_steps,
            "world_size": args.world_size,
            "max_seq_length": data.max_seq_length,
            "mlm_probability": args.mlm_probability,
            "masking": args.masking,
            "whole_word_mask": args.whole_word_mask,
            "sparse_mlm_head": sparse,
            "seed": args.seed,
        },
        hub_model_id=args.hub_model_id,
        language=data.data_args.reader.language,
        license=args.model_license,
        datasets=data.hub_datasets,
    )
    trainer.save_model()
    check_saved_weights(trainer)
    if trainer.is_world_process_zero():
        trainer.create_model_card()
        trainer.save_metrics("all", metrics)
        data.write_record(args.output_dir)
    if args.push_to_hub:
        trainer.push_to_hub(commit_message=f"nsptask: {args.objective} on {data.data_format}")


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
