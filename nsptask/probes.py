"""Corpus probes: downstream tasks made from held-out documents that are not the pretraining objectives.

Every probe is built from the task splits of :func:`nsptask.downstream.task_documents` (documents held out of
pretraining, split again by document), so no document is in two task splits, and each example records the
document(s) it came from (``a_doc``, ``b_doc``: the clusters of the study's bootstrap). Inputs are whole sentences
with every boundary visible to the model (the tokenizer's separator between sentences).

| task | from (anchor) | example | labels | topic cue by design |
|---|---|---|---|---|
| ``sentence-position`` | DiscoEval SP | five consecutive sentences, one moved to the front | its original position (5) | none: one document |
| ``coherence-other-document`` | DiscoEval DC | six consecutive sentences, maybe one replaced by another article's | coherent / replaced | strong: another topic |
| ``coherence-same-document`` | DC, same-document variant | the same, the replacement from far away in the same article | coherent / replaced | weaker: one article |
| ``connective`` | DisSent | two consecutive sentences, the connective opening the second removed | which of the 5 most frequent | none |
| ``segment-tagging`` | (nsptask) | consecutive sentences that may switch to another article | each sentence ``L`` or ``R`` (seqeval) | a boundary rule |

"By design" is the intent, not a measurement: word overlap is above the majority class on sentence position and on
same-document coherence too (its cells in docs/results/learnability.json), so the report's
references, not this column, say what topic gets.

Each probe has a word-overlap reference that needs no model (:func:`overlap_predictions`): a logistic regression on
the IDF-weighted word-piece overlaps between the example's sentences, fit on the task's training split (for segment
tagging, an overlap rule and a position prior), scored on the test split exactly as the models are.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np
from seqeval.metrics.sequence_labeling import get_entities
from sklearn.linear_model import LogisticRegression

from .instances import SequenceTemplate, document_seed
from .tokenization import continuation_flags, needs_prefix_space, plain_backend

__all__ = [
    "PROBES",
    "SEGMENT_LABELS",
    "CONNECTIVES",
    "build_probe",
    "overlap_predictions",
    "segment_baselines",
    "word_tag_rows",
    "decode_sentences",
    "segment_window_scores",
]

SEGMENT_LABELS = ["O", "B-L", "I-L", "B-R", "I-R"]
# DisSent's markers (Nie, Bennett and Goodman, 2019) and the sentence-initial connectives common in encyclopaedic text.
CONNECTIVES = (
    "however", "but", "because", "so", "then", "also", "still", "although", "though", "while", "when", "before",
    "after", "if", "as", "and", "for example", "in addition", "as a result", "therefore", "thus", "meanwhile",
    "instead", "finally", "later", "in fact", "moreover", "furthermore", "nevertheless", "consequently",
)  # fmt: skip
CONNECTIVE_CLASSES = 5  # the most frequent connectives of the training split (DisSent's smallest set has 5)
PROBES = ("segment-tagging", "sentence-position", "coherence-other-document", "coherence-same-document", "connective")


@dataclass
class _Pieces:
    """What a probe reads from a tokenizer, read once per probe: its sequence template, special ids, which pieces continue a
    word, a plain backend (no truncation, no padding) and the space a sentence after the first keeps (byte-level
    BPE)."""

    template: SequenceTemplate
    special: set[int]
    continues: np.ndarray
    backend: Any
    prefix: str

    @classmethod
    def of(cls, tokenizer) -> _Pieces:
        template = SequenceTemplate.of(tokenizer)
        backend, spaced, continues = (
            plain_backend(tokenizer),
            needs_prefix_space(tokenizer),
            continuation_flags(tokenizer),
        )
        special = {int(i) for i in tokenizer.all_special_ids if i is not None}
        return cls(template, special, continues, backend, " " if spaced else "")


@dataclass
class _Document:
    doc_id: str
    sentences: list[np.ndarray]


def _documents(split) -> list[_Document]:
    """A task split's tokenized documents as lists of sentence token arrays."""
    table = split.with_format("arrow")[:]
    out = []
    for doc_id, ids, lengths in zip(
        table["doc_id"].to_pylist(), table["input_ids"].to_pylist(), table["sentence_lengths"].to_pylist()
    ):
        bounds = np.cumsum([0, *lengths])
        tokens = np.asarray(ids, dtype=np.int64)
        out.append(_Document(doc_id, [tokens[bounds[i] : bounds[i + 1]] for i in range(len(lengths))]))
    return out


class _Overlap:
    """IDF-weighted Jaccard overlap of the word-piece sets of two sentences; the IDF over the training split's
    sentences (special tokens left out)."""

    def __init__(self, documents: list[_Document], special: set[int]):
        counts: Counter = Counter()
        total = 0
        for doc in documents:
            for sentence in doc.sentences:
                counts.update(set(sentence.tolist()) - special)
                total += 1
        self.special = special
        self.idf = {token: float(np.log((total + 1) / (c + 1))) for token, c in counts.items()}
        self.default = float(np.log(total + 1))

    def __call__(self, a: np.ndarray, b: np.ndarray) -> float:
        sa, sb = set(a.tolist()) - self.special, set(b.tolist()) - self.special
        union = sa | sb
        if not union:
            return 0.0
        weight = lambda pieces: sum(self.idf.get(t, self.default) for t in pieces)  # noqa: E731
        return weight(sa & sb) / weight(union)


def _encode_sentences(sentences: list[np.ndarray], template: SequenceTemplate, max_length: int):
    """``[CLS] s1 [SEP] s2 [SEP] ... sN [SEP]`` in the tokenizer's pair template (segment 0 up to the first
    separator, 1 after it), each sentence cut to an equal share of the length if they do not fit."""
    n = len(sentences)
    framing = len(template.pair_prefix) + len(template.pair_suffix) + (n - 1) * len(template.pair_middle)
    budget = max_length - framing
    cap = budget // n
    if sum(len(s) for s in sentences) <= budget:
        cut = sentences
    else:
        cut = [s[:cap] for s in sentences]
    truncated = sum(len(s) - len(c) for s, c in zip(sentences, cut))
    ids = list(template.pair_prefix) + cut[0].tolist() + list(template.pair_middle)
    types = [0] * len(ids)
    for k, sentence in enumerate(cut[1:], start=1):
        part = sentence.tolist() + list(template.pair_middle if k < n - 1 else template.pair_suffix)
        ids += part
        types += [1] * len(part)
    return ids, types, truncated


def _sentence_position(doc: _Document, rng: random.Random, other, split_docs, overlap, window: int = 5):
    """DiscoEval's SP: `window` consecutive sentences, one (uniformly chosen) moved to the front; the label is its
    original position (0 = nothing moved)."""
    for start in range(0, len(doc.sentences) - window + 1, window):
        sentences = doc.sentences[start : start + window]
        moved = rng.randrange(window)
        order = [moved] + [i for i in range(window) if i != moved]
        shown = [sentences[i] for i in order]
        rest = shown[1:]
        features = [overlap(shown[0], r) for r in rest] + [overlap(a, b) for a, b in zip(rest, rest[1:])]
        yield shown, str(moved), doc.doc_id, doc.doc_id, features


def _coherence(same_document: bool):
    """DiscoEval's DC: six consecutive sentences; in half of the examples one (uniformly chosen) is replaced by a
    sentence of another document of the split, or (`same_document`) of the same document, at least three sentences
    away from the window."""

    def build(doc: _Document, rng: random.Random, other: random.Random, split_docs, overlap, window: int = 6):
        for start in range(0, len(doc.sentences) - window + 1, window):
            sentences = list(doc.sentences[start : start + window])
            label, source = "coherent", doc.doc_id
            if rng.random() < 0.5:
                position = rng.randrange(window)
                if same_document:
                    far = [i for i in range(len(doc.sentences)) if i < start - 3 or i >= start + window + 3]
                    if far:
                        sentences[position] = doc.sentences[other.choice(far)]
                        label = "replaced"
                else:
                    candidates = [d for d in split_docs if d.doc_id != doc.doc_id and d.sentences]
                    donor = candidates[other.randrange(len(candidates))]
                    sentences[position] = donor.sentences[other.randrange(len(donor.sentences))]
                    label, source = "replaced", donor.doc_id
            mean = [np.mean([overlap(s, t) for t in sentences if t is not s]) for s in sentences]
            adjacent = [overlap(a, b) for a, b in zip(sentences, sentences[1:])]
            features = [min(mean), float(np.mean(mean)), min(adjacent), *sorted(mean)[:2]]
            yield sentences, label, doc.doc_id, source, features

    return build


class _Connectives:
    """The token sequences of sentence-initial connectives, as the tokenizer writes them at a sentence start (with
    the leading space a sentence after the first keeps, for byte-level BPE), longest first."""

    def __init__(self, pieces: _Pieces):
        backend, prefix = pieces.backend, pieces.prefix
        self.continues = pieces.continues
        comma = backend.encode(",", add_special_tokens=False).ids
        self.comma = comma[0] if len(comma) == 1 else None
        forms: dict[tuple[int, ...], str] = {}
        for word in CONNECTIVES:
            for variant in (word, word[0].upper() + word[1:]):
                for text in {variant, prefix + variant}:
                    ids = tuple(backend.encode(text, add_special_tokens=False).ids)
                    if ids:
                        forms.setdefault(ids, word)
        self.forms = sorted(forms.items(), key=lambda item: -len(item[0]))

    def split(self, sentence: np.ndarray) -> tuple[str, np.ndarray] | None:
        """(connective, the sentence without it and a comma after it), or None."""
        tokens = sentence.tolist()
        for ids, word in self.forms:
            n = len(ids)
            if len(tokens) > n + 1 and tuple(tokens[:n]) == ids and not self.continues[tokens[n]]:
                rest = sentence[n + 1 :] if tokens[n] == self.comma else sentence[n:]
                return (word, rest) if len(rest) >= 2 else None
        return None


def _connective(connectives: _Connectives):
    """DisSent: two consecutive sentences whose second opens with a connective; the connective (and a comma after it)
    removed; the label is the connective."""

    def build(doc: _Document, rng, other, split_docs, overlap):
        for first, second in zip(doc.sentences, doc.sentences[1:]):
            found = connectives.split(second)
            if found is not None:
                word, rest = found
                yield [first, rest], word, doc.doc_id, doc.doc_id, [overlap(first, rest)]

    return build


def _sequence_probe(name: str, documents: dict, pieces: _Pieces, max_length: int, seed: int) -> datasets.DatasetDict:
    template = pieces.template
    docs = {split: _documents(part) for split, part in documents.items()}
    overlap = _Overlap(docs["train"], pieces.special)
    builder = {
        "sentence-position": _sentence_position,
        "coherence-other-document": _coherence(same_document=False),
        "coherence-same-document": _coherence(same_document=True),
        "connective": _connective(_Connectives(pieces)) if name == "connective" else None,
    }[name]
    rows: dict[str, list] = {}
    for split, split_docs in docs.items():
        out = rows[split] = []
        for doc in split_docs:
            rng = random.Random(document_seed(seed, 0, doc.doc_id, name))
            other = random.Random(document_seed(seed, 0, doc.doc_id, name + "-other"))
            for sentences, label, a_doc, b_doc, features in builder(doc, rng, other, split_docs, overlap):
                ids, types, truncated = _encode_sentences(sentences, template, max_length)
                out.append((ids, types, label, a_doc, b_doc, [float(f) for f in features], truncated))
    names, dropped = _label_names(name, rows)
    features = datasets.Features(
        {
            "input_ids": datasets.List(datasets.Value("int32")),
            "token_type_ids": datasets.List(datasets.Value("int8")),
            "labels": datasets.ClassLabel(names=names),
            "a_doc": datasets.Value("string"),
            "b_doc": datasets.Value("string"),
            "overlap_features": datasets.List(datasets.Value("float32")),
            "truncated": datasets.Value("int32"),
        }
    )
    out = datasets.DatasetDict()
    index = {n: i for i, n in enumerate(names)}
    for split, split_rows in rows.items():
        kept = [r for r in split_rows if r[2] in index]
        columns = {
            "input_ids": [r[0] for r in kept],
            "token_type_ids": [r[1] for r in kept],
            "labels": [index[r[2]] for r in kept],
            "a_doc": [r[3] for r in kept],
            "b_doc": [r[4] for r in kept],
            "overlap_features": [r[5] for r in kept],
            "truncated": [r[6] for r in kept],
        }
        out[split] = datasets.Dataset.from_dict(columns, features=features)
    out.dropped = dropped  # examples of connectives too rare to learn, per split (the run reports them)
    return out


def _label_names(name: str, rows: dict) -> tuple[list[str], dict[str, int]]:
    if name == "sentence-position":
        return [str(i) for i in range(5)], {}
    if name.startswith("coherence"):
        return ["coherent", "replaced"], {}
    counts = Counter(r[2] for r in rows.get("train", []))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    names = sorted(word for word, _ in ranked[:CONNECTIVE_CLASSES])
    if len(names) < 2:
        raise ValueError(
            f"The connective probe found {len(names)} connective(s) in the training documents ({dict(counts)}): the "
            "held-out documents are too few (or not English). Hold out more documents (--validation_fraction), or "
            "leave the connective probe out."
        )
    dropped = {split: sum(1 for r in split_rows if r[2] not in names) for split, split_rows in rows.items()}
    return names, dropped


# -- segment tagging -----------------------------------------------------------------------------------------


def _segment_windows(doc: _Document, rng, other, split_docs, budget: int, rows: list, overlap) -> int:
    """Windows of whole sentences of one document, filled up to `budget` tokens (a separator between sentences);
    half of those with two or more sentences switch, after a random sentence, to whole sentences of another document
    of the split. Returns how many sentences were too long for a window (skipped)."""
    too_long = 0
    k = 0
    sentences = doc.sentences
    while k < len(sentences):
        window, used = [], -1
        while k + len(window) < len(sentences) and used + 1 + len(sentences[k + len(window)]) <= budget:
            used += 1 + len(sentences[k + len(window)])
            window.append(sentences[k + len(window)])
        if not window:
            too_long += 1
            k += 1
            continue
        k += len(window)
        left, right, b_doc = window, [], doc.doc_id
        if len(window) >= 2 and rng.random() < 0.5:
            keep = rng.randint(1, len(window) - 1)
            left = window[:keep]
            donors = [d for d in split_docs if d.doc_id != doc.doc_id and d.sentences]
            donor = donors[other.randrange(len(donors))]
            start = other.randrange(len(donor.sentences))
            room = budget - (sum(len(s) for s in left) + len(left) - 1)
            for sentence in donor.sentences[start:]:
                if room - 1 - len(sentence) < 0:
                    break
                right.append(sentence)
                room -= 1 + len(sentence)
            if right:
                b_doc = donor.doc_id
            else:
                left = window  # nothing of the other document fits: the window does not switch
        shown = left + right
        rows.append(
            (shown, len(left) if right else -1, doc.doc_id, b_doc, [overlap(a, b) for a, b in zip(shown, shown[1:])])
        )
    return too_long


def _segment_row(sentences: list[np.ndarray], switch: int, template: SequenceTemplate, continues: np.ndarray):
    """Ids, token types and labels of a window: word starts labelled (``B-`` on the first word of each sentence,
    ``I-`` on the others), every other token -100; with the gold tag of every word and the word count per sentence."""
    ids = list(template.single_prefix)
    labels = [-100] * len(ids)
    word_tags, words = [], []
    for k, sentence in enumerate(sentences):
        kind = "R" if 0 <= switch <= k else "L"
        begin, inside = SEGMENT_LABELS.index("B-" + kind), SEGMENT_LABELS.index("I-" + kind)
        count = 0
        for position, token in enumerate(sentence.tolist()):
            starts = position == 0 or not continues[token]
            tag = (begin if count == 0 else inside) if starts else -100
            if starts:
                word_tags.append(tag)
                count += 1
            ids.append(token)
            labels.append(tag)
        words.append(count)
        closing = [template.separator] if k < len(sentences) - 1 else list(template.single_suffix)
        ids += closing
        labels += [-100] * len(closing)
    return ids, labels, word_tags, words


def _segment_tagging(documents: dict, pieces: _Pieces, max_length: int, seed: int) -> datasets.DatasetDict:
    template, continues = pieces.template, pieces.continues
    docs = {split: _documents(part) for split, part in documents.items()}
    overlap = _Overlap(docs["train"], pieces.special)
    budget = max_length - len(template.single_prefix) - len(template.single_suffix)
    features = datasets.Features(
        {
            "input_ids": datasets.List(datasets.Value("int32")),
            "token_type_ids": datasets.List(datasets.Value("int8")),
            "labels": datasets.List(datasets.Value("int64")),
            "word_tags": datasets.List(datasets.Value("int64")),
            "words_truncated": datasets.Value("int32"),
            "sentence_words": datasets.List(datasets.Value("int32")),
            "switch": datasets.Value("int32"),
            "a_doc": datasets.Value("string"),
            "b_doc": datasets.Value("string"),
            "boundary_overlaps": datasets.List(datasets.Value("float32")),
        }
    )
    out = datasets.DatasetDict()
    skipped = {}
    for split, split_docs in docs.items():
        rows: list = []
        skipped[split] = 0
        for doc in split_docs:
            rng = random.Random(document_seed(seed, 0, doc.doc_id, "segments"))
            other = random.Random(document_seed(seed, 0, doc.doc_id, "segments-other"))
            skipped[split] += _segment_windows(doc, rng, other, split_docs, budget, rows, overlap)
        columns: dict[str, list] = {k: [] for k in features}
        for sentences, switch, a_doc, b_doc, overlaps in rows:
            ids, labels, word_tags, words = _segment_row(sentences, switch, template, continues)
            for key, value in (
                ("input_ids", ids),
                ("token_type_ids", [0] * len(ids)),
                ("labels", labels),
                ("word_tags", word_tags),
                ("words_truncated", 0),
                ("sentence_words", words),
                ("switch", switch),
                ("a_doc", a_doc),
                ("b_doc", b_doc),
                ("boundary_overlaps", overlaps),
            ):
                columns[key].append(value)
        out[split] = datasets.Dataset.from_dict(columns, features=features)
    out.dropped = skipped  # sentences longer than a window, per split (the run reports them)
    return out


def build_probe(name: str, documents: dict, tokenizer, max_length: int, seed: int) -> datasets.DatasetDict:
    """A corpus probe's splits from the task splits' documents.

    Args:
        name (`str`): One of ``PROBES``.
        documents (`dict[str, datasets.Dataset]`): The task splits' tokenized documents
            (:func:`nsptask.downstream.task_documents`).
        tokenizer: The tokenizer the documents were tokenized with.
        max_length (`int`): Length of an example with its special tokens.
        seed (`int`): Seed of the examples' random choices (with each document's id).

    Returns:
        `datasets.DatasetDict` with the task's splits; ``dropped`` (an attribute) counts, per split, what was left
        out (connectives too rare to learn; for segment tagging, sentences longer than a window).
    """
    if name not in PROBES:
        raise ValueError(f"Unknown probe {name!r}: expected one of {PROBES}")
    pieces = _Pieces.of(tokenizer)
    if name == "segment-tagging":
        return _segment_tagging(documents, pieces, max_length, seed)
    return _sequence_probe(name, documents, pieces, max_length, seed)


# -- references without a model ------------------------------------------------------------------------------


def overlap_predictions(train, test) -> np.ndarray:
    """The word-overlap reference of a sentence probe: a logistic regression on the examples' overlap features, fit on
    `train`, predicting `test`'s labels (the majority label where the training split has one label only)."""
    x_train, y_train = np.asarray(train["overlap_features"], float), np.asarray(train["labels"])
    x_test = np.asarray(test["overlap_features"], float)
    if len(np.unique(y_train)) < 2:
        return np.full(len(x_test), y_train[0] if len(y_train) else 0)
    model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    return model.predict(x_test)


def word_tag_rows(sentence_words: list[int], switch: int) -> list[str]:
    """The word tags of a window whose sentences have `sentence_words` words, switching at sentence `switch` (-1:
    never): one entity per sentence, ``L`` before the switch and ``R`` from it."""
    tags = []
    for k, count in enumerate(sentence_words):
        kind = "R" if 0 <= switch <= k else "L"
        tags += ["B-" + kind] + ["I-" + kind] * (count - 1)
    return tags


def decode_sentences(true_rows: list[list[str]], predicted_rows: list[list[str]]) -> list[list[str]]:
    """Segment tagging's word predictions read as sentences: every gold sentence (a ``B-`` tag starts one) takes the
    type most of its words are tagged with (a tie: the type seen first; ``O`` when most words are tagged ``O``),
    written as one entity. So one sentence put on the wrong side costs one entity, however its words were tagged.

    Example:
        ```python
        >>> decode_sentences([["B-L", "I-L", "I-L", "B-R", "I-R"]], [["B-L", "I-R", "I-L", "I-R", "B-R"]])
        [['B-L', 'I-L', 'I-L', 'B-R', 'I-R']]
        ```
    """
    out = []
    for true, predicted in zip(true_rows, predicted_rows):
        starts = [i for i, tag in enumerate(true) if tag.startswith("B-")] + [len(true)]
        row = ["O"] * len(true)
        for begin, end in zip(starts, starts[1:]):
            kinds = [tag.split("-", 1)[-1] if tag != "O" else "O" for tag in predicted[begin:end]]
            counts = Counter(kinds)
            kind = max(counts, key=lambda k: (counts[k], -kinds.index(k)))
            if kind != "O":
                row[begin:end] = ["B-" + kind] + ["I-" + kind] * (end - begin - 1)
        out.append(row)
    return out


def segment_window_scores(true_rows: list[list[str]], decoded_rows: list[list[str]]) -> dict[str, float]:
    """Window-level scores of segment tagging from sentence-decoded rows (:func:`decode_sentences`): window accuracy
    (does the window switch documents or not: predicted when any sentence is ``R``) with the majority-class window
    accuracy, and over switched windows the exact switch (the first ``R`` sentence is the true first one)."""
    window, position = [], []
    for true, decoded in zip(true_rows, decoded_rows):
        sentences_true = [t[2:] for t in true if t.startswith("B-")]
        sentences_decoded = [d[2:] if d != "O" else "O" for t, d in zip(true, decoded) if t.startswith("B-")]
        switch = sentences_true.index("R") if "R" in sentences_true else -1
        first = sentences_decoded.index("R") if "R" in sentences_decoded else -1
        window.append((first >= 0) == (switch >= 0))
        if switch >= 0:
            position.append(first == switch)
    switched = len(position) / len(window) if window else float("nan")
    return {
        "window_accuracy": float(np.mean(window)) if window else float("nan"),
        "window_majority": max(switched, 1 - switched),
        "switch_position_accuracy": float(np.mean(position)) if position else float("nan"),
        "windows": len(window),
        "switched_windows": len(position),
    }


def _r_f1(true_rows, predicted_rows) -> float:
    tp = fp = fn = 0
    for true, predicted in zip(true_rows, predicted_rows):
        t = {e for e in get_entities(true) if e[0] == "R"}
        p = {e for e in get_entities(predicted) if e[0] == "R"}
        tp, fp, fn = tp + len(t & p), fp + len(p - t), fn + len(t - p)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def segment_baselines(train, test) -> dict[str, list[list[str]]]:
    """Segment tagging's references without a model, as word-tag rows of `test`: ``all-L`` (no window switches), a
    ``position prior`` (every sentence from a position on is ``R``, the position fit on `train` for ``R`` F1) and an
    ``overlap rule`` (the switch at the boundary of least word overlap, when it is below a threshold fit on
    `train`)."""
    train_words, train_overlaps = list(train["sentence_words"]), list(train["boundary_overlaps"])
    test_words, test_overlaps = list(test["sentence_words"]), list(test["boundary_overlaps"])
    # The fit reads one tag per sentence: every sentence is one entity either way, so its R F1 is the same.
    train_sentences = [[1] * len(w) for w in train_words]

    def rows(words, switches):
        return [word_tag_rows(w, s) for w, s in zip(words, switches)]

    def by_position(words, position):
        return [position if len(w) > position else -1 for w in words]

    def by_rule(overlaps, threshold):
        return [int(np.argmin(o)) + 1 if len(o) and min(o) < threshold else -1 for o in overlaps]

    truth = rows(train_sentences, train["switch"])
    positions = range(1, max((len(w) for w in train_words), default=1) + 1)
    best_position = max(positions, key=lambda p: _r_f1(truth, rows(train_sentences, by_position(train_words, p))))
    candidates = sorted({round(v, 4) for o in train_overlaps for v in o}) or [0.0]
    grid = candidates[:: max(1, len(candidates) // 60)] + [candidates[-1] + 1e-3]
    best_threshold = max(grid, key=lambda t: _r_f1(truth, rows(train_sentences, by_rule(train_overlaps, t))))
    return {
        "all-L": rows(test_words, [-1] * len(test_words)),
        "position prior": rows(test_words, by_position(test_words, best_position)),
        "overlap rule": rows(test_words, by_rule(test_overlaps, best_threshold)),
    }
