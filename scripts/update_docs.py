"""Write the figures of README.md and docs/*.md from the files the repo's scripts produce.

Every figure in the docs sits between markers ``<!-- nsptask:NAME -->`` and ``<!-- /nsptask:NAME -->`` and is
rendered here from a JSON file: the default study's ``docs/results/default/results.json`` (written by ``nsptask
ablate``), the long study's ``docs/results/long/results.json``, and the benchmarks' ``benchmarks/results_*.json``.
``tests/test_docs.py`` renders them again and fails when a doc differs, so no figure is typed in by hand or left
behind by a re-run.

    python scripts/update_docs.py            # rewrite the marked blocks in place
    python scripts/update_docs.py --check    # exit 1 if a block is out of date
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from nsptask.report import data_setting, legacy_table

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STUDY = ROOT / "docs" / "results" / "default" / "results.json"
LONG_STUDY = ROOT / "docs" / "results" / "long" / "results.json"
LEARNABILITY = ROOT / "docs" / "results" / "learnability.json"
BUILD = ROOT / "benchmarks" / "results_build.json"
SCALE = ROOT / "benchmarks" / "results_scale.json"
PRETRAIN = ROOT / "benchmarks" / "results_pretrain.json"
CLI = ROOT / "benchmarks" / "results_cli.json"
STUDY_TIME = ROOT / "benchmarks" / "results_study.json"
TERMINAL = {
    "ablate": ROOT / "docs" / "results" / "default" / "terminal.txt",
    "build": ROOT / "docs" / "results" / "build_terminal.txt",
}


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _table(results: dict) -> str:
    from nsptask.report import _markdown_table

    return _markdown_table(results["summary"])


def _mcc(results: dict) -> str:
    from nsptask.report import _mcc_table

    return _mcc_table(results["summary"])


def _time_taken(timing: dict) -> str:
    wall, steps = timing.get("wall_seconds", 0), timing.get("step_seconds", 0)
    if steps > wall * 1.05:  # sessions that were killed left no wall time: count the finished steps' own times
        return (
            f"at least {steps / 60:.1f} min (the finished steps' own times, summed: the run was interrupted and resumed, "
            f"{timing.get('sessions', '?')} session(s) completed)"
        )
    return f"{wall / 60:.1f} min wall time"


def _study_lines(results: dict, name: str) -> list[str]:
    timing = results.get("timing") or {}
    config = results.get("config", {})
    ablate, data = config.get("ablate", {}), config.get("data", {})
    tokens = [t for r in results["summary"]["rows"] for t in r["budget"]["tokens"] if t]
    return [
        f"{name}: {ablate.get('model_family', 'bert')} `{ablate.get('preset')}` preset, "
        f"{ablate.get('token_budget', 0):,} tokens per arm ({config.get('updates')} updates; measured "
        f"{min(tokens):,}–{max(tokens):,}), seeds {ablate.get('seeds')}, {ablate.get('finetune_seeds', 1)} "
        f"fine-tuning seeds per downstream task, length {data_setting(data, 'max_seq_length')}, "
        + _time_taken(timing)
        + f" and {timing.get('peak_rss_mb', 0):,.0f} MB peak memory on {timing.get('cpus', '?')} CPU cores. Cells: "
        "mean over pretraining seeds (of the median over fine-tuning seeds) in %, with a 95% interval from a bootstrap "
        "that resamples documents and seeds, the same draw for every row; *at chance* is decided on the Matthews "
        "correlation (label columns) or on the paired difference with the best reference (segment tagging).",
    ]


def render_results_table() -> str:
    results = _load(DEFAULT_STUDY)
    if results is None:
        return "_The default study has not been run yet: `nsptask ablate`._"
    lines = [*_study_lines(results, "`nsptask ablate` with its defaults (bundled corpus)"), "", _table(results), ""]
    mcc = _mcc(results)
    if mcc:
        lines += ["Matthews correlation (0 = chance):", "", mcc, ""]
    lines += [f"- {s}" for s in results.get("findings", [])]
    return "\n".join(lines)


def render_long_study() -> str:
    """The long run predates the probes: only its intrinsic columns (MLM, NSP, SOP) are shown."""
    results = _load(LONG_STUDY)
    if results is None:
        return "_The long study has not been run yet._"
    timing = results.get("timing") or {}
    config = results.get("config", {})
    ablate = config.get("ablate", {})
    lines = [
        f"The long run (nsptask 0.1): bert `{ablate.get('preset')}` preset, {ablate.get('token_budget', 0):,} tokens "
        f"per arm ({config.get('updates')} updates), seeds {ablate.get('seeds')}, {_time_taken(timing)} on "
        f"{timing.get('cpus', '?')} CPU cores. Its intrinsic columns, in %, with the 95% interval of that version "
        "(a bootstrap over examples and seeds, not clustered by document); *at chance* there meant the interval "
        "reached the majority class (majority row below). Its downstream columns repeated the objectives and are "
        "left out.",
        "",
    ]
    return "\n".join(lines) + "\n" + legacy_table(results)


def render_learnability() -> str:
    data = _load(LEARNABILITY)
    if data is None:
        return "_Run `python scripts/learnability.py`._"
    rows = [
        "| probe | MiniLM fine-tuned | best reference (no model) | difference (paired) | test examples (documents) "
        "| training examples, epochs, learning rate, tokens |",
        "|---|---|---|---|---|---|",
    ]
    earlier = []
    for task, run in data["runs"].items():
        model, best, difference, beats = _learnability_figures(run)
        rows.append(
            f"| {task} ({run['statistic']}) | {model} | {best} | {difference}, {beats} | "
            f"{run['test_examples']} ({run['test_documents']}) | {_budget(run['budget'])} |"
        )
        for old in run.get("earlier", []):
            model, best, difference, beats = _learnability_figures(old)
            earlier.append(
                f"- {task} at {_budget(old['budget'], words=True)}: MiniLM {model}; {best}; difference {difference}, {beats} "
                f"({_made_at(old['provenance'])})"
            )
    if earlier:
        rows += ["", "Earlier budgets of these probes, each replaced by the row above after its run:", "", *earlier]
    return "\n".join(rows)


def _learnability_figures(run: dict) -> tuple[str, str, str, str]:
    """A learnability run's MiniLM cell (with MCC for label probes), its best reference, the paired difference
    with that reference and whether the encoder is above every reference."""
    cells, differences = run["cells"], run["differences"]
    best = max(differences, key=lambda r: cells[r]["mean"])
    d = differences[best]
    model = cells["MiniLM fine-tuned"]
    mcc = f", MCC {model['mcc']['mean']:.2f}".replace("-0.00", "0.00") if "mcc" in model else ""
    beats = "above every reference" if run["beats_every_reference"] else "not above every reference"
    return (
        f"{_pct(model)}{mcc}",
        f"{best}: {_pct(cells[best])}",
        f"{d['mean'] * 100:+.1f} ({d['low'] * 100:+.1f} to {d['high'] * 100:+.1f})",
        beats,
    )


def _made_at(provenance: dict) -> str:
    if provenance.get("committed_in"):
        return f"figures added in {provenance['committed_in']}"
    changed = provenance.get("uncommitted_changes") or []
    dirty = f", with uncommitted changes to {', '.join(changed)}" if changed else ""
    return f"run at commit {(provenance.get('commit') or '?')[:7]}{dirty}"


def _budget(budget: dict, words: bool = False) -> str:
    if words:
        return (
            f"{budget['train_examples']} training examples, {budget['epochs']:g} epoch(s), learning rate "
            f"{budget['learning_rate']:g}, {budget['max_seq_length']} tokens"
        )
    return f"{budget['train_examples']}, {budget['epochs']:g}, {budget['learning_rate']:g}, {budget['max_seq_length']}"


def _pct(cell: dict) -> str:
    return f"{cell['mean'] * 100:.1f} ({cell['low'] * 100:.1f}–{cell['high'] * 100:.1f})"


def render_build_speed() -> str:
    data = _load(BUILD)
    if data is None:
        return "_Run `python benchmarks/bench_build.py`._"
    runs, ratios = data["runs"], data["ratios"]
    rows = ["| run | corpus | instances/s | tokens/s | whole-tree peak memory |", "|---|---|---|---|---|"]
    labels = {"threads": "one process, tokenizer threads", "np1": "num_proc 1 (one core)", "np2": "num_proc 2"}
    for name in ("x1", "x10"):
        rows.append(
            f"| reference-style baseline | {name} | {runs[f'baseline_{name}']['instances_per_s']:,} | "
            f"{runs[f'baseline_{name}']['tokens_per_s']:,} | {runs[f'baseline_{name}']['tree_peak_mb']:,.0f} MB |"
        )
        for backend in ("hf", "tokie"):
            for key, label in labels.items():
                run = runs.get(f"nsptask_{backend}_{name}_{key}")
                if run:
                    rows.append(
                        f"| nsptask `{backend}`, {label} | {name} | {run['instances_per_s']:,} | "
                        f"{run['tokens_per_s']:,} | {run['tree_peak_mb']:,.0f} MB |"
                    )
        run = runs[f"nsptask_streaming_{name}"]
        rows.append(
            f"| nsptask streaming (`hf`) | {name} | {run['instances_per_s']:,} | {run['tokens_per_s']:,} | "
            f"{run['tree_peak_mb']:,.0f} MB |"
        )
    identical = data["instances_identical_across_num_proc_and_backends"]
    rows += [
        "",
        f"Ratios (x10): 2 processes vs 1, `hf` {ratios['np2_vs_np1_hf_x10']}x and `tokie` "
        f"{ratios.get('np2_vs_np1_tokie_x10', '-')}x; 2 processes vs one process with tokenizer threads, `hf` "
        f"{ratios['np2_vs_threads_hf_x10']}x; whole-tree memory 2 processes vs 1, `hf` "
        f"{ratios['tree_memory_np2_vs_np1_hf_x10']}x, `tokie` {ratios.get('tree_memory_np2_vs_np1_tokie_x10', '-')}x. "
        f"nsptask's fastest setting on {data['machine']['cpus']} cores vs the one-process baseline: `hf` "
        f"{ratios['hf_best_vs_baseline_x10']}x, `tokie` {ratios.get('tokie_best_vs_baseline_x10', '-')}x. The "
        f"tokenizers library alone, encoding the same sentences, takes "
        f"{ratios['hf_threads_time_in_tokenizers_library_x10']:.0%} of the `hf` build's time with its threads and "
        f"{ratios['hf_np1_time_in_tokenizers_library_x10']:.0%} on one core. Streaming memory x10 vs x1: "
        f"{ratios['streaming_tree_memory_x10_vs_x1']}x. Same instances (hash of every id and label) for every "
        f"`num_proc` and backend: x1 {identical['x1']}, x10 {identical['x10']}.",
    ]
    return "\n".join(rows)


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def render_scale() -> str:
    data = _load(SCALE)
    if data is None:
        return "_Run `python benchmarks/bench_scale.py`._"
    runs, ratios, same = data["runs"], data["ratios"], data["same_instances"]
    cores = data["machine"]["cpus"]

    def dask_row(name: str) -> str:
        run = runs[f"dask_{name}_2workers"]
        return (
            f"| {name}, Dask engine, 2 workers | {run['seconds']} s | {run['tree_peak_mb']:,.0f} MB | "
            f"{run['peak_mb_per_worker']:,.0f} MB ({run['peak_growth_mb_per_worker']:,.0f} MB over the worker's "
            f"{run['worker_mb_after_imports']:,.0f} MB after imports) |"
        )

    rows = [
        "| run (Wikipedia-style multistream dump) | wall time | whole-tree peak memory | peak memory per worker |",
        "|---|---|---|---|",
        f"| x10, num_proc 1 | {runs['single_x10_np1']['seconds']} s | {runs['single_x10_np1']['tree_peak_mb']:,.0f} MB | - |",
        f"| x10, num_proc 2 | {runs['single_x10_np2']['seconds']} s | {runs['single_x10_np2']['tree_peak_mb']:,.0f} MB | - |",
        dask_row("x10"),
        dask_row("x100"),
        "",
        f"Ratios: 2 processes vs 1 on the dump {ratios['wikipedia_np2_vs_np1_speed']}x; the Dask engine (2 workers) vs "
        f"the single-machine build (num_proc 2) {ratios['dask_2workers_vs_single_np2_speed']}x; peak memory per Dask "
        f"worker, x100 vs x10 corpus: {ratios['dask_worker_memory_x100_vs_x10']}x (flat, <= 1.2x: "
        f"{data['dask_worker_memory_flat']}). Same instances: num_proc 1 vs 2 {same['np1_vs_np2']}, Dask vs single "
        f"machine {same['dask_vs_single']}. Measured on {cores} CPU cores.",
    ]
    x10 = runs["single_x10_np2"]
    mb = data["dump_bytes"]["x10"] / 2**20
    per_core = mb / (x10["seconds"] * 2)  # compressed MB per core-second, with 2 processes
    dask_per_core = data["dump_bytes"]["x100"] / 2**20 / (runs["dask_x100_2workers"]["seconds"] * 2)
    scaling = ratios["wikipedia_np2_vs_np1_speed"]
    held = (
        f"2 processes were {scaling}x as fast as 1 here"
        + (", so the per-core rate held from 1 to 2 cores" if scaling >= 1.8 else ", below the 2x of a held rate")
        + "; larger machines are not measured"
    )
    rows += [
        "",
        f"An extrapolation, not a measurement: assuming English Wikipedia's multistream dump is about 22 GB "
        f"compressed, at the measured {per_core:.2f} MB of compressed dump per core-second (read, parse, split, "
        f"tokenize, pair) one 64-core machine would need about {_duration(22 * 1024 / (per_core * 64))}, if the "
        f"per-core rate holds ({held}). Across machines the Dask engine's rate applies: at its measured "
        f"{dask_per_core:.2f} MB per worker-second (x100), 8 such machines would need about "
        f"{_duration(22 * 1024 / (dask_per_core * 512))}, not counting the client's global shuffle and pool "
        f"assignment, which these runs do not measure at that scale.",
    ]
    return "\n".join(rows)


def render_pretrain_speed() -> str:
    data = _load(PRETRAIN)
    if data is None:
        return "_Run `python benchmarks/bench_pretrain.py`._"
    rows = ["| measure | nsptask | baseline | ratio |", "|---|---|---|---|"]
    for row in data["table"]:
        rows.append(f"| {row['measure']} | {row['nsptask']} | {row['baseline']} | {row['ratio']} |")
    return "\n".join(rows)


def render_accumulation() -> str:
    data = _load(PRETRAIN)
    if data is None:
        return "_Run `python benchmarks/bench_pretrain.py`._"
    acc = data["accumulation"]
    rows = [
        "| family | head | largest weight update | largest difference, 8 x 2 vs 16 x 1 | update norm ratio |",
        "|---|---|---|---|---|",
    ]
    for key, value in acc.items():
        if not isinstance(value, dict):
            continue
        if key.startswith("control_"):
            family, head = "control: stock `Trainer`, `BertForPreTraining`", "dense"
        else:
            family, head = key.rsplit("_", 1)
        rows.append(
            f"| {family} | {head} | {value['largest_update']:.3g} | {value['max_abs_difference']:.2g} | "
            f"{value['update_norm_ratio_accumulated_vs_one_batch']:.6f} |"
        )
    return "\n".join(rows)


def render_study_time() -> str:
    if not STUDY_TIME.exists():
        return "_Run `python benchmarks/bench_study.py --baseline COMMIT`._"
    r = json.loads(STUDY_TIME.read_text())
    before, after = r["baseline"], r["current"]
    return (
        f"The default study took {after['wall_seconds'] / 60:.1f} min against {before['wall_seconds'] / 60:.1f} min for "
        f"the default of commit {before['commit'][:7]}, run just before it on the same machine "
        f"({r['machine']['cpus']} CPUs): {r['ratio']:.2f}x."
    )


def render_cli_help() -> str:
    data = _load(CLI)
    if data is None:
        return "_Run `python benchmarks/bench_cli.py`._"
    slowest = max(data["help_s"], key=data["help_s"].get)
    return (
        f"Each `--help` took at most {data['slowest_help_s']:.2f} s (`{slowest}`; median of {data['repeats']} fresh "
        f"processes, Python's own start-up {data['python_startup_s']:.2f} s; `benchmarks/bench_cli.py`)."
    )


def render_segment_examples() -> str:
    """A window of the segment-tagging task on the bundled corpus that switches, decoded sentence by sentence."""
    from nsptask.arguments import DataArguments
    from nsptask.downstream import build_segment_tagging
    from nsptask.probes import word_tag_rows
    from nsptask.tokenization import default_tokenizer

    tokenizer = default_tokenizer()
    data = build_segment_tagging(DataArguments.from_options(max_seq_length=96), tokenizer)["train"]
    row = next(r for r in data if r["switch"] >= 1 and len(r["sentence_words"]) >= 3)
    ids = row["input_ids"]
    seps = [i for i, t in enumerate(ids) if t == tokenizer.sep_token_id]
    starts = [1, *(s + 1 for s in seps[:-1])]
    tags = word_tag_rows(row["sentence_words"], row["switch"])
    lines = [
        f"A window that switches (`{row['a_doc']}`, then `{row['b_doc']}` from sentence {row['switch'] + 1}; "
        f"{len(ids)} tokens, a separator after every sentence; each sentence one entity, its words tagged):",
        "",
    ]
    first = 0
    for k, (a, b) in enumerate(zip(starts, seps)):
        words = row["sentence_words"][k]
        kind = tags[first][2:]
        lines.append(f"{k + 1}. `{kind}` ({words} words, `B-{kind}` then `I-{kind}`): {tokenizer.decode(ids[a:b])}")
        first += words
    return "\n".join(lines)


def screen_lines(raw: str) -> list[str]:
    """What a terminal shows of a ``script`` capture: escape codes dropped, each carriage-returned line (a progress
    bar's redraws) reduced to its last state."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    lines: list[str] = []
    previous = None
    for line in text.split("\n"):
        states = [part for part in line.split("\r") if part.strip()]
        if not states or states[-1].startswith("Script "):
            continue
        line = states[-1].rstrip()
        bar = re.match(r"^(.*?):?\s*(?:\d+%\||\d+ examples \[)", line)
        if bar and not bar.group(1).strip() and " 0%|" in line:
            continue  # a bar's first draw, before its description is set
        key = bar.group(1) if bar else None
        if key is not None and key == previous:
            lines[-1] = line  # the same bar redrawn on a new line (nested bars move the cursor): keep its last state
        else:
            lines.append(line)
        previous = key
    return lines


def _terminal(name: str, head: int, tail: int) -> str:
    path = TERMINAL[name]
    if not path.exists():
        return f"_Capture `nsptask {name}` with `script` into {path.relative_to(ROOT)}._"
    lines = screen_lines(path.read_text(errors="replace"))
    timed = next((i for i, line in enumerate(lines) if line.strip().startswith("Command being timed")), None)
    lines = lines[:timed]  # the capture ran under /usr/bin/time -v: its figures are in the results, not shown here
    shown = (
        lines
        if len(lines) <= head + tail
        else [*lines[:head], f"... ({len(lines) - head - tail} lines)", *lines[-tail:]]
    )
    return "```text\n" + "\n".join(shown) + "\n```"


def render_ablate_terminal() -> str:
    return _terminal("ablate", 16, 8)


def render_build_terminal() -> str:
    return _terminal("build", 30, 0)


BLOCKS = {
    "results-table": render_results_table,
    "long-study": render_long_study,
    "build-speed": render_build_speed,
    "scale": render_scale,
    "pretrain-speed": render_pretrain_speed,
    "segment-examples": render_segment_examples,
    "cli-help": render_cli_help,
    "study-time": render_study_time,
    "accumulation": render_accumulation,
    "learnability": render_learnability,
    "ablate-terminal": render_ablate_terminal,
    "build-terminal": render_build_terminal,
}
SOURCES = {
    "results-table": "`nsptask ablate --output_dir docs/results/default`",
    "long-study": "the long study (docs/study.md)",
    "build-speed": "`python benchmarks/bench_build.py`",
    "scale": "`python benchmarks/bench_scale.py`",
    "pretrain-speed": "`python benchmarks/bench_pretrain.py`",
    "segment-examples": "`python scripts/update_docs.py`",
    "cli-help": "`python benchmarks/bench_cli.py`",
    "study-time": "`python benchmarks/bench_study.py --baseline COMMIT`",
    "accumulation": "`python benchmarks/bench_pretrain.py`",
    "learnability": "`python scripts/learnability.py`",
    "ablate-terminal": "`script -c 'nsptask ablate --output_dir docs/results/default' docs/results/default/terminal.txt`",
    "build-terminal": "`script -c 'nsptask build --output_dir /tmp/nsp-data' docs/results/build_terminal.txt`",
}
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def update(text: str) -> str:
    for name, render in BLOCKS.items():
        pattern = re.compile(rf"(<!-- nsptask:{name} -->\n).*?(\n<!-- /nsptask:{name} -->)", re.S)
        if pattern.search(text):
            body = _rendered(name, render)
            text = pattern.sub(lambda m, body=body: m.group(1) + body + m.group(2), text)
    return text


def _rendered(name: str, render) -> str:
    """The block's text; a results file from an older version of its script (a missing key) renders as a note to
    re-run that script, never as stale figures."""
    try:
        return render()
    except (KeyError, TypeError, IndexError) as error:
        return f"_The results file for this block is out of date (missing {error}); re-run {SOURCES[name]}._"


def main(argv: list[str] | None = None) -> int:
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    stale = []
    for path in FILES:
        old = path.read_text()
        new = update(old)
        if new != old:
            stale.append(path.name)
            if not check:
                path.write_text(new)
    if check and stale:
        print(f"out of date: {', '.join(stale)} (python scripts/update_docs.py)")
        return 1
    print("updated: " + (", ".join(stale) or "nothing"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
