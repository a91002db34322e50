"""The study's intervals: paired across arms, clustered by document, MCC for chance (docs/study.md)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import matthews_corrcoef

from nsptask.intervals import Records, compare, statistic


def _label_records(correct_by_seed: dict[int, np.ndarray], documents, labels=None) -> Records:
    runs = {}
    for seed, correct in correct_by_seed.items():
        truth = labels if labels is not None else np.zeros(len(correct), int)
        runs[seed] = [{"labels": truth, "predictions": np.where(correct, truth, 1 - truth)}]
    return Records("label", runs, np.asarray(documents))


def test_a_constant_difference_on_correlated_examples_is_separated_only_by_the_paired_interval():
    """Arm B is arm A with 1% of the examples turned right: every other example's outcome is shared (correlated),
    so an unpaired interval of the difference (from the arms' own intervals, as if drawn independently) reaches 0
    while the paired difference is clearly above 0."""
    rng = np.random.default_rng(0)
    n, documents = 2000, np.arange(2000)
    a = rng.random(n) < 0.6
    b = a.copy()
    b[np.flatnonzero(~a)[:20]] = True
    result = compare({"a": _label_records({1: a}, documents), "b": _label_records({1: b}, documents)}, "accuracy")
    cells, difference = result["cells"], result["differences"][("a", "b")]
    assert cells["b"]["low"] < cells["a"]["high"]  # the arms' own intervals overlap
    half = {k: (cells[k]["high"] - cells[k]["low"]) / 2 for k in ("a", "b")}
    assert np.hypot(half["a"], half["b"]) > 0.01 * 2  # unpaired: the difference's interval would reach 0
    assert difference["separated"] and difference["high"] < 0  # b - a = +0.01, shown by the pairing
    assert difference["mean"] == pytest.approx(-0.01)


def test_documents_are_the_clusters_so_copies_of_an_example_add_no_evidence():
    """Each document's examples share one outcome. Resampling documents gives the interval of 40 independent
    outcomes, however many examples each document has; resampling examples (one per "document") would not."""
    rng = np.random.default_rng(1)
    outcome = rng.random(40) < 0.5
    per_doc = 25
    clustered = _label_records({1: np.repeat(outcome, per_doc)}, np.repeat(np.arange(40), per_doc))
    naive = _label_records({1: np.repeat(outcome, per_doc)}, np.arange(40 * per_doc))
    small = _label_records({1: outcome}, np.arange(40))

    def width(records):
        cell = compare({"arm": records}, "accuracy")["cells"]["arm"]
        return cell["high"] - cell["low"]

    assert width(clustered) == pytest.approx(width(small), rel=0.2)
    assert width(clustered) > 3 * width(naive)  # the example-level interval would be about 5x too narrow


def test_pretraining_seeds_are_resampled_together_for_every_arm():
    """Two arms that differ only by seed-to-seed noise shared between them (the same init per seed) are not
    separated by noise, and a seed-level shift common to both arms does not widen their paired difference."""
    rng = np.random.default_rng(2)
    n, documents = 1000, np.arange(1000)
    base = rng.random(n)
    arms = {}
    for name, shift in (("a", 0.0), ("b", 0.03)):
        arms[name] = _label_records({s: base < 0.5 + s * 0.1 + shift for s in (1, 2, 3)}, documents)
    result = compare(arms, "accuracy")
    difference = result["differences"][("a", "b")]
    assert result["seeds"] == [1, 2, 3] and difference["separated"]
    assert difference["high"] - difference["low"] < 0.05  # the seed shift (0.1 per seed) cancels in the pairing
    cell = result["cells"]["a"]
    assert cell["high"] - cell["low"] > 0.1  # while each arm's own interval carries it


def test_mcc_is_chance_for_a_constant_prediction_however_imbalanced():
    labels = np.array([1] * 650 + [0] * 350)
    constant = {"labels": labels, "predictions": np.ones_like(labels)}
    ones = np.ones((1, len(labels)))
    assert statistic("accuracy", constant, ones)[0] == pytest.approx(0.65)  # the majority class...
    assert statistic("mcc", constant, ones)[0] == 0.0  # ...is no skill
    rng = np.random.default_rng(3)
    predictions = np.where(rng.random(len(labels)) < 0.7, labels, 1 - labels)
    record = {"labels": labels, "predictions": predictions}
    assert statistic("mcc", record, ones)[0] == pytest.approx(matthews_corrcoef(labels, predictions))
    three = {"labels": rng.integers(3, size=300), "predictions": rng.integers(3, size=300)}
    assert statistic("mcc", three, np.ones((1, 300)))[0] == pytest.approx(
        matthews_corrcoef(three["labels"], three["predictions"])
    )
    assert statistic("balanced_accuracy", constant, ones)[0] == pytest.approx(0.5)


def test_the_f1_of_entities_is_seqevals_micro_f1_of_the_resampled_examples():
    counts = np.array([[1, 0, 0], [0, 1, 1], [2, 1, 0]])
    f1 = statistic("f1", {"counts": counts}, np.ones((1, 3)))[0]
    assert f1 == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    twice_first = statistic("f1", {"counts": counts}, np.array([[2.0, 1.0, 0.0]]))[0]
    assert twice_first == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))


def test_arms_scored_on_other_examples_are_not_compared():
    a = _label_records({1: np.ones(10, bool)}, np.arange(10))
    b = _label_records({1: np.ones(10, bool)}, np.arange(1, 11))
    with pytest.raises(ValueError, match="other examples"):
        compare({"a": a, "b": b}, "accuracy")
