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
