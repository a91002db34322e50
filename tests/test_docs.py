"""The figures in README.md and docs/ are the ones the repo's scripts wrote: every marked block renders again from
its JSON file (the default study's results.json, the long study's, the benchmarks') to exactly what is written."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _update_docs():
    spec = importlib.util.spec_from_file_location("update_docs", ROOT / "scripts" / "update_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    """README's table is 'nsptask ablate with its defaults': the committed run's study options are the current
    defaults (a changed default without a re-run fails here)."""
    import dataclasses
    import json

    from nsptask.arguments import AblateArguments

    module = _update_docs()
    committed = json.loads(module.DEFAULT_STUDY.read_text())["config"]["ablate"]
    today = dataclasses.asdict(AblateArguments())
    differing = {
        name: (committed.get(name), value)
        for name, value in today.items()
        if name != "output_dir" and committed.get(name) != value
    }
    assert not differing, f"committed default study vs today's defaults: {differing}"


def test_every_default_probe_has_a_committed_run_showing_it_learnt():
    """docs/study.md says the default probes are the ones shown learnable: each has a committed learnability run
    (docs/results/learnability.json) above every reference by a separated paired difference."""
    import json

    from nsptask.arguments import DEFAULT_PROBES

    runs = json.loads(_update_docs().LEARNABILITY.read_text())["runs"]
    for probe in DEFAULT_PROBES:
        assert probe in runs, probe
        assert runs[probe]["beats_every_reference"], (probe, runs[probe]["differences"])
        assert all(d["low"] > 0 for d in runs[probe]["differences"].values()), probe
