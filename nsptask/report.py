"""The study report: ``report.md`` (a table in the shape of ALBERT's Table 5), ``results.json``,
``results.csv`` and PNG plots, rebuilt from whatever a study directory holds (finished or partial)."""

from __future__ import annotations

import csv
import json
import math
import platform
from pathlib import Path
from typing import Any

__all__ = ["collect_results", "write_report", "summary_table"]

INTRINSIC = [("mlm_accuracy", "MLM"), ("nsp_accuracy", "NSP"), ("sop_accuracy", "SOP")]
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


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def collect_results(study_dir: str | Path) -> dict[str, Any]:
    """Every finished step of a study directory, per arm and seed (unfinished steps are left out)."""
    root = Path(study_dir)
    config = _load(root / "study.json") or {}
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
    arms = config.get("arms") or sorted({r["arm"] for r in rows})
    rows.sort(key=lambda r: (arms.index(r["arm"]) if r["arm"] in arms else len(arms), r["seed"]))
    found = {t for r in rows for t in r["downstream"]}
    order = list(config.get("downstream", [])) + ["ner", "classification"]
    tasks = [t for t in order if t in found] + sorted(found - set(order))
    return {
        "config": config,
        "arms": arms,
        "tasks": tasks,
        "runs": rows,
        "timing": _load(root / "timing.json"),
        "baselines": _load(root / "baselines" / "done.json"),
    }


def _mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return float("nan"), float("nan")
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def summary_table(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per arm: mean and std over seeds of every column (intrinsic, downstream tasks, average)."""
    table = []
    for arm in results["arms"]:
        runs = [r for r in results["runs"] if r["arm"] == arm]
        if not runs:
            continue
        row: dict[str, Any] = {
            "arm": arm,
            "seeds": [r["seed"] for r in runs],
            "tokens": _mean_std([r["pretrain"].get("tokens_seen") for r in runs])[0],
        }
        for key, _ in INTRINSIC:
            row[key] = _mean_std([r["intrinsic"].get(key) for r in runs])
        for task in results["tasks"]:
            row[task] = _mean_std([r["downstream"].get(task, {}).get("score") for r in runs])
        averages = []
        for r in runs:
            scores = [r["downstream"][t]["score"] for t in results["tasks"] if t in r["downstream"]]
            if len(scores) == len(results["tasks"]) and scores:
                averages.append(sum(scores) / len(scores))
        row["avg"] = _mean_std(averages)
        table.append(row)
    return table


def _cell(value: tuple[float, float], best: bool, scale: float = 100.0) -> str:
    mean, std = value
    if math.isnan(mean):
        return "-"
    text = f"{mean * scale:.1f} ± {std * scale:.1f}"
    return f"**{text}**" if best else text


def _markdown_table(results, table) -> str:
    columns = [k for k, _ in INTRINSIC] + results["tasks"] + ["avg"]
    names = [n for _, n in INTRINSIC] + [_task_name(t) for t in results["tasks"]] + ["Avg"]
    best = {}
    for column in columns:
        means = [row[column][0] for row in table if not math.isnan(row[column][0])]
        best[column] = max(means) if means else None
    lines = ["| arm | " + " | ".join(names) + " |", "|---|" + "---|" * len(columns)]
    for row in table:
        cells = [_cell(row[c], best[c] is not None and row[c][0] == best[c] and len(table) > 1) for c in columns]
        lines.append(f"| {row['arm']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _task_name(task: str) -> str:
    return {
        "segment-tagging": "SegTag F1",
        "nsp": "NSP task",
        "sop": "SOP task",
        "coherence": "Coherence",
        "ner": "NER F1",
        "classification": "Classification",
    }.get(task, task)


def _baseline_lines(baselines: dict | None) -> list[str]:
    """The model-free reference: what the overlap of A's and B's word pieces alone scores."""
    if not baselines or "nsp" not in baselines or "sop" not in baselines:
        return []
    nsp, sop = baselines["nsp"], baselines["sop"]
    return [
        f"Topic alone, no model: a threshold on the word-piece overlap of segments A and B (IDF-weighted, fit "
        f"on the training pairs) scores **NSP {nsp['accuracy'] * 100:.1f}** and **SOP {sop['accuracy'] * 100:.1f}** "
        f"on the same held-out pairs (majority class: NSP {nsp['majority'] * 100:.1f}, SOP "
        f"{sop['majority'] * 100:.1f}). NSP's negatives come from other documents, so a change of topic gives "
        "them away; SOP's two orders share every word piece, so SOP needs more than topic (ALBERT's argument, "
        "on this corpus). An NSP score below the topic line means the arm has not even learnt topic.",
        "",
    ]


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("nsptask", "torch", "transformers", "datasets", "accelerate", "seqeval"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _plots(results, table, out_dir: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is in the report extra
        return []
    files = []
    columns = [k for k, _ in INTRINSIC] + results["tasks"]
    names = [n for _, n in INTRINSIC] + [_task_name(t) for t in results["tasks"]]
    fig, axes = plt.subplots(1, len(columns), figsize=(2.6 * len(columns), 3.2), squeeze=False)
    for ax, column, name in zip(axes[0], columns, names):
        means = [row[column][0] * 100 for row in table]
        stds = [row[column][1] * 100 for row in table]
        ax.bar(range(len(table)), means, yerr=stds, capsize=3, color=[f"C{i}" for i in range(len(table))])
        ax.set_xticks(range(len(table)), [row["arm"] for row in table], rotation=45, ha="right", fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.set_ylim(0, 100)
    axes[0][0].set_ylabel("score (%), mean ± std over seeds")
    fig.tight_layout()
    fig.savefig(out_dir / "scores.png", dpi=110)
    plt.close(fig)
    files.append("scores.png")

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, arm in enumerate(results["arms"]):
        for run in [r for r in results["runs"] if r["arm"] == arm]:
            curve = run["pretrain"].get("learning_curve", [])
            tokens = [p.get("num_input_tokens_seen", 0) for p in curve]
            label = f"{arm} (seed {run['seed']})"
            mlm = [p.get("eval_mlm_accuracy") for p in curve]
            if any(v is not None for v in mlm):
                axes[0].plot(tokens, mlm, marker="o", color=f"C{i}", label=label)
            for key in ("eval_nsp_accuracy", "eval_sop_accuracy"):
                values = [p.get(key) for p in curve]
                if any(v is not None for v in values):
                    axes[1].plot(tokens, values, marker="o", color=f"C{i}", label=f"{label}, {key[5:8].upper()}")
    axes[0].set_title("held-out MLM accuracy")
    axes[1].set_title("held-out sentence-task accuracy (own head)")
    for ax in axes:
        ax.set_xlabel("tokens seen")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out_dir / "learning_curves.png", dpi=110)
    plt.close(fig)
    files.append("learning_curves.png")
    return files


def write_report(study_dir: str | Path, compare: list[str | Path] | None = None) -> Path:
    """Write ``report.md``, ``results.json``, ``results.csv`` and the plots into `study_dir`.

    Args:
        study_dir (`str`): A study directory (finished or partial).
        compare (`list[str]`, *optional*): Other study directories whose tables are put beside this one.

    Returns:
        `Path` of ``report.md``.
    """
    root = Path(study_dir)
    results = collect_results(root)
    table = summary_table(results)
    flat = []
    for run in results["runs"]:
        row = {
            "arm": run["arm"],
            "seed": run["seed"],
            "tokens_seen": run["pretrain"].get("tokens_seen"),
            "steps": run["pretrain"].get("steps"),
        }
        row.update({k: run["intrinsic"].get(k) for k, _ in INTRINSIC})
        row["mlm_perplexity"] = run["intrinsic"].get("mlm_perplexity")
        for task in results["tasks"]:
            row[task] = run["downstream"].get(task, {}).get("score")
        flat.append(row)
    (root / "results.json").write_text(
        json.dumps(
            {"runs": results["runs"], "summary": table, "tasks": results["tasks"], "baselines": results["baselines"]},
            indent=2,
            default=float,
        )
    )
    with open(root / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(flat[0]) if flat else ["arm", "seed"])
        writer.writeheader()
        writer.writerows(flat)
    plots = _plots(results, table, root) if table else []
    config = results["config"]
    expected = len(config.get("arms", [])) * len(config.get("seeds", []))
    timing = results["timing"] or {}
    lines = [
        f"# nsptask study: {root.name}",
        "",
        "What removing next-sentence prediction does, measured on this corpus and budget. Rows are "
        "pretraining arms (objective:format); MLM, NSP and SOP are held-out intrinsic accuracies; the other "
        "columns are fine-tuned downstream tasks; Avg is their mean. Mean ± std over seeds, in %; the best "
        "mean per column in bold.",
        "",
        _markdown_table(results, table) if table else "_No finished run yet._",
        "",
        f"Runs finished: {len(results['runs'])} of {expected or '?'}"
        + (
            " (partial study: re-run `nsptask ablate` with the same options to continue)."
            if len(results["runs"]) < expected
            else "."
        ),
        "",
        *_baseline_lines(results["baselines"]),
        "## How to read it",
        "",
        "- **MLM**: accuracy of the masked-token predictions on held-out documents, every arm on the same "
        "packed text. **NSP** / **SOP**: accuracy on held-out pairs, with the arm's own sentence head where "
        "it was trained for that task, otherwise with a fresh head trained briefly on a fixed labelled set "
        "with the encoder frozen (so the NSP arm is scored on SOP and the SOP arm on NSP, as in ALBERT). "
        "An arm at about 50 on a sentence task has not learnt it.",
        "- Downstream: each arm fine-tuned on the task and scored on documents held out of pretraining: "
        "segment tagging by seqeval F1 over the L/R spans, the sentence tasks by accuracy.",
        "",
        "## Settings",
        "",
        f"- corpus: {config.get('corpus') or 'bundled English Wikipedia sample (103 articles)'}; held-out "
        f"documents: {config.get('validation_fraction')}",
        f"- model: {config.get('model_name_or_path') or 'preset ' + str(config.get('preset'))}; tokens per arm "
        f"(budget): {config.get('token_budget'):,}; length {config.get('max_seq_length')}; batch "
        f"{config.get('per_device_train_batch_size')}; learning rate {config.get('learning_rate')}",
        f"- seeds: {config.get('seeds')}; downstream epochs {config.get('finetune_epochs')}",
        "- tokens actually seen per arm (mean over seeds): "
        + ", ".join(f"{row['arm']} {row['tokens']:,.0f}" for row in table),
        f"- wall time: {timing.get('wall_seconds', 0) / 60:.1f} min over {timing.get('sessions', 0)} session(s) on "
        f"{platform.processor() or platform.machine()} ({__import__('os').cpu_count()} CPUs)",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in _versions().items()),
        "",
        "Per run and seed: `results.json`, `results.csv`. Plots: " + ", ".join(f"[{p}]({p})" for p in plots),
        "",
    ]
    for p in plots:
        lines += [f"![{p}]({p})", ""]
    for other in compare or []:
        other_results = collect_results(other)
        lines += [
            f"## Side by side: {Path(other).name}",
            "",
            _markdown_table(other_results, summary_table(other_results)),
            "",
        ]
    lines.append(PUBLISHED)
    path = root / "report.md"
    path.write_text("\n".join(lines))
    return path
