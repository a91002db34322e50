"""Pretraining instances as ``datasets`` builders, and the one-call helper around them.

:class:`PretrainingDataBuilder` is a ``datasets`` builder class (datasets 5 no longer loads dataset
scripts by path, so it is instantiated directly) with one :class:`PretrainingConfig` per format:
``nsp``, ``sentence-pair``, ``sop``, ``full-sentences``, ``doc-sentences``. It derives from
``datasets.ArrowBasedBuilder``, the table-yielding sibling of ``GeneratorBasedBuilder``: the same
configs, ``Features``, splits, caching and ``num_proc``, but instances are written a group at a time
as Arrow tables instead of one Python dict at a time (the per-dict encoding would cost more than making
the instances).

Pipeline (in-memory / Arrow mode):

1. read and tokenize the corpus (:class:`TokenizedCorpusBuilder`, cached): the corpus is cut into input
   shards (:func:`nsptask.corpus.plan_shards`), each shard is read, split into sentences and tokenized by
   :func:`nsptask.preprocessing.tokenize_documents` in one pass, and shards are spread over ``num_proc``
   processes;
2. assign each document to train or validation by a hash of its id and the split seed;
3. order each split's documents by a seeded hash of their ids (a global shuffle, as Google shuffles all
   documents; ``pool_order="corpus"`` keeps corpus order), cut them into random-document *pools* of
   ``pool_size`` documents, and those into work units of ``unit_size`` documents; units are spread over
   ``num_proc`` processes (and over machines with ``shard_index`` / ``num_shards``, which select whole pools,
   or over a Dask cluster: :mod:`nsptask.engine`).

``num_proc=N`` gives the build N cores: N processes, each with a single-threaded tokenizer. Without it, one
process builds and the Rust tokenizer uses every core for tokenizing.

Streaming mode does the same steps lazily, a pool at a time, so memory does not grow with the corpus,
and yields exactly the same instances as the Arrow build with ``pool_order="corpus"`` (a global shuffle
needs the whole corpus).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .instances import (
    FORMATS,
    LABEL_NAMES,
    NEEDS_OTHER_DOCUMENT,
    PAIR_FORMATS,
    DocumentGroup,
    InstanceConfig,
    SequenceTemplate,
    create_instances,
)
from .preprocessing import order_keys, tokenize_documents, tokenizer_threads, validation_flags

__all__ = [
    "PretrainingConfig",
    "PretrainingDataBuilder",
    "TokenizedCorpusBuilder",
    "build_pretraining_dataset",
    "instance_features",
    "tokenizer_fingerprint",
    "training_document_hashes",
    "POOL_ORDERS",
]

logger = logging.getLogger(__name__)

POOL_ORDERS = ("shuffled", "corpus")
BUILD_RECORD_FILE = "nsptask_build.json"  # beside a saved build: format, options, report
PRETRAINING_DOCUMENTS_FILE = "pretraining_documents.npy"  # text hashes of the training documents
# Warn above this share of unknown tokens; stop above the second unless allowed.
UNK_WARN, UNK_STOP = 0.01, 0.05
STREAMING_UNK_TOKENS = 200_000  # a streaming build checks the unknown-token rate on its first tokens

_FORMAT_DESCRIPTIONS = {
    "nsp": "SEGMENT-PAIR + NSP (BERT): segments of whole sentences; B continues A or comes from another document.",
    "sentence-pair": "SENTENCE-PAIR + NSP (RoBERTa's ablation): single sentences as A and B.",
    "sop": "Sentence-order prediction (ALBERT): consecutive segments of one document, in order or swapped.",
    "full-sentences": "FULL-SENTENCES (RoBERTa, no NSP): sentences packed across documents, [SEP] between them.",
    "doc-sentences": "DOC-SENTENCES (RoBERTa, no NSP): sentences packed within one document.",
    "coherence": "Coherence (downstream task): B continues A, or comes from the same document but not adjacent.",
}

READER_DEFAULTS = {
    "format": None,
    "text_column": "text",
    "doc_id_column": None,
    "splitter": "sentencex",
    "language": "en",
    "document_per": "paragraph",
    "encoding": "utf-8",
    "errors": "strict",
    "split": "train",
    "wiki_min_chars": 500,
}


def canonical_reader_kwargs(reader_kwargs: dict | None) -> dict:
    """Reader options with every default filled in, so that equal settings give equal cache keys."""
    out = dict(READER_DEFAULTS)
    for key, value in (reader_kwargs or {}).items():
        if key not in READER_DEFAULTS:
            raise ValueError(f"Unknown corpus reader option {key!r}: expected one of {sorted(READER_DEFAULTS)}")
        if value is not None or key in ("format", "doc_id_column"):
            out[key] = value
    return out


def instance_features(format: str):
    """The typed ``datasets.Features`` of a format's instances.

    Pair formats: ``input_ids``, ``token_type_ids``, the label (``next_sentence_label`` or
    ``sentence_order_label``, a ``ClassLabel``), ``doc_index`` and ``b_doc_index`` (where A and B come
    from: positions in the split's pooled document order), ``truncated_tokens`` and ``short_target``. Packed
    formats: ``input_ids``, ``doc_index`` and ``last_doc_index`` (first and last document in the block).
    """
    import datasets

    columns: dict[str, Any] = {"input_ids": datasets.List(datasets.Value("int32"))}
    if format in PAIR_FORMATS:
        label_column = InstanceConfig(format=format).label_column
        columns["token_type_ids"] = datasets.List(datasets.Value("int8"))
        columns[label_column] = datasets.ClassLabel(names=LABEL_NAMES[label_column])
        columns["doc_index"] = datasets.Value("int32")
        columns["b_doc_index"] = datasets.Value("int32")
        columns["truncated_tokens"] = datasets.Value("int32")
        columns["short_target"] = datasets.Value("bool")
    else:
        columns["doc_index"] = datasets.Value("int32")
        columns["last_doc_index"] = datasets.Value("int32")
    return datasets.Features(columns)


def tokenized_features():
    import datasets

    return datasets.Features(
        {
            "doc_id": datasets.Value("string"),
            "doc_key": datasets.Value("uint64"),
            "input_ids": datasets.List(datasets.Value("int32")),
            "sentence_lengths": datasets.List(datasets.Value("int32")),
            "skipped": datasets.Value("string"),
            "sentences_split": datasets.Value("int32"),
            "sentences_empty": datasets.Value("int32"),
            "unk_tokens": datasets.Value("int32"),
            "text_hash": datasets.Value("uint64"),
        }
    )


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of what decides a tokenizer's ids: its ``tokenizer.json`` (without truncation and padding) and
    its special tokens. The same tokenizer loaded from a path or passed as an object gives the same value."""
    from .preprocessing import plain_backend

    payload = json.dumps(
        {
            "backend": plain_backend(tokenizer).to_str(),
            "special": {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())},
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _resolve_tokenizer(tokenizer):
    from .tokenization import load_tokenizer

    return load_tokenizer(tokenizer)


_TEMPLATES = None  # a WeakKeyDictionary, made at first use


def sequence_template(tokenizer) -> SequenceTemplate:
    """The special tokens the tokenizer frames pairs and single sequences with (cached per tokenizer)."""
    global _TEMPLATES
    import weakref

    if _TEMPLATES is None:
        _TEMPLATES = weakref.WeakKeyDictionary()
    template = _TEMPLATES.get(tokenizer)
    if template is None:
        template = _TEMPLATES[tokenizer] = SequenceTemplate.from_tokenizer(tokenizer)
    return template


def instance_config_for(config, tokenizer) -> InstanceConfig:
    """The build's instance parameters with the tokenizer's count of special tokens."""
    from dataclasses import replace

    template = sequence_template(tokenizer)
    return replace(
        config.instance_config, pair_specials=template.pair_specials, single_specials=template.single_specials
    )


def _builder_config_base():
    import datasets

    return datasets.BuilderConfig


def _key(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class TokenizedCorpusConfig(_builder_config_base()):
    """Configuration of :class:`TokenizedCorpusBuilder`: the corpus, how to read it and the tokenizer."""

    source: Any = None
    reader_kwargs: dict = field(default_factory=dict)
    tokenizer: Any = None
    tokenizer_backend: str = "hf"
    max_sentence_tokens: int = 125

    def create_config_id(self, config_kwargs: dict, custom_features=None) -> str:
        from .corpus import source_fingerprint

        return "tokenized-" + _key(
            {
                "source": source_fingerprint(self.source),
                "reader": {k: v for k, v in canonical_reader_kwargs(self.reader_kwargs).items() if k != "splitter"}
                | {"splitter": _splitter_name(self.reader_kwargs.get("splitter"))},
                "tokenizer": tokenizer_fingerprint(_resolve_tokenizer(self.tokenizer)),
                "backend": self.tokenizer_backend,
                "max_sentence_tokens": self.max_sentence_tokens,
            }
        )


def _splitter_name(splitter) -> str:
    if splitter is None or isinstance(splitter, str):
        return splitter or "sentencex"
    return f"{type(splitter).__module__}.{type(splitter).__qualname__}:{getattr(splitter, '__dict__', '')}"


def _builder_base():
    import datasets

    return datasets.ArrowBasedBuilder


class TokenizedCorpusBuilder(_builder_base()):
    """``datasets`` builder of a corpus's tokenized documents: one row per document (skipped ones included,
    with their reason), in corpus order. Reading, sentence splitting and tokenizing run in one pass per input
    shard; shards are spread over ``num_proc`` processes."""

    BUILDER_CONFIG_CLASS = TokenizedCorpusConfig
    DEFAULT_WRITER_BATCH_SIZE = 1000

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("dataset_name", "nsptask_tokenized")
        super().__init__(*args, **kwargs)
        self._num_proc: int | None = None

    def _info(self):
        import datasets

        return datasets.DatasetInfo(description="Tokenized documents", features=tokenized_features())

    @property
    def tokenizer(self):
        if not hasattr(self, "_tokenizer_obj"):
            self._tokenizer_obj = _resolve_tokenizer(self.config.tokenizer)
        return self._tokenizer_obj

    def download_and_prepare(self, *args, num_proc: int | None = None, **kwargs):
        self._num_proc = num_proc
        # Processes get one core each: their tokenizers must not start threads (and a fork after the
        # parent's tokenizer used its threads would print a warning and disable them anyway).
        with _environ(TOKENIZERS_PARALLELISM="false") if num_proc and num_proc > 1 else _nullcontext():
            with _clear_errors():
                return super().download_and_prepare(*args, num_proc=num_proc, **kwargs)

    def _split_generators(self, dl_manager):
        import datasets

        from .corpus import plan_shards

        cfg = self.config
        num_proc = self._num_proc or 1
        reader = canonical_reader_kwargs(cfg.reader_kwargs)
        shards, ignored = plan_shards(
            cfg.source,
            4 * num_proc if num_proc > 1 else 1,
            format=reader["format"],
            encoding=reader["encoding"],
            document_per=reader["document_per"],
            doc_id_column=reader["doc_id_column"],
        )
        self.ignored_files = ignored
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={"shards": shards})]

    def _generate_tables(self, shards):
        import datasets

        single = self._num_proc is not None  # an explicit process count means one core per process
        for key, table in enumerate(tokenized_shard_tables(shards, self.config, self.tokenizer, single)):
            yield datasets.builder.Key(0, key), table


def tokenized_shard_tables(shards, cfg: TokenizedCorpusConfig, tokenizer, single_thread: bool, batch_docs: int = 512):
    """Read, split and tokenize input shards, yielding Arrow tables of tokenized documents (in order)."""
    import pyarrow as pa

    from .corpus import read_shard

    reader = canonical_reader_kwargs(cfg.reader_kwargs)
    options = {k: v for k, v in reader.items() if k != "format"}
    schema = tokenized_features().arrow_schema
    with tokenizer_threads(single_thread):
        for shard in shards:
            batch: list[dict] = []
            for doc in read_shard(shard, **options):
                batch.append(doc)
                if len(batch) == batch_docs:
                    yield _tokenized_table(batch, tokenizer, cfg, schema, pa)
                    batch = []
            if batch:
                yield _tokenized_table(batch, tokenizer, cfg, schema, pa)


def _tokenized_table(docs: list[dict], tokenizer, cfg, schema, pa):
    out = tokenize_documents(
        {
            "doc_id": [d["doc_id"] for d in docs],
            "sentences": [d["sentences"] for d in docs],
            "skipped": [d["skipped"] for d in docs],
        },
        tokenizer=tokenizer,
        max_sentence_tokens=cfg.max_sentence_tokens,
        backend=cfg.tokenizer_backend,
    )
    ids = out["input_ids"]
    offsets = np.zeros(len(ids) + 1, dtype=np.int32)
    np.cumsum([len(x) for x in ids], out=offsets[1:])
    values = np.concatenate(ids) if ids else np.zeros(0, np.int32)
    columns = {
        "doc_id": pa.array(out["doc_id"], pa.string()),
        "doc_key": pa.array(np.asarray(out["doc_key"], dtype=np.uint64)),
        "input_ids": pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.astype(np.int32))),
        "sentence_lengths": pa.array(out["sentence_lengths"], pa.list_(pa.int32())),
        "skipped": pa.array(out["skipped"], pa.string()),
        "sentences_split": pa.array(out["sentences_split"], pa.int32()),
        "sentences_empty": pa.array(out["sentences_empty"], pa.int32()),
        "unk_tokens": pa.array(out["unk_tokens"], pa.int32()),
        "text_hash": pa.array(np.asarray(out["text_hash"], dtype=np.uint64)),
    }
    return pa.table(columns).cast(schema)


@dataclass
class PretrainingConfig(_builder_config_base()):
    """Configuration of :class:`PretrainingDataBuilder`: the format, the algorithm's parameters, the corpus
    and the tokenizer.

    Args:
        format (`str`, *optional*, defaults to `"nsp"`): ``nsp``, ``sentence-pair``, ``sop``,
            ``full-sentences``, ``doc-sentences`` or ``coherence``. The config ``name`` is the format.
        max_seq_length, short_seq_prob, short_seq_mode, nsp_probability, dupe_factor, seed: See
            :class:`nsptask.instances.InstanceConfig` (``seed`` also seeds the shuffle before pooling).
        validation_fraction (`float`, *optional*, defaults to 0.2): Share of documents in validation.
        split_seed (`int`, *optional*, defaults to 12345): Seed of the document split.
        pool_size (`int`, *optional*, defaults to 1000): Documents per random-document pool: NotNext
            segments come from another document of the same pool. Bounds memory.
        pool_order (`str`, *optional*, defaults to `"shuffled"`): ``shuffled`` pools documents after a seeded
            global shuffle (Google draws random documents from the whole corpus); ``corpus`` pools consecutive
            documents in corpus order (streaming needs it).
        unit_size (`int`, *optional*, defaults to 16): Documents per work unit (the grain of ``num_proc``).
        shard_index (`int`, *optional*, defaults to 0), num_shards (`int`, *optional*, defaults to 1): Build
            only the pools with ``pool % num_shards == shard_index`` (multi-machine builds).
        source (*optional*): The corpus (see :func:`nsptask.corpus.iter_documents`); bundled corpus if `None`.
        reader_kwargs (`dict`, *optional*): Passed to the corpus reader (``format``, ``text_column``, ...).
        tokenizer (*optional*): Tokenizer object, path or Hub id; the default WordPiece tokenizer if `None`.
        tokenizer_backend (`str`, *optional*, defaults to `"hf"`): ``"hf"`` or ``"tokie"`` (fast path).
        allow_unknown_tokens (`bool`, *optional*, defaults to `False`): Build even when more than 5% of the
            corpus's tokens are unknown to the tokenizer (above 1% is a warning in the report).
    """

    format: str = "nsp"
    max_seq_length: int = 128
    short_seq_prob: float = 0.1
    short_seq_mode: str = "document"
    nsp_probability: float = 0.5
    dupe_factor: int = 1
    seed: int = 12345
    validation_fraction: float = 0.2
    split_seed: int = 12345
    pool_size: int = 1000
    pool_order: str = "shuffled"
    unit_size: int = 16
    shard_index: int = 0
    num_shards: int = 1
    source: Any = None
    reader_kwargs: dict = field(default_factory=dict)
    tokenizer: Any = None
    tokenizer_backend: str = "hf"
    allow_unknown_tokens: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.name in FORMATS and self.format != self.name:
            self.format = self.name
        self.validate()

    def validate(self) -> None:
        """Check every option (the ``datasets`` builder sets overrides after construction, so this runs again
        when the cache key is made)."""
        if self.name in FORMATS:
            self.format = self.name
        _ = self.instance_config  # validates the algorithm's parameters
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must lie in [0, 1), got {self.validation_fraction}")
        if self.pool_size < 2 or self.unit_size < 1:
            raise ValueError("pool_size must be >= 2 and unit_size >= 1")
        if self.pool_order not in POOL_ORDERS:
            raise ValueError(f"pool_order must be one of {POOL_ORDERS}, got {self.pool_order!r}")
        if not 0 <= self.shard_index < self.num_shards:
            raise ValueError(f"shard_index must lie in [0, num_shards), got {self.shard_index} of {self.num_shards}")
        if self.tokenizer_backend not in ("hf", "tokie"):
            raise ValueError(f"tokenizer_backend must be 'hf' or 'tokie', got {self.tokenizer_backend!r}")
        canonical_reader_kwargs(self.reader_kwargs)

    @property
    def instance_config(self) -> InstanceConfig:
        return InstanceConfig(
            format=self.format,
            max_seq_length=self.max_seq_length,
            short_seq_prob=self.short_seq_prob,
            short_seq_mode=self.short_seq_mode,
            nsp_probability=self.nsp_probability,
            dupe_factor=self.dupe_factor,
            seed=self.seed,
        )

    def tokenized_config(self, tokenizer) -> dict:
        """The options of the tokenized corpus this build reads."""
        return {
            "source": self.source,
            "reader_kwargs": self.reader_kwargs,
            "tokenizer": tokenizer,
            "tokenizer_backend": self.tokenizer_backend,
            "max_sentence_tokens": instance_config_for(self, tokenizer).max_sentence_tokens,
        }

    def fingerprint(self) -> str:
        """What decides the instances, as a hash: the same settings give the same value in every command."""
        from .corpus import source_fingerprint

        self.validate()
        return _key(
            {
                "instances": vars(self.instance_config),
                "split": [self.validation_fraction, self.split_seed],
                "pools": [self.pool_size, self.pool_order, self.shard_index, self.num_shards],
                "source": source_fingerprint(self.source),
                "reader": canonical_reader_kwargs(self.reader_kwargs)
                | {"splitter": _splitter_name(self.reader_kwargs.get("splitter"))},
                "tokenizer": tokenizer_fingerprint(_resolve_tokenizer(self.tokenizer)),
                "backend": self.tokenizer_backend,
                "allow_unknown_tokens": self.allow_unknown_tokens,
            }
        )

    def create_config_id(self, config_kwargs: dict, custom_features=None) -> str:
        return f"{self.name}-{self.fingerprint()}"


class PretrainingDataBuilder(_builder_base()):
    """``datasets`` builder of sentence-level pretraining instances (NSP, SENTENCE-PAIR, SOP, FULL- and
    DOC-SENTENCES) from a document corpus.

    Example:
        ```python
        >>> from nsptask import PretrainingDataBuilder
        >>> builder = PretrainingDataBuilder(config_name="sop", max_seq_length=64)
        >>> builder.download_and_prepare(num_proc=2)
        >>> builder.as_dataset()["train"].features["sentence_order_label"].names
        ['InOrder', 'Swapped']
        ```
    """

    BUILDER_CONFIG_CLASS = PretrainingConfig
    BUILDER_CONFIGS = [PretrainingConfig(name=f, format=f, description=_FORMAT_DESCRIPTIONS[f]) for f in FORMATS]
    DEFAULT_CONFIG_NAME = "nsp"
    DEFAULT_WRITER_BATCH_SIZE = 10_000

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("dataset_name", "nsptask")
        super().__init__(*args, **kwargs)
        self._num_proc: int | None = None
        self._tokenized = None
        self._orders: dict[str, np.ndarray] = {}

    def _info(self):
        import datasets

        return datasets.DatasetInfo(
            description=_FORMAT_DESCRIPTIONS[self.config.format], features=instance_features(self.config.format)
        )

    # -- tokenizer and documents -------------------------------------------------------------------
    @property
    def tokenizer(self):
        from .tokenization import check_pair_tokenizer

        if not hasattr(self, "_tokenizer_obj"):
            self._tokenizer_obj = _resolve_tokenizer(self.config.tokenizer)
            check_pair_tokenizer(self._tokenizer_obj, needs_pair=self.config.format in PAIR_FORMATS)
        return self._tokenizer_obj

    def tokenized_documents(self, num_proc: int | None = None):
        """All documents of the corpus, tokenized (a cached ``datasets.Dataset``), skipped ones included."""
        if self._tokenized is None:
            from .distributed import main_process_first

            with main_process_first(desc="nsptask: reading and tokenizing the corpus"), _clear_errors():
                options = self.config.tokenized_config(self.tokenizer)
                builder = TokenizedCorpusBuilder(cache_dir=self._cache_dir_root, **options)
                builder.download_and_prepare(num_proc=num_proc)
                self._tokenized = builder.as_dataset(split="train")
        return self._tokenized

    def split_order(self, split: str) -> np.ndarray:
        """Row indices (into :meth:`tokenized_documents`) of a split's usable documents, in pooled order: the
        instances' ``doc_index`` indexes this array."""
        if split not in self._orders:
            self._orders.update(split_orders(self.tokenized_documents(self._num_proc), self.config))
        return self._orders[split]

    def split_documents(self, split: str):
        """A split's usable documents in ``doc_index`` order (a ``datasets.Dataset`` of tokenized documents)."""
        return self.tokenized_documents(self._num_proc).select(self.split_order(split))

    def download_and_prepare(self, *args, num_proc: int | None = None, **kwargs):
        self._num_proc = num_proc
        with _clear_errors():
            return super().download_and_prepare(*args, num_proc=num_proc, **kwargs)

    # -- splits --------------------------------------------------------------------------------------
    def _split_generators(self, dl_manager):
        import datasets

        cfg = self.config
        names = [datasets.Split.TRAIN] + ([datasets.Split.VALIDATION] if cfg.validation_fraction > 0 else [])
        if isinstance(dl_manager, datasets.StreamingDownloadManager):
            if cfg.pool_order != "corpus":
                raise ValueError(_STREAMING_ORDER_MESSAGE)
            return [datasets.SplitGenerator(name=n, gen_kwargs={"stream_split": str(n)}) for n in names]
        tokenized = self.tokenized_documents(self._num_proc)
        check_unknown_tokens(tokenized, cfg)
        generators = []
        for name in names:
            order = self.split_order(str(name))
            if len(order) == 0:
                raise ValueError(_empty_split_message(str(name), tokenized, cfg))
            if cfg.format in NEEDS_OTHER_DOCUMENT and len(order) < 2:
                raise ValueError(_single_document_message(cfg.format, str(name)))
            units = _work_units(len(order), cfg)
            generators.append(
                datasets.SplitGenerator(name=name, gen_kwargs={"units": units, "documents": tokenized, "order": order})
            )
        return generators

    def _generate_tables(self, units=None, documents=None, order=None, stream_split=None):
        import datasets

        if stream_split is not None:
            iterator = self._stream_tables(stream_split)
        else:
            iterator = self._unit_tables(units, documents, order)
        for index, table in enumerate(iterator):
            yield datasets.builder.Key(0, index), table

    def _unit_tables(self, units, documents, order) -> Iterator:
        arrow_docs = documents.with_format("arrow")
        cached_group: tuple[int, int] | None = None
        group = None
        for g_start, g_end, u_start, u_end in units:
            if cached_group != (g_start, g_end):
                group = group_from_table(arrow_docs[order[g_start:g_end]], first_index=g_start)
                cached_group = (g_start, g_end)
            yield instances_table(group, range(u_start - g_start, u_end - g_start), self.config, self.tokenizer)

    def _stream_tables(self, split: str) -> Iterator:
        """Streaming: read, tokenize and pool documents lazily; the instances of the Arrow build with
        ``pool_order="corpus"``."""
        from .corpus import iter_documents

        cfg = self.config
        reader = canonical_reader_kwargs(cfg.reader_kwargs)
        tokenizer = self.tokenizer
        want_validation = split == "validation"
        pending: list[dict] = []
        index = 0
        pool_number = 0
        unk = {"unknown": 0, "tokens": 0, "checked": False}

        def flush(docs):
            nonlocal index, pool_number
            group = DocumentGroup(
                tokens=np.concatenate([d["input_ids"] for d in docs]) if docs else np.zeros(0, np.int32),
                sentence_lengths=[d["sentence_lengths"] for d in docs],
                doc_indices=list(range(index, index + len(docs))),
                doc_ids=[d["doc_id"] for d in docs],
            )
            index += len(docs)
            mine = pool_number % cfg.num_shards == cfg.shard_index
            pool_number += 1
            if mine:
                for u in range(0, len(docs), cfg.unit_size):
                    yield instances_table(group, range(u, min(u + cfg.unit_size, len(docs))), cfg, tokenizer)

        def usable(docs):
            out = tokenize_documents(
                {
                    "doc_id": [d["doc_id"] for d in docs],
                    "sentences": [d["sentences"] for d in docs],
                    "skipped": [d["skipped"] for d in docs],
                },
                tokenizer=tokenizer,
                max_sentence_tokens=instance_config_for(cfg, tokenizer).max_sentence_tokens,
                backend=cfg.tokenizer_backend,
            )
            flags = validation_flags(np.asarray(out["doc_key"], np.uint64), cfg.validation_fraction, cfg.split_seed)
            if not unk["checked"]:
                # A streaming build never sees the whole corpus: the unknown-token check runs on its first
                # STREAMING_UNK_TOKENS tokens (both splits), once.
                unk["unknown"] += int(sum(out["unk_tokens"]))
                unk["tokens"] += int(sum(len(ids) for ids in out["input_ids"]))
                if unk["tokens"] >= STREAMING_UNK_TOKENS:
                    check_unknown_counts(unk["unknown"], unk["tokens"], cfg)
                    unk["checked"] = True
            return [
                {
                    "doc_id": out["doc_id"][i],
                    "input_ids": out["input_ids"][i],
                    "sentence_lengths": out["sentence_lengths"][i],
                }
                for i in range(len(docs))
                if flags[i] == want_validation and len(out["sentence_lengths"][i]) > 0
            ]

        batch: list[dict] = []
        for doc in iter_documents(cfg.source, **{k: v for k, v in reader.items()}):
            batch.append(doc)
            if len(batch) == 64:
                pending.extend(usable(batch))
                batch = []
                # Keep at least two documents back, so the last pool never holds a single document
                # (the Arrow build merges such a remainder into the pool before it, too).
                while len(pending) >= cfg.pool_size + 2:
                    yield from flush(pending[: cfg.pool_size])
                    pending = pending[cfg.pool_size :]
        pending.extend(usable(batch))
        if not unk["checked"]:  # a corpus smaller than the sample: check what there is
            check_unknown_counts(unk["unknown"], unk["tokens"], cfg)
        for start, end in _pool_bounds(len(pending), cfg.pool_size):
            yield from flush(pending[start:end])


_STREAMING_ORDER_MESSAGE = (
    "Streaming builds pool documents in corpus order: a global shuffle of documents needs the whole corpus first. "
    "Pass pool_order='corpus' (CLI: --pool_order corpus) to stream, or build to disk (the default) to keep the "
    "shuffled pools."
)


def split_orders(tokenized, cfg: PretrainingConfig) -> dict[str, np.ndarray]:
    """For each split, the row indices of its usable documents in pooled order (shuffled by a seeded hash of
    their ids, or corpus order). A document id that occurs twice among usable documents is an error."""
    import pyarrow.compute as pc

    table = tokenized.with_format("arrow")[:]
    usable = pc.greater(pc.list_value_length(table["sentence_lengths"]), 0).to_numpy(zero_copy_only=False)
    keys = table["doc_key"].to_numpy()
    rows = np.flatnonzero(usable)
    used_keys = keys[rows]
    unique, counts = np.unique(used_keys, return_counts=True)
    if len(unique) < len(used_keys):
        duplicate = unique[counts > 1][0]
        where = rows[used_keys == duplicate]
        ids = table["doc_id"].take(where[:3]).to_pylist()
        raise ValueError(
            f"Document id {ids[0]!r} is used by {int((used_keys == duplicate).sum())} documents (rows "
            f"{where[:3].tolist()}): expected every document id once. With doc_id_column, rows sharing an id must "
            "be consecutive (they form one document); give the others distinct ids."
        )
    flags = validation_flags(used_keys, cfg.validation_fraction, cfg.split_seed)
    out = {}
    for split, wanted in (("train", False), ("validation", True)):
        mine = rows[flags == wanted]
        if cfg.pool_order == "shuffled":
            mine = mine[np.argsort(order_keys(keys[mine], cfg.seed), kind="stable")]
        out[split] = mine.astype(np.int64)
    return out


def training_document_hashes(builder):
    """Text hashes of the documents a build's training split was made from (the record of what a model saw)."""
    docs = builder.tokenized_documents()
    hashes = docs.with_format("arrow")[:]["text_hash"].to_numpy()
    return np.unique(hashes[builder.split_order("train")]).astype(np.uint64)


def check_unknown_tokens(tokenized, cfg: PretrainingConfig) -> float:
    """The share of unknown tokens in the corpus; a warning above 1%, an error above 5% unless allowed."""
    import pyarrow.compute as pc

    table = tokenized.with_format("arrow")[:]
    tokens = int(pc.sum(pc.list_value_length(table["input_ids"])).as_py() or 0)
    unknown = int(pc.sum(table["unk_tokens"]).as_py() or 0)
    return check_unknown_counts(unknown, tokens, cfg)


def check_unknown_counts(unknown: int, tokens: int, cfg) -> float:
    """:func:`check_unknown_tokens` from the counts (the Dask engine sums them over its shards)."""
    rate = unknown / tokens if tokens else 0.0
    if rate > UNK_STOP and not cfg.allow_unknown_tokens:
        raise ValueError(unknown_tokens_message(rate, unknown, tokens, cfg))
    if rate > UNK_WARN:
        logger.warning("nsptask: %s", unknown_tokens_message(rate, unknown, tokens, cfg, warning=True))
    return rate


def unknown_tokens_message(rate: float, unknown: int, tokens: int, cfg, warning: bool = False) -> str:
    language = (cfg.reader_kwargs or {}).get("language") or "en"
    fix = (
        "Train a tokenizer on this corpus: nsptask tokenizer --corpus CORPUS"
        + (f" --language {language}" if language != "en" else "")
        + " --output_dir TOKENIZER, then pass --tokenizer_name_or_path TOKENIZER"
    )
    if warning:
        return f"{rate:.1%} of the corpus's tokens ({unknown:,} of {tokens:,}) are unknown to the tokenizer. {fix}."
    return (
        f"{rate:.1%} of the corpus's tokens ({unknown:,} of {tokens:,}) are unknown to the tokenizer (expected at most "
        f"{UNK_STOP:.0%}): the model would learn from [UNK] text. {fix}; or pass --allow_unknown_tokens "
        "(allow_unknown_tokens=True) to build anyway."
    )


def ignored_files(cfg) -> list[str]:
    from .corpus import corpus_files

    source = cfg.source
    if source is None or not isinstance(source, (str, os.PathLike, list, tuple)):
        return []
    try:
        return corpus_files(source)[1]
    except Exception:  # a Hub name: nothing to list
        return []


def _pool_bounds(n_docs: int, pool_size: int) -> list[tuple[int, int]]:
    """Pools of `pool_size` consecutive documents; a last pool of one document joins the one before."""
    bounds = [(start, min(start + pool_size, n_docs)) for start in range(0, n_docs, pool_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n_docs)]
    return bounds


def _work_units(n_docs: int, cfg: PretrainingConfig) -> list[tuple[int, int, int, int]]:
    units = []
    for pool_number, (g_start, g_end) in enumerate(_pool_bounds(n_docs, cfg.pool_size)):
        if pool_number % cfg.num_shards != cfg.shard_index:
            continue
        for u_start in range(g_start, g_end, cfg.unit_size):
            units.append((g_start, g_end, u_start, min(u_start + cfg.unit_size, g_end)))
    return units


def group_from_table(table, first_index: int) -> DocumentGroup:
    """A :class:`DocumentGroup` from an Arrow table of tokenized documents (in pooled order)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = table["input_ids"]
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    return DocumentGroup(
        tokens=pc.list_flatten(ids).to_numpy(zero_copy_only=False),
        sentence_lengths=table["sentence_lengths"].to_pylist(),
        doc_indices=list(range(first_index, first_index + table.num_rows)),
        doc_ids=table["doc_id"].to_pylist(),
    )


def instances_table(group: DocumentGroup, doc_range: range, config: PretrainingConfig, tokenizer):
    """The instances of documents `doc_range` of a pool, as an Arrow table with the format's schema."""
    import pyarrow as pa

    cfg = instance_config_for(config, tokenizer)
    columns = create_instances(group, doc_range, cfg, sequence_template(tokenizer))
    offsets, values = columns["input_ids"]
    arrays = {"input_ids": pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))}
    if cfg.format in PAIR_FORMATS:
        offsets, values = columns["token_type_ids"]
        arrays["token_type_ids"] = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))
        arrays[cfg.label_column] = pa.array(columns["label"])
        arrays["doc_index"] = pa.array(columns["doc_index"])
        arrays["b_doc_index"] = pa.array(columns["b_doc_index"])
        arrays["truncated_tokens"] = pa.array(columns["truncated_tokens"])
        arrays["short_target"] = pa.array(columns["short_target"])
    else:
        arrays["doc_index"] = pa.array(columns["doc_index"])
        arrays["last_doc_index"] = pa.array(columns["b_doc_index"])
    return pa.table(arrays).cast(instance_features(cfg.format).arrow_schema)


@contextmanager
def _environ(**values: str):
    previous = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def _nullcontext():
    yield


@contextmanager
def _clear_errors():
    """datasets wraps errors raised while generating; give the user nsptask's own message instead."""
    from datasets.exceptions import DatasetGenerationError

    try:
        yield
    except DatasetGenerationError as err:
        cause = err.__cause__
        while isinstance(cause, DatasetGenerationError) and cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, ValueError):  # CorpusError included
            raise cause from None
        raise


def _single_document_message(fmt: str, split: str) -> str:
    return (
        f"Format {fmt!r} needs at least two documents with text in the {split} split, to draw NotNext segments "
        f"from a different document; found one. Give a corpus with more documents (a blank line separates "
        "documents in the one-sentence-per-line format), or use 'sop', 'full-sentences' or 'doc-sentences', "
        "which need no second document."
    )


def _empty_split_message(split: str, tokenized, cfg: PretrainingConfig) -> str:
    import pyarrow.compute as pc

    lengths = pc.list_value_length(tokenized.with_format("arrow")[:]["sentence_lengths"])
    usable = int(pc.sum(pc.greater(lengths, 0)).as_py() or 0)
    return (
        f"The {split} split has no usable document: the corpus has {len(tokenized)} documents, {usable} with text, "
        f"and validation_fraction={cfg.validation_fraction} assigned none of them to {split}. "
        + (
            "Add documents (a blank line separates documents in the one-sentence-per-line format)."
            if usable < 2
            else "Change validation_fraction (0 disables the validation split) or the split seed."
        )
    )


def build_pretraining_dataset(
    source: Any = None,
    format: str = "nsp",
    tokenizer: Any = None,
    *,
    streaming: bool = False,
    num_proc: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    return_report: bool = False,
    return_builder: bool = False,
    reader_kwargs: dict | None = None,
    **config_kwargs: Any,
):
    """Build pretraining instances from a corpus in one call.

    Args:
        source (*optional*): Corpus file(s), directory, dataset or Hub name; the bundled Wikipedia sample if
            `None`. See :func:`nsptask.corpus.iter_documents`.
        format (`str`, *optional*, defaults to `"nsp"`): ``nsp``, ``sentence-pair``, ``sop``,
            ``full-sentences``, ``doc-sentences`` or ``coherence``.
        tokenizer (*optional*): Tokenizer object, local path or Hub id; nsptask's default WordPiece tokenizer
            (trained on the bundled corpus) if `None`.
        streaming (`bool`, *optional*, defaults to `False`): Return ``IterableDataset`` splits built lazily
            (needs ``pool_order="corpus"``).
        num_proc (`int`, *optional*): Cores for reading, tokenizing and building: that many processes, each with
            a single-threaded tokenizer. Without it, one process whose tokenizer uses every core.
        cache_dir (`str`, *optional*): ``datasets`` cache folder for the built instances.
        return_report (`bool`, *optional*, defaults to `False`): Also return the statistics report (a dict).
        return_builder (`bool`, *optional*, defaults to `False`): Also return the builder (its documents, split and
            pools: ``builder.split_documents(split)``).
        reader_kwargs (`dict`, *optional*): Corpus reader options (``format``, ``text_column``, ``splitter``,
            ``language``, ``errors``, ``document_per``, ...).
        **config_kwargs: :class:`PretrainingConfig` fields (``max_seq_length``, ``short_seq_prob``,
            ``dupe_factor``, ``seed``, ``validation_fraction``, ``split_seed``, ``pool_size``, ``pool_order``,
            ``shard_index``, ``allow_unknown_tokens``, ...).

    Returns:
        `datasets.DatasetDict` (or `IterableDatasetDict` when streaming) with ``train`` and ``validation``
        splits made by document; with `return_report` and/or `return_builder`, a tuple ``(dataset_dict, report,
        builder)`` with those asked for.

    Example:
        ```python
        >>> from nsptask import build_pretraining_dataset
        >>> data = build_pretraining_dataset(format="nsp", max_seq_length=128)
        >>> data["train"].features["next_sentence_label"].names
        ['IsNext', 'NotNext']
        ```
    """
    import datasets

    if format not in FORMATS:
        raise ValueError(f"Unknown format {format!r}: expected one of {FORMATS}")
    builder = PretrainingDataBuilder(
        config_name=format,
        cache_dir=os.fspath(cache_dir) if cache_dir is not None else None,
        source=source,
        tokenizer=tokenizer,
        reader_kwargs=reader_kwargs or {},
        **config_kwargs,
    )
    if streaming:
        if builder.config.pool_order != "corpus":
            raise ValueError(_STREAMING_ORDER_MESSAGE)
        splits = ["train"] + (["validation"] if builder.config.validation_fraction > 0 else [])
        result = datasets.IterableDatasetDict({s: builder.as_streaming_dataset(split=s) for s in splits})
        extra = ([None] if return_report else []) + ([builder] if return_builder else [])
        return (result, *extra) if extra else result
    builder.download_and_prepare(num_proc=num_proc)
    result = builder.as_dataset()
    extra = []
    if return_report:
        from .stats import build_report

        extra.append(build_report(builder, result))
    if return_builder:
        extra.append(builder)
    return (result, *extra) if extra else result
