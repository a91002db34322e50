"""The study report: ``report.md`` (a table in the shape of ALBERT's Table 5, read honestly), ``results.json``,
``results.csv`` and PNG plots, rebuilt from whatever a study directory holds (finished or partial).

Every cell is a mean over seeds with a 95% interval from a bootstrap over the test examples (and over seeds when
there are several); the majority class and the topic-overlap reference are rows of the table; a cell whose
interval reaches the majority class reads "at chance"; a best value is bold only when its interval clears every
other arm's; there is no average over columns of different scales. The paragraph "What this run shows" is made
from the numbers.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["collect_results", "write_report", "summary_table", "bootstrap_interval", "cell_text", "findings"]

BOOTSTRAP_REPLICATES = 2000
PUBLISHED = """### Published figures, for comparison

BERT (Devlin et al., 2019), Table 5, BERT-base, dev sets:

| pretraining | MNLI-m | QNLI | MRPC | SST-2 | SQuAD 1.1 F1 |
|---|---|---|---|---|---|
| MLM + NSP | 84.4 | 88.4 | 86.7 | 92.7 | 88.5 |
| MLM, no NSP | 83.9 | 84.9 | 86.5 | 92.6 | 87.9 |

RoBERTa (Liu et al., 2019), Table 2, base size, median of 5 seeds:

| input format | NSP loss | SQuAD 1.1/2.0 F1 | MNLI-m | SST-2 | RACE |
|---|---|---|---|---|---|
| SEGMENT-PAIR | yes | 90.4 / 78.7 | 84.0 | 92.9 | 64.2 |
| SENTENCE-PAIR | yes | 88.7 / 76.2 | 82.9 | 92.1 | 63.0 |
| FULL-SENTENCES | no | 90.4 / 79.1 | 84.7 | 92.5 | 64.8 |
| DOC-SENTENCES | no | 90.6 / 79.7 | 84.7 | 92.7 | 65.6 |

ALBERT (Lan et al., 2020), Table 5, ALBERT-base (intrinsic accuracies, then downstream):

| sentence loss | MLM | NSP | SOP | SQuAD1.1 | SQuAD2.0 | MNLI | SST-2 | RACE | avg |
|---|---|---|---|---|---|---|---|---|---|
| none | 54.9 | 52.4 | 53.3 | 88.6/81.5 | 78.1/75.3 | 81.5 | 89.9 | 61.7 | 79.0 |
| NSP | 54.5 | 90.5 | 52.0 | 88.4/81.5 | 77.2/74.6 | 81.6 | 91.1 | 62.3 | 79.2 |
| SOP | 54.0 | 78.9 | 86.5 | 89.3/82.3 | 80.0/77.1 | 82.0 | 90.3 | 64.0 | 80.1 |
"""
TASK_NAMES = {
    "segment-tagging": "SegTag F1",
    "nsp": "NSP task",
    "sop": "SOP task",
    "coherence": "Coherence",
    "ner": "NER F1",
    "classification": "Classification",
}


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def collect_results(study_dir: str | Path) -> dict[str, Any]:
    """Every finished step of a study directory, per arm and seed (unfinished steps are left out). A
    ``results.json`` file (a committed study's) is read as it is."""
    root = Path(study_dir)
    if root.is_file():
        saved = json.loads(root.read_text())
        return {k: saved[k] for k in ("config", "arms", "tasks", "runs", "timing", "baselines") if k in saved}
    config = _load(root / "study.json") or {}
    ablate = config.get("ablate", config)
    rows = []
    for run_dir in sorted((root / "runs").glob("*/seed*")):
        pretrain = _load(run_dir / "pretrain" / "done.json")
        if pretrain is None:
            continue
        intrinsic = _load(run_dir / "intrinsic" / "done.json") or {}
        downstream = {}
        for task_dir in sorted((run_dir / "downstream").glob("*")):
            done = _load(task_dir / "done.json")
            if done is not None:
                downstream[task_dir.name] = done
        rows.append(
            {
                "arm": pretrain["arm"],
                "seed": pretrain["seed"],
                "pretrain": pretrain,
                "intrinsic": intrinsic,
                "downstream": downstream,
            }
        )
    arms = ablate.get("arms") or sorted({r["arm"] for r in rows})
    rows.sort(key=lambda r: (arms.index(r["arm"]) if r["arm"] in arms else len(arms), r["seed"]))
    found = {t for r in rows for t in r["downstream"]}
    order = list(ablate.get("downstream", [])) + ["ner", "classification"]
    tasks = [t for t in order if t in found] + sorted(found - set(order))
    baselines = {p.parent.name: _load(p) for p in sorted((root / "baselines").glob("*/done.json"))}
    timing = _load(root / "timing.json")
    if timing is not None:
        # The recorded time of every finished step: unlike the sessions' wall time, it includes a session that
        # was interrupted after finishing some steps.
        steps = [b.get("seconds", 0.0) for b in baselines.values() if b] + [
            part.get("seconds", 0.0)
            for r in rows
            for part in (r["pretrain"], r["intrinsic"], *r["downstream"].values())
            if part
        ]
        timing = {**timing, "step_seconds": round(float(sum(steps)), 1)}
    return {
        "config": config,
        "arms": arms,
        "tasks": tasks,
        "runs": rows,
        "timing": timing,
        "baselines": baselines,
    }


# -- statistics ---------------------------------------------------------------------------------------


def _statistic(kind: str, data: np.ndarray) -> float:
    if len(data) == 0:
        return float("nan")
    if kind == "accuracy":
        return float(data.mean())
    if kind == "ratio":  # rows of (correct, total)
        return float(data[:, 0].sum() / max(data[:, 1].sum(), 1))
    tp, fp, fn = data.sum(0)  # rows of (tp, fp, fn): seqeval's micro F1
    return float(2 * tp / (2 * tp + fp + fn)) if tp else 0.0


def bootstrap_interval(
    kind: str, per_seed: list[np.ndarray], replicates: int = BOOTSTRAP_REPLICATES, seed: int = 0
) -> tuple[float, float, float]:
    """Mean over seeds of a statistic, and its 95% interval from a bootstrap over examples (and over seeds when
    there are several: each replicate draws seeds with replacement, then examples within each).

    Args:
        kind (`str`): ``accuracy`` (0/1 per example), ``ratio`` (correct, total per example) or ``f1`` (tp, fp, fn
            per example).
        per_seed (`list[np.ndarray]`): One array of examples per seed.

    Returns:
        `(mean, low, high)`.
    """
    per_seed = [np.asarray(x) for x in per_seed if len(x)]
    if not per_seed:
        return float("nan"), float("nan"), float("nan")
    mean = float(np.mean([_statistic(kind, x) for x in per_seed]))
    rng = np.random.default_rng(seed)
    values = np.empty(replicates)
    for r in range(replicates):
        seeds = rng.integers(len(per_seed), size=len(per_seed)) if len(per_seed) > 1 else [0]
        values[r] = np.mean(
            [_statistic(kind, per_seed[s][rng.integers(len(per_seed[s]), size=len(per_seed[s]))]) for s in seeds]
        )
    low, high = np.percentile(values, [2.5, 97.5])
    return mean, float(low), float(high)


def _columns(results) -> list[dict[str, Any]]:
    """The table's columns: where each arm's examples and the column's chance level come from."""
    columns = [
        {"key": "mlm", "name": "MLM", "kind": "ratio", "where": ("intrinsic", "mlm")},
        {"key": "nsp", "name": "NSP", "kind": "accuracy", "where": ("intrinsic", "nsp")},
        {"key": "sop", "name": "SOP", "kind": "accuracy", "where": ("intrinsic", "sop")},
    ]
    for task in results["tasks"]:
        token = task in ("segment-tagging", "ner")
        columns.append(
            {
                "key": f"task:{task}",
                "name": TASK_NAMES.get(task, task),
                "kind": "f1" if token else "accuracy",
                "where": ("downstream", task),
            }
        )
    return columns


def _examples(run: dict, column: dict) -> tuple[np.ndarray | None, float | None, dict]:
    """A run's examples for a column, its chance level (majority), and its sample description."""
    section, key = column["where"]
    entry = run.get(section, {}).get(key)
    if not entry:
        return None, None, {}
    if section == "downstream":
        entry = entry.get("examples", {})
    if column["kind"] == "ratio":
        data = np.stack([entry.get("correct", []), entry.get("total", [])], axis=1) if entry.get("correct") else None
        chance = None
    elif column["kind"] == "f1":
        counts = entry.get("entity_counts")
        data = np.asarray(counts) if counts else None
        majority = entry.get("majority_entity_counts")
        chance = _statistic("f1", np.asarray(majority)) if majority else None
    else:
        data = np.asarray(entry.get("correct", [])) if entry.get("correct") is not None else None
        chance = entry.get("majority")
    sample = {k: entry.get(k) for k in ("instances", "documents") if entry.get(k) is not None}
    return data, chance, sample


def summary_table(results: dict[str, Any]) -> dict[str, Any]:
    """Per arm and column: mean over seeds, 95% interval, chance level, and whether the cell is at chance; with
    the reference rows (majority class, topic overlap) and which cells are separated bests."""
    columns = _columns(results)
    rows = []
    for arm in results["arms"]:
        runs = [r for r in results["runs"] if r["arm"] == arm]
        if not runs:
            continue
        row: dict[str, Any] = {"arm": arm, "seeds": [r["seed"] for r in runs], "cells": {}}
        for column in columns:
            per_seed, chances, samples = [], [], []
            for run in runs:
                data, chance, sample = _examples(run, column)
                if data is not None and len(data):
                    per_seed.append(data)
                    samples.append(sample)
                if chance is not None:
                    chances.append(chance)
            if not per_seed:
                continue
            mean, low, high = bootstrap_interval(column["kind"], per_seed)
            chance = float(np.mean(chances)) if chances else None
            row["cells"][column["key"]] = {
                "mean": mean,
                "low": low,
                "high": high,
                "chance": chance,
                "at_chance": chance is not None and low <= chance,  # not above chance
                "below_chance": chance is not None and high < chance,
                "seeds": len(per_seed),
                "examples": int(np.mean([len(x) for x in per_seed])),
                "documents": samples[0].get("documents") if samples else None,
            }
        pre = [r["pretrain"] for r in runs]
        row["budget"] = {
            "tokens": [p.get("tokens_seen") for p in pre],
            "updates": [p.get("updates", p.get("steps")) for p in pre],
            "sequences": [p.get("sequences_seen") for p in pre],
            "batch": [p.get("per_device_train_batch_size") for p in pre],
            "in_format_mlm": [p.get("in_format_mlm_accuracy") for p in pre],
        }
        rows.append(row)
    for column in columns:
        cells = [(r["arm"], r["cells"].get(column["key"])) for r in rows]
        cells = [(a, c) for a, c in cells if c and not math.isnan(c["mean"])]
        if len(cells) < 2:
            continue
        best_arm, best = max(cells, key=lambda item: item[1]["mean"])
        others = [c for a, c in cells if a != best_arm]
        if not best["at_chance"] and all(best["low"] > c["high"] for c in others):
            best["separated_best"] = True
    references = _references(results, columns, rows)
    return {"columns": columns, "rows": rows, "references": references}


def _references(results, columns, rows) -> dict[str, dict[str, float]]:
    majority = {}
    for column in columns:
        chances = [r["cells"][column["key"]]["chance"] for r in rows if column["key"] in r["cells"]]
        chances = [c for c in chances if c is not None]
        if chances:
            majority[column["key"]] = float(np.mean(chances))
    topic = {}
    for task in ("nsp", "sop"):
        per_split = [b[task] for b in (results.get("baselines") or {}).values() if b and task in b]
        if per_split:
            data = [np.asarray(b["correct"]) for b in per_split if b.get("correct")]
            if data:
                mean, low, high = bootstrap_interval("accuracy", data)
            else:
                mean = float(np.mean([b["accuracy"] for b in per_split]))
                low = high = float("nan")
            topic[task] = {"mean": mean, "low": low, "high": high}
    return {"majority": majority, "topic": topic}


def cell_text(cell: dict | None) -> str:
    """``52.1 (48.0–56.2)``, bold when it is a separated best, with "at chance" when its interval reaches the
    majority class."""
    if not cell or math.isnan(cell["mean"]):
        return "-"
    text = f"{cell['mean'] * 100:.1f} ({cell['low'] * 100:.1f}–{cell['high'] * 100:.1f})"
    if cell.get("below_chance"):
        return text + ", below chance"
    if cell.get("at_chance"):
        return text + ", at chance"
    return f"**{text}**" if cell.get("separated_best") else text


def _markdown_table(summary: dict) -> str:
    columns = summary["columns"]
    lines = ["| arm | " + " | ".join(c["name"] for c in columns) + " |", "|---|" + "---|" * len(columns)]
    for row in summary["rows"]:
        lines.append(f"| {row['arm']} | " + " | ".join(cell_text(row["cells"].get(c["key"])) for c in columns) + " |")
    majority = summary["references"]["majority"]
    lines.append(
        "| *majority class* | "
        + " | ".join(f"*{majority[c['key']] * 100:.1f}*" if c["key"] in majority else "-" for c in columns)
        + " |"
    )
    topic = summary["references"]["topic"]
    if topic:
        cells = []
        for c in columns:
            t = topic.get(c["key"]) if c["key"] in ("nsp", "sop") else None
            cells.append(
                f"*{t['mean'] * 100:.1f} ({t['low'] * 100:.1f}–{t['high'] * 100:.1f})*"
                if t and not math.isnan(t["low"])
                else (f"*{t['mean'] * 100:.1f}*" if t else "-")
            )
        lines.append("| *topic overlap, no model* | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def findings(summary: dict) -> list[str]:
    """Sentences about what the numbers show and do not show, made from the table (never written by hand)."""
    out = []
    rows = summary["rows"]
    by_arm = {r["arm"]: r["cells"] for r in rows}
    topic = summary["references"]["topic"]
    for key, name in (("nsp", "NSP"), ("sop", "SOP")):
        cells = {a: c.get(key) for a, c in by_arm.items() if c.get(key)}
        if not cells:
            continue
        above = [a for a, c in cells.items() if not c["at_chance"]]
        chance = np.mean([c["chance"] for c in cells.values() if c["chance"] is not None])
        if not above:
            out.append(f"No arm scores {name} above chance at this budget (majority class {chance * 100:.1f}%).")
        else:
            parts = ", ".join(f"{a} ({cells[a]['mean'] * 100:.1f})" for a in above)
            out.append(f"Above chance on {name} (majority {chance * 100:.1f}%): {parts}.")
        if key in topic:
            below = [a for a in above if cells[a]["high"] < topic[key]["mean"]]
            if below:
                out.append(
                    f"On {name}, {', '.join(below)} {'stays' if len(below) == 1 else 'stay'} below the topic-overlap "
                    f"reference ({topic[key]['mean'] * 100:.1f}): whatever "
                    f"{'it' if len(below) == 1 else 'they'} learnt, topic alone does better."
                )
    nsp_arm = next((a for a in by_arm if a.startswith("mlm+nsp")), None)
    sop_arm = next((a for a in by_arm if a.startswith("mlm+sop")), None)
    if nsp_arm and sop_arm and all(k in by_arm[a] for a in (nsp_arm, sop_arm) for k in ("nsp", "sop")):
        nsp_on_sop, sop_on_nsp = by_arm[nsp_arm]["sop"], by_arm[sop_arm]["nsp"]
        nsp_learnt, sop_learnt = not by_arm[nsp_arm]["nsp"]["at_chance"], not by_arm[sop_arm]["sop"]["at_chance"]
        if nsp_learnt and nsp_on_sop["at_chance"]:
            out.append(f"ALBERT's first effect appears: {nsp_arm} learnt NSP but is at chance on SOP.")
        elif nsp_learnt:
            out.append(f"ALBERT's first effect does not appear: {nsp_arm} learnt NSP and is above chance on SOP too.")
        if sop_learnt and not sop_on_nsp["at_chance"]:
            out.append(f"ALBERT's second effect appears: {sop_arm} learnt SOP and is above chance on NSP as well.")
        elif sop_learnt:
            out.append(f"ALBERT's second effect does not appear: {sop_arm} learnt SOP but is at chance on NSP.")
        if not nsp_learnt and not sop_learnt:
            out.append("Neither sentence objective was learnt, so ALBERT's comparison (Table 5) cannot be made here.")
    mlm_arm = next((a for a in by_arm if a.split(":")[0] == "mlm"), None)
    if mlm_arm and nsp_arm:
        # RoBERTa's Table 2 question: does removing NSP change the downstream scores?
        for column in summary["columns"]:
            if column["key"] in ("nsp", "sop", "mlm"):
                continue
            a, b = by_arm[mlm_arm].get(column["key"]), by_arm[nsp_arm].get(column["key"])
            if not a or not b:
                continue
            if a["at_chance"] and b["at_chance"]:
                verdict = "both are at or below chance, so the comparison cannot be made here"
            elif a["low"] > b["high"]:
                verdict = (
                    f"removing NSP scores higher ({a['mean'] * 100:.1f} vs {b['mean'] * 100:.1f}), the direction "
                    "RoBERTa reported on its downstream tasks"
                )
            elif b["low"] > a["high"]:
                verdict = (
                    f"removing NSP scores lower ({a['mean'] * 100:.1f} vs {b['mean'] * 100:.1f}), as BERT's ablation "
                    "found and RoBERTa's did not"
                )
            else:
                verdict = (
                    f"no difference is shown ({a['mean'] * 100:.1f} vs {b['mean'] * 100:.1f}, intervals overlap), "
                    "so neither BERT's nor RoBERTa's direction is confirmed"
                )
            out.append(f"{column['name']}, {mlm_arm} against {nsp_arm}: {verdict}.")
    for column in summary["columns"]:
        if column["key"] in ("nsp", "sop"):
            continue
        cells = {a: c.get(column["key"]) for a, c in by_arm.items() if c.get(column["key"])}
        if len(cells) < 2:
            continue
        best = [a for a, c in cells.items() if c.get("separated_best")]
        means = [c["mean"] for c in cells.values()]
        spread = (max(means) - min(means)) * 100
        at_chance = [a for a, c in cells.items() if c["at_chance"]]
        chance = [c["chance"] for c in cells.values() if c["chance"] is not None]
        reference = f" (majority {np.mean(chance) * 100:.1f}%)" if chance else ""
        if best:
            out.append(
                f"{column['name']}: {best[0]} is best, separated from the other arms by more than the intervals."
            )
        elif at_chance and len(at_chance) == len(cells):
            out.append(
                f"{column['name']}: every arm is at or below chance{reference}, so no difference between them is "
                "claimed."
            )
            continue
        else:
            out.append(
                f"{column['name']}: the arms differ by {spread:.1f} points at most and no arm's interval clears every "
                "other arm's, so no best arm is shown."
            )
        if column["key"] != "mlm":
            above = [f"{a} ({c['mean'] * 100:.1f})" for a, c in cells.items() if not c["at_chance"]]
            out.append(f"{column['name']}: above chance{reference}: {', '.join(above)}.")
    return out


# -- files ---------------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("nsptask", "torch", "transformers", "datasets", "accelerate", "seqeval"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _plots(results, summary, out_dir: Path) -> tuple[list[str], str]:
    """Score bars with intervals and chance lines, and learning curves; returns (files, note)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "Plots need matplotlib (pip install matplotlib); the numbers above are complete without them."
    return [_score_plot(plt, summary, out_dir), _curve_plot(plt, results, out_dir)], ""


def _score_plot(plt, summary, out_dir: Path) -> str:
    """Bars of every column's cells, with their intervals, the majority line and the topic-overlap line."""
    columns, rows = summary["columns"], summary["rows"]
    fig, axes = plt.subplots(1, len(columns), figsize=(2.4 * len(columns) + 1, 3.4), squeeze=False)
    for ax, column in zip(axes[0], columns):
        cells = [r["cells"].get(column["key"]) for r in rows]
        means = [c["mean"] * 100 if c else np.nan for c in cells]
        errors = np.array(
            [[(c["mean"] - c["low"]) * 100, (c["high"] - c["mean"]) * 100] if c else [0, 0] for c in cells]
        ).T
        ax.bar(range(len(rows)), means, yerr=errors, capsize=3, color=[f"C{i}" for i in range(len(rows))])
        chance = summary["references"]["majority"].get(column["key"])
        if chance is not None:
            ax.axhline(chance * 100, color="0.3", linestyle="--", linewidth=1, label="majority class")
        topic = summary["references"]["topic"].get(column["key"])
        if topic:
            ax.axhline(topic["mean"] * 100, color="C3", linestyle=":", linewidth=1, label="topic overlap")
        ax.set_xticks(range(len(rows)), [r["arm"] for r in rows], rotation=45, ha="right", fontsize=7)
        ax.set_title(column["name"], fontsize=9)
        ax.set_ylim(0, 100)
    axes[0][0].set_ylabel("score (%), mean and 95% interval")
    handles, labels = [], []
    for ax in axes[0]:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0, 0.92, 1))
    fig.savefig(out_dir / "scores.png", dpi=110)
    plt.close(fig)
    return "scores.png"


def _curve_plot(plt, results, out_dir: Path) -> str:
    """Learning curves of every run: held-out MLM and sentence-task accuracy against tokens seen."""
    styles = ["-", "--", ":", "-."]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    seeds = sorted({r["seed"] for r in results["runs"]})
    for i, arm in enumerate(results["arms"]):
        for run in [r for r in results["runs"] if r["arm"] == arm]:
            curve = run["pretrain"].get("learning_curve", [])
            tokens = [p.get("num_input_tokens_seen", 0) / 1e6 for p in curve]
            style = styles[seeds.index(run["seed"]) % len(styles)]
            label = f"{arm}, seed {run['seed']}"
            mlm = [p.get("eval_mlm_accuracy") for p in curve]
            if any(v is not None for v in mlm):
                axes[0].plot(
                    tokens,
                    [v * 100 if v is not None else np.nan for v in mlm],
                    style,
                    marker="o",
                    markersize=3,
                    color=f"C{i}",
                    label=label,
                )
            for key in ("eval_nsp_accuracy", "eval_sop_accuracy"):
                values = [p.get(key) for p in curve]
                if any(v is not None for v in values):
                    axes[1].plot(
                        tokens,
                        [v * 100 if v is not None else np.nan for v in values],
                        style,
                        marker="o",
                        markersize=3,
                        color=f"C{i}",
                        label=f"{label} ({key[5:8].upper()})",
                    )
    axes[0].set_title("held-out MLM accuracy, in the arm's own format", fontsize=9)
    axes[1].set_title("held-out sentence-task accuracy, own head", fontsize=9)
    majorities = {
        key[5:8].upper(): [p[key] for r in results["runs"] for p in r["pretrain"].get("learning_curve", []) if key in p]
        for key in ("eval_nsp_majority", "eval_sop_majority")
    }
    majorities = {task: values for task, values in majorities.items() if values}
    for n, (task, values) in enumerate(majorities.items()):
        share = float(np.mean(values))
        axes[1].axhline(
            share * 100,
            color="0.3",
            linestyle=("--", ":")[n % 2],
            linewidth=1,
            label=f"majority class, {task} eval set ({share:.1%})",
        )
    if not majorities and any(
        "eval_nsp_accuracy" in p or "eval_sop_accuracy" in p
        for r in results["runs"]
        for p in r["pretrain"].get("learning_curve", [])
    ):
        axes[1].axhline(50, color="0.3", linestyle="--", linewidth=1, label="50% (eval set's majority not recorded)")
    for ax in axes:
        ax.set_xlabel("tokens seen (millions)")
        ax.set_ylabel("accuracy (%)")
    axes[1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    axes[0].legend(fontsize=6, loc="upper left", bbox_to_anchor=(0.0, -0.18), ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(out_dir / "learning_curves.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "learning_curves.png"


def _range(values: list) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "?"
    low, high = min(values), max(values)
    return f"{low:,.0f}" if low == high else f"{low:,.0f}–{high:,.0f}"


def _budget_lines(summary: dict, config: dict) -> list[str]:
    rows = summary["rows"]
    tokens = [t for r in rows for t in r["budget"]["tokens"] if t]
    spread = (max(tokens) - min(tokens)) / max(min(tokens), 1) * 100 if tokens else float("nan")
    ablate = config.get("ablate", config)
    lines = [
        "Held equal across arms: the initial weights (one model per seed with every head, saved in `init/`), the "
        f"optimizer updates, the tokens per update ({ablate.get('tokens_per_update', '?')} over all processes; each "
        f"arm's batch size follows from its mean instance length), the learning rate and schedule. Measured from "
        f"the Trainer: tokens per arm agree within {spread:.1f}%.",
        "",
        "| arm | tokens seen | updates | sequences | batch | in-format MLM |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        b = r["budget"]
        mlm = [v for v in b["in_format_mlm"] if v is not None]
        lines.append(
            f"| {r['arm']} | {_range(b['tokens'])} | {_range(b['updates'])} | {_range(b['sequences'])} | "
            f"{_range(b['batch'])} | {np.mean(mlm) * 100:.1f} |"
            if mlm
            else f"| {r['arm']} | {_range(b['tokens'])} | {_range(b['updates'])} | {_range(b['sequences'])} | "
            f"{_range(b['batch'])} | - |"
        )
    return lines


def _samples_lines(summary: dict) -> list[str]:
    lines = []
    for column in summary["columns"]:
        cells = [r["cells"].get(column["key"]) for r in summary["rows"]]
        cells = [c for c in cells if c]
        if cells:
            c = cells[0]
            unit = (
                "sequences" if column["key"] == "mlm" else ("windows/sentences" if column["kind"] == "f1" else "pairs")
            )
            documents = f" from {c['documents']} documents" if c.get("documents") else ""
            lines.append(f"{column['name']}: {c['examples']} {unit}{documents} per seed")
    return lines


def write_report(study_dir: str | Path, compare: list[str | Path] | None = None) -> Path:
    """Write ``report.md``, ``results.json``, ``results.csv`` and the plots into `study_dir`.

    Args:
        study_dir (`str`): A study directory (finished or partial).
        compare (`list[str]`, *optional*): Other study directories (or their ``results.json``) put beside this one.

    Returns:
        `Path` of ``report.md``.
    """
    root = Path(study_dir)
    results = collect_results(root)
    summary = summary_table(results)
    statements = findings(summary)
    _write_tables(root, results, summary, statements)
    plots, plot_note = _plots(results, summary, root) if summary["rows"] else ([], "")
    lines = _report_lines(root, results, summary, statements, plots, plot_note)
    for other in compare or []:
        other_summary = summary_table(collect_results(other))
        name = Path(other).parent.name if Path(other).is_file() else Path(other).name
        lines += [f"## Side by side: {name}", "", _markdown_table(other_summary), ""]
    lines.append(PUBLISHED)
    path = root / "report.md"
    path.write_text("\n".join(lines))
    return path


def _write_tables(root: Path, results: dict, summary: dict, statements: list[str]) -> None:
    """``results.json`` (everything, per run and seed) and ``results.csv`` (one row per run)."""
    flat = []
    for run in results["runs"]:
        row = {
            "arm": run["arm"],
            "seed": run["seed"],
            "tokens_seen": run["pretrain"].get("tokens_seen"),
            "updates": run["pretrain"].get("updates"),
        }
        for key in ("mlm_accuracy", "nsp_accuracy", "sop_accuracy"):
            row[key] = run["intrinsic"].get(key)
        for task in results["tasks"]:
            row[task] = run["downstream"].get(task, {}).get("score")
        flat.append(row)
    (root / "results.json").write_text(
        json.dumps({**results, "summary": summary, "findings": statements}, indent=2, default=float)
    )
    with open(root / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(flat[0]) if flat else ["arm", "seed"])
        writer.writeheader()
        writer.writerows(flat)


def _report_lines(root: Path, results: dict, summary: dict, statements: list[str], plots, plot_note) -> list[str]:
    """The lines of ``report.md`` up to the side-by-side comparisons."""
    config = results["config"]
    ablate, data = config.get("ablate", config), config.get("data", {})
    expected = len(ablate.get("arms", [])) * len(ablate.get("seeds", []))
    timing = results["timing"] or {}
    seeds = ablate.get("seeds", [])
    covers = "a bootstrap over the test examples" + (
        f" and over the {len(seeds)} seeds" if len(seeds) > 1 else " (one seed: initialisation is not covered)"
    )
    split_note = (
        "the document split varies with the seed (--vary_split)"
        if ablate.get("vary_split")
        else ("one document split for every seed")
    )
    lines = [
        f"# nsptask study: {root.name}",
        "",
        "What removing next-sentence prediction does, measured on this corpus and budget. Rows are pretraining arms "
        "(objective:format); MLM, NSP and SOP are held-out intrinsic accuracies; the other columns are fine-tuned "
        f"downstream tasks. Each cell: mean over seeds in %, and its 95% interval from {covers}; {split_note}. "
        "A cell whose interval reaches the majority class reads *at chance*, one wholly below it *below chance*; a value is bold only when its interval "
        "clears every other arm's. There is no average column: the columns have different scales and chance levels.",
        "",
        _markdown_table(summary) if summary["rows"] else "_No finished run yet._",
        "",
        f"Runs finished: {len(results['runs'])} of {expected or '?'}"
        + (
            " (partial study: re-run `nsptask ablate` with the same options to continue)."
            if len(results["runs"]) < expected
            else "."
        ),
        "",
        "## What this run shows",
        "",
        *[f"- {s}" for s in statements],
        "",
        "## Budget",
        "",
        *(_budget_lines(summary, config) if summary["rows"] else []),
        "",
        "## How to read it",
        "",
        "- **MLM**: accuracy of the masked-token predictions on held-out documents, every arm on the same "
        "single-segment blocks (`doc-sentences`) with the same masks, a format that favours no arm; the budget "
        "table gives each arm's MLM in its own format. **NSP** / **SOP**: accuracy on the same held-out pairs for "
        "every arm, with the arm's own sentence head where it was trained for that task, otherwise with a fresh "
        "head trained briefly on a fixed labelled set with the encoder frozen (so the NSP arm is scored on SOP and "
        "the SOP arm on NSP, as in ALBERT).",
        "- Downstream: each arm fine-tuned on the task and scored on documents held out of pretraining, split again "
        "by document for the task on both sides of every pair: segment tagging by seqeval F1 over the L/R spans "
        "(the majority row is all-L), the sentence tasks by accuracy.",
        "- Sample sizes: " + "; ".join(_samples_lines(summary)) + ".",
        "- *topic overlap, no model*: a threshold on the IDF-weighted word-piece overlap of segments A and B, fit on "
        "the training pairs. NSP's negatives come from other documents, so a change of topic gives them away; "
        "SOP's two orders share every word piece, so SOP needs more than topic (ALBERT's argument, on this corpus).",
        "",
        "## Settings",
        "",
        f"- corpus: {', '.join(data.get('corpus') or []) or 'bundled English Wikipedia sample (103 articles)'}; "
        f"held-out documents: {data.get('validation_fraction')} (split seed {data.get('split_seed')})",
        f"- model: {ablate.get('model_name_or_path') or (str(ablate.get('model_family')) + ' preset ' + str(ablate.get('preset')))}; "
        f"tokens per arm (budget): {ablate.get('token_budget', 0):,}; updates {config.get('updates')}; length "
        f"{data.get('max_seq_length')}; learning rate {ablate.get('learning_rate')}",
        f"- seeds: {seeds}; downstream epochs {ablate.get('finetune_epochs')}",
        f"- wall time: {timing.get('wall_seconds', 0) / 60:.1f} min over {timing.get('sessions', 0)} completed "
        f"session(s) (the finished steps' own times add up to {timing.get('step_seconds', 0) / 60:.1f} min); peak "
        f"memory {timing.get('peak_rss_mb', 0):,.0f} MB; on {platform.processor() or platform.machine()} "
        f"({timing.get('cpus') or os.cpu_count()} CPUs, {timing.get('processes', 1)} training process(es))",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in _versions().items()),
        "",
        "Per run and seed: `results.json`, `results.csv`."
        + (" Plots: " + ", ".join(f"[{p}]({p})" for p in plots) if plots else f" {plot_note}"),
        "",
    ]
    for p in plots:
        lines += [f"![{p}]({p})", ""]
    return lines
