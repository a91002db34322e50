"""Wall time of the default study (``nsptask ablate`` with its defaults, on the bundled corpus) against the default of
an earlier commit, measured in one run on one machine, one after the other: the earlier commit first (from a git
worktree, in its own process), then this tree, captured as a terminal shows it.

    python benchmarks/bench_study.py --baseline ec1aa02    # ~15 minutes on 2 cores; writes benchmarks/results_study.json

This tree's study goes to ``docs/results/default`` (``--output_dir``) with its terminal capture (``terminal.txt``,
through ``script`` where it exists), keeping what the docs use (report, results, plots, capture) unless
``--keep_study``; ``python scripts/update_docs.py`` renders it and this file. The earlier commit's study goes to a
temporary folder. Nothing else should run meanwhile: two busy processes on 2 cores slow each other several times.
The two runs are not quite alike: both use the default ``datasets`` cache, which the earlier commit's run (first)
may warm for what the two share, and this tree's run draws its bars on a pseudo-terminal (``script``) where the
earlier one writes to none.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "benchmarks" / "results_study.json"


def _commit(ref: str = "HEAD") -> str:
    return subprocess.run(
        ["git", "rev-parse", ref], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def _timing(study: Path) -> dict:
    timing = json.loads((study / "timing.json").read_text())
    return {"wall_seconds": round(timing["wall_seconds"], 1), "peak_rss_mb": round(timing["peak_rss_mb"], 1)}


def _run(code: Path, study: Path, cwd: Path, capture: Path | None = None) -> None:
    """``nsptask ablate --output_dir STUDY`` with the nsptask of `code`, offline; under ``script`` when capturing."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(code)}
    command = [sys.executable, "-m", "nsptask.cli", "ablate", "--output_dir", str(study)]
    if capture is not None and shutil.which("script"):
        shown = f"stty cols 120 rows 40; nsptask ablate --output_dir {study}"
        bin_dir = str(Path(sys.executable).parent)  # the same environment's console script
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
        subprocess.run(["script", "-qfc", shown, str(capture)], cwd=cwd, env=env, check=True, capture_output=True)
    else:
        log = capture.open("w") if capture is not None else subprocess.DEVNULL
        subprocess.run(command, cwd=cwd, env=env, check=True, stdout=log, stderr=subprocess.STDOUT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="The earlier commit whose default study is the baseline.")
    parser.add_argument(
        "--output_dir", default="docs/results/default", help="This tree's study (relative to the repo)."
    )
    parser.add_argument("--keep_study", action="store_true", help="Keep the study's runs (to resume or re-report it).")
    options = parser.parse_args(argv)
    baseline = _commit(options.baseline)
    with tempfile.TemporaryDirectory() as tmp:
        worktree = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(worktree), baseline], cwd=ROOT, check=True)
        try:
            _run(worktree, Path(tmp) / "baseline-study", cwd=Path(tmp))
            before = _timing(Path(tmp) / "baseline-study")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=True)
    study = ROOT / options.output_dir
    shutil.rmtree(study, ignore_errors=True)
    study.mkdir(parents=True)
    _run(ROOT, Path(options.output_dir), cwd=ROOT, capture=study / "terminal.txt")
    after = _timing(study)
    if not options.keep_study:  # what the docs use stays (report, results, plots, capture); the runs' folders go
        for name in ("baselines", "init", "runs", "tokenizer", "study.json", "timing.json"):
            path = study / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "nsptask"], cwd=ROOT, capture_output=True).stdout)
    results = {
        "what": "nsptask ablate with its defaults (bundled corpus), one after the other on one machine",
        "baseline": {"commit": baseline, **before},
        "current": {"commit": _commit(), "uncommitted_changes_in_nsptask": dirty, **after},
        "ratio": round(after["wall_seconds"] / before["wall_seconds"], 3),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
    }
    OUTPUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
