"""The figures in README.md and docs/ are the ones the repo's scripts wrote: every marked block renders again from
its JSON file (the default study's results.json, the long study's, the benchmarks') to exactly what is written."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _update_docs():
    return _script("update_docs")


def test_every_figure_block_is_rendered_from_its_file():
    module = _update_docs()
    checked = 0
    for path in module.FILES:
        text = path.read_text()
        assert module.update(text) == text, f"{path.name} is out of date: python scripts/update_docs.py"
        checked += len(re.findall(r"<!-- nsptask:[a-z-]+ -->", text))
    assert checked >= 7


def test_readme_table_is_the_default_study_and_its_sources_exist():
    module = _update_docs()
    readme = (ROOT / "README.md").read_text()
    assert module.DEFAULT_STUDY.exists() and module.LONG_STUDY.exists()
    assert module.render_results_table() in readme
    for source in (module.BUILD, module.SCALE, module.PRETRAIN):
        assert source.exists(), source


def test_the_committed_default_study_ran_with_todays_defaults():
    """README's table is 'nsptask ablate with its defaults': the committed run's study and data options are the
    current defaults (a changed default without a re-run fails here). Data options left unset by default (None)
    are resolved by the run (the length, the split) and not compared."""
    import dataclasses
    import json

    from nsptask.arguments import AblateArguments, DataArguments

    def flat(options: dict, prefix: str = "") -> dict:
        out = {}
        for name, value in options.items():
            out.update(flat(value, f"{prefix}{name}.") if isinstance(value, dict) else {prefix + name: value})
        return out

    module = _update_docs()
    config = json.loads(module.DEFAULT_STUDY.read_text())["config"]
    committed = {**flat(config["ablate"], "ablate."), **flat(config["data"], "data.")}
    today = {
        **flat(dataclasses.asdict(AblateArguments()), "ablate."),
        **flat(DataArguments().to_dict(), "data."),
    }
    differing = {
        name: (committed.get(name), value)
        for name, value in today.items()
        if name != "ablate.output_dir" and value is not None and committed.get(name) != value
    }
    assert not differing, f"committed default study vs today's defaults: {differing}"
    assert set(today) <= set(committed), set(today) - set(committed)


def test_every_default_probe_has_a_committed_run_showing_it_learnt():
    """docs/study.md says the default probes are the ones shown learnable: each has a committed learnability run
    (docs/results/learnability.json) above every reference by a separated paired difference."""
    import json

    from nsptask.arguments import DEFAULT_PROBES

    script = _script("learnability")
    runs = json.loads(script.OUTPUT.read_text())["runs"]
    for probe in DEFAULT_PROBES:
        assert probe in runs, probe
        assert all(d["low"] > 0 for d in runs[probe]["differences"].values()), (probe, runs[probe]["differences"])
        # The committed run is the script's budget for it (what the learnability test runs), not a one-off.
        budget = runs[probe]["budget"]
        wanted = script.BUDGETS[probe]
        assert {k: budget[k] for k in ("epochs", "learning_rate", "max_seq_length")} == {
            k: wanted[k] for k in ("epochs", "learning_rate", "max_seq_length")
        }, probe
        assert budget["train_examples"] == min(wanted["train_examples"], budget["train_examples_available"]), probe
