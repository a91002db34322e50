"""The study report: ``report.md`` (a table in the shape of ALBERT's Table 5, read honestly), ``results.json``,
``results.csv`` and PNG plots, rebuilt from whatever a study directory holds (finished or partial).

Every cell is a mean over pretraining seeds (of the median over fine-tuning seeds) with a 95% interval from the
paired, clustered bootstrap of :mod:`nsptask.intervals`: documents and pretraining seeds are resampled, the same draw
for every arm and for the references that need no model (majority class, word overlap, the segment-tagging rules),
which are rows of the table scored on the same examples. "At chance" is decided on the Matthews correlation for
label columns (its interval reaches 0), and on the paired difference with the best reference for entity columns; a
best value is bold only when its paired difference with every other arm excludes 0. Every comparison in "What this
run shows" is a paired difference with its interval, made from the numbers.
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

from .intervals import Records, compare

__all__ = ["collect_results", "write_report", "summary_table", "cell_text", "findings", "TASK_NAMES"]

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
    "segment-tagging": "SegTag R F1",
    "sentence-position": "Sent. position",
    "coherence-same-document": "Coherence (same doc)",
    "coherence-other-document": "Coherence (other doc)",
    "connective": "Connective",
    "nsp": "NSP task",
    "sop": "SOP task",
    "coherence": "Coherence pairs",
}
REPEATS_OBJECTIVE = {"nsp": "mlm+nsp", "sop": "mlm+sop", "coherence": "mlm+nsp"}
STATISTIC = {"ratio": "ratio", "label": "accuracy", "entities": "f1"}


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _downstream_runs(run_dir: Path) -> dict[str, list[dict]]:
    """Per task, its finished fine-tuning runs (one per fine-tuning seed), in seed order."""
    out = {}
    for task_dir in sorted((run_dir / "downstream").glob("*")):
        done = [_load(p) for p in sorted(task_dir.glob("ft*/done.json"), key=lambda p: int(p.parent.name[2:]))]
        done = [d for d in done if d]
        if done:
            out[task_dir.name] = done
    return out


def is_legacy(results: dict) -> bool:
    """A ``results.json`` of nsptask 0.1 (one downstream run per task, no per-example documents)."""
    return any(isinstance(v, dict) for r in results.get("runs", []) for v in r.get("downstream", {}).values())


def legacy_table(saved: dict) -> str:
    """The intrinsic columns (MLM, NSP, SOP) of an nsptask 0.1 ``results.json``, as that version summarised them
    (its downstream columns repeated the objectives and its intervals were not clustered, so neither is compared)."""

    def cell(c: dict | None) -> str:
        if not c:
            return "-"
        text = f"{c['mean'] * 100:.1f} ({c['low'] * 100:.1f}–{c['high'] * 100:.1f})"
        return text + (", at chance" if c.get("at_chance") else "")

    lines = ["| arm | MLM | NSP | SOP |", "|---|---|---|---|"]
    for row in saved["summary"]["rows"]:
        lines.append(f"| {row['arm']} | " + " | ".join(cell(row["cells"].get(k)) for k in ("mlm", "nsp", "sop")) + " |")
    majority = saved["summary"]["references"]["majority"]
    lines.append("| *majority class* | - | " + " | ".join(f"*{majority[k] * 100:.1f}*" for k in ("nsp", "sop")) + " |")
    return "\n".join(lines)


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
        rows.append(
            {
                "arm": pretrain["arm"],
                "seed": pretrain["seed"],
                "pretrain": pretrain,
                "intrinsic": _load(run_dir / "intrinsic" / "done.json") or {},
                "downstream": _downstream_runs(run_dir),
            }
        )
    arms = ablate.get("arms") or sorted({r["arm"] for r in rows})
    rows.sort(key=lambda r: (arms.index(r["arm"]) if r["arm"] in arms else len(arms), r["seed"]))
    found = {t for r in rows for t in r["downstream"]}
    order = list(ablate.get("downstream", [])) + [spec.partition("=")[0] for spec in ablate.get("task_files", [])]
    tasks = [t for t in order if t in found] + sorted(found - set(order))
    baselines = {p.parent.name: _load(p) for p in sorted((root / "baselines").glob("*/done.json"))}
    timing = _load(root / "timing.json")
    if timing is not None:
        # The recorded time of every finished step: unlike the sessions' wall time, it includes a session that
        # was interrupted after finishing some steps.
        steps = [b.get("seconds", 0.0) for b in baselines.values() if b] + [
            part.get("seconds", 0.0)
            for r in rows
            for part in (r["pretrain"], r["intrinsic"], *(ft for fts in r["downstream"].values() for ft in fts))
            if part
        ]
        timing = {**timing, "step_seconds": round(float(sum(steps)), 1)}
    return {"config": config, "arms": arms, "tasks": tasks, "runs": rows, "timing": timing, "baselines": baselines}


# -- records -----------------------------------------------------------------------------------------------


def _columns(results) -> list[dict[str, Any]]:
    """The table's columns: where each arm's examples come from and how they are scored."""
    columns = [
        {"key": "mlm", "task": "mlm", "name": "MLM", "kind": "ratio", "section": "intrinsic"},
        {"key": "nsp", "task": "nsp", "name": "NSP", "kind": "label", "section": "intrinsic"},
        {"key": "sop", "task": "sop", "name": "SOP", "kind": "label", "section": "intrinsic"},
    ]
    for task in results["tasks"]:
        first = next(r["downstream"][task][0] for r in results["runs"] if task in r["downstream"])
        kind = "entities" if "counts" in first["examples"] else "label"
        name = TASK_NAMES.get(task, task + (" F1" if kind == "entities" else ""))
        columns.append(
            {
                # The NSP and SOP tasks fine-tuned again are not the intrinsic NSP and SOP columns.
                "key": f"{task} task" if task in ("mlm", "nsp", "sop") else task,
                "task": task,
                "name": name,
                "kind": kind,
                "section": "downstream",
                "repeats": REPEATS_OBJECTIVE.get(task),
            }
        )
    return columns


def _split_name(config: dict, seed: int) -> str:
    ablate, data = config.get("ablate", config), config.get("data", {})
    split_seed = data_setting(data, "split_seed")
    split_seed = 12345 if split_seed is None else split_seed
    return f"split{split_seed + seed if ablate.get('vary_split') else split_seed}"


def _arm_records(results: dict, column: dict, arm: str) -> tuple[Records | None, dict]:
    """An arm's records of a column (per pretraining seed, one per fine-tuning seed) and the examples' hashes."""
    runs, documents, hashes = {}, {}, {}
    for run in results["runs"]:
        if run["arm"] != arm:
            continue
        if column["section"] == "intrinsic":
            entry = run["intrinsic"].get(column["key"])
            records = [entry] if entry and "documents" in entry else []
        else:
            records = [ft["examples"] for ft in run["downstream"].get(column["task"], [])]
        if records:
            runs[run["seed"]] = records
            documents[run["seed"]] = np.asarray(records[0]["documents"])
            hashes[run["seed"]] = records[0].get("examples_hash")
    if not runs:
        return None, {}
    return Records(column["kind"], runs, documents), hashes


def _reference_records(results: dict, column: dict, seeds: list[int], hashes: dict) -> dict[str, Records] | None:
    """The references without a model on the column's examples, as pseudo-arms (the same record for every seed of a
    split); None when they were scored on other examples than the arms (`hashes`: the arms' examples hash per seed),
    which a paired difference cannot use."""
    if column["key"] == "mlm":
        return {}
    refs: dict[str, dict] = {}
    documents = {}
    for seed in seeds:
        baseline = (results.get("baselines") or {}).get(_split_name(results["config"], seed)) or {}
        part = baseline.get("intrinsic" if column["section"] == "intrinsic" else "tasks", {}).get(column["task"])
        if not part:
            return {}
        if part.get("examples_hash") and hashes.get(seed) and part["examples_hash"] != hashes[seed]:
            return None
        documents[seed] = np.asarray(part["documents"])
        for name, record in part["references"].items():
            refs.setdefault(name, {})[seed] = [record]
    kind = "entities" if column["kind"] == "entities" else "label"
    return {name: Records(kind, runs, documents) for name, runs in refs.items() if set(runs) == set(seeds)}


# -- the summary -------------------------------------------------------------------------------------------


def _column_summary(results: dict, column: dict) -> dict | None:
    """Cells, references and paired differences of one column (None when no arm has it)."""
    arms, hashes, skipped = {}, {}, []
    for arm in results["arms"]:
        records, arm_hashes = _arm_records(results, column, arm)
        if records is not None:
            arms[arm], hashes[arm] = records, arm_hashes
    if not arms:
        return None
    first = next(iter(arms))
    for arm in list(arms):  # paired comparisons need the same examples: an arm scored on others is set aside
        shared = set(hashes[arm]) & set(hashes[first])
        if any(hashes[arm][s] != hashes[first][s] for s in shared):
            skipped.append(arm)
            del arms[arm]
    seeds = sorted(set.intersection(*(set(r.runs) for r in arms.values())))
    references = _reference_records(results, column, seeds, hashes[first])
    unknown_chance = references is None  # an entity column's chance line is its best reference: now unknown
    if unknown_chance:
        skipped.append("the references without a model")
        references = {}
    everything = {**arms, **references}
    headline = compare(everything, STATISTIC[column["kind"]])
    mcc = compare(everything, "mcc") if column["kind"] == "label" else None
    finetune_runs = max(len(runs) for r in arms.values() for runs in r.runs.values())
    summary = {
        "headline": headline,
        "mcc": mcc,
        "arms": list(arms),
        "references": list(references),
        "skipped": skipped,
        "unknown_chance": unknown_chance,
        "seeds": seeds,
        "finetune_runs": finetune_runs,
        "examples": headline["examples"],
        "documents": headline["documents"],
    }
    summary["cells"] = {name: _cell(summary, column, name) for name in everything}
    _mark_best(summary)
    return summary


def _difference(summary: dict, a: str, b: str, which: str = "headline") -> dict:
    """The paired difference a - b (from the stored ordered pair)."""
    differences = summary[which]["differences"]
    if (a, b) in differences:
        return differences[(a, b)]
    d = differences[(b, a)]
    return {"mean": -d["mean"], "low": -d["high"], "high": -d["low"], "separated": d["separated"]}


def _best_reference(summary: dict) -> str | None:
    refs = summary["references"]
    return max(refs, key=lambda r: summary["headline"]["cells"][r]["mean"]) if refs else None


def _cell(summary: dict, column: dict, name: str) -> dict:
    cell = dict(summary["headline"]["cells"][name])
    cell["reference"] = name in summary["references"]
    if column["kind"] == "label":
        mcc = summary["mcc"]["cells"][name]
        cell["mcc"] = mcc
        cell["at_chance"] = mcc["low"] <= 0  # the Matthews correlation's interval reaches 0: no skill shown
        cell["below_chance"] = mcc["high"] < 0
    elif column["kind"] == "entities":
        best = _best_reference(summary)
        if summary.get("unknown_chance"):  # its references were set aside: no arm is shown above them
            cell["at_chance"], cell["below_chance"] = True, False
        elif best is not None and name != best:
            difference = _difference(summary, name, best)
            cell["at_chance"] = difference["low"] <= 0  # not above the best rule that needs no model
            cell["below_chance"] = difference["high"] < 0
            cell["versus"] = best
        else:
            cell["at_chance"] = cell["below_chance"] = False
    else:
        cell["at_chance"] = cell["below_chance"] = False
    return cell


def _mark_best(summary: dict) -> None:
    """Bold: the arm with the highest mean when its paired difference with every other arm excludes 0 and it is
    above chance."""
    arms = summary["arms"]
    if len(arms) < 2:
        return
    best = max(arms, key=lambda a: summary["cells"][a]["mean"])
    cell = summary["cells"][best]
    if not cell["at_chance"] and all(_difference(summary, best, o)["low"] > 0 for o in arms if o != best):
        cell["separated_best"] = True


def summary_table(results: dict[str, Any]) -> dict[str, Any]:
    """Per column: every arm's and reference's cell (mean, 95% interval, MCC for label columns, at chance or not),
    the paired differences, and the sample; per arm its budget."""
    columns, per_column = [], {}
    for column in _columns(results):
        summary = _column_summary(results, column)
        if summary is not None:
            columns.append(column)
            per_column[column["key"]] = summary
    rows = []
    for arm in results["arms"]:
        pre = [r["pretrain"] for r in results["runs"] if r["arm"] == arm]
        if not pre:
            continue
        rows.append(
            {
                "arm": arm,
                "seeds": [p["seed"] for p in pre],
                "single_segment": any(p.get("single_segment") for p in pre),
                "budget": {
                    "tokens": [p.get("tokens_seen") for p in pre],
                    "updates": [p.get("updates") for p in pre],
                    "sequences": [p.get("sequences_seen") for p in pre],
                    "batch": [p.get("per_device_train_batch_size") for p in pre],
                    "in_format_mlm": [p.get("in_format_mlm_accuracy") for p in pre],
                },
            }
        )
    return {"columns": columns, "per_column": per_column, "rows": rows}


# -- text --------------------------------------------------------------------------------------------------


def _interval(cell: dict, scale: float = 100.0, digits: int = 1) -> str:
    return f"{cell['mean'] * scale:.{digits}f} ({cell['low'] * scale:.{digits}f}–{cell['high'] * scale:.{digits}f})"


def cell_text(cell: dict | None) -> str:
    """``52.1 (48.0–56.2)``, bold when it is a separated best, with "at chance" (label columns: the MCC interval
    reaches 0; entity columns: not above the best reference) or "below chance"."""
    if not cell or math.isnan(cell["mean"]):
        return "-"
    text = _interval(cell)
    if cell.get("below_chance"):
        return text + ", below chance"
    if cell.get("at_chance"):
        return text + ", at chance"
    return f"**{text}**" if cell.get("separated_best") else text


def _markdown_table(summary: dict) -> str:
    """Arms, then the references (italic), by column; a column that repeats a pretraining objective is marked."""
    columns = summary["columns"]
    names = [c["name"] + (f" (= {c['repeats']} objective)" if c.get("repeats") else "") for c in columns]
    lines = ["| arm | " + " | ".join(names) + " |", "|---|" + "---|" * len(columns)]
    for row in summary["rows"]:
        cells = [cell_text(summary["per_column"][c["key"]]["cells"].get(row["arm"])) for c in columns]
        lines.append(f"| {row['arm']} | " + " | ".join(cells) + " |")
    references = []
    for c in columns:
        for name in summary["per_column"][c["key"]]["references"]:
            if name not in references:
                references.append(name)
    for name in references:
        cells = []
        for c in columns:
            cell = summary["per_column"][c["key"]]["cells"].get(name)
            cells.append(f"*{_interval(cell)}*" if cell else "-")
        lines.append(f"| *{name}, no model* | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _mcc_table(summary: dict) -> str:
    columns = [c for c in summary["columns"] if c["kind"] == "label"]
    if not columns:
        return ""
    lines = ["| arm | " + " | ".join(c["name"] for c in columns) + " |", "|---|" + "---|" * len(columns)]
    names = [r["arm"] for r in summary["rows"]]
    for c in columns:
        for name in summary["per_column"][c["key"]]["references"]:
            if name not in names:
                names.append(name)
    for name in names:
        cells = []
        for c in columns:
            cell = summary["per_column"][c["key"]]["cells"].get(name)
            cells.append(_interval(cell["mcc"], 1.0, 2) if cell else "-")
        label = name if name in [r["arm"] for r in summary["rows"]] else f"*{name}, no model*"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _points(d: dict) -> str:
    return f"{d['mean'] * 100:+.1f} points (95% interval {d['low'] * 100:+.1f} to {d['high'] * 100:+.1f})"


def _sample(summary: dict) -> str:
    runs = summary["finetune_runs"]
    tuned = f" x {runs} fine-tuning seeds (median)" if runs > 1 else ""
    return (
        f"paired over the same {summary['examples']} examples from {summary['documents']} documents, "
        f"{len(summary['seeds'])} pretraining seed(s){tuned}"
    )


def _intrinsic_findings(summary: dict) -> list[str]:
    out = []
    per_column = summary["per_column"]
    for key, name in (("nsp", "NSP"), ("sop", "SOP")):
        column = per_column.get(key)
        if not column:
            continue
        cells = {a: column["cells"][a] for a in column["arms"]}
        above = [a for a, c in cells.items() if not c["at_chance"]]
        if not above:
            out.append(f"No arm scores {name} above chance at this budget (every MCC interval reaches 0).")
        else:
            parts = ", ".join(f"{a} ({_interval(cells[a])}, MCC {cells[a]['mcc']['mean']:.2f})" for a in above)
            out.append(f"Above chance on {name} (MCC interval above 0): {parts}.")
        if "word overlap" in column["cells"]:
            overlap = column["cells"]["word overlap"]
            behind = [a for a in cells if _difference(column, a, "word overlap")["high"] < 0]
            if behind:
                out.append(
                    f"On {name}, word overlap alone ({_interval(overlap)}) scores above "
                    f"{', '.join(behind)} by a separated paired difference: topic does better than what "
                    f"{'it' if len(behind) == 1 else 'they'} learnt."
                )
    out += _albert_findings(summary)
    return out


def _albert_findings(summary: dict) -> list[str]:
    """ALBERT's two effects (Table 5): an NSP model at chance on SOP; an SOP model above chance on NSP."""
    nsp, sop = summary["per_column"].get("nsp"), summary["per_column"].get("sop")
    if not nsp or not sop:
        return []
    nsp_arm = next((a for a in nsp["arms"] if a.startswith("mlm+nsp")), None)
    sop_arm = next((a for a in sop["arms"] if a.startswith("mlm+sop")), None)
    out = []
    nsp_learnt = nsp_arm is not None and not nsp["cells"][nsp_arm]["at_chance"]
    sop_learnt = sop_arm is not None and not sop["cells"][sop_arm]["at_chance"]
    if nsp_learnt:
        effect = "appears" if sop["cells"][nsp_arm]["at_chance"] else "does not appear"
        out.append(
            f"ALBERT's first effect {effect}: {nsp_arm} learnt NSP and is {'at' if effect == 'appears' else 'above'} chance on SOP."
        )
    if sop_learnt:
        effect = "appears" if not nsp["cells"][sop_arm]["at_chance"] else "does not appear"
        out.append(
            f"ALBERT's second effect {effect}: {sop_arm} learnt SOP and is {'above' if effect == 'appears' else 'at'} chance on NSP."
        )
    if (nsp_arm or sop_arm) and not nsp_learnt and not sop_learnt:
        out.append("Neither sentence objective was learnt, so ALBERT's comparison (Table 5) cannot be made here.")
    return out


def _removing_nsp(summary: dict) -> list[str]:
    """RoBERTa's question, per column: an MLM-only arm against an MLM+NSP arm, as a paired difference."""
    out = []
    for column in summary["columns"]:
        if column["section"] == "intrinsic" and column["key"] != "mlm":
            continue
        part = summary["per_column"][column["key"]]
        mlm = [a for a in part["arms"] if a.split(":")[0] == "mlm"]
        nsp = [a for a in part["arms"] if a.startswith("mlm+nsp")]
        for a in mlm:
            for b in nsp:
                d = _difference(part, a, b)
                if part["cells"][a]["at_chance"] and part["cells"][b]["at_chance"]:
                    verdict = "both are at chance, so removing NSP cannot be judged here"
                elif not d["separated"]:
                    verdict = "no difference is shown"
                else:
                    verdict = "removing NSP scores higher" if d["mean"] > 0 else "removing NSP scores lower"
                note = f" ({column['name']} repeats the {column['repeats']} objective)" if column.get("repeats") else ""
                out.append(f"{column['name']}, {a} minus {b}: {_points(d)}, {_sample(part)}: {verdict}{note}.")
    return out


def _column_findings(summary: dict) -> list[str]:
    out = []
    for column in summary["columns"]:
        if column["section"] == "intrinsic" and column["key"] != "mlm":
            continue
        part = summary["per_column"][column["key"]]
        cells = {a: part["cells"][a] for a in part["arms"]}
        best = [a for a, c in cells.items() if c.get("separated_best")]
        if column.get("repeats"):
            out.append(
                f"{column['name']} is the {column['repeats']} objective fine-tuned again: an arm trained on it wins "
                "by construction, so it is not a downstream finding."
            )
        if best:
            out.append(f"{column['name']}: {best[0]} is best, every paired difference with another arm above 0.")
        elif column["kind"] != "ratio" and all(c["at_chance"] for c in cells.values()):
            against = (
                "its MCC interval reaches 0" if column["kind"] == "label" else f"not above {_best_reference(part)}"
            )
            out.append(
                f"{column['name']}: every arm is at chance ({against}), so no difference between arms is claimed."
            )
        elif len(cells) > 1:
            out.append(f"{column['name']}: no arm is separated from every other by its paired differences.")
        if "word overlap" in part["cells"] and not part["cells"]["word overlap"]["at_chance"]:
            overlap = part["cells"]["word overlap"]
            out.append(
                f"{column['name']}: word overlap alone, with no model, is above chance ({_interval(overlap)}, MCC "
                f"{overlap['mcc']['mean']:.2f}): topic solves part of this probe."
            )
        if part["skipped"]:
            out.append(
                f"{column['name']}: {', '.join(part['skipped'])} scored on other examples, left out of the comparison."
            )
    return out


def findings(summary: dict) -> list[str]:
    """Sentences about what the numbers show and do not show, made from the table (never written by hand): every
    comparison a paired difference with its interval."""
    return _intrinsic_findings(summary) + _removing_nsp(summary) + _column_findings(summary)


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
    """Score bars with intervals and reference lines, and learning curves; returns (files, note)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "Plots need matplotlib (pip install matplotlib); the numbers above are complete without them."
    return [_score_plot(plt, summary, out_dir), _curve_plot(plt, results, out_dir)], ""


def _score_plot(plt, summary, out_dir: Path) -> str:
    """Bars of every column's arms, with their intervals, and a line per reference without a model."""
    columns, arms = summary["columns"], [r["arm"] for r in summary["rows"]]
    fig, axes = plt.subplots(1, len(columns), figsize=(2.4 * len(columns) + 1, 3.6), squeeze=False)
    for ax, column in zip(axes[0], columns):
        part = summary["per_column"][column["key"]]
        cells = [part["cells"].get(a) for a in arms]
        means = [c["mean"] * 100 if c else np.nan for c in cells]
        errors = np.array(
            [[(c["mean"] - c["low"]) * 100, (c["high"] - c["mean"]) * 100] if c else [0, 0] for c in cells]
        ).T
        ax.bar(range(len(arms)), means, yerr=errors, capsize=3, color=[f"C{i}" for i in range(len(arms))])
        for n, name in enumerate(part["references"]):
            ax.axhline(
                part["cells"][name]["mean"] * 100,
                color=("0.3", "C3", "C2", "C4")[n % 4],
                linestyle=("--", ":", "-.", (0, (1, 3)))[n % 4],
                linewidth=1,
                label=name,
            )
        ax.set_xticks(range(len(arms)), arms, rotation=45, ha="right", fontsize=7)
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
    fig.tight_layout(rect=(0, 0, 0.9, 1))
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
            for ax, key, suffix in (
                (axes[0], "eval_mlm_accuracy", ""),
                (axes[1], "eval_nsp_accuracy", " (NSP)"),
                (axes[1], "eval_sop_accuracy", " (SOP)"),
            ):
                values = [p.get(key) for p in curve]
                if any(v is not None for v in values):
                    ax.plot(
                        tokens,
                        [v * 100 if v is not None else np.nan for v in values],
                        style,
                        marker="o",
                        markersize=3,
                        color=f"C{i}",
                        label=label + suffix,
                    )
    axes[0].set_title("held-out MLM accuracy, in the arm's own format", fontsize=9)
    axes[1].set_title("held-out sentence-task accuracy, own head", fontsize=9)
    for n, key in enumerate(("eval_nsp_majority", "eval_sop_majority")):
        values = [p[key] for r in results["runs"] for p in r["pretrain"].get("learning_curve", []) if key in p]
        if values:
            share = float(np.mean(values))
            axes[1].axhline(
                share * 100,
                color="0.3",
                linestyle=("--", ":")[n],
                linewidth=1,
                label=f"majority class, {key[5:8].upper()} eval set ({share:.1%})",
            )
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


def _start_lines(results: dict) -> list[str]:
    """What the recorded hashes show about the arms' start (per seed) and the fine-tuning runs' start."""
    lines = []
    for seed in sorted({r["seed"] for r in results["runs"]}):
        hashes = {r["arm"]: r["pretrain"].get("initial_encoder_hash") for r in results["runs"] if r["seed"] == seed}
        if len(set(hashes.values())) == 1 and None not in hashes.values():
            lines.append(f"seed {seed}: every arm loaded the same initial encoder (hash {next(iter(hashes.values()))})")
        else:
            lines.append(f"seed {seed}: the arms' initial encoders differ or are not recorded: {hashes}")
    mismatched = [
        f"{r['arm']} seed {r['seed']} {task} ft{ft['finetune_seed']}"
        for r in results["runs"]
        for task, fts in r["downstream"].items()
        for ft in fts
        if ft.get("start_encoder_hash") != r["pretrain"].get("final_encoder_hash")
    ]
    runs = sum(len(fts) for r in results["runs"] for fts in r["downstream"].values())
    lines.append(
        f"every one of the {runs} fine-tuning runs started from its arm's final pretrained encoder (hashes equal)"
        if not mismatched
        else f"fine-tuning runs whose start differs from their arm's final encoder: {', '.join(mismatched)}"
    )
    return lines


def _budget_lines(results: dict, summary: dict, config: dict) -> list[str]:
    rows = summary["rows"]
    tokens = [t for r in rows for t in r["budget"]["tokens"] if t]
    spread = (max(tokens) - min(tokens)) / max(min(tokens), 1) * 100 if tokens else float("nan")
    ablate = config.get("ablate", config)
    lines = [
        "Held equal across arms: the initial weights (one model per seed with every head, saved in `init/`), the "
        f"optimizer updates, the tokens per update ({ablate.get('tokens_per_update', '?')} over all processes; each "
        f"arm's batch size follows from its mean instance length), the learning rate and schedule, the scored "
        f"examples, and the fine-tuning seeds. Measured from the Trainer: tokens per arm agree within {spread:.1f}%. "
        "From the recorded hashes: " + "; ".join(_start_lines(results)) + ".",
        "",
        "| arm | tokens seen | updates | sequences | batch | in-format MLM | input of its probes |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b = r["budget"]
        mlm = [v for v in b["in_format_mlm"] if v is not None]
        segments = "one segment (token type 0 only, as pretrained)" if r["single_segment"] else "two segments"
        lines.append(
            f"| {r['arm']} | {_range(b['tokens'])} | {_range(b['updates'])} | {_range(b['sequences'])} | "
            f"{_range(b['batch'])} | {f'{np.mean(mlm) * 100:.1f}' if mlm else '-'} | {segments} |"
        )
    return lines


def _samples_lines(summary: dict) -> list[str]:
    lines = []
    for column in summary["columns"]:
        part = summary["per_column"][column["key"]]
        unit = {"ratio": "sequences", "label": "examples", "entities": "examples"}[column["kind"]]
        tuned = f", {part['finetune_runs']} fine-tuning seeds each" if part["finetune_runs"] > 1 else ""
        lines.append(
            f"{column['name']}: {part['examples']} {unit} from {part['documents']} documents, "
            f"{len(part['seeds'])} pretraining seed(s){tuned}"
        )
    return lines


def _segment_lines(results: dict) -> list[str]:
    """Segment tagging's seqeval rows per arm (means over runs): R (the headline), L and the averages."""
    runs = [(r["arm"], ft["metrics"]) for r in results["runs"] for ft in r["downstream"].get("segment-tagging", [])]
    if not runs:
        return []
    keys = [
        ("precision_R", "R precision"), ("recall_R", "R recall"), ("f1_R", "R F1"), ("f1_L", "L F1"),
        ("f1", "micro F1"), ("macro_f1", "macro F1"), ("weighted_f1", "weighted F1"),
        ("word_level_f1_R", "R F1, words as tagged"), ("window_accuracy", "window accuracy"),
    ]  # fmt: skip
    lines = [
        "Segment tagging's seqeval report per arm (sentence entities; mean over seeds and fine-tuning seeds, in %; "
        "support per run: R "
        + _range([m.get("eval_support_R") for _, m in runs])
        + ", L "
        + _range([m.get("eval_support_L") for _, m in runs])
        + " sentences):",
        "",
        "| arm | " + " | ".join(name for _, name in keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for arm in results["arms"]:
        mine = [m for a, m in runs if a == arm]
        if mine:
            values = [np.mean([m.get(f"eval_{k}", np.nan) for m in mine]) * 100 for k, _ in keys]
            lines.append(f"| {arm} | " + " | ".join(f"{v:.1f}" for v in values) + " |")
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
    statements = findings(summary) if summary["columns"] else []
    _write_tables(root, results, summary, statements)
    plots, plot_note = _plots(results, summary, root) if summary["columns"] else ([], "")
    lines = _report_lines(root, results, summary, statements, plots, plot_note)
    for other in compare or []:
        name = Path(other).parent.name if Path(other).is_file() else Path(other).name
        saved = json.loads(Path(other).read_text()) if Path(other).is_file() else None
        if saved is not None and is_legacy(saved):
            note = "an nsptask 0.1 study: its intrinsic columns only, with that version's intervals (not clustered)"
            lines += [f"## Side by side: {name}", "", f"_{note}._", "", legacy_table(saved), ""]
            continue
        other_summary = summary_table(collect_results(other))
        lines += [f"## Side by side: {name}", "", _markdown_table(other_summary), ""]
    lines.append(PUBLISHED)
    path = root / "report.md"
    path.write_text("\n".join(lines))
    return path


def _jsonable(value):
    """The summary as JSON: the paired differences' keys ``(a, b)`` written ``"a - b"``."""
    if isinstance(value, dict):
        return {(" - ".join(k) if isinstance(k, tuple) else k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _write_tables(root: Path, results: dict, summary: dict, statements: list[str]) -> None:
    """``results.json`` (everything, per run and seed) and ``results.csv`` (one row per run and fine-tuning seed)."""
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
            for ft in run["downstream"].get(task, []):
                row[f"{task}_ft{ft['finetune_seed']}"] = ft.get("score")
        flat.append(row)
    (root / "results.json").write_text(
        json.dumps({**results, "summary": _jsonable(summary), "findings": statements}, indent=2, default=float)
    )
    with open(root / "results.csv", "w", newline="") as f:
        fieldnames = list(dict.fromkeys(k for row in flat for k in row)) or ["arm", "seed"]
        writer = csv.DictWriter(f, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(flat)


def _intro(results: dict) -> str:
    ablate = results["config"].get("ablate", results["config"])
    seeds = ablate.get("seeds", [])
    split = (
        "the document split varies with the seed (--vary_split)"
        if ablate.get("vary_split")
        else "one document split for every seed"
    )
    return (
        "What removing next-sentence prediction does, measured on this corpus and budget. Rows are pretraining arms "
        "(objective:format), then references that need no model, scored on the same examples; MLM, NSP and SOP are "
        "held-out intrinsic scores; the other columns are fine-tuned downstream tasks. Each cell: mean over "
        f"{len(seeds)} pretraining seed(s) (of the median over {ablate.get('finetune_seeds', 1)} fine-tuning seeds "
        "downstream) in %, and its 95% interval from a bootstrap that resamples documents and pretraining seeds, "
        f"the same draw for every row ({split}). *At chance*: a label column's Matthews correlation interval "
        "reaches 0 (table below); an entity column's paired difference with its best reference reaches 0. Bold: "
        "every paired difference with another arm excludes 0. There is no average column."
    )


def data_setting(data: dict, key: str):
    """An option of the recorded DataArguments, flat (nsptask 0.1) or in its option groups (instances, split, ...)."""
    if key in data:
        return data[key]
    return next((group[key] for group in data.values() if isinstance(group, dict) and key in group), None)


def _settings_lines(results: dict) -> list[str]:
    config, timing = results["config"], results["timing"] or {}
    ablate, recorded = config.get("ablate", config), config.get("data", {})
    data = {k: data_setting(recorded, k) for k in ("corpus", "validation_fraction", "split_seed", "max_seq_length")}
    model = ablate.get("model_name_or_path") or f"{ablate.get('model_family')} preset {ablate.get('preset')}"
    return [
        f"- corpus: {', '.join(data.get('corpus') or []) or 'bundled English Wikipedia sample (103 articles)'}; "
        f"held-out documents: {data.get('validation_fraction')} (split seed {data.get('split_seed')})",
        f"- model: {model}; tokens per arm (budget): {ablate.get('token_budget', 0):,}; updates "
        f"{config.get('updates')}; length {data.get('max_seq_length')}; learning rate {ablate.get('learning_rate')}",
        f"- seeds: {ablate.get('seeds')}; downstream: {', '.join(results['tasks']) or '-'}, "
        f"{ablate.get('finetune_seeds', 1)} fine-tuning seed(s), {ablate.get('finetune_epochs')} epochs, learning "
        f"rate {ablate.get('finetune_learning_rate')}, length {ablate.get('downstream_max_seq_length')}",
        f"- wall time: {timing.get('wall_seconds', 0) / 60:.1f} min over {timing.get('sessions', 0)} completed "
        f"session(s) (the finished steps' own times add up to {timing.get('step_seconds', 0) / 60:.1f} min); peak "
        f"memory {timing.get('peak_rss_mb', 0):,.0f} MB; on {platform.processor() or platform.machine()} "
        f"({timing.get('cpus') or os.cpu_count()} CPUs, {timing.get('processes', 1)} training process(es))",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in _versions().items()),
    ]


READING = [
    "- **MLM**: accuracy of the masked-token predictions on held-out documents, every arm on the same single-segment "
    "blocks (`doc-sentences`) with the same masks, a format that favours no arm; the budget table gives each arm's "
    "MLM in its own format. **NSP** / **SOP**: the same held-out pairs for every arm, with the arm's own sentence "
    "head where it was trained for that task, otherwise a fresh head trained briefly with the encoder frozen (so the "
    "NSP arm is scored on SOP and the SOP arm on NSP, as in ALBERT).",
    "- Downstream corpus probes (docs/study.md), from documents held out of pretraining and split again by document: "
    "*segment tagging* (whole sentences that may switch to another article; each sentence one entity, L or R; R F1 "
    "the headline; the closest to NSP, since the switch is to another document), *sentence position* (DiscoEval SP: "
    "which of five sentences was moved to the front), *coherence* (DiscoEval DC: one of six sentences replaced, from "
    "the same article or another), *connective* (DisSent: the connective removed from the second sentence). User "
    "tasks (`--task_files`) are scored on their test file.",
    "- References without a model: *majority class* (the training split's most frequent label), *word overlap* (a "
    "logistic regression on IDF-weighted word-piece overlaps between the example's sentences: what topic alone "
    "gets), and for segment tagging *all-L*, a *position prior* and an *overlap rule* (the switch at the boundary of "
    "least overlap).",
]


def _report_lines(root: Path, results: dict, summary: dict, statements: list[str], plots, plot_note) -> list[str]:
    """The lines of ``report.md`` up to the side-by-side comparisons."""
    ablate = results["config"].get("ablate", results["config"])
    expected = len(ablate.get("arms", [])) * len(ablate.get("seeds", []))
    finished = len(results["runs"])
    mcc = _mcc_table(summary) if summary["columns"] else ""
    lines = [
        f"# nsptask study: {root.name}",
        "",
        _intro(results),
        "",
        _markdown_table(summary) if summary["columns"] else "_No finished run yet._",
        "",
        *(
            ["Matthews correlation (0 = chance, whatever the label balance), same bootstrap:", "", mcc, ""]
            if mcc
            else []
        ),
        f"Runs finished: {finished} of {expected or '?'}"
        + (
            " (partial study: re-run `nsptask ablate` with the same options to continue)."
            if finished < expected
            else "."
        ),
        "",
        "## What this run shows",
        "",
        *[f"- {s}" for s in statements],
        "",
        *(_segment_lines(results) + [""] if summary["columns"] else []),
        "## Budget",
        "",
        *(_budget_lines(results, summary, results["config"]) if summary["rows"] else []),
        "",
        "## How to read it",
        "",
        *READING,
        "- Sample sizes: " + "; ".join(_samples_lines(summary)) + ".",
        "",
        "## Settings",
        "",
        *_settings_lines(results),
        "",
        "Per run and seed: `results.json`, `results.csv`."
        + (" Plots: " + ", ".join(f"[{p}]({p})" for p in plots) if plots else f" {plot_note}"),
        "",
    ]
    for p in plots:
        lines += [f"![{p}]({p})", ""]
    return lines
