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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets.exceptions import DatasetGenerationError

from .arguments import DataArguments, PoolOptions, SplitOptions
from .corpus import ReaderOptions, iter_documents, plan_shards, read_shard, source_fingerprint
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
from .stats import build_report, check_unknown_counts
from .tokenization import check_pair_tokenizer, load_tokenizer, plain_backend, reset_backend_choice

__all__ = [
    "PretrainingConfig",
    "PretrainingDataBuilder",
    "TokenizedCorpusBuilder",
    "build_pretraining_dataset",
    "pretraining_builder",
    "prepare_once",
    "instance_features",
    "tokenizer_fingerprint",
    "training_document_hashes",
    "ALGORITHM_VERSION",
]

logger = logging.getLogger(__name__)

# Part of every cache key: raise it when a change of the code changes the instances (or the tokenized documents)
# that the same options give, so no cache built by an earlier algorithm is reused.
ALGORITHM_VERSION = "2"
BUILD_RECORD_FILE = "nsptask_build.json"  # beside a saved build: format, options, report
PRETRAINING_DOCUMENTS_FILE = "pretraining_documents.npy"  # text hashes of the training documents
STREAMING_UNK_TOKENS = 200_000  # a streaming build checks the unknown-token rate on its first tokens

_FORMAT_DESCRIPTIONS = {
    "nsp": "SEGMENT-PAIR + NSP (BERT): segments of whole sentences; B continues A or comes from another document.",
    "sentence-pair": "SENTENCE-PAIR + NSP (RoBERTa's ablation): single sentences as A and B.",
    "sop": "Sentence-order prediction (ALBERT): consecutive segments of one document, in order or swapped.",
    "full-sentences": "FULL-SENTENCES (RoBERTa, no NSP): sentences packed across documents, [SEP] between them.",
    "doc-sentences": "DOC-SENTENCES (RoBERTa, no NSP): sentences packed within one document.",
    "coherence": "Coherence (downstream task): B continues A, or comes from the same document but not adjacent.",
}


def instance_features(data_format: str) -> datasets.Features:
    """The typed ``datasets.Features`` of a format's instances.

    Pair formats: ``input_ids``, ``token_type_ids``, the label (``next_sentence_label`` or
    ``sentence_order_label``, a ``ClassLabel``), ``doc_index`` and ``b_doc_index`` (where A and B come
    from: positions in the split's pooled document order), ``truncated_tokens`` and ``short_target``. Packed
    formats: ``input_ids``, ``doc_index`` and ``last_doc_index`` (first and last document in the block).
    """
    columns: dict[str, Any] = {"input_ids": datasets.List(datasets.Value("int32"))}
    if data_format in PAIR_FORMATS:
        label_column = InstanceConfig(data_format=data_format).label_column
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


def tokenized_features() -> datasets.Features:
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
    payload = json.dumps(
        {
            "backend": plain_backend(tokenizer).to_str(),
            "special": {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())},
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _key(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class TokenizedCorpusConfig(datasets.BuilderConfig):
    """Configuration of :class:`TokenizedCorpusBuilder`: the corpus, how to read it and the tokenizer."""

    source: Any = None
    reader: ReaderOptions = field(default_factory=ReaderOptions)
    tokenizer: Any = None
    tokenizer_backend: str = "hf"
    max_sentence_tokens: int = 125

    def create_config_id(self, config_kwargs: dict, custom_features=None) -> str:
        return "tokenized-" + _key(
            {
                "algorithm": ALGORITHM_VERSION,
                "source": source_fingerprint(self.source, self.reader),
                "reader": self.reader.fingerprint(),
                "tokenizer": tokenizer_fingerprint(load_tokenizer(self.tokenizer)),
                "backend": self.tokenizer_backend,
                "max_sentence_tokens": self.max_sentence_tokens,
            }
        )


class TokenizedCorpusBuilder(datasets.ArrowBasedBuilder):
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
        return datasets.DatasetInfo(description="Tokenized documents", features=tokenized_features())

    @property
    def tokenizer(self):
        if not hasattr(self, "_tokenizer_obj"):
            self._tokenizer_obj = load_tokenizer(self.config.tokenizer)
        return self._tokenizer_obj

    def download_and_prepare(self, *args, num_proc: int | None = None, **kwargs):
        self._num_proc = num_proc
        reset_backend_choice(self.tokenizer)  # every build checks tokie against hf on its own first sentences
        # Processes get one core each: their tokenizers must not start threads of their own.
        with tokenizer_threads(single=bool(num_proc and num_proc > 1)), _clear_errors():
            return super().download_and_prepare(*args, num_proc=num_proc, **kwargs)

    def _split_generators(self, dl_manager):
        num_proc = self._num_proc or 1
        shards, _ = plan_shards(self.config.source, 4 * num_proc if num_proc > 1 else 1, self.config.reader)
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={"shards": shards})]

    def _generate_tables(self, shards):
        single = self._num_proc is not None  # an explicit process count means one core per process
        for key, table in enumerate(tokenized_shard_tables(shards, self.config, self.tokenizer, single)):
            yield datasets.builder.Key(0, key), table


def tokenized_shard_tables(shards, cfg: TokenizedCorpusConfig, tokenizer, single_thread: bool, batch_docs: int = 512):
    """Read, split and tokenize input shards, yielding Arrow tables of tokenized documents (in order)."""
    schema = tokenized_features().arrow_schema
    with tokenizer_threads(single_thread):
        for shard in shards:
            batch: list[dict] = []
            for doc in read_shard(shard, cfg.reader):
                batch.append(doc)
                if len(batch) == batch_docs:
                    yield _tokenized_table(batch, tokenizer, cfg, schema)
                    batch = []
            if batch:
                yield _tokenized_table(batch, tokenizer, cfg, schema)


def _document_batch(docs: list[dict]) -> dict[str, list]:
    return {key: [d[key] for d in docs] for key in ("doc_id", "sentences", "skipped")}


def _tokenized_table(docs: list[dict], tokenizer, cfg: TokenizedCorpusConfig, schema):
    out = tokenize_documents(
        _document_batch(docs),
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
class PretrainingConfig(datasets.BuilderConfig):
    """Configuration of :class:`PretrainingDataBuilder`: the corpus, the four option objects that decide the
    instances, and the tokenizer. The config ``name`` is the format (``instances.data_format`` follows it).

    Args:
        source (*optional*): The corpus (see :func:`nsptask.corpus.iter_documents`); bundled corpus if `None`.
        reader (`ReaderOptions`): How the corpus is read.
        instances (`InstanceConfig`): The algorithm's parameters (its format is the config name).
        split (`SplitOptions`): The document split (unset values take the defaults, 0.2 / 12345).
        pools (`PoolOptions`): Random-document pools, work units and machine shards.
        tokenizer (*optional*): Tokenizer object, path or Hub id; the default WordPiece tokenizer if `None`.
        tokenizer_backend (`str`, *optional*, defaults to `"hf"`): ``"hf"`` (the tokenizers library), ``"tokie"``
            (its ids are checked against hf's on the first batch; a difference is an error) or ``"auto"`` (tokie where
            that check passes, else hf). The same ids in every case.
        allow_unknown_tokens (`bool`, *optional*, defaults to `False`): Build even when more than 5% of the
            corpus's tokens are unknown to the tokenizer (above 1% is a warning in the report).
    """

    source: Any = None
    reader: ReaderOptions = field(default_factory=ReaderOptions)
    instances: InstanceConfig = field(default_factory=InstanceConfig)
    split: SplitOptions = field(default_factory=SplitOptions)
    pools: PoolOptions = field(default_factory=PoolOptions)
    tokenizer: Any = None
    tokenizer_backend: str = "hf"
    allow_unknown_tokens: bool = False

    def __post_init__(self):
        super().__post_init__()
        self.validate()

    def validate(self) -> None:
        """Settle the format (the config name), the length and the split (the ``datasets`` builder sets overrides
        after construction, so this runs again when the cache key is made)."""
        if self.name in FORMATS:
            self.instances = self.instances.resolved(data_format=self.name)
        else:
            self.instances = self.instances.resolved()
        self.split = replace(self.split).resolve()
        if self.tokenizer_backend not in ("auto", "hf", "tokie"):
            raise ValueError(f"tokenizer_backend must be 'auto', 'hf' or 'tokie', got {self.tokenizer_backend!r}")

    @property
    def data_format(self) -> str:
        return self.instances.data_format

    def max_sentence_tokens(self, tokenizer) -> int:
        return SequenceTemplate.of(tokenizer).max_sentence_tokens(self.instances.max_seq_length)

    def tokenized_builder(self, tokenizer, cache_dir: str | None = None) -> TokenizedCorpusBuilder:
        """The builder of the tokenized corpus this build reads (its config is this corpus, reader and tokenizer)."""
        return TokenizedCorpusBuilder(
            cache_dir=cache_dir,
            source=self.source,
            reader=self.reader,
            tokenizer=tokenizer,
            tokenizer_backend=self.tokenizer_backend,
            max_sentence_tokens=self.max_sentence_tokens(tokenizer),
        )

    def fingerprint(self) -> str:
        """What decides the instances, as a hash: the same settings give the same value in every command."""
        self.validate()
        return _key(
            {
                "algorithm": ALGORITHM_VERSION,
                "instances": vars(self.instances),
                "split": vars(self.split),
                "pools": vars(self.pools),
                "source": source_fingerprint(self.source, self.reader),
                "reader": self.reader.fingerprint(),
                "tokenizer": tokenizer_fingerprint(load_tokenizer(self.tokenizer)),
                "backend": self.tokenizer_backend,
                "allow_unknown_tokens": self.allow_unknown_tokens,
            }
        )

    def create_config_id(self, config_kwargs: dict, custom_features=None) -> str:
        return f"{self.name}-{self.fingerprint()}"


class PretrainingDataBuilder(datasets.ArrowBasedBuilder):
    """``datasets`` builder of sentence-level pretraining instances (NSP, SENTENCE-PAIR, SOP, FULL- and
    DOC-SENTENCES) from a document corpus.

    Example:
        ```python
        >>> from nsptask import InstanceConfig, PretrainingDataBuilder
        >>> builder = PretrainingDataBuilder(config_name="sop", instances=InstanceConfig(max_seq_length=64))
        >>> builder.download_and_prepare(num_proc=2)
        >>> builder.as_dataset()["train"].features["sentence_order_label"].names
        ['InOrder', 'Swapped']
        ```
    """

    BUILDER_CONFIG_CLASS = PretrainingConfig
    BUILDER_CONFIGS = [PretrainingConfig(name=f, description=_FORMAT_DESCRIPTIONS[f]) for f in FORMATS]
    DEFAULT_CONFIG_NAME = "nsp"
    DEFAULT_WRITER_BATCH_SIZE = 10_000

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("dataset_name", "nsptask")
        super().__init__(*args, **kwargs)
        self._num_proc: int | None = None
        self._tokenized = None
        self._orders: dict[str, np.ndarray] = {}

    def _info(self):
        return datasets.DatasetInfo(
            description=_FORMAT_DESCRIPTIONS[self.config.data_format],
            features=instance_features(self.config.data_format),
        )

    # -- tokenizer and documents -------------------------------------------------------------------
    @property
    def tokenizer(self):
        if not hasattr(self, "_tokenizer_obj"):
            self._tokenizer_obj = load_tokenizer(self.config.tokenizer)
            check_pair_tokenizer(self._tokenizer_obj, needs_pair=self.config.data_format in PAIR_FORMATS)
        return self._tokenizer_obj

    def tokenized_documents(self, num_proc: int | None = None):
        """All documents of the corpus, tokenized (a cached ``datasets.Dataset``), skipped ones included."""
        if self._tokenized is None:
            with _clear_errors():
                builder = self.config.tokenized_builder(self.tokenizer, self._cache_dir_root)
                builder.download_and_prepare(num_proc=num_proc)
                self._tokenized = builder.as_dataset(split="train")
        return self._tokenized

    def split_order(self, split: str) -> np.ndarray:
        """Row indices (into :meth:`tokenized_documents`) of a split's usable documents, in pooled order: the
        instances' ``doc_index`` indexes this array."""
        if split not in self._orders:
            tokenized = self.tokenized_documents(self._num_proc)
            self._orders.update(split_orders(tokenized, self.config))
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
        cfg = self.config
        names = [datasets.Split.TRAIN] + ([datasets.Split.VALIDATION] if cfg.split.validation_fraction > 0 else [])
        if isinstance(dl_manager, datasets.StreamingDownloadManager):
            if cfg.pools.pool_order != "corpus":
                raise ValueError(_STREAMING_ORDER_MESSAGE)
            return [datasets.SplitGenerator(name=n, gen_kwargs={"stream_split": str(n)}) for n in names]
        tokenized = self.tokenized_documents(self._num_proc)
        check_unknown_tokens(tokenized, cfg)
        generators = []
        for name in names:
            order = self.split_order(str(name))
            if len(order) == 0:
                raise ValueError(_empty_split_message(str(name), tokenized, cfg))
            if cfg.data_format in NEEDS_OTHER_DOCUMENT and len(order) < 2:
                raise ValueError(_single_document_message(cfg.data_format, str(name)))
            units = _work_units(len(order), cfg.pools)
            generators.append(
                datasets.SplitGenerator(name=name, gen_kwargs={"units": units, "documents": tokenized, "order": order})
            )
        return generators

    def _generate_tables(self, units=None, documents=None, order=None, stream_split=None):
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
        cfg = self.config
        reset_backend_choice(self.tokenizer)
        pools = _StreamingPools(cfg, self.tokenizer, want_validation=split == "validation")
        batch: list[dict] = []
        for doc in iter_documents(cfg.source, cfg.reader):
            batch.append(doc)
            if len(batch) == 64:
                yield from pools.add(batch)
                batch = []
        yield from pools.finish(batch)


class _StreamingPools:
    """The state of a streaming build: documents tokenized and waiting for their pool, the pool count (for machine
    shards) and the unknown-token check on the first tokens."""

    def __init__(self, cfg: PretrainingConfig, tokenizer, want_validation: bool):
        self.cfg, self.tokenizer, self.want_validation = cfg, tokenizer, want_validation
        self.pending: list[dict] = []
        self.index = self.pool_number = 0
        self.unknown = self.tokens = 0
        self.checked = False

    def _flush(self, docs: list[dict]) -> Iterator:
        group = DocumentGroup(
            tokens=np.concatenate([d["input_ids"] for d in docs]) if docs else np.zeros(0, np.int32),
            sentence_lengths=[d["sentence_lengths"] for d in docs],
            doc_indices=list(range(self.index, self.index + len(docs))),
            doc_ids=[d["doc_id"] for d in docs],
        )
        self.index += len(docs)
        pools = self.cfg.pools
        mine = self.pool_number % pools.num_shards == pools.shard_index
        self.pool_number += 1
        if mine:
            for u in range(0, len(docs), pools.unit_size):
                yield instances_table(group, range(u, min(u + pools.unit_size, len(docs))), self.cfg, self.tokenizer)

    def _usable(self, docs: list[dict]) -> list[dict]:
        cfg = self.cfg
        out = tokenize_documents(
            _document_batch(docs),
            tokenizer=self.tokenizer,
            max_sentence_tokens=cfg.max_sentence_tokens(self.tokenizer),
            backend=cfg.tokenizer_backend,
        )
        flags = validation_flags(
            np.asarray(out["doc_key"], np.uint64), cfg.split.validation_fraction, cfg.split.split_seed
        )
        if not self.checked:
            # A streaming build never sees the whole corpus: the unknown-token check runs on its first
            # STREAMING_UNK_TOKENS tokens (both splits), once.
            self.unknown += int(sum(out["unk_tokens"]))
            self.tokens += int(sum(len(ids) for ids in out["input_ids"]))
            if self.tokens >= STREAMING_UNK_TOKENS:
                check_unknown_counts(self.unknown, self.tokens, cfg)
                self.checked = True
        return [
            {
                "doc_id": out["doc_id"][i],
                "input_ids": out["input_ids"][i],
                "sentence_lengths": out["sentence_lengths"][i],
            }
            for i in range(len(docs))
            if flags[i] == self.want_validation and len(out["sentence_lengths"][i]) > 0
        ]

    def add(self, docs: list[dict]) -> Iterator:
        self.pending.extend(self._usable(docs))
        size = self.cfg.pools.pool_size
        # Keep at least two documents back, so the last pool never holds a single document (the Arrow build merges
        # such a remainder into the pool before it, too).
        while len(self.pending) >= size + 2:
            yield from self._flush(self.pending[:size])
            self.pending = self.pending[size:]

    def finish(self, docs: list[dict]) -> Iterator:
        self.pending.extend(self._usable(docs))
        if not self.checked:  # a corpus smaller than the sample: check what there is
            check_unknown_counts(self.unknown, self.tokens, self.cfg)
        for start, end in _pool_bounds(len(self.pending), self.cfg.pools.pool_size):
            yield from self._flush(self.pending[start:end])


_STREAMING_ORDER_MESSAGE = (
    "Streaming builds pool documents in corpus order: a global shuffle of documents needs the whole corpus first. "
    "Pass pool_order='corpus' (CLI: --pool_order corpus) to stream, or build to disk (the default) to keep the "
    "shuffled pools."
)


def split_orders(tokenized, cfg: PretrainingConfig) -> dict[str, np.ndarray]:
    """For each split, the row indices of its usable documents in pooled order (shuffled by a seeded hash of
    their ids, or corpus order). A document id that occurs twice among usable documents is an error."""
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
    flags = validation_flags(used_keys, cfg.split.validation_fraction, cfg.split.split_seed)
    out = {}
    for split, wanted in (("train", False), ("validation", True)):
        mine = rows[flags == wanted]
        if cfg.pools.pool_order == "shuffled":
            mine = mine[np.argsort(order_keys(keys[mine], cfg.instances.instance_seed), kind="stable")]
        out[split] = mine.astype(np.int64)
    return out


def training_document_hashes(builder) -> np.ndarray:
    """Text hashes of the documents a build's training split was made from (the record of what a model saw)."""
    docs = builder.tokenized_documents()
    hashes = docs.with_format("arrow")[:]["text_hash"].to_numpy()
    return np.unique(hashes[builder.split_order("train")]).astype(np.uint64)


def check_unknown_tokens(tokenized, cfg: PretrainingConfig) -> float:
    """The share of unknown tokens in the corpus; a warning above 1%, an error above 5% unless allowed."""
    table = tokenized.with_format("arrow")[:]
    tokens = int(pc.sum(pc.list_value_length(table["input_ids"])).as_py() or 0)
    unknown = int(pc.sum(table["unk_tokens"]).as_py() or 0)
    return check_unknown_counts(unknown, tokens, cfg)


def _pool_bounds(n_docs: int, pool_size: int) -> list[tuple[int, int]]:
    """Pools of `pool_size` consecutive documents; a last pool of one document joins the one before."""
    bounds = [(start, min(start + pool_size, n_docs)) for start in range(0, n_docs, pool_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n_docs)]
    return bounds


def _work_units(n_docs: int, pools: PoolOptions) -> list[tuple[int, int, int, int]]:
    units = []
    for pool_number, (g_start, g_end) in enumerate(_pool_bounds(n_docs, pools.pool_size)):
        if pool_number % pools.num_shards != pools.shard_index:
            continue
        for u_start in range(g_start, g_end, pools.unit_size):
            units.append((g_start, g_end, u_start, min(u_start + pools.unit_size, g_end)))
    return units


def group_from_table(table, first_index: int) -> DocumentGroup:
    """A :class:`DocumentGroup` from an Arrow table of tokenized documents (in pooled order)."""
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
    cfg = config.instances
    columns = create_instances(group, doc_range, cfg, SequenceTemplate.of(tokenizer))
    offsets, values = columns["input_ids"]
    arrays = {"input_ids": pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))}
    if cfg.data_format in PAIR_FORMATS:
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
    return pa.table(arrays).cast(instance_features(cfg.data_format).arrow_schema)


@contextmanager
def _clear_errors():
    """datasets wraps errors raised while generating; give the user nsptask's own message instead."""
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
    lengths = pc.list_value_length(tokenized.with_format("arrow")[:]["sentence_lengths"])
    usable = int(pc.sum(pc.greater(lengths, 0)).as_py() or 0)
    return (
        f"The {split} split has no usable document: the corpus has {len(tokenized)} documents, {usable} with text, "
        f"and validation_fraction={cfg.split.validation_fraction} assigned none of them to {split}. "
        + (
            "Add documents (a blank line separates documents in the one-sentence-per-line format)."
            if usable < 2
            else "Change validation_fraction (0 disables the validation split) or the split seed."
        )
    )


def pretraining_builder(data_args: DataArguments, tokenizer=None, data_format: str | None = None):
    """The :class:`PretrainingDataBuilder` of a format for these data options: the one place where the options become
    a build (so every command makes the same cache key)."""
    # Unset options take their defaults in the builder's config (PretrainingConfig.validate); the tokenizer is loaded
    # when the build first needs it.
    data_format = data_format or data_args.instances.data_format or "nsp"
    if data_format not in FORMATS:
        raise ValueError(f"Unknown format {data_format!r}: expected one of {FORMATS}")
    return PretrainingDataBuilder(
        config_name=data_format,
        cache_dir=os.fspath(data_args.data_cache_dir) if data_args.data_cache_dir is not None else None,
        source=data_args.source,
        reader=data_args.reader,
        instances=data_args.instances,
        split=data_args.split,
        pools=data_args.pools,
        tokenizer=tokenizer if tokenizer is not None else data_args.tokenizer_name_or_path,
        tokenizer_backend=data_args.tokenizer_backend,
        allow_unknown_tokens=data_args.allow_unknown_tokens,
    )


def prepare_once(builder: PretrainingDataBuilder, num_proc: int | None = None) -> None:
    """Build on one process per machine while the others wait for the finished cache, then let them load it.

    Under ``accelerate launch`` (``WORLD_SIZE`` > 1) the local main process builds; the other processes of its machine
    poll the cache folder for the finished build instead of waiting in a collective, so a build of any length (a
    Wikipedia dump takes tens of minutes) never meets the process group's ``ddp_timeout`` (1800 s by default). They
    give up after ``$NSPTASK_BUILD_TIMEOUT`` seconds (default 48 hours), saying so. One process: just build.
    """
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world > 1 and os.environ.get("LOCAL_RANK", "0") != "0":
        done = Path(builder._output_dir) / "dataset_info.json"
        limit = float(os.environ.get("NSPTASK_BUILD_TIMEOUT", 48 * 3600))
        started = last_note = time.monotonic()
        while not done.exists():
            if time.monotonic() - started > limit:
                raise TimeoutError(
                    f"Waited {limit:.0f} s for the main process to build {builder._output_dir}; it has not finished. "
                    "Build the data before the launch (nsptask build --output_dir DATA, then --dataset DATA) or raise "
                    "$NSPTASK_BUILD_TIMEOUT."
                )
            if time.monotonic() - last_note > 300:
                logger.info(
                    "nsptask: waiting for the main process to build the data (%.0f min)",
                    (time.monotonic() - started) / 60,
                )
                last_note = time.monotonic()
            time.sleep(2)
    builder.download_and_prepare(num_proc=num_proc)


def build_pretraining_dataset(
    source: Any = None,
    tokenizer: Any = None,
    *,
    data_args: DataArguments | None = None,
    streaming: bool = False,
    num_proc: int | None = None,
    return_report: bool = False,
    return_builder: bool = False,
    **options: Any,
):
    """Build pretraining instances from a corpus in one call.

    Args:
        source (*optional*): Corpus file(s), directory, dataset or Hub name; the bundled Wikipedia sample if
            `None`. See :func:`nsptask.corpus.iter_documents`.
        tokenizer (*optional*): Tokenizer object, local path or Hub id; nsptask's default WordPiece tokenizer
            (trained on the bundled corpus) if `None`.
        data_args (`DataArguments`, *optional*): All data options as one object (then `source` and `options` are
            not given).
        streaming (`bool`, *optional*, defaults to `False`): Return ``IterableDataset`` splits built lazily
            (needs ``pool_order="corpus"``).
        num_proc (`int`, *optional*): Cores for reading, tokenizing and building: that many processes, each with
            a single-threaded tokenizer. Without it, one process whose tokenizer uses every core (or the data
            options' ``num_proc``).
        return_report (`bool`, *optional*, defaults to `False`): Also return the statistics report (a dict).
        return_builder (`bool`, *optional*, defaults to `False`): Also return the builder (its documents, split and
            pools: ``builder.split_documents(split)``).
        **options: Any data option by name (:meth:`DataArguments.from_options`): ``data_format`` (``nsp``,
            ``sentence-pair``, ``sop``, ``full-sentences``, ``doc-sentences``, ``coherence``), ``max_seq_length``,
            ``dupe_factor``, ``instance_seed``, ``validation_fraction``, ``split_seed``, ``pool_size``,
            ``pool_order``, ``corpus_format``, ``language``, ``tokenizer_backend``, ``data_cache_dir``, ...

    Returns:
        `datasets.DatasetDict` (or `IterableDatasetDict` when streaming) with ``train`` and ``validation``
        splits made by document; with `return_report` and/or `return_builder`, a tuple ``(dataset_dict, report,
        builder)`` with those asked for.

    Example:
        ```python
        >>> from nsptask import build_pretraining_dataset
        >>> data = build_pretraining_dataset(data_format="nsp", max_seq_length=128)
        >>> data["train"].features["next_sentence_label"].names
        ['IsNext', 'NotNext']
        ```
    """
    if data_args is None:
        data_args = DataArguments.from_options(corpus=source, **options)
    elif source is not None or options:
        raise TypeError("Give data_args, or the corpus and options by name, not both.")
    builder = pretraining_builder(data_args, tokenizer)
    if streaming:
        if builder.config.pools.pool_order != "corpus":
            raise ValueError(_STREAMING_ORDER_MESSAGE)
        splits = ["train"] + (["validation"] if builder.config.split.validation_fraction > 0 else [])
        result = datasets.IterableDatasetDict({s: builder.as_streaming_dataset(split=s) for s in splits})
        extra = ([None] if return_report else []) + ([builder] if return_builder else [])
        return (result, *extra) if extra else result
    prepare_once(builder, num_proc=num_proc or data_args.num_proc)
    result = builder.as_dataset()
    extra = []
    if return_report:
        extra.append(build_report(builder, result))
    if return_builder:
        extra.append(builder)
    return (result, *extra) if extra else result
