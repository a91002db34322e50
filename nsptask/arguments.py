"""Every option of nsptask, declared once, as small dataclasses that travel by reference.

The data options are four objects and the corpus they apply to, composed by :class:`DataArguments`:

| object | holds | taken by |
|---|---|---|
| :class:`~nsptask.corpus.ReaderOptions` | how files become documents | readers, builders, Dask engine, corpus tasks |
| :class:`~nsptask.instances.InstanceConfig` | the instance algorithm's parameters | builders, Dask engine, corpus tasks |
| :class:`SplitOptions` | which documents are held out of pretraining | builders, corpus tasks, leak checks |
| :class:`PoolOptions` | random-document pools, work units, machine shards | builders, Dask engine |

``nsptask`` commands parse each of them as its own group of options (``HfArgumentParser`` with the dataclasses'
``_argument_group_name``), beside the command's own options (:class:`PretrainOptions`, :class:`TaskOptions`, ...),
and hand the composed :class:`DataArguments` down: nothing is copied into dictionaries or keyword lists.

This module imports nothing heavy (no torch, no ``datasets``): the command line parses options with it before it
knows what it will run.

Example:
    ```python
    >>> from nsptask.arguments import DataArguments, SplitOptions
    >>> data = DataArguments(corpus=["news.jsonl"], split=SplitOptions(validation_fraction=0.05))  # doctest: +SKIP
    >>> DataArguments.from_options(max_seq_length=64, pool_size=10).instances.max_seq_length
    64
    ```
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args

from .corpus import ReaderOptions, looks_like_hub_id
from .instances import DEFAULT_SEED, FORMATS, InstanceConfig

__all__ = [
    "CorpusOptions",
    "DataArguments",
    "SplitOptions",
    "PoolOptions",
    "TaskOptions",
    "PretrainOptions",
    "FinetuneOptions",
    "EvaluateArguments",
    "BuildArguments",
    "TokenizerArguments",
    "PredictArguments",
    "ReportArguments",
    "AblateArguments",
    "DATA_RECORD_FILE",
    "read_data_record",
    "check_path_or_hub_id",
    "check_output_dir",
    "parse_arm",
    "DEFAULT_ARMS",
    "KNOWN_ARMS",
]

logger = logging.getLogger(__name__)

DATA_RECORD_FILE = "nsptask_data.json"
DEFAULT_VALIDATION_FRACTION = 0.2

# The vocabularies of the options: what the parsers accept and what the code dispatches on.
Objective = Literal["mlm+nsp", "mlm+sop", "mlm", "nsp", "sop"]
OBJECTIVES: tuple[str, ...] = get_args(Objective)
DEFAULT_FORMATS = {"mlm+nsp": "nsp", "mlm+sop": "sop", "mlm": "full-sentences", "nsp": "nsp", "sop": "sop"}
SENTENCE_FORMATS = {
    "mlm+nsp": ("nsp", "sentence-pair"),
    "mlm+sop": ("sop",),
    "nsp": ("nsp", "sentence-pair"),
    "sop": ("sop",),
}
Family = Literal["bert", "roberta", "albert", "deberta-v2", "modernbert", "distilbert"]
FAMILIES: tuple[str, ...] = get_args(Family)
# The tokenizer model each family is usually trained with (`nsptask tokenizer --model ...`).
FAMILY_TOKENIZERS = {
    "bert": "wordpiece",
    "distilbert": "wordpiece",
    "roberta": "bpe",
    "modernbert": "bpe",
    "albert": "unigram",
    "deberta-v2": "unigram",
}
Preset = Literal["tiny", "mini", "small", "base"]
PRESET_NAMES: tuple[str, ...] = get_args(Preset)
Attention = Literal["eager", "sdpa", "flash_attention_2"]
TaskName = Literal[
    "nsp",
    "sop",
    "coherence",
    "segment-tagging",
    "sentence-position",
    "coherence-other-document",
    "coherence-same-document",
    "connective",
    "classification",
    "ner",
]
TASKS: tuple[str, ...] = get_args(TaskName)
# Tasks made from the corpus's held-out documents (the rest read the user's files).
CORPUS_TASKS = tuple(t for t in TASKS if t not in ("classification", "ner"))
TOKEN_TASKS = ("segment-tagging", "ner")
BadRows = Literal["error", "skip"]


def _choice(*allowed: str):
    def parse(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {value!r}")
        return value

    return parse


def _flag(value: str) -> bool:
    if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
        raise ValueError(f"expected true or false, got {value!r}")
    return value.lower() in ("true", "yes", "1")


# The options of a study's --task_files task (--task_options NAME.OPTION=VALUE), each with how its value is read.
_USER_TASK_OPTIONS = {
    "text_a_column": str,
    "text_b_column": str,
    "label_column": str,
    "bad_rows": _choice(*get_args(BadRows)),
    "label_all_tokens": _flag,
    "repair_iob": _flag,
}  # not seqeval_mode: the study's report counts entities in seqeval's default mode
_NER_ONLY_OPTIONS = ("label_all_tokens", "repair_iob")
# Corpus tasks that repeat a pretraining objective (NSP, SOP and NSP's same-document variant).
OBJECTIVE_TASKS = ("nsp", "sop", "coherence")


def _hub_offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def check_path_or_hub_id(name: str | None, what: str, option: str) -> None:
    """A name that looks like a local path (starts with ``.``, ``/`` or ``~``, has more than one ``/``, a file
    extension, or a first part that is a folder here) must exist: it is never looked up on the Hub (which takes
    retries and a traceback). With the Hub offline (``HF_HUB_OFFLINE=1``), any name not on this machine is an
    error."""
    if name is None or not isinstance(name, (str, os.PathLike)) or os.path.exists(os.path.expanduser(name)):
        return
    if not looks_like_hub_id(os.fspath(name)) or _hub_offline():
        offline = " (and the Hub is offline: HF_HUB_OFFLINE=1)" if _hub_offline() else ""
        raise ValueError(
            f"--{option} {name!r}: no such {what} on this machine{offline}. Expected an existing local path (or a Hub "
            "id such as 'owner/name'); check the spelling and the working directory."
        )


# -- the data options -------------------------------------------------------------------------------------


@dataclass
class SplitOptions:
    """Which documents are held out of pretraining: a hash of each document's id and the split seed, so the split
    is the same in every command, engine and process count.

    Args:
        validation_fraction (`float`, *optional*): Share of documents held out (evaluation and downstream tasks come
            from them). `None`: the checkpoint's recorded split when there is one, else 0.2.
        split_seed (`int`, *optional*): Seed of the split. `None`: the checkpoint's, else 12345.
    """

    _argument_group_name = "data: document split"

    validation_fraction: float | None = field(
        default=None,
        metadata={
            "help": "Share of documents held out of pretraining (evaluation and downstream tasks come from them). "
            "Default: the checkpoint's recorded split when one is given, else 0.2."
        },
    )
    split_seed: int | None = field(
        default=None, metadata={"help": "Seed of the document split. Default: the checkpoint's, else 12345."}
    )

    def __post_init__(self):
        if self.validation_fraction is not None and not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"--validation_fraction must lie in [0, 1), got {self.validation_fraction}")

    def resolve(self, recorded: dict | None = None) -> SplitOptions:
        """Fill what is unset from a checkpoint's recorded split, else the defaults (in place; returns self)."""
        recorded = recorded or {}
        if self.validation_fraction is None:
            self.validation_fraction = recorded.get("validation_fraction", DEFAULT_VALIDATION_FRACTION)
        if self.split_seed is None:
            self.split_seed = recorded.get("split_seed", DEFAULT_SEED)
        return self


@dataclass
class PoolOptions:
    """How a split's documents are grouped for NotNext draws and spread over processes and machines.

    Args:
        pool_size (`int`, *optional*, defaults to 1000): Documents per random-document pool: NotNext segments come
            from another document of the same pool. Bounds memory.
        pool_order (`str`, *optional*, defaults to `"shuffled"`): ``shuffled`` pools documents after a seeded
            global shuffle (Google draws random documents from the whole corpus); ``corpus`` pools consecutive
            documents in corpus order (streaming needs it).
        shard_index (`int`, *optional*, defaults to 0), num_shards (`int`, *optional*, defaults to 1): Build only the
            pools with ``pool % num_shards == shard_index`` (multi-machine builds).
        unit_size (`int`, *optional*, defaults to 16): Documents per work unit (the grain of ``num_proc``).
    """

    _argument_group_name = "data: pools and shards"

    pool_size: int = field(default=1000, metadata={"help": "Documents per random-document pool (bounds memory)."})
    pool_order: Literal["shuffled", "corpus"] = field(
        default="shuffled",
        metadata={
            "help": "'shuffled': pool documents after a seeded global shuffle (as Google draws from the whole corpus); "
            "'corpus': consecutive documents (streaming needs it)."
        },
    )
    shard_index: int = field(default=0, metadata={"help": "Build only this shard of the pools (multi-machine)."})
    num_shards: int = field(default=1, metadata={"help": "Number of pool shards for multi-machine builds."})
    unit_size: int = field(default=16, metadata={"help": "Documents per work unit (the grain of --num_proc)."})

    def __post_init__(self):
        if self.pool_size < 2 or self.unit_size < 1:
            raise ValueError("--pool_size must be >= 2 and --unit_size >= 1")
        if self.pool_order not in ("shuffled", "corpus"):
            raise ValueError(f"--pool_order must be 'shuffled' or 'corpus', got {self.pool_order!r}")
        if not 0 <= self.shard_index < self.num_shards:
            raise ValueError(
                f"--shard_index must lie in [0, --num_shards), got {self.shard_index} of {self.num_shards}"
            )


@dataclass
class CorpusOptions:
    """The corpus (or a built dataset), the tokenizer, and where and how fast to build: the data options that are
    not one of the four parts."""

    _argument_group_name = "data: corpus and tokenizer"

    corpus: list[str] | None = field(
        default=None,
        metadata={
            "help": "Corpus: files, directories (hidden files and Spark/Hadoop markers skipped), or a Hub dataset "
            "name. Default: the bundled English Wikipedia sample (103 articles)."
        },
    )
    dataset: str | None = field(
        default=None,
        metadata={
            "help": "A dataset made by `nsptask build` (its --output_dir, or a Hub repo it pushed to): pretrain reads "
            "its instances and its tokenizer instead of building from --corpus; ablate studies the corpus its record "
            "names, with its tokenizer (every arm's format is built from that corpus)."
        },
    )
    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Tokenizer folder or Hub id. Default: the model's, else nsptask's 8k WordPiece tokenizer "
            "(English; for another corpus train one with `nsptask tokenizer`)."
        },
    )
    tokenizer_backend: Literal["auto", "hf", "tokie"] = field(
        default="auto",
        metadata={
            "help": "'auto': tokie where it gives the tokenizers library's ids on a sample of the corpus (checked at "
            "every build), else hf; 'hf' (tokenizers); 'tokie' (fails if its ids differ)."
        },
    )
    allow_unknown_tokens: bool = field(
        default=False,
        metadata={"help": "Build even when over 5%% of the tokens are unknown to the tokenizer (over 1%% warns)."},
    )
    num_proc: int | None = field(
        default=None,
        metadata={
            "help": "Cores for building the data: that many processes, each with a single-threaded tokenizer. "
            "Default: one process whose tokenizer uses every core."
        },
    )
    data_cache_dir: str | None = field(default=None, metadata={"help": "datasets cache folder for the built data."})

    def __post_init__(self):
        if isinstance(self.corpus, (str, os.PathLike)):
            self.corpus = [os.fspath(self.corpus)]
        if self.corpus and self.dataset:
            raise ValueError("Give --corpus (build from text) or --dataset (read a `nsptask build` output), not both.")
        if isinstance(self.corpus, list):
            for item in self.corpus:
                check_path_or_hub_id(item, "corpus file or directory", "corpus")
        check_path_or_hub_id(self.dataset, "dataset folder", "dataset")
        check_path_or_hub_id(self.tokenizer_name_or_path, "tokenizer folder", "tokenizer_name_or_path")
        if self.num_proc is not None and self.num_proc < 1:
            raise ValueError(f"--num_proc must be >= 1, got {self.num_proc}")


_PARTS = {"reader": ReaderOptions, "instances": InstanceConfig, "split": SplitOptions, "pools": PoolOptions}


@dataclass
class DataArguments(CorpusOptions):
    """The corpus, how to read and tokenize it, the instance format and its algorithm, the document split and the
    pools: the options every nsptask command shares, as :class:`CorpusOptions` plus four parts that travel by
    reference (``reader``, ``instances``, ``split``, ``pools``).

    Example:
        ```python
        >>> from nsptask.arguments import DataArguments
        >>> from nsptask.instances import InstanceConfig
        >>> data = DataArguments(instances=InstanceConfig(max_seq_length=64))
        >>> data.resolve().split.validation_fraction
        0.2
        ```
    """

    reader: ReaderOptions = field(default_factory=ReaderOptions)
    instances: InstanceConfig = field(default_factory=InstanceConfig)
    split: SplitOptions = field(default_factory=SplitOptions)
    pools: PoolOptions = field(default_factory=PoolOptions)

    @classmethod
    def from_options(cls, **options: Any) -> DataArguments:
        """Data arguments from option names (``max_seq_length=64, validation_fraction=0``): each name goes to the part
        that declares it; an unknown name is an error listing the known ones."""
        own = {f.name for f in fields(CorpusOptions)}
        by_part: dict[str, dict] = {name: {} for name in _PARTS}
        top: dict[str, Any] = {}
        for key, value in options.items():
            part = next((p for p, t in _PARTS.items() if key in {f.name for f in fields(t)}), None)
            if key in own:
                top[key] = value
            elif part is not None:
                by_part[part][key] = value
            else:
                known = sorted(own | {f.name for t in _PARTS.values() for f in fields(t)})
                raise TypeError(f"Unknown data option {key!r}: expected one of {known}")
        return cls(**top, **{part: _PARTS[part](**values) for part, values in by_part.items()})

    @classmethod
    def from_parsed(cls, objects: list) -> DataArguments:
        """Compose the objects a command line parser made (a :class:`CorpusOptions` and any of the parts; parts it
        did not parse keep their defaults)."""
        corpus = next(o for o in objects if type(o) is CorpusOptions)
        parts = {name: next((o for o in objects if type(o) is t), t()) for name, t in _PARTS.items()}
        return cls(**{f.name: getattr(corpus, f.name) for f in fields(CorpusOptions)}, **parts)

    @classmethod
    def from_dict(cls, record: dict) -> DataArguments:
        """Data arguments from a record (:meth:`to_dict`; a flat record of an older nsptask is read too)."""
        record = {k: v for k, v in record.items() if not k.startswith("_")}
        if any(isinstance(record.get(part), dict) for part in _PARTS):
            parts = {name: t(**record.pop(name, {})) for name, t in _PARTS.items()}
            return cls(**{k: v for k, v in record.items() if k in {f.name for f in fields(CorpusOptions)}}, **parts)
        known = {f.name for f in fields(CorpusOptions)} | {f.name for t in _PARTS.values() for f in fields(t)}
        return cls.from_options(**{k: v for k, v in record.items() if k in known})

    def with_format(self, data_format: str | None) -> DataArguments:
        """A copy of these options that builds `data_format` (the other parts shared by reference)."""
        return replace(self, instances=replace(self.instances, data_format=data_format))

    @property
    def source(self) -> Any:
        """The corpus as the readers take it: `None` (bundled), one path, Hub name or dataset object, or a list."""
        if self.corpus is None or (isinstance(self.corpus, list) and not self.corpus):
            return None
        if isinstance(self.corpus, list):
            return self.corpus[0] if len(self.corpus) == 1 else list(self.corpus)
        return self.corpus

    def resolve(self, model_dir: str | None = None, max_seq_length: int | None = None) -> DataArguments:
        """Fill the options left unset, from the record of the checkpoint's pretraining data when there is one
        (``nsptask_data.json``), so that fine-tuning and evaluation read the corpus the model was pretrained on, the
        way it was read, and hold out what pretraining held out; else from the defaults (the bundled corpus, split
        0.2 / 12345, length `max_seq_length` or 128). In place; returns self."""
        record = read_data_record(model_dir) if model_dir else None
        if record and not self.corpus and not self.dataset and (record.get("data_arguments") or {}).get("corpus"):
            previous = DataArguments.from_dict(record["data_arguments"])
            self.corpus, self.reader, self.tokenizer_backend = (
                previous.corpus,
                previous.reader,
                previous.tokenizer_backend,
            )
            self.instances = replace(self.instances, instance_seed=previous.instances.instance_seed)
            logger.warning(
                "nsptask: reading %s, the corpus %s was pretrained on (its nsptask_data.json); pass --corpus to "
                "use another.",
                ", ".join(self.corpus),
                model_dir,
            )
        # New part objects, never the old ones changed: parts are shared by reference with other data options.
        self.split = replace(self.split).resolve((record or {}).get("split"))
        if self.instances.max_seq_length is None:
            self.instances = replace(self.instances, max_seq_length=max_seq_length or 128)
        return self

    def to_dict(self) -> dict[str, Any]:
        out = asdict(replace(self, reader=replace(self.reader, splitter="sentencex")))
        out["reader"]["splitter"] = self.reader.fingerprint()["splitter"]
        return out


def check_output_dir(args, resume: bool) -> None:
    """An existing, non-empty output folder is not silently overwritten: stop, unless resuming or told to
    overwrite (then its old checkpoints go, so no stale checkpoint stays beside the new ones)."""
    out = Path(args.output_dir)
    if not out.is_dir() or not any(out.iterdir()) or resume:
        return
    if not getattr(args, "overwrite_output_dir", False):
        raise ValueError(
            f"--output_dir {out} exists and is not empty: expected a new or empty folder. Pass "
            "--overwrite_output_dir to replace what is there, --resume_from_checkpoint to continue a run, or another "
            "--output_dir."
        )
    for checkpoint in out.glob("checkpoint-*"):
        shutil.rmtree(checkpoint, ignore_errors=True)


def read_data_record(model_dir: str | os.PathLike | None) -> dict | None:
    """The record of the data a model was pretrained on (``nsptask_data.json`` beside the weights), if any."""
    if model_dir is None:
        return None
    path = Path(model_dir) / DATA_RECORD_FILE
    return json.loads(path.read_text()) if path.is_file() else None


# -- pretraining -------------------------------------------------------------------------------------------


def _default_report_to() -> str:
    try:
        import tensorboard  # noqa: F401  (the optional `tensorboard` extra)

        return "tensorboard"
    except ImportError:
        return "none"


def check_objective_format(objective: str, data_format: str) -> None:
    """An objective with data that lacks its label is an error, before any work."""
    if objective != "mlm" and data_format not in SENTENCE_FORMATS[objective]:
        raise ValueError(
            f"objective {objective!r} needs data with its sentence label: data_format one of "
            f"{SENTENCE_FORMATS[objective]}, got {data_format!r}. For packed text (full-sentences, doc-sentences) "
            "use objective 'mlm'."
        )


@dataclass
class ModelOptions:
    """How a model is built or loaded: shared by pretraining and fine-tuning."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Pretrained model (local path or Hub id). Default: a preset built from a config."},
    )
    attn_implementation: Attention | None = field(
        default=None,
        metadata={
            "help": "Attention kernel: eager, sdpa or flash_attention_2 (needs flash-attn and a GPU). Default: the "
            "model's (sdpa where transformers supports it)."
        },
    )
    model_license: str | None = field(
        default=None,
        metadata={
            "help": "The model card's license (a Hub license id, e.g. apache-2.0). Default: cc-by-sa-4.0 for a model "
            "trained on the bundled Wikipedia sample, else 'other'."
        },
    )


@dataclass
class PretrainOptions(ModelOptions):
    """nsptask's own options of ``nsptask pretrain`` (with the ``TrainingArguments`` defaults it changes for a quick
    CPU run); :class:`nsptask.NspTrainingArguments` is these plus ``transformers.TrainingArguments``."""

    _argument_group_name = "model and objective options"

    objective: Objective = field(
        default="mlm+nsp",
        metadata={"help": "Pretraining objective: mlm+nsp (BERT), mlm+sop (ALBERT), mlm (RoBERTa), nsp, sop."},
    )
    model_family: Family = field(
        default="bert", metadata={"help": "Family of a preset model (a checkpoint brings its own)."}
    )
    preset: Preset = field(
        default="tiny", metadata={"help": "Model size when no model is given (BERT-Tiny/Mini/Small/base shapes)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Evaluate on a seeded sample of at most this many held-out instances."}
    )
    mlm_probability: float = field(default=0.15, metadata={"help": "Share of tokens to predict."})
    masking: Literal["bernoulli", "exact"] = field(
        default="bernoulli",
        metadata={
            "help": "'bernoulli' (transformers: each token independently) or 'exact' (BERT: round(p*n) per sequence)."
        },
    )
    max_predictions_per_seq: int | None = field(
        default=None, metadata={"help": "Cap of the exact masking budget (Google: 20 at length 128)."}
    )
    whole_word_mask: bool = field(
        default=False,
        metadata={
            "help": "Mask whole words (WordPiece '##', byte-level BPE 'Ġ', SentencePiece '▁'; Chinese via jieba)."
        },
    )
    sparse_mlm_head: bool = field(
        default=True, metadata={"help": "Compute the MLM head's vocabulary projection only at masked positions."}
    )
    pad_to_multiple_of: int = field(default=8, metadata={"help": "Pad batches to a multiple of this length."})
    dropout: float | None = field(
        default=None, metadata={"help": "Override every dropout of the model (0 for exact comparisons)."}
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Write into an existing, non-empty --output_dir (its old checkpoints are removed)."},
    )
    # TrainingArguments defaults changed for a quick, offline CPU run.
    output_dir: str | None = field(default="nsptask-pretrain", metadata={"help": "Where checkpoints and the model go."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Batch size per device for training."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Batch size per device for evaluation."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate (AdamW)."})
    warmup_steps: float = field(default=0.06, metadata={"help": "Warm-up steps, or a fraction of all steps if < 1."})
    num_train_epochs: float = field(default=1.0, metadata={"help": "Epochs (ignored when max_steps > 0)."})
    logging_steps: float = field(default=20, metadata={"help": "Log every N steps."})
    eval_strategy: str = field(default="steps", metadata={"help": "When to evaluate: no, steps, epoch."})
    eval_steps: float | None = field(default=100, metadata={"help": "Evaluate every N steps."})
    save_steps: float = field(default=200, metadata={"help": "Save a checkpoint every N steps."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Keep at most this many checkpoints."})
    batch_eval_metrics: bool = field(
        default=True, metadata={"help": "Compute metrics batch by batch, so evaluation memory stays flat."}
    )
    report_to: None | str | list[str] = field(
        default_factory=_default_report_to, metadata={"help": "Loggers: tensorboard where installed, else none."}
    )

    def data_format(self, data_args: DataArguments) -> str:
        """The instance format for this objective: the data options' choice, checked, or the objective's default."""
        data_format = data_args.instances.data_format or DEFAULT_FORMATS[self.objective]
        check_objective_format(self.objective, data_format)
        return data_format


# -- downstream tasks ----------------------------------------------------------------------------------------


@dataclass
class TaskOptions:
    """A downstream task: which one, its files or its share of the held-out documents, and how it is scored. The
    one object the task data (:mod:`nsptask.downstream`) reads, for fine-tuning, evaluation and the study."""

    _argument_group_name = "task options"

    task: TaskName = field(
        default="nsp",
        metadata={
            "help": "Downstream task. From the corpus's held-out documents: segment-tagging, sentence-position, "
            "coherence-other-document, coherence-same-document, connective (probes), nsp, sop, coherence (the "
            "objectives again); from files: classification (GLUE-style TSV/CSV/JSONL/Parquet), ner (CoNLL)."
        },
    )
    train_file: str | None = field(
        default=None, metadata={"help": "Training file (CoNLL for ner; TSV/CSV/JSONL/Parquet for classification)."}
    )
    validation_file: str | None = field(default=None, metadata={"help": "Evaluation file, same format."})
    test_file: str | None = field(
        default=None,
        metadata={"help": "Test file, scored once at the end (test_*); without --validation_file it is the only one."},
    )
    text_a_column: str | None = field(
        default=None,
        metadata={
            "help": "Classification: first text column. Default: read from a GLUE header (sentence1, question, ...)."
        },
    )
    text_b_column: str | None = field(
        default=None,
        metadata={
            "help": "Classification: second text column ('none' for single sentences). Default: from the header."
        },
    )
    label_column: str | None = field(
        default=None,
        metadata={"help": "Classification: label column. Default: from the header (label, gold_label, ...)."},
    )
    bad_rows: BadRows = field(
        default="error",
        metadata={
            "help": "Classification rows with a missing label, an empty text or the wrong number of fields: 'error' "
            "stops with the file, line and column; 'skip' leaves them out and counts them in the metrics."
        },
    )
    task_test_fraction: float | None = field(
        default=None,
        metadata={
            "help": "Corpus tasks: share of the held-out documents in the test set (default 0.3, or the model's)."
        },
    )
    task_validation_fraction: float | None = field(
        default=None,
        metadata={
            "help": "Corpus tasks: share of the held-out documents in a validation set, for model selection and "
            "early stopping (the test set is then scored once, at the end, as test_*). Default 0."
        },
    )
    label_all_tokens: bool = field(
        default=False, metadata={"help": "Token tasks: label every sub-token in training (scoring stays per word)."}
    )
    seqeval_mode: Literal["default", "strict"] | None = field(
        default=None, metadata={"help": "seqeval mode: default, or 'strict' (IOB2 entities must start with B-)."}
    )
    repair_iob: bool = field(default=False, metadata={"help": "CoNLL: turn IOB1 I- tags that start an entity into B-."})
    allow_pretraining_documents: bool = field(
        default=False,
        metadata={"help": "Build a corpus task even from documents the checkpoint was pretrained on (a leak)."},
    )

    def __post_init__(self):
        if self.task is not None and self.task not in TASKS:
            raise ValueError(f"--task must be one of {TASKS}, got {self.task!r}")
        for name in ("train_file", "validation_file", "test_file"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise ValueError(f"--{name} {path}: no such file. Expected a CoNLL, TSV, CSV, JSONL or Parquet file.")
        if self.text_b_column in ("none", ""):
            self.text_b_column = "none"  # single-sentence task, decided by the user (not read from the header)
        if self.seqeval_mode == "default":
            self.seqeval_mode = None
        if self.task_test_fraction is not None and not 0 < self.task_test_fraction < 1:
            raise ValueError(f"--task_test_fraction must lie in (0, 1), got {self.task_test_fraction}")
        test = self.task_test_fraction or 0.3
        if self.task_validation_fraction is not None and not 0 <= self.task_validation_fraction < 1 - test:
            raise ValueError(
                f"--task_validation_fraction must lie in [0, 1 - task_test_fraction), got "
                f"{self.task_validation_fraction} with --task_test_fraction {test}."
            )

    @property
    def from_corpus(self) -> bool:
        return self.task in CORPUS_TASKS

    @property
    def token_task(self) -> bool:
        return self.task in TOKEN_TASKS


@dataclass
class FinetuneOptions(TaskOptions, ModelOptions):
    """nsptask's own options of ``nsptask finetune``; :class:`nsptask.FinetuneArguments` is these plus
    ``transformers.TrainingArguments``."""

    _argument_group_name = "task options"

    max_train_samples: int | None = field(default=None, metadata={"help": "Fine-tune on at most this many examples."})
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "Stop after this many evaluations without improvement (needs eval steps)."}
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for tokenizing the task data (datasets' num_proc)."}
    )
    single_segment: bool = field(
        default=False,
        metadata={
            "help": "Feed every token as segment 0 (no token_type_ids): for a model pretrained on single segments "
            "(RoBERTa's formats), which never trained segment 1. nsptask ablate sets it for its MLM-only arms."
        },
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Write into an existing, non-empty --output_dir (old checkpoints removed)."}
    )
    # TrainingArguments defaults changed for a quick CPU run.
    output_dir: str | None = field(default="nsptask-finetune", metadata={"help": "Where the fine-tuned model goes."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Batch size per device for training."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Batch size per device for evaluation."})
    learning_rate: float = field(default=5e-4, metadata={"help": "Peak learning rate."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Epochs."})
    warmup_steps: float = field(default=0.1, metadata={"help": "Warm-up steps, or a fraction of all steps if < 1."})
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate: no, steps, epoch."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to save (must match eval for best model)."})
    save_total_limit: int | None = field(default=1, metadata={"help": "Checkpoints kept."})
    logging_steps: float = field(default=20, metadata={"help": "Log every N steps."})
    report_to: None | str | list[str] = field(default="none", metadata={"help": "Loggers (tensorboard, ...)."})


@dataclass
class EvaluateArguments(TaskOptions):
    """Options of ``nsptask evaluate``: score a fine-tuned model on its task's held-out data, without training. The
    task and its test share default to what the model's config recorded."""

    _argument_group_name = "evaluation options"

    task: TaskName | None = field(
        default=None, metadata={"help": "The task; default: the one recorded in the model's config."}
    )
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A fine-tuned model folder (made by nsptask finetune) or Hub id."}
    )
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Batch size per device."})
    output_dir: str | None = field(
        default=None, metadata={"help": "Where eval_results.json goes (default: the model folder)."}
    )

    def __post_init__(self):
        super().__post_init__()
        if not self.model_name_or_path:
            raise ValueError("nsptask evaluate needs --model_name_or_path (a model made by nsptask finetune).")
        check_path_or_hub_id(self.model_name_or_path, "model folder", "model_name_or_path")


# -- the study ----------------------------------------------------------------------------------------------

DEFAULT_ARMS = ["mlm:full-sentences", "mlm+nsp:nsp", "mlm+sop:sop"]
DEFAULT_PROBES = ("segment-tagging", "coherence-other-document", "connective")
KNOWN_ARMS = ["mlm:full-sentences", "mlm:doc-sentences", "mlm+nsp:nsp", "mlm+nsp:sentence-pair", "mlm+sop:sop"]


def parse_arm(arm: str) -> tuple[str, str]:
    """``"mlm+nsp:nsp"`` -> ``("mlm+nsp", "nsp")``; an objective alone takes its default format. Unknown
    objectives, unknown formats and formats without the objective's label are errors."""
    objective, _, data_format = arm.partition(":")
    if objective not in OBJECTIVES or objective in ("nsp", "sop"):
        raise ValueError(
            f"Arm {arm!r}: unknown objective {objective!r}; arms look like {', '.join(KNOWN_ARMS)} "
            "(objective:format, objective one of mlm, mlm+nsp, mlm+sop)."
        )
    data_format = data_format or DEFAULT_FORMATS[objective]
    if data_format not in FORMATS or data_format == "coherence":
        raise ValueError(
            f"Arm {arm!r}: unknown format {data_format!r}; formats are nsp, sentence-pair, sop, full-sentences, "
            "doc-sentences."
        )
    check_objective_format(objective, data_format)
    return objective, data_format


@dataclass
class AblateArguments:
    """Options of ``nsptask ablate`` (the corpus, tokenizer, length and split are
    :class:`nsptask.arguments.DataArguments`). Defaults: the bundled corpus and the ``tiny`` preset, sized to
    run in minutes on a laptop CPU (README.md shows the measured time and memory of the default run)."""

    _argument_group_name = "study options"

    output_dir: str = field(default="nsptask-study", metadata={"help": "Study directory (resumable)."})
    arms: list[str] = field(
        default_factory=lambda: list(DEFAULT_ARMS),
        metadata={"help": f"Arms as objective:format. Default {' '.join(DEFAULT_ARMS)}; also {' '.join(KNOWN_ARMS)}."},
    )
    seeds: list[int] = field(
        default_factory=lambda: [1, 2],
        metadata={"help": "Seeds: each varies initialisation, data order and masking; each arm runs once per seed."},
    )
    vary_split: bool = field(
        default=False, metadata={"help": "Vary the document split with the seed too (split seed + seed)."}
    )
    preset: str = field(default="tiny", metadata={"help": "Model size preset (tiny, mini, small, base)."})
    model_family: str = field(
        default="bert",
        metadata={"help": "Family of the preset model: bert, roberta, albert, deberta-v2, modernbert, distilbert."},
    )
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Start every arm from this checkpoint instead of a preset."}
    )
    token_budget: int = field(
        default=800_000, metadata={"help": "Tokens (without padding) each arm sees in pretraining."}
    )
    tokens_per_update: int = field(
        default=4096,
        metadata={"help": "Tokens per optimizer update, over all processes; each arm's batch size follows from it."},
    )
    learning_rate: float = field(default=1e-3, metadata={"help": "Pretraining learning rate."})
    eval_points: int = field(default=4, metadata={"help": "Evaluations during pretraining (learning curves)."})
    max_eval_samples: int = field(default=512, metadata={"help": "Instances per intrinsic evaluation."})
    probe_examples: int = field(default=1024, metadata={"help": "Labelled pairs for a sentence head an arm lacks."})
    probe_epochs: float = field(default=2.0, metadata={"help": "Epochs of that head's training (encoder frozen)."})
    downstream: list[str] = field(
        default_factory=lambda: list(DEFAULT_PROBES),
        metadata={
            "help": "Corpus tasks fine-tuned per arm. Default: "
            + " ".join(DEFAULT_PROBES)
            + " (coherence-other-document is partly solved by word overlap, a topic cue; the report says so); also "
            "sentence-position and coherence-same-document (neither shown learnable yet), and nsp, sop, coherence "
            "(the objectives again, marked so in the report)."
        },
    )
    task_files: list[str] = field(
        default_factory=list,
        metadata={
            "help": "User tasks as study columns, several at once: NAME=TRAIN,TEST[,VALIDATION], e.g. "
            "mrpc=msr_paraphrase_train.txt,msr_paraphrase_test.txt wnut=train.conll,test.conll. GLUE-style TSV "
            "(MRPC's .txt too), CSV, JSONL or Parquet classification files (columns from the header); .conll: NER."
        },
    )
    task_options: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Options of a --task_files task, as NAME.OPTION=VALUE: "
            + ", ".join(_USER_TASK_OPTIONS)
            + " (as finetune's), e.g. mrpc.bad_rows=skip sst2.text_a_column=sentence."
        },
    )
    finetune_seeds: int = field(
        default=3,
        metadata={
            "help": "Fine-tuning runs per pretrained model and task (seeds 1..N, apart from the pretraining seeds); "
            "cells take their median, as BERT and RoBERTa report."
        },
    )
    finetune_epochs: float = field(default=1.0, metadata={"help": "Epochs of each downstream fine-tuning."})
    finetune_learning_rate: float = field(default=5e-4, metadata={"help": "Downstream learning rate."})
    downstream_max_seq_length: int = field(default=128, metadata={"help": "Length of downstream inputs."})
    task_test_fraction: float = field(
        default=0.3, metadata={"help": "Share of the held-out documents in the downstream tasks' test sets."}
    )
    attn_implementation: Attention | None = field(
        default=None, metadata={"help": "Attention kernel of every run: eager, sdpa, flash_attention_2."}
    )
    bf16: bool = field(default=False, metadata={"help": "bf16 mixed precision in every run."})
    fp16: bool = field(default=False, metadata={"help": "fp16 mixed precision in every run."})
    dataloader_num_workers: int = field(default=0, metadata={"help": "Data loader workers of every run."})
    report_to: str = field(default="none", metadata={"help": "Loggers of every run (tensorboard, wandb, ...)."})
    keep_checkpoints: bool = field(
        default=False,
        metadata={
            "help": "Keep the pretraining checkpoints and the fine-tuned downstream models (default: each seed's initial "
            "model and each arm's final pretrained model only)."
        },
    )

    def __post_init__(self):
        for arm in self.arms:
            parse_arm(arm)
        if len(set(self.arms)) != len(self.arms):
            raise ValueError(f"Arms repeat: {self.arms}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"Give one or more distinct seeds, got {self.seeds}.")
        if self.preset not in PRESET_NAMES:
            raise ValueError(f"--preset must be one of {PRESET_NAMES}, got {self.preset!r}")
        if self.model_family not in FAMILIES:
            raise ValueError(f"--model_family must be one of {FAMILIES}, got {self.model_family!r}")
        check_path_or_hub_id(self.model_name_or_path, "model folder", "model_name_or_path")
        unknown = set(self.downstream) - set(CORPUS_TASKS)
        if unknown:
            raise ValueError(f"--downstream: unknown tasks {sorted(unknown)}; choose from {', '.join(CORPUS_TASKS)}.")
        _ = self.user_tasks  # checks the files (TaskOptions: they exist)
        if self.finetune_seeds < 1:
            raise ValueError(f"--finetune_seeds must be at least 1, got {self.finetune_seeds}")
        if self.token_budget < self.tokens_per_update:
            raise ValueError("--token_budget must be at least --tokens_per_update (one update).")

    @property
    def updates(self) -> int:
        """Optimizer updates per arm (the same for every arm)."""
        return max(1, round(self.token_budget / self.tokens_per_update))

    @property
    def user_tasks(self) -> dict[str, TaskOptions]:
        """The ``--task_files`` as task options (``classification`` or, for ``.conll`` files, ``ner``), by name."""
        tasks = {}
        for spec in self.task_files:
            name, _, paths = spec.partition("=")
            files = [p for p in paths.split(",") if p]
            if not name or len(files) < 2 or len(files) > 3 or name in tasks or name in CORPUS_TASKS:
                raise ValueError(
                    f"--task_files {spec!r}: expected NAME=TRAIN,TEST[,VALIDATION] with a name of its own (not a "
                    "corpus task's), e.g. mrpc=msr_paraphrase_train.txt,msr_paraphrase_test.txt."
                )
            kind = "ner" if all(f.lower().endswith(".conll") for f in files) else "classification"
            tasks[name] = TaskOptions(
                task=kind,
                train_file=files[0],
                test_file=files[1],
                validation_file=files[2] if len(files) == 3 else None,
            )
        for spec in self.task_options:
            target, equals, value = spec.partition("=")
            name, dot, key = target.partition(".")
            if not (equals and dot and value) or name not in tasks or key not in _USER_TASK_OPTIONS:
                raise ValueError(
                    f"--task_options {spec!r}: expected NAME.OPTION=VALUE with NAME one of the --task_files tasks "
                    f"({', '.join(tasks) or 'none given'}), OPTION one of {', '.join(_USER_TASK_OPTIONS)} and a value."
                )
            if key in _NER_ONLY_OPTIONS and tasks[name].task != "ner":
                raise ValueError(
                    f"--task_options {spec!r}: {key} is a CoNLL (ner) option; {name} is a {tasks[name].task} task."
                )
            if key not in _NER_ONLY_OPTIONS and tasks[name].task == "ner":
                raise ValueError(
                    f"--task_options {spec!r}: {key} is a classification option; {name} is a CoNLL (ner) task."
                )
            try:
                tasks[name] = replace(tasks[name], **{key: _USER_TASK_OPTIONS[key](value)})
            except ValueError as err:
                raise ValueError(f"--task_options {spec!r}: {err}") from None
        return tasks


# -- the other commands -----------------------------------------------------------------------------------------


@dataclass
class BuildArguments:
    """Options of ``nsptask build`` beyond the data options."""

    _argument_group_name = "build options"

    output_dir: str | None = field(
        default=None,
        metadata={"help": "Save the instances here (with report.json and the tokenizer) for pretrain --dataset."},
    )
    push_to_hub: str | None = field(
        default=None,
        metadata={
            "help": "Push the instances (Parquet shards), the tokenizer and a dataset card with the build report to "
            "this Hub dataset repo (owner/name); pretrain/ablate --dataset owner/name read it back."
        },
    )
    private: bool = field(default=False, metadata={"help": "Make the pushed dataset repo private."})
    engine: Literal["datasets", "dask"] = field(
        default="datasets",
        metadata={"help": "'datasets': this machine (--num_proc cores); 'dask': a Dask cluster (Parquet shards)."},
    )
    scheduler: str | None = field(
        default=None, metadata={"help": "Dask scheduler address (tcp://host:8786); default: a local cluster."}
    )
    n_workers: int | None = field(
        default=None, metadata={"help": "Workers of the local Dask cluster (default: cores)."}
    )
    streaming: bool = field(default=False, metadata={"help": "Build lazily and print a sample instead of saving."})
    json: bool = field(default=False, metadata={"help": "Print the report as JSON instead of text."})

    def __post_init__(self):
        if self.engine == "dask" and not self.output_dir:
            raise ValueError("--engine dask writes Parquet shards: give --output_dir (on storage every worker sees).")


@dataclass
class TokenizerArguments:
    """Options of ``nsptask tokenizer`` beyond the data options."""

    _argument_group_name = "tokenizer options"

    output_dir: str | None = field(default=None, metadata={"help": "Where the tokenizer goes (required)."})
    tokenizer_model: Literal["wordpiece", "bpe", "unigram"] | None = field(
        default=None,
        metadata={
            "help": "wordpiece (BERT, DistilBERT), bpe (byte-level: RoBERTa, ModernBERT), unigram (SentencePiece-style: "
            "ALBERT, DeBERTa-v3). Default: the --model_family's."
        },
    )
    model_family: Family = field(
        default="bert", metadata={"help": "The family the tokenizer is for (picks the tokenizer model)."}
    )
    vocab_size: int = field(default=8000, metadata={"help": "Vocabulary size."})
    lowercase: bool | None = field(
        default=None, metadata={"help": "Lowercase the text (default: yes for wordpiece and unigram, no for bpe)."}
    )
    min_frequency: int = field(default=2, metadata={"help": "Minimum frequency of a merge."})

    def __post_init__(self):
        if not self.output_dir:
            raise ValueError("nsptask tokenizer needs --output_dir (where the tokenizer goes).")


@dataclass
class PredictArguments:
    """Options of ``nsptask predict``."""

    _argument_group_name = "prediction options"

    model: str | None = field(
        default=None,
        metadata={"help": "Model folder or Hub id: NSP/SOP-trained, a fine-tuned sentence classifier or a tagger."},
    )
    text: list[str] | None = field(
        default=None, metadata={"help": "First sentence(s), or texts to tag (token models)."}
    )
    text_pair: list[str] | None = field(default=None, metadata={"help": "Second sentence(s), one per --text."})
    file: str | None = field(
        default=None,
        metadata={"help": "JSONL with text/text_pair fields, or TSV lines 'A<TAB>B'. '-' or no input: standard input."},
    )
    batch_size: int = field(default=32, metadata={"help": "Pairs scored per batch."})
    max_length: int | None = field(default=None, metadata={"help": "Truncation length (default: the model's)."})
    stride: int = field(default=32, metadata={"help": "Token models: overlap of windows for long texts."})
    device: str | None = field(default=None, metadata={"help": "Device (default: what Accelerate picks)."})

    def __post_init__(self):
        if not self.model:
            raise ValueError("nsptask predict needs --model (a model folder or Hub id).")
        check_path_or_hub_id(self.model, "model folder", "model")
        if self.file not in (None, "-") and not Path(self.file).is_file():
            raise ValueError(f"--file {self.file}: no such file.")


@dataclass
class ReportArguments:
    """Options of ``nsptask report``."""

    _argument_group_name = "report options"

    study_dir: str | None = field(default=None, metadata={"help": "A study directory (finished or partial)."})
    compare: list[str] | None = field(
        default=None, metadata={"help": "Other study directories (or their results.json) to put side by side."}
    )

    def __post_init__(self):
        if not self.study_dir or not Path(self.study_dir).is_dir():
            raise ValueError(f"{self.study_dir!r} is not a study directory (made by nsptask ablate).")
        for other in self.compare or []:
            if not Path(other).exists():
                raise ValueError(f"--compare {other}: no such study directory or results.json.")
