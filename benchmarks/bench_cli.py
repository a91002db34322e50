"""How long ``nsptask COMMAND --help`` takes, each in a fresh process (what a user waits for), against
``python -c pass`` in the same run (the interpreter's own start-up). Target: under 2 s.

    python benchmarks/bench_cli.py      # ~1 minute; writes benchmarks/results_cli.json
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPEATS = 3


def _seconds(args: list[str]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 3)


def main() -> None:
    from nsptask.cli import COMMANDS

    cli = [sys.executable, "-c", "import sys; from nsptask.cli import main; sys.exit(main(sys.argv[1:]))"]
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}, "repeats": REPEATS}
    results["python_startup_s"] = _seconds([sys.executable, "-c", "pass"])
    results["help_s"] = {"(top level)": _seconds([*cli, "--help"])}
    for command in COMMANDS:
        results["help_s"][command] = _seconds([*cli, command, "--help"])
    slowest = max(results["help_s"].values())
    results["slowest_help_s"] = slowest
    results["all_under_2s"] = slowest < 2.0
    text = json.dumps(results, indent=2)
    print(text)
    (Path(__file__).parent / "results_cli.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
