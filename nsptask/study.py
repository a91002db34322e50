"""The "remove NSP" study: several pretraining arms judged the same way, as one resumable run.

An *arm* is an objective with its data format (``mlm:full-sentences``, ``mlm+nsp:nsp``, ...). Every arm
starts from the same initialisation (preset and seed, or checkpoint) and sees the same number of tokens.
Each (arm, seed) is then judged on:

- intrinsic: held-out MLM accuracy and perplexity (all arms on the same ``full-sentences`` evaluation
  instances); NSP and SOP accuracy, with the arm's own sentence head where it was trained for that task,
  else with a fresh head fine-tuned briefly (the encoder frozen) on a fixed small labelled set, as ALBERT
  scored its NSP model on SOP and its SOP model on NSP;
- downstream: fine-tuned segment tagging (seqeval F1), NSP and SOP as downstream tasks, and any user
  tasks (a CoNLL NER set, a sentence-pair classification set).

The study directory records every finished step in ``STEP/done.json``; a re-run skips what is done and
resumes an interrupted pretraining from its last checkpoint. Under ``accelerate launch`` every process
runs the same steps (the Trainer distributes each), and only the main process writes.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["AblateArguments", "run_study", "parse_arm", "DEFAULT_ARMS"]

logger = logging.getLogger(__name__)

DEFAULT_ARMS = ["mlm:full-sentences", "mlm+nsp:nsp", "mlm+sop:sop"]
KNOWN_ARMS = ["mlm:full-sentences", "mlm:doc-sentences", "mlm+nsp:nsp", "mlm+nsp:sentence-pair", "mlm+sop:sop"]


def parse_arm(arm: str) -> tuple[str, str]:
    """``"mlm+nsp:nsp"`` -> ``("mlm+nsp", "nsp")``; an objective alone takes its default format."""
    from .modeling import DEFAULT_FORMATS, OBJECTIVES

    objective, _, data_format = arm.partition(":")
    if objective not in OBJECTIVES:
        raise ValueError(f"Arm {arm!r}: unknown objective {objective!r}; arms look like {KNOWN_ARMS}")
    return objective, data_format or DEFAULT_FORMATS[objective]


@dataclass
class AblateArguments:
    """Options of ``nsptask ablate``. Defaults: the bundled corpus and the ``tiny`` preset, about 10 minutes
    on 2 CPU cores."""

    output_dir: str = field(default="nsptask-study", metadata={"help": "Study directory (resumable)."})
    arms: list[str] = field(
        default_factory=lambda: list(DEFAULT_ARMS),
        metadata={"help": f"Arms as objective:format. Default {DEFAULT_ARMS}; also {KNOWN_ARMS}."},
    )
    seeds: list[int] = field(default_factory=lambda: [1, 2], metadata={"help": "Seeds; each arm runs once per seed."})
    preset: str = field(default="tiny", metadata={"help": "Model size preset (tiny, mini, small, base)."})
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Start every arm from this checkpoint instead of a preset."}
    )
    tokenizer_name_or_path: str | None = field(default=None, metadata={"help": "Tokenizer (default: nsptask's)."})
    corpus: list[str] | None = field(default=None, metadata={"help": "Corpus (default: the bundled sample)."})
    token_budget: int = field(
        default=800_000, metadata={"help": "Tokens (without padding) each arm sees in pretraining."}
    )
    max_seq_length: int = field(default=128, metadata={"help": "Pretraining instance length."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Pretraining batch size per device."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Pretraining learning rate."})
    eval_points: int = field(default=4, metadata={"help": "Evaluations during pretraining (learning curves)."})
    validation_fraction: float = field(
        default=0.2, metadata={"help": "Share of documents held out of pretraining (evaluation and downstream tasks)."}
    )
    max_eval_samples: int = field(default=512, metadata={"help": "Instances per intrinsic evaluation."})
    probe_examples: int = field(default=1024, metadata={"help": "Labelled pairs for a sentence head an arm lacks."})
    probe_epochs: float = field(default=2.0, metadata={"help": "Epochs of that head's training (encoder frozen)."})
    downstream: list[str] = field(
        default_factory=lambda: ["segment-tagging", "nsp", "sop"],
        metadata={"help": "Corpus tasks fine-tuned per arm: segment-tagging, nsp, sop, coherence."},
    )
    finetune_epochs: float = field(default=2.0, metadata={"help": "Epochs of each downstream fine-tuning."})
    finetune_learning_rate: float = field(default=5e-4, metadata={"help": "Downstream learning rate."})
    downstream_max_seq_length: int = field(default=64, metadata={"help": "Length of downstream inputs."})
    ner_train_file: str | None = field(default=None, metadata={"help": "A CoNLL NER training file (user task)."})
    ner_validation_file: str | None = field(default=None, metadata={"help": "Its evaluation file."})
    classification_train_file: str | None = field(
        default=None, metadata={"help": "A sentence-pair classification training file (CSV/JSONL/Parquet)."}
    )
    classification_validation_file: str | None = field(default=None, metadata={"help": "Its evaluation file."})
    text_column: str = field(default="sentence1", metadata={"help": "Classification: first text column."})
    text_pair_column: str | None = field(default="sentence2", metadata={"help": "Classification: second text column."})
    label_column: str = field(default="label", metadata={"help": "Classification: label column."})

    def __post_init__(self):
        for arm in self.arms:
            parse_arm(arm)
        if len(set(self.arms)) != len(self.arms):
            raise ValueError(f"Arms repeat: {self.arms}")
        if not self.seeds:
            raise ValueError("Give at least one seed.")
        if bool(self.ner_train_file) != bool(self.ner_validation_file):
            raise ValueError("Give both --ner_train_file and --ner_validation_file.")
        if bool(self.classification_train_file) != bool(self.classification_validation_file):
            raise ValueError("Give both --classification_train_file and --classification_validation_file.")


def _arm_dir(arm: str) -> str:
    return arm.replace("+", "-").replace(":", "_")


class _Step:
    """One resumable step: ``done.json`` marks it finished."""

    def __init__(self, path: Path):
        self.path = path
        self.done_file = path / "done.json"

    def result(self) -> dict | None:
        return json.loads(self.done_file.read_text()) if self.done_file.exists() else None

    def finish(self, result: dict) -> dict:
        from .distributed import is_main_process

        if is_main_process():
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
    from .training import BarsOnlyProgressCallback

    return [BarsOnlyProgressCallback()]


def _quiet_trainer(trainer):
    from .training import use_given_progress_callback

    trainer.add_callback(_bars_only()[0])
    return use_given_progress_callback(trainer)


def _pretrain_arm(args: AblateArguments, arm: str, seed: int, tokenizer, out: Path) -> dict:
    from .training import NspTrainingArguments, pretrain

    objective, data_format = parse_arm(arm)
    train, validation = _split_data(args, data_format, tokenizer)
    mean_length = float(sum(len(x) for x in train["input_ids"])) / len(train)
    steps = max(1, math.ceil(args.token_budget / (args.per_device_train_batch_size * mean_length)))
    eval_steps = max(1, steps // max(args.eval_points, 1))
    # Learning curves: an MLM arm is evaluated on held-out packed text, a sentence arm on held-out pairs of its
    # own format (MLM and its sentence task). The final intrinsic MLM column uses one shared set for all arms.
    if objective == "mlm":
        evaluation = _mlm_eval_set(args, tokenizer)
    else:
        evaluation = validation
    training_args = NspTrainingArguments(
        output_dir=str(out),
        objective=objective,
        data_format=data_format,
        preset=args.preset,
        model_name_or_path=args.model_name_or_path,
        max_seq_length=args.max_seq_length,
        per_device_train_batch_size=args.per_device_train_batch_size,
        learning_rate=args.learning_rate,
        max_steps=steps,
        eval_strategy="steps",
        eval_steps=eval_steps,
        save_steps=eval_steps,
        logging_steps=max(1, eval_steps // 2),
        seed=seed,
        **_quiet_args(),
    )
    resume = any(out.glob("checkpoint-*"))
    result = pretrain(
        training_args,
        train_dataset=train,
        eval_dataset=evaluation,
        tokenizer=tokenizer,
        callbacks=_bars_only(),
        resume_from_checkpoint=True if resume else None,
    )
    curve = [
        {k: v for k, v in entry.items() if k.startswith("eval_") or k in ("step", "num_input_tokens_seen")}
        for entry in result.trainer.state.log_history
        if "eval_loss" in entry
    ]
    return {
        "arm": arm,
        "objective": objective,
        "data_format": data_format,
        "seed": seed,
        "steps": result.trainer.state.global_step,
        "tokens_seen": result.metrics.get("num_input_tokens_seen"),
        "train_loss": result.metrics.get("train_loss"),
        "mean_instance_length": mean_length,
        "learning_curve": curve,
        "model_dir": str(out),
    }


def _source(args: AblateArguments):
    return args.corpus[0] if args.corpus and len(args.corpus) == 1 else args.corpus


def _split_data(args: AblateArguments, data_format: str, tokenizer):
    """The study's instances of one format: all training instances, and at most ``max_eval_samples`` held-out
    ones (the same for every arm that asks)."""
    from .builder import build_pretraining_dataset

    data = build_pretraining_dataset(
        _source(args),
        format=data_format,
        tokenizer=tokenizer,
        max_seq_length=args.max_seq_length,
        validation_fraction=args.validation_fraction,
    )
    return data["train"], data["validation"].select(range(min(args.max_eval_samples, len(data["validation"]))))


def _mlm_eval_set(args: AblateArguments, tokenizer):
    return _split_data(args, "full-sentences", tokenizer)[1]


def _intrinsic(args: AblateArguments, pretrained: dict, seed: int, tokenizer, out: Path) -> dict:
    """MLM on the shared packed evaluation set; NSP and SOP with the own head or a briefly trained one."""
    import transformers

    from .collator import PretrainingCollator
    from .metrics import pretraining_compute_metrics
    from .modeling import enable_sparse_mlm

    model_dir = pretrained["model_dir"]
    objective, data_format = pretrained["objective"], pretrained["data_format"]
    metrics: dict[str, Any] = {}
    # MLM: every arm on the same held-out packed text.
    mlm_model = transformers.AutoModelForMaskedLM.from_pretrained(model_dir)
    enable_sparse_mlm(mlm_model)
    trainer = transformers.Trainer(
        model=mlm_model,
        args=transformers.TrainingArguments(
            output_dir=str(out / "mlm"),
            per_device_eval_batch_size=64,
            label_names=["labels"],
            batch_eval_metrics=True,
            **_quiet_args(),
        ),
        data_collator=PretrainingCollator(tokenizer, seed=seed),
        compute_metrics=pretraining_compute_metrics("mlm"),
    )
    _quiet_trainer(trainer)
    evaluation = _mlm_eval_set(args, tokenizer)
    mlm = trainer.evaluate(evaluation.remove_columns([c for c in evaluation.column_names if c != "input_ids"]))
    metrics["mlm_accuracy"] = mlm["eval_mlm_accuracy"]
    metrics["mlm_perplexity"] = mlm["eval_mlm_perplexity"]
    # Sentence tasks.
    for task in ("nsp", "sop"):
        train, evaluation = _split_data(args, task, tokenizer)
        label = "next_sentence_label" if task == "nsp" else "sentence_order_label"
        own_head = objective != "mlm" and (data_format == "sop") == (task == "sop")
        if own_head:
            metrics[f"{task}_accuracy"] = _own_head_accuracy(model_dir, evaluation, label, tokenizer, out / task)
            metrics[f"{task}_scored_with"] = "own head"
        else:
            train = train.shuffle(seed=0).select(range(min(args.probe_examples, len(train))))
            metrics[f"{task}_accuracy"] = _probe_accuracy(
                args, model_dir, train, evaluation, label, tokenizer, seed, out / task
            )
            metrics[f"{task}_scored_with"] = "probe (head trained, encoder frozen)"
    return metrics


def _baselines(args: AblateArguments, tokenizer) -> dict:
    """What topic alone scores on the held-out NSP and SOP pairs (no model): the report's reference line."""
    from .baselines import overlap_baseline

    result = {}
    for task, label in (("nsp", "next_sentence_label"), ("sop", "sentence_order_label")):
        train, evaluation = _split_data(args, task, tokenizer)
        result[task] = overlap_baseline(train, evaluation, label, tokenizer.all_special_ids)
    return result


def _pairs(dataset, label: str):
    keep = ["input_ids", "token_type_ids", label]
    return dataset.remove_columns([c for c in dataset.column_names if c not in keep]).rename_column(label, "labels")


def _own_head_accuracy(model_dir: str, evaluation, label: str, tokenizer, out: Path) -> float:
    import numpy as np
    import torch
    import transformers

    model = transformers.AutoModelForPreTraining.from_pretrained(model_dir).eval()
    collator = transformers.DataCollatorWithPadding(tokenizer)
    data = _pairs(evaluation, label)
    correct = 0
    for start in range(0, len(data), 64):
        batch = collator([data[i] for i in range(start, min(start + 64, len(data)))])
        labels = batch.pop("labels")
        with torch.no_grad():
            outputs = model(**batch)
        logits = getattr(outputs, "seq_relationship_logits", None)
        if logits is None:
            logits = outputs.sop_logits
        correct += int((logits.argmax(-1) == labels).sum())
    return float(correct / max(len(data), 1)) if len(data) else float(np.nan)


def _probe_accuracy(args, model_dir, train, evaluation, label, tokenizer, seed, out: Path) -> float:
    """A fresh sentence-classification head on the frozen encoder, trained briefly on a fixed labelled set."""
    import transformers

    model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    for name, parameter in model.named_parameters():
        parameter.requires_grad = not name.startswith(model.base_model_prefix + ".") or ".pooler." in name
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
        train_dataset=_pairs(train, label),
        data_collator=transformers.DataCollatorWithPadding(tokenizer),
        compute_metrics=lambda p: {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())},
    )
    _quiet_trainer(trainer)
    trainer.train()
    return trainer.evaluate(_pairs(evaluation, label))["eval_accuracy"]


def _downstream(args: AblateArguments, task: str, model_dir: str, seed: int, tokenizer, out: Path) -> dict:
    from .finetuning import FinetuneArguments, finetune

    kwargs: dict[str, Any] = {}
    if task == "ner":
        kwargs = {"train_file": args.ner_train_file, "validation_file": args.ner_validation_file}
    elif task == "classification":
        kwargs = {
            "train_file": args.classification_train_file,
            "validation_file": args.classification_validation_file,
            "text_column": args.text_column,
            "text_pair_column": args.text_pair_column,
            "label_column": args.label_column,
        }
    finetune_args = FinetuneArguments(
        output_dir=str(out),
        task=task,
        model_name_or_path=model_dir,
        corpus=args.corpus,
        max_seq_length=args.downstream_max_seq_length,
        num_train_epochs=args.finetune_epochs,
        learning_rate=args.finetune_learning_rate,
        validation_fraction=args.validation_fraction,
        seed=seed,
        eval_strategy="no",
        save_strategy="no",
        **_quiet_args(),
        **kwargs,
    )
    result = finetune(finetune_args, tokenizer=tokenizer, callbacks=_bars_only())
    metric = "eval_f1" if task in ("segment-tagging", "ner") else "eval_accuracy"
    return {
        "score": result.metrics[metric],
        "metric": metric[5:],
        "metrics": {k: v for k, v in result.metrics.items() if k.startswith("eval_") and isinstance(v, (int, float))},
    }


def downstream_tasks(args: AblateArguments) -> list[str]:
    tasks = list(args.downstream)
    if args.ner_train_file:
        tasks.append("ner")
    if args.classification_train_file:
        tasks.append("classification")
    return tasks


def run_study(args: AblateArguments) -> dict:
    """Run (or continue) a study and write its report. Returns the collected results.

    Example:
        ```python
        >>> from nsptask.study import AblateArguments, run_study
        >>> results = run_study(AblateArguments(output_dir="study", arms=["mlm", "mlm+nsp"], seeds=[1]))  # doctest: +SKIP
        ```
    """
    import transformers

    from .distributed import is_main_process
    from .report import write_report
    from .tokenization import load_tokenizer

    transformers.logging.set_verbosity_error()  # per-run load reports would drown the progress bars
    started = time.time()
    root = Path(args.output_dir)
    tokenizer = load_tokenizer(args.tokenizer_name_or_path or args.model_name_or_path)
    if is_main_process():
        root.mkdir(parents=True, exist_ok=True)
        (root / "study.json").write_text(json.dumps(asdict(args), indent=2))
        if args.tokenizer_name_or_path is None and args.model_name_or_path is None:
            tokenizer.save_pretrained(root / "tokenizer")
    baseline_step = _Step(root / "baselines")
    baseline_step.result() or baseline_step.finish(_baselines(args, tokenizer))
    runs = []
    total = len(args.arms) * len(args.seeds)
    for i, (arm, seed) in enumerate(((a, s) for a in args.arms for s in args.seeds), start=1):
        run_dir = root / "runs" / _arm_dir(arm) / f"seed{seed}"
        logger.warning("nsptask ablate: run %d/%d: %s, seed %d", i, total, arm, seed)
        pre_step = _Step(run_dir / "pretrain")
        pretrained = pre_step.result() or pre_step.finish(
            _pretrain_arm(args, arm, seed, tokenizer, run_dir / "pretrain")
        )
        intr_step = _Step(run_dir / "intrinsic")
        intrinsic = intr_step.result() or intr_step.finish(
            _intrinsic(args, pretrained, seed, tokenizer, run_dir / "intrinsic")
        )
        downstream = {}
        for task in downstream_tasks(args):
            step = _Step(run_dir / "downstream" / task)
            downstream[task] = step.result() or step.finish(
                _downstream(args, task, pretrained["model_dir"], seed, tokenizer, run_dir / "downstream" / task)
            )
        runs.append(
            {"arm": arm, "seed": seed, "pretrain": pretrained, "intrinsic": intrinsic, "downstream": downstream}
        )
    elapsed = time.time() - started
    if is_main_process():
        timing_file = root / "timing.json"
        timing = json.loads(timing_file.read_text()) if timing_file.exists() else {"wall_seconds": 0.0, "sessions": 0}
        timing["wall_seconds"] += elapsed
        timing["sessions"] += 1
        timing_file.write_text(json.dumps(timing, indent=2))
        write_report(root)
    return {"runs": runs, "wall_seconds": elapsed}
