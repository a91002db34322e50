"""The instance-creation algorithms: NSP (BERT), SENTENCE-PAIR, SOP (ALBERT), FULL- and DOC-SENTENCES (RoBERTa).

They work on token *ranges*, not token lists: a tokenized group of documents is one flat ``int32``
array, every sentence is a ``(start, end)`` range in it, and an instance is a short list of ranges
(``[CLS]``, A, ``[SEP]``, B, ``[SEP]``). The Python loop only handles sentence lengths; the token ids
of a whole group are gathered at once with numpy and handed to Arrow without copies. That is what
makes building fast without changing the algorithm.

Randomness: every (document, dupe) pair gets its own ``random.Random`` seeded from the build seed,
the dupe index and the document's index in its split, so a document's instances depend only on the
seed, the document and its random-document pool, never on process count or shard layout.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from itertools import accumulate

import numpy as np

__all__ = [
    "FORMATS",
    "PAIR_FORMATS",
    "LABEL_COLUMNS",
    "LABEL_NAMES",
    "DocumentGroup",
    "InstanceConfig",
    "create_instances",
    "trimmed_lengths",
    "document_seed",
]

FORMATS = ("nsp", "sentence-pair", "sop", "full-sentences", "doc-sentences", "coherence")
PAIR_FORMATS = ("nsp", "sentence-pair", "sop", "coherence")
NEEDS_OTHER_DOCUMENT = ("nsp", "sentence-pair")
LABEL_COLUMNS = {
    "nsp": "next_sentence_label",
    "sentence-pair": "next_sentence_label",
    "sop": "sentence_order_label",
    "coherence": "next_sentence_label",  # 1 = B is from the same document but not adjacent (a harder negative)
}
LABEL_NAMES = {
    "next_sentence_label": ["IsNext", "NotNext"],  # transformers: 0 = B continues A, 1 = B is random
    "sentence_order_label": ["InOrder", "Swapped"],  # ALBERT: 0 = original order, 1 = swapped
}


@dataclass(frozen=True)
class InstanceConfig:
    """Parameters of instance creation (Google's ``create_pretraining_data.py`` defaults).

    Args:
        format (`str`, *optional*, defaults to `"nsp"`): One of ``FORMATS``.
        max_seq_length (`int`, *optional*, defaults to 128): Length of an instance with its special tokens.
        short_seq_prob (`float`, *optional*, defaults to 0.1): Probability of a shorter random target length.
        short_seq_mode (`str`, *optional*, defaults to `"document"`): ``"document"`` draws the short target
            once per document and dupe, as Google does; ``"instance"`` draws it for every chunk.
        nsp_probability (`float`, *optional*, defaults to 0.5): Probability that B is random (NSP formats) or
            that the segments are swapped (SOP).
        dupe_factor (`int`, *optional*, defaults to 1): Times each document is turned into instances, each
            time with other random choices (Google's default is 10; with dynamic masking 1 is enough).
        seed (`int`, *optional*, defaults to 12345): Seed (Google's default).
    """

    format: str = "nsp"
    max_seq_length: int = 128
    short_seq_prob: float = 0.1
    short_seq_mode: str = "document"
    nsp_probability: float = 0.5
    dupe_factor: int = 1
    seed: int = 12345

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"Unknown format {self.format!r}: expected one of {FORMATS}")
        minimum = 5 if self.format in PAIR_FORMATS else 3
        if self.max_seq_length < minimum:
            raise ValueError(
                f"max_seq_length={self.max_seq_length} is too short for {self.format!r}: it needs at least "
                f"{minimum} (special tokens plus one token per segment)."
            )
        if not 0.0 <= self.short_seq_prob <= 1.0 or not 0.0 <= self.nsp_probability <= 1.0:
            raise ValueError("short_seq_prob and nsp_probability must lie in [0, 1]")
        if self.short_seq_mode not in ("document", "instance"):
            raise ValueError(f"short_seq_mode must be 'document' or 'instance', got {self.short_seq_mode!r}")
        if self.dupe_factor < 1:
            raise ValueError(f"dupe_factor must be >= 1, got {self.dupe_factor}")

    @property
    def label_column(self) -> str | None:
        return LABEL_COLUMNS.get(self.format)

    @property
    def max_num_tokens(self) -> int:
        """Token budget without special tokens: 3 for pairs ([CLS] A [SEP] B [SEP]), 2 for packed text."""
        return self.max_seq_length - (3 if self.format in PAIR_FORMATS else 2)

    @property
    def max_sentence_tokens(self) -> int:
        """Sentences longer than this are cut into pieces at tokenization (and counted)."""
        return self.max_seq_length - 3


@dataclass
class DocumentGroup:
    """A tokenized group of documents: the unit of the random-document pool.

    Args:
        tokens (`np.ndarray`): All token ids of the group, documents in order, int32.
        sentence_lengths (`list[list[int]]`): Token count of each sentence, per document.
        doc_indices (`list[int]`): Each document's index in its split (seeds its random generator).
    """

    tokens: np.ndarray
    sentence_lengths: list[list[int]]
    doc_indices: list[int]
    sentence_starts: list[list[int]] = field(init=False)

    def __post_init__(self):
        self.sentence_starts = []
        offset = 0
        for lengths in self.sentence_lengths:
            self.sentence_starts.append(list(accumulate(lengths[:-1], initial=offset)) if lengths else [])
            offset += sum(lengths)

    def __len__(self) -> int:
        return len(self.sentence_lengths)

    def source(self, cls_id: int, sep_id: int) -> np.ndarray:
        """The group's tokens followed by [CLS] and [SEP], made once and shared by all work units."""
        key = (cls_id, sep_id)
        if getattr(self, "_source_key", None) != key:
            self._source = np.concatenate([self.tokens.astype(np.int32, copy=False), np.array(key, np.int32)])
            self._source_key = key
        return self._source


def document_seed(seed: int, dupe: int, doc_index: int) -> int:
    """The seed of one document's random generator for one dupe."""
    digest = hashlib.blake2b(f"{seed}:{dupe}:{doc_index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def trimmed_lengths(len_a: int, len_b: int, max_num_tokens: int) -> tuple[int, int]:
    """Lengths after Google's ``truncate_seq_pair``: repeatedly drop a token from the longer segment
    (B on ties) until the pair fits. Closed form of that loop."""
    excess = len_a + len_b - max_num_tokens
    if excess <= 0:
        return len_a, len_b
    diff = abs(len_a - len_b)
    first = min(excess, diff)
    rest = excess - first
    if len_a > len_b:
        len_a -= first
    else:
        len_b -= first
    # Now equal (or done): B loses the first token of each tie, then they alternate.
    return len_a - rest // 2, len_b - (rest + 1) // 2


def _binomial_half(rng: random.Random, n: int) -> int:
    """Number of front trims among n, each from the front with probability 0.5 (as Google's coin)."""
    return bin(rng.getrandbits(n)).count("1") if n > 0 else 0


class _Instances:
    """Accumulates instances as token ranges; ``to_columns`` gathers all token ids at once."""

    def __init__(self, group: DocumentGroup, cls_id: int, sep_id: int, label: bool):
        self.source = group.source(cls_id, sep_id)
        self.cls = len(group.tokens)
        self.sep = self.cls + 1
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.types: list[int] = []
        self.pieces_per_instance: list[int] = []
        self.labels: list[int] = [] if label else None
        self.doc_index: list[int] = []
        self.b_doc_index: list[int] = []
        self.truncated: list[int] = []
        self.short_target: list[bool] = []

    def add_pair(self, a, b, label, doc_index, b_doc_index, truncated, short, swap=False):
        """a and b are (start, end) ranges; swap puts B first (SOP)."""
        if swap:
            a, b = b, a
        s, e, t = self.starts, self.ends, self.types
        s += (self.cls, a[0], self.sep, b[0], self.sep)
        e += (self.cls + 1, a[1], self.sep + 1, b[1], self.sep + 1)
        t += (0, 0, 0, 1, 1)
        self.pieces_per_instance.append(5)
        self.labels.append(label)
        self.doc_index.append(doc_index)
        self.b_doc_index.append(b_doc_index)
        self.truncated.append(truncated)
        self.short_target.append(short)

    def add_packed(self, ranges, doc_index, b_doc_index):
        """[CLS] + ranges (a range of (-1, -1) is a document separator) + [SEP]."""
        self.starts.append(self.cls)
        self.ends.append(self.cls + 1)
        for start, end in ranges:
            if start < 0:
                start, end = self.sep, self.sep + 1
            self.starts.append(start)
            self.ends.append(end)
        self.starts.append(self.sep)
        self.ends.append(self.sep + 1)
        self.pieces_per_instance.append(len(ranges) + 2)
        self.doc_index.append(doc_index)
        self.b_doc_index.append(b_doc_index)
        self.truncated.append(0)
        self.short_target.append(False)

    def __len__(self) -> int:
        return len(self.pieces_per_instance)

    def to_columns(self) -> dict[str, np.ndarray]:
        starts = np.asarray(self.starts, dtype=np.int64)
        lengths = np.asarray(self.ends, dtype=np.int64) - starts
        total = int(lengths.sum())
        piece_offsets = np.cumsum(lengths) - lengths
        gather = np.repeat(starts - piece_offsets, lengths) + np.arange(total, dtype=np.int64)
        input_ids = self.source[gather]
        pieces = np.asarray(self.pieces_per_instance, dtype=np.int64)
        piece_index = np.cumsum(pieces) - pieces
        instance_lengths = np.add.reduceat(lengths, piece_index) if len(pieces) else np.zeros(0, np.int64)
        offsets = np.zeros(len(pieces) + 1, dtype=np.int32)
        np.cumsum(instance_lengths, out=offsets[1:])
        columns = {"input_ids": (offsets, input_ids)}
        if self.types:
            columns["token_type_ids"] = (offsets, np.repeat(np.asarray(self.types, dtype=np.int8), lengths))
        else:
            columns["token_type_ids"] = (offsets, np.zeros(total, dtype=np.int8))
        if self.labels is not None:
            columns["label"] = np.asarray(self.labels, dtype=np.int64)
        columns["doc_index"] = np.asarray(self.doc_index, dtype=np.int32)
        columns["b_doc_index"] = np.asarray(self.b_doc_index, dtype=np.int32)
        columns["truncated_tokens"] = np.asarray(self.truncated, dtype=np.int32)
        columns["short_target"] = np.asarray(self.short_target, dtype=bool)
        return columns


def _random_other_document(rng: random.Random, group: DocumentGroup, d: int) -> int:
    """A uniformly random document of the group other than d, among those with sentences."""
    n = len(group)
    for _ in range(100):
        j = rng.randrange(n - 1)
        j += j >= d
        if group.sentence_lengths[j]:
            return j
    candidates = [j for j in range(n) if j != d and group.sentence_lengths[j]]
    return rng.choice(candidates)


def _random_span(rng: random.Random, group: DocumentGroup, j: int, target: int) -> tuple[int, int]:
    """Google's random B: from a random sentence of document j, whole sentences until `target` tokens."""
    lengths, starts = group.sentence_lengths[j], group.sentence_starts[j]
    k = rng.randrange(len(lengths))
    start, length = starts[k], 0
    for m in range(k, len(lengths)):
        length += lengths[m]
        if length >= target:
            break
    return start, start + length


def _truncate(rng, a, b, max_num_tokens):
    """Google's pair truncation on ranges: trim the longer segment, from a random end, until it fits."""
    len_a, len_b = a[1] - a[0], b[1] - b[0]
    new_a, new_b = trimmed_lengths(len_a, len_b, max_num_tokens)
    cut_a, cut_b = len_a - new_a, len_b - new_b
    if cut_a:
        front = _binomial_half(rng, cut_a)
        a = (a[0] + front, a[1] - (cut_a - front))
    if cut_b:
        front = _binomial_half(rng, cut_b)
        b = (b[0] + front, b[1] - (cut_b - front))
    return a, b, cut_a + cut_b


def _far_sentences(n: int, a_first: int, a_end: int) -> list[int]:
    """Sentences that are neither in A (a_first..a_end-1) nor the one right after A."""
    return [k for k in range(n) if k < a_first or k > a_end]


def _segment_pair_document(rng, group, d, cfg: InstanceConfig, out: _Instances, sop: bool, coherence: bool = False):
    """Google's ``create_instances_from_document`` (NSP), ALBERT's SOP variant, or the coherence variant
    whose negatives come from the same document."""
    lengths, starts = group.sentence_lengths[d], group.sentence_starts[d]
    n = len(lengths)
    max_num_tokens = cfg.max_num_tokens
    doc_index = group.doc_indices[d]

    def draw_target():
        if rng.random() < cfg.short_seq_prob:
            return rng.randint(2, max_num_tokens), True
        return max_num_tokens, False

    target, short = draw_target()
    chunk_start, chunk_len, i = 0, 0, 0
    while i < n:
        chunk_len += lengths[i]
        if i == n - 1 or chunk_len >= target:
            count = i - chunk_start + 1
            a_end = rng.randint(1, count - 1) if count >= 2 else 1
            a = (starts[chunk_start], starts[chunk_start + a_end - 1] + lengths[chunk_start + a_end - 1])
            chunk_end = starts[i] + lengths[i]
            if sop:
                # A chunk of one one-token sentence has no order to predict: it is left out (the build
                # report counts it among the unused tokens).
                if count > 1 or a[1] - a[0] >= 2:
                    if count == 1:
                        # One sentence: there is no sentence order to keep, so split it at a random token.
                        cut = rng.randint(a[0] + 1, a[1] - 1)
                        a, b = (a[0], cut), (cut, a[1])
                    else:
                        b = (a[1], chunk_end)
                    swap = rng.random() < cfg.nsp_probability
                    a, b, truncated = _truncate(rng, a, b, max_num_tokens)
                    out.add_pair(a, b, int(swap), doc_index, doc_index, truncated, short, swap=swap)
            elif (
                coherence and rng.random() < cfg.nsp_probability and _far_sentences(n, chunk_start, chunk_start + a_end)
            ):
                # Harder negative: B from the same document, but not the sentence after A (nor A itself).
                k = rng.choice(_far_sentences(n, chunk_start, chunk_start + a_end))
                b_start, length = starts[k], 0
                for m in range(k, n):
                    length += lengths[m]
                    if length >= target - (a[1] - a[0]):
                        break
                i -= count - a_end
                a, b, truncated = _truncate(rng, a, (b_start, b_start + length), max_num_tokens)
                out.add_pair(a, b, 1, doc_index, doc_index, truncated, short)
            elif coherence:
                if count == 1:  # nothing follows A in this chunk, and no far sentence either: skip it
                    chunk_start, chunk_len = i + 1, 0
                    i += 1
                    continue
                b = (a[1], chunk_end)
                a, b, truncated = _truncate(rng, a, b, max_num_tokens)
                out.add_pair(a, b, 0, doc_index, doc_index, truncated, short)
            elif count == 1 or rng.random() < cfg.nsp_probability:
                j = _random_other_document(rng, group, d)
                b = _random_span(rng, group, j, target - (a[1] - a[0]))
                # Put the chunk's unused sentences back: they start the next chunk.
                i -= count - a_end
                a, b, truncated = _truncate(rng, a, b, max_num_tokens)
                out.add_pair(a, b, 1, doc_index, group.doc_indices[j], truncated, short)
            else:
                b = (a[1], chunk_end)
                a, b, truncated = _truncate(rng, a, b, max_num_tokens)
                out.add_pair(a, b, 0, doc_index, doc_index, truncated, short)
            chunk_start, chunk_len = i + 1, 0
            if cfg.short_seq_mode == "instance":
                target, short = draw_target()
        i += 1


def _sentence_pair_document(rng, group, d, cfg: InstanceConfig, out: _Instances):
    """RoBERTa's SENTENCE-PAIR: A is one sentence; B the next one, or a random sentence of another document."""
    lengths, starts = group.sentence_lengths[d], group.sentence_starts[d]
    n = len(lengths)
    doc_index = group.doc_indices[d]
    i = 0
    while i < n:
        a = (starts[i], starts[i] + lengths[i])
        if i == n - 1 or rng.random() < cfg.nsp_probability:
            j = _random_other_document(rng, group, d)
            k = rng.randrange(len(group.sentence_lengths[j]))
            b = (group.sentence_starts[j][k], group.sentence_starts[j][k] + group.sentence_lengths[j][k])
            a, b, truncated = _truncate(rng, a, b, cfg.max_num_tokens)
            out.add_pair(a, b, 1, doc_index, group.doc_indices[j], truncated, False)
            i += 1
        else:
            b = (starts[i + 1], starts[i + 1] + lengths[i + 1])
            a, b, truncated = _truncate(rng, a, b, cfg.max_num_tokens)
            out.add_pair(a, b, 0, doc_index, doc_index, truncated, False)
            i += 2


def _packed_documents(group, doc_range, cfg: InstanceConfig, out: _Instances, cross_documents: bool):
    """RoBERTa's FULL-SENTENCES (cross_documents=True) and DOC-SENTENCES: whole sentences packed up to
    the budget; a separator token marks a document boundary inside a FULL-SENTENCES block."""
    budget = cfg.max_num_tokens
    ranges: list[tuple[int, int]] = []
    used, first_doc, last_doc = 0, -1, -1
    for d in doc_range:
        lengths, starts = group.sentence_lengths[d], group.sentence_starts[d]
        if not lengths:
            continue
        if ranges and cross_documents:
            if used + 1 + lengths[0] > budget:
                out.add_packed(ranges, first_doc, last_doc)
                ranges, used = [], 0
            else:
                ranges.append((-1, -1))
                used += 1
        for k, length in enumerate(lengths):
            if ranges and used + length > budget:
                out.add_packed(ranges, first_doc, last_doc)
                ranges, used = [], 0
            if not ranges:
                first_doc = group.doc_indices[d]
            last_doc = group.doc_indices[d]
            start = starts[k]
            # Extend the previous range when contiguous: fewer pieces to gather.
            if ranges and ranges[-1][1] == start:
                ranges[-1] = (ranges[-1][0], start + length)
            else:
                ranges.append((start, start + length))
            used += length
        if not cross_documents and ranges:
            out.add_packed(ranges, first_doc, last_doc)
            ranges, used = [], 0
    if ranges:
        out.add_packed(ranges, first_doc, last_doc)


def create_instances(
    group: DocumentGroup,
    doc_range: range,
    cfg: InstanceConfig,
    cls_id: int,
    sep_id: int,
) -> dict[str, np.ndarray]:
    """Create the instances of the documents ``doc_range`` of a group, for every dupe.

    Args:
        group (`DocumentGroup`): The tokenized group (the random-document pool).
        doc_range (`range`): Which of its documents to turn into instances.
        cfg (`InstanceConfig`): The algorithm's parameters.
        cls_id (`int`), sep_id (`int`): Ids of the classification and separator tokens.

    Returns:
        `dict[str, np.ndarray]`: Columns as numpy arrays; list columns as ``(offsets, values)`` pairs.
    """
    out = _Instances(group, cls_id, sep_id, label=cfg.format in PAIR_FORMATS)
    if cfg.format in NEEDS_OTHER_DOCUMENT and sum(1 for lengths in group.sentence_lengths if lengths) < 2:
        raise ValueError(
            f"Format {cfg.format!r} needs at least two non-empty documents in a random-document pool to draw "
            f"NotNext segments from; found {sum(1 for lengths in group.sentence_lengths if lengths)}. Give a "
            "corpus with more documents (a blank line separates documents in the one-sentence-per-line format), "
            "or use 'sop', 'full-sentences' or 'doc-sentences', which need no second document."
        )
    for dupe in range(cfg.dupe_factor):
        if cfg.format in ("full-sentences", "doc-sentences"):
            _packed_documents(group, doc_range, cfg, out, cross_documents=cfg.format == "full-sentences")
            continue
        for d in doc_range:
            if not group.sentence_lengths[d]:
                continue
            rng = random.Random(document_seed(cfg.seed, dupe, group.doc_indices[d]))
            if cfg.format == "sentence-pair":
                _sentence_pair_document(rng, group, d, cfg, out)
            else:
                _segment_pair_document(
                    rng, group, d, cfg, out, sop=cfg.format == "sop", coherence=cfg.format == "coherence"
                )
    return out.to_columns()
