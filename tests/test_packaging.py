"""What nsptask imports is what it declares: every third-party module it imports is a base dependency (imported at
module level) or in an extra (imported where it is used, with a message when missing), and every base dependency is
imported somewhere."""

from __future__ import annotations

import ast
import configparser
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Import names that differ from their distribution's name.
DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "distributed": "dask",
    "mwparserfromhell": "mwparserfromhell",
}


def _requirements(text: str) -> set[str]:
    names = set()
    for line in text.strip().splitlines():
        line = line.strip()
        if line:
            names.add(re.split(r"[<>=!;\[ ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def _declared() -> tuple[set[str], set[str]]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    base = _requirements(config["options"]["install_requires"])
    extras = set()
    for name, value in config["options.extras_require"].items():
        if name != "test":
            extras |= _requirements(value)
    return base, extras


def _imports() -> tuple[set[str], set[str]]:
    """Third-party top-level modules nsptask imports: (at module level, anywhere)."""
    top, anywhere = set(), set()
    for path in (ROOT / "nsptask").rglob("*.py"):
        tree = ast.parse(path.read_text())
        module_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module.split(".")[0]]
            else:
                continue
            for name in names:
                if name in sys.stdlib_module_names or name in ("nsptask", "__future__"):
                    continue
                dist = DISTRIBUTIONS.get(name, name).lower().replace("_", "-")
                anywhere.add(dist)
                if id(node) in module_level:
                    top.add(dist)
    return top, anywhere


def test_every_imported_module_is_declared_and_every_base_dependency_is_used():
    base, extras = _declared()
    top, anywhere = _imports()
    assert top <= base, f"imported at module level but not a base dependency: {sorted(top - base)}"
    assert anywhere <= base | extras, f"imported but declared nowhere: {sorted(anywhere - base - extras)}"
    assert base <= anywhere, f"declared but never imported: {sorted(base - anywhere)}"
    assert {"huggingface-hub", "safetensors", "tokie"} <= base and "tensorboard" in extras
