"""The instance-creation algorithms: NSP (BERT), SENTENCE-PAIR, SOP (ALBERT), FULL- and DOC-SENTENCES (RoBERTa).

They work on token *ranges*, not token lists: a tokenized group of documents is one flat ``int32``
array, every sentence is a ``(start, end)`` range in it, and an instance is a short list of ranges
(``[CLS]``, A, ``[SEP]``, B, ``[SEP]``). The Python loop only handles sentence lengths; the token ids
of a whole group are gathered at once with numpy and handed to Arrow without copies. That is what
makes building fast without changing the algorithm.

Randomness: every (document, dupe) pair gets two ``random.Random`` generators seeded from the build seed,
the dupe index and the document's *id* (never its position): one for the document's own choices (target
lengths, where A ends, labels, swaps, truncation of its own segments) and one for what it takes from other
documents (which document and sentence a NotNext B comes from, and that pair's truncation). So a document's
chunks, labels and IsNext/SOP pairs depend only on the seed and the document, whatever else is in the corpus
and however the build is spread over processes or machines; only a NotNext B depends on the document's
random-document pool.
"""

from __future__ import annotations

import hashlib
import random
import weakref
from dataclasses import dataclass, field, replace
from itertools import accumulate
from typing import Literal

import numpy as np

__all__ = [
    "SequenceTemplate",
    "FORMATS",
    "PAIR_FORMATS",
    "LABEL_COLUMNS",
    "LABEL_NAMES",
    "DocumentGroup",
    "InstanceConfig",
    "DEFAULT_SEED",
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


DEFAULT_SEED = 12345  # Google's create_pretraining_data.py default: instance creation, split and task seeds


@dataclass
class InstanceConfig:
    """Parameters of instance creation (Google's ``create_pretraining_data.py`` defaults): the one object the
    builders, the Dask engine, the corpus tasks and ``nsptask`` commands share (the "instances" options).

    ``data_format`` and ``max_seq_length`` may be left `None` until a command decides them (pretraining: the
    objective's format; evaluation: the length the model was fine-tuned with); :meth:`resolved` fills them.

    Args:
        data_format (`str`, *optional*): One of ``FORMATS``; `None` means the command's default (``nsp``).
        max_seq_length (`int`, *optional*): Length of an instance with its special tokens (default 128).
        short_seq_prob (`float`, *optional*, defaults to 0.1): Probability of a shorter random target length.
        short_seq_mode (`str`, *optional*, defaults to `"document"`): ``"document"`` draws the short target
            once per document and dupe, as Google does; ``"instance"`` draws it for every chunk.
        nsp_probability (`float`, *optional*, defaults to 0.5): Probability that B is random (NSP formats) or
            that the segments are swapped (SOP).
        dupe_factor (`int`, *optional*, defaults to 1): Times each document is turned into instances, each
            time with other random choices (Google's default is 10; with dynamic masking 1 is enough).
        instance_seed (`int`, *optional*, defaults to 12345): Seed of instance creation, of the document shuffle
            before pooling and of the corpus tasks (Google's default).

    The special tokens that frame an instance (``[CLS] A [SEP] B [SEP]``: 3; RoBERTa's ``<s> A </s></s> B </s>``:
    4) come from the tokenizer's :class:`SequenceTemplate`, not from here.
    """

    _argument_group_name = "data: instances"

    data_format: Literal["nsp", "sentence-pair", "sop", "full-sentences", "doc-sentences"] | None = field(
        default=None,
        metadata={
            "help": "Instance format: nsp, sentence-pair, sop, full-sentences, doc-sentences. Default: nsp for build; "
            "the objective's format for pretrain (nsp, sop or full-sentences)."
        },
    )
    max_seq_length: int | None = field(
        default=None,
        metadata={
            "help": "Instance length, special tokens included. Default: 128 (evaluate: the length the model was "
            "fine-tuned with)."
        },
    )
    short_seq_prob: float = field(default=0.1, metadata={"help": "Probability of a shorter random target length."})
    short_seq_mode: Literal["document", "instance"] = field(
        default="document",
        metadata={"help": "'document': draw the short target once per document (Google); 'instance': per chunk."},
    )
    nsp_probability: float = field(
        default=0.5, metadata={"help": "Probability of a random B (NSP formats) or of a swap (SOP)."}
    )
    dupe_factor: int = field(default=1, metadata={"help": "Times each document is turned into instances."})
    instance_seed: int = field(
        default=DEFAULT_SEED,
        metadata={"help": "Seed of instance creation, of the document shuffle and of the corpus tasks (Google's)."},
    )

    def __post_init__(self):
        if self.data_format is not None and self.data_format not in FORMATS:
            raise ValueError(f"Unknown format {self.data_format!r}: expected one of {FORMATS}")
        if self.max_seq_length is not None and self.max_seq_length < 5:
            raise ValueError(
                f"--max_seq_length must be at least 5 (special tokens plus two tokens), got {self.max_seq_length}"
            )
        for name in ("short_seq_prob", "nsp_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"--{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.short_seq_mode not in ("document", "instance"):
            raise ValueError(f"short_seq_mode must be 'document' or 'instance', got {self.short_seq_mode!r}")
        if self.dupe_factor < 1:
            raise ValueError(f"--dupe_factor must be >= 1, got {self.dupe_factor}")

    def resolved(self, data_format: str | None = None, max_seq_length: int | None = None) -> InstanceConfig:
        """These options with the format and length decided: `data_format` (or this one's, or ``nsp``) and this
        length (or `max_seq_length`, or 128)."""
        return replace(
            self,
            data_format=data_format or self.data_format or "nsp",
            max_seq_length=self.max_seq_length or max_seq_length or 128,
        )

    @property
    def label_column(self) -> str | None:
        return LABEL_COLUMNS.get(self.data_format)


@dataclass(frozen=True)
class SequenceTemplate:
    """The special tokens that frame instances, as the tokenizer frames its own inputs: BERT's
    ``[CLS] A [SEP] B [SEP]``, RoBERTa's ``<s> A </s></s> B </s>``, and ``[CLS] text [SEP]`` for single sequences.

    Args:
        pair_prefix, pair_middle, pair_suffix (`tuple[int, ...]`): Ids before A, between A and B, after B.
        single_prefix, single_suffix (`tuple[int, ...]`): Ids around a single sequence.
        separator (`int`): The id between documents inside a packed (FULL-SENTENCES) block.
    """

    pair_prefix: tuple[int, ...]
    pair_middle: tuple[int, ...]
    pair_suffix: tuple[int, ...]
    single_prefix: tuple[int, ...]
    single_suffix: tuple[int, ...]
    separator: int

    @classmethod
    def bert(cls, cls_id: int, sep_id: int) -> SequenceTemplate:
        return cls((cls_id,), (sep_id,), (sep_id,), (cls_id,), (sep_id,), sep_id)

    @classmethod
    def of(cls, tokenizer) -> SequenceTemplate:
        """The tokenizer's template (read once per tokenizer object, then cached)."""
        template = _TEMPLATES.get(tokenizer)
        if template is None:
            template = _TEMPLATES[tokenizer] = cls.from_tokenizer(tokenizer)
        return template

    @classmethod
    def from_tokenizer(cls, tokenizer) -> SequenceTemplate:
        """Read the template off the tokenizer's own encoding of a pair and of a single text (its post-processor);
        a tokenizer that adds no special tokens gets BERT's template from its classification and separator ids."""

        def parts(encoded):
            ids, special = encoded["input_ids"], encoded["special_tokens_mask"]
            runs: list[list[int]] = [[]]
            kinds: list[bool] = [True]
            for token, is_special in zip(ids, special):
                if bool(is_special) != kinds[-1]:
                    runs.append([])
                    kinds.append(bool(is_special))
                runs[-1].append(token)
            return [tuple(r) for r, k in zip(runs, kinds) if k], sum(1 for k in kinds if not k)

        pair, pair_content = parts(tokenizer("a", "b", return_special_tokens_mask=True))
        single, single_content = parts(tokenizer("a", return_special_tokens_mask=True))
        if pair_content == 2 and single_content == 1 and len(pair) == 3 and len(single) == 2 and pair[0] and pair[1]:
            separator = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else pair[1][-1]
            return cls(pair[0], pair[1], pair[2], single[0], single[1], separator)
        return cls.bert(tokenizer.cls_token_id, tokenizer.sep_token_id)

    @property
    def pair_specials(self) -> int:
        return len(self.pair_prefix) + len(self.pair_middle) + len(self.pair_suffix)

    @property
    def single_specials(self) -> int:
        return len(self.single_prefix) + len(self.single_suffix)

    def max_num_tokens(self, cfg: InstanceConfig) -> int:
        """Token budget of an instance without its special tokens (``[CLS] A [SEP] B [SEP]`` at 128: 125)."""
        return cfg.max_seq_length - (self.pair_specials if cfg.data_format in PAIR_FORMATS else self.single_specials)

    def max_sentence_tokens(self, max_seq_length: int) -> int:
        """Sentences longer than this are cut into pieces at tokenization (and counted); the same for every
        format, so all formats share one tokenized corpus."""
        return max_seq_length - self.pair_specials


_TEMPLATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class DocumentGroup:
    """A tokenized group of documents: the unit of the random-document pool.

    Args:
        tokens (`np.ndarray`): All token ids of the group, documents in order, int32.
        sentence_lengths (`list[list[int]]`): Token count of each sentence, per document.
        doc_indices (`list[int]`): Each document's index in its split (the ``doc_index`` column).
        doc_ids (`list[str]`, *optional*): Each document's id (seeds its random generators); defaults to the
            indices as strings.
    """

    tokens: np.ndarray
    sentence_lengths: list[list[int]]
    doc_indices: list[int]
    doc_ids: list[str] | None = None
    sentence_starts: list[list[int]] = field(init=False)

    def __post_init__(self):
        if self.doc_ids is None:
            self.doc_ids = [str(i) for i in self.doc_indices]
        self.sentence_starts = []
        offset = 0
        for lengths in self.sentence_lengths:
            self.sentence_starts.append(list(accumulate(lengths[:-1], initial=offset)) if lengths else [])
            offset += sum(lengths)

    def __len__(self) -> int:
        return len(self.sentence_lengths)

    def source(self, template: SequenceTemplate) -> np.ndarray:
        """The group's tokens followed by the template's special tokens (pair prefix, middle, suffix, single prefix,
        suffix, separator), made once and shared by all work units."""
        if getattr(self, "_source_key", None) != template:
            specials = (
                template.pair_prefix
                + template.pair_middle
                + template.pair_suffix
                + template.single_prefix
                + template.single_suffix
                + (template.separator,)
            )
            self._source = np.concatenate([self.tokens.astype(np.int32, copy=False), np.array(specials, np.int32)])
            self._source_key = template
        return self._source


def document_seed(seed: int, dupe: int, doc_id: str | int, stream: str = "") -> int:
    """The seed of one document's random generator for one dupe (`stream` names a second, independent one)."""
    digest = hashlib.blake2b(f"{seed}:{dupe}:{doc_id}{':' + stream if stream else ''}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "little")


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

    def __init__(self, group: DocumentGroup, template: SequenceTemplate, label: bool):
        self.source = group.source(template)
        at = len(group.tokens)
        ranges = []
        for part in (
            template.pair_prefix,
            template.pair_middle,
            template.pair_suffix,
            template.single_prefix,
            template.single_suffix,
            (template.separator,),
        ):
            ranges.append((at, at + len(part)))
            at += len(part)
        self.prefix, self.middle, self.suffix, self.single_prefix, self.single_suffix, self.separator = ranges
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
        s += (self.prefix[0], a[0], self.middle[0], b[0], self.suffix[0])
        e += (self.prefix[1], a[1], self.middle[1], b[1], self.suffix[1])
        t += (0, 0, 0, 1, 1)
        self.pieces_per_instance.append(5)
        self.labels.append(label)
        self.doc_index.append(doc_index)
        self.b_doc_index.append(b_doc_index)
        self.truncated.append(truncated)
        self.short_target.append(short)

    def add_packed(self, ranges, doc_index, b_doc_index):
        """[CLS] + ranges (a range of (-1, -1) is a document separator) + [SEP]."""
        self.starts.append(self.single_prefix[0])
        self.ends.append(self.single_prefix[1])
        for start, end in ranges:
            if start < 0:
                start, end = self.separator
            self.starts.append(start)
            self.ends.append(end)
        self.starts.append(self.single_suffix[0])
        self.ends.append(self.single_suffix[1])
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


def _segment_pair_document(
    rng, other, group, d, cfg: InstanceConfig, max_num_tokens: int, out: _Instances, sop: bool, coherence: bool = False
):
    """Google's ``create_instances_from_document`` (NSP), ALBERT's SOP variant, or the coherence variant
    whose negatives come from the same document."""
    lengths, starts = group.sentence_lengths[d], group.sentence_starts[d]
    n = len(lengths)
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
                j = _random_other_document(other, group, d)
                b = _random_span(other, group, j, target - (a[1] - a[0]))
                # Put the chunk's unused sentences back: they start the next chunk.
                i -= count - a_end
                a, b, truncated = _truncate(other, a, b, max_num_tokens)
                out.add_pair(a, b, 1, doc_index, group.doc_indices[j], truncated, short)
            else:
                b = (a[1], chunk_end)
                a, b, truncated = _truncate(rng, a, b, max_num_tokens)
                out.add_pair(a, b, 0, doc_index, doc_index, truncated, short)
            chunk_start, chunk_len = i + 1, 0
            if cfg.short_seq_mode == "instance":
                target, short = draw_target()
        i += 1


def _sentence_pair_document(rng, other, group, d, cfg: InstanceConfig, max_num_tokens: int, out: _Instances):
    """RoBERTa's SENTENCE-PAIR: A is one sentence; B the next one, or a random sentence of another document."""
    lengths, starts = group.sentence_lengths[d], group.sentence_starts[d]
    n = len(lengths)
    doc_index = group.doc_indices[d]
    i = 0
    while i < n:
        a = (starts[i], starts[i] + lengths[i])
        if i == n - 1 or rng.random() < cfg.nsp_probability:
            j = _random_other_document(other, group, d)
            k = other.randrange(len(group.sentence_lengths[j]))
            b = (group.sentence_starts[j][k], group.sentence_starts[j][k] + group.sentence_lengths[j][k])
            a, b, truncated = _truncate(other, a, b, max_num_tokens)
            out.add_pair(a, b, 1, doc_index, group.doc_indices[j], truncated, False)
            i += 1
        else:
            b = (starts[i + 1], starts[i + 1] + lengths[i + 1])
            a, b, truncated = _truncate(rng, a, b, max_num_tokens)
            out.add_pair(a, b, 0, doc_index, doc_index, truncated, False)
            i += 2


def _packed_documents(group, doc_range, max_num_tokens: int, out: _Instances, cross_documents: bool):
    """RoBERTa's FULL-SENTENCES (cross_documents=True) and DOC-SENTENCES: whole sentences packed up to
    the budget; a separator token marks a document boundary inside a FULL-SENTENCES block."""
    budget = max_num_tokens
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
    template: SequenceTemplate | int,
    sep_id: int | None = None,
) -> dict[str, np.ndarray]:
    """Create the instances of the documents ``doc_range`` of a group, for every dupe.

    Args:
        group (`DocumentGroup`): The tokenized group (the random-document pool).
        doc_range (`range`): Which of its documents to turn into instances.
        cfg (`InstanceConfig`): The algorithm's parameters (an unset format or length takes its default).
        template (`SequenceTemplate`): The special tokens around instances; or a classification token id, with
            `sep_id`, for BERT's template.

    Returns:
        `dict[str, np.ndarray]`: Columns as numpy arrays; list columns as ``(offsets, values)`` pairs.
    """
    if not isinstance(template, SequenceTemplate):
        template = SequenceTemplate.bert(int(template), int(sep_id))
    if cfg.data_format is None or cfg.max_seq_length is None:
        cfg = cfg.resolved()
    max_num_tokens = template.max_num_tokens(cfg)
    if max_num_tokens < 2:
        raise ValueError(
            f"max_seq_length={cfg.max_seq_length} is too short for {cfg.data_format!r}: it needs at least "
            f"{cfg.max_seq_length - max_num_tokens + 2} (the tokenizer's special tokens plus one token per segment)."
        )
    out = _Instances(group, template, label=cfg.data_format in PAIR_FORMATS)
    if cfg.data_format in NEEDS_OTHER_DOCUMENT and sum(1 for lengths in group.sentence_lengths if lengths) < 2:
        raise ValueError(
            f"Format {cfg.data_format!r} needs at least two non-empty documents in a random-document pool to draw "
            f"NotNext segments from; found {sum(1 for lengths in group.sentence_lengths if lengths)}. Give a "
            "corpus with more documents (a blank line separates documents in the one-sentence-per-line format), "
            "or use 'sop', 'full-sentences' or 'doc-sentences', which need no second document."
        )
    for dupe in range(cfg.dupe_factor):
        if cfg.data_format in ("full-sentences", "doc-sentences"):
            _packed_documents(
                group, doc_range, max_num_tokens, out, cross_documents=cfg.data_format == "full-sentences"
            )
            continue
        for d in doc_range:
            if not group.sentence_lengths[d]:
                continue
            doc_id = group.doc_ids[d]
            rng = random.Random(document_seed(cfg.instance_seed, dupe, doc_id))
            other = random.Random(document_seed(cfg.instance_seed, dupe, doc_id, "other"))
            if cfg.data_format == "sentence-pair":
                _sentence_pair_document(rng, other, group, d, cfg, max_num_tokens, out)
            else:
                _segment_pair_document(
                    rng,
                    other,
                    group,
                    d,
                    cfg,
                    max_num_tokens,
                    out,
                    sop=cfg.data_format == "sop",
                    coherence=cfg.data_format == "coherence",
                )
    return out.to_columns()
