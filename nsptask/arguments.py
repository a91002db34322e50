"""One set of data options for every command: :class:`DataArguments`.

``nsptask build``, ``pretrain``, ``finetune``, ``evaluate``, ``ablate`` and ``tokenizer`` all parse the same
dataclass, together with their own options (as transformers' ``run_mlm.py`` parses ``DataTrainingArguments``
with ``TrainingArguments``), so the same settings mean the same thing everywhere and give the same data and
the same cache key in every command.

Example:
    ```python
    >>> from nsptask.arguments import DataArguments
    >>> args = DataArguments(corpus=["news.jsonl"], validation_fraction=0.05)  # doctest: +SKIP
    >>> args.builder_kwargs("nsp")["validation_fraction"]  # doctest: +SKIP
    0.05
    ```
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "DataArguments",
    "PretrainOptions",
    "FinetuneOptions",
    "EvaluateArguments",
    "DATA_RECORD_FILE",
    "read_data_record",
    "check_path_or_hub_id",
]

DATA_RECORD_FILE = "nsptask_data.json"
DEFAULT_VALIDATION_FRACTION = 0.2
DEFAULT_SPLIT_SEED = 12345

CorpusFormat = Literal["sentences", "text", "json", "csv", "parquet", "wikipedia"]
DataFormat = Literal["nsp", "sentence-pair", "sop", "full-sentences", "doc-sentences"]


def _hub_offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def check_path_or_hub_id(name: str | None, what: str, option: str) -> None:
    """A name that looks like a local path (starts with ``.``, ``/`` or ``~``, has more than one ``/``, a file
    extension, or a first part that is a folder here) must exist: it is never looked up on the Hub (which takes
    retries and a traceback). With the Hub offline (``HF_HUB_OFFLINE=1``), any name not on this machine is an
    error."""
    if name is None or os.path.exists(os.path.expanduser(name)):
        return
    from .corpus import _looks_like_hub_id

    if not _looks_like_hub_id(name) or _hub_offline():
        offline = " (and the Hub is offline: HF_HUB_OFFLINE=1)" if _hub_offline() else ""
        raise ValueError(
            f"--{option} {name!r}: no such {what} on this machine{offline}. Expected an existing local path (or a Hub "
            "id such as 'owner/name'); check the spelling and the working directory."
        )


@dataclass
class DataArguments:
    """The corpus, how to read and tokenize it, the instance format and its algorithm, the document split and
    the pools: the options every nsptask command shares."""

    _argument_group_name = "data options (every command)"

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
            "help": "A dataset made by `nsptask build --output_dir` (a folder, or a Hub id): pretrain reads its "
            "instances instead of building from --corpus, with the tokenizer saved beside them (a Hub id or a folder "
            "without tokenizer/ needs --tokenizer_name_or_path)."
        },
    )
    corpus_format: CorpusFormat | None = field(
        default=None,
        metadata={
            "help": "How to read the corpus: sentences (one per line, blank line between documents), text (raw text, "
            "split into sentences), json, csv, parquet, wikipedia. Guessed from file names; a .txt of running "
            "prose stops and asks for this option."
        },
    )
    text_column: str = field(default="text", metadata={"help": "Text column of JSONL/CSV/Parquet/dataset corpora."})
    doc_id_column: str | None = field(
        default=None, metadata={"help": "Document-id column; consecutive rows with the same id form one document."}
    )
    document_per: Literal["paragraph", "line", "file"] = field(
        default="paragraph",
        metadata={"help": "Raw text: a paragraph block, a line (news corpora) or a whole file is a document."},
    )
    splitter: Literal["sentencex", "pysbd"] = field(
        default="sentencex", metadata={"help": "Sentence splitter for raw text, tables and Wikipedia."}
    )
    language: str = field(
        default="en", metadata={"help": "Language of the text, for the splitter and tokenizer training (en, zh, ...)."}
    )
    encoding: str = field(default="utf-8", metadata={"help": "Text encoding of text, JSONL, CSV and CoNLL files."})
    encoding_errors: Literal["strict", "replace", "ignore"] = field(
        default="strict",
        metadata={"help": "Invalid UTF-8: 'strict' stops with the file, line and byte offset; 'replace' or 'ignore'."},
    )
    wiki_min_chars: int = field(default=500, metadata={"help": "Wikipedia articles with less prose are stubs."})
    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Tokenizer folder or Hub id. Default: the model's, else nsptask's 8k WordPiece tokenizer "
            "(English; for another corpus train one with `nsptask tokenizer`)."
        },
    )
    tokenizer_backend: Literal["hf", "tokie"] = field(
        default="hf", metadata={"help": "'hf' (tokenizers) or 'tokie' (optional fast path, identical ids)."}
    )
    allow_unknown_tokens: bool = field(
        default=False,
        metadata={"help": "Build even when over 5%% of the tokens are unknown to the tokenizer (over 1%% warns)."},
    )
    data_format: DataFormat | None = field(
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
        default=12345, metadata={"help": "Seed of instance creation and of the document shuffle (Google's default)."}
    )
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
    pool_size: int = field(default=1000, metadata={"help": "Documents per random-document pool (bounds memory)."})
    pool_order: Literal["shuffled", "corpus"] = field(
        default="shuffled",
        metadata={
            "help": "'shuffled': pool documents after a seeded global shuffle (as Google draws from the whole corpus); "
            "'corpus': consecutive documents (streaming needs it)."
        },
    )
    num_proc: int | None = field(
        default=None,
        metadata={
            "help": "Cores for building the data: that many processes, each with a single-threaded tokenizer. "
            "Default: one process whose tokenizer uses every core."
        },
    )
    shard_index: int = field(default=0, metadata={"help": "Build only this shard of the pools (multi-machine)."})
    num_shards: int = field(default=1, metadata={"help": "Number of pool shards for multi-machine builds."})
    data_cache_dir: str | None = field(default=None, metadata={"help": "datasets cache folder for the built data."})

    def __post_init__(self):
        if isinstance(self.corpus, str):
            self.corpus = [self.corpus]
        if self.corpus and self.dataset:
            raise ValueError("Give --corpus (build from text) or --dataset (read a `nsptask build` output), not both.")
        for item in self.corpus or []:
            check_path_or_hub_id(item, "corpus file or directory", "corpus")
        check_path_or_hub_id(self.dataset, "dataset folder", "dataset")
        check_path_or_hub_id(self.tokenizer_name_or_path, "tokenizer folder", "tokenizer_name_or_path")
        if self.max_seq_length is not None and self.max_seq_length < 5:
            raise ValueError(
                f"--max_seq_length must be at least 5 (special tokens plus two tokens), got {self.max_seq_length}"
            )
        for name in ("short_seq_prob", "nsp_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"--{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.validation_fraction is not None and not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"--validation_fraction must lie in [0, 1), got {self.validation_fraction}")
        if self.dupe_factor < 1 or self.pool_size < 2:
            raise ValueError("--dupe_factor must be >= 1 and --pool_size >= 2")
        if self.num_proc is not None and self.num_proc < 1:
            raise ValueError(f"--num_proc must be >= 1, got {self.num_proc}")
        if not 0 <= self.shard_index < self.num_shards:
            raise ValueError(
                f"--shard_index must lie in [0, --num_shards), got {self.shard_index} of {self.num_shards}"
            )

    # -- derived -----------------------------------------------------------------------------------
    @property
    def source(self) -> Any:
        """The corpus as the readers take it: `None` (bundled), one path or Hub name, or a list."""
        if not self.corpus:
            return None
        return self.corpus[0] if len(self.corpus) == 1 else list(self.corpus)

    def reader_kwargs(self) -> dict[str, Any]:
        return {
            "format": self.corpus_format,
            "text_column": self.text_column,
            "doc_id_column": self.doc_id_column,
            "document_per": self.document_per,
            "splitter": self.splitter,
            "language": self.language,
            "encoding": self.encoding,
            "errors": self.encoding_errors,
            "wiki_min_chars": self.wiki_min_chars,
        }

    def resolve(self, model_dir: str | None = None, max_seq_length: int | None = None) -> DataArguments:
        """Fill the options left unset, from the record of the checkpoint's pretraining data when there is one
        (``nsptask_data.json``), so that fine-tuning and evaluation read the corpus the model was pretrained on, the
        way it was read, and hold out what pretraining held out; else from the defaults (the bundled corpus, split
        0.2 / 12345, length `max_seq_length` or 128)."""
        import logging

        record = read_data_record(model_dir) if model_dir else None
        previous = (record or {}).get("data_arguments") or {}
        if not self.corpus and not self.dataset and previous.get("corpus"):
            for name in _READING_FIELDS:
                if name in previous:
                    setattr(self, name, previous[name])
            logging.getLogger(__name__).warning(
                "nsptask: reading %s, the corpus %s was pretrained on (its nsptask_data.json); pass --corpus to "
                "use another.",
                ", ".join(self.corpus),
                model_dir,
            )
        split = (record or {}).get("split", {})
        if self.validation_fraction is None:
            self.validation_fraction = split.get("validation_fraction", DEFAULT_VALIDATION_FRACTION)
        if self.split_seed is None:
            self.split_seed = split.get("split_seed", DEFAULT_SPLIT_SEED)
        if self.max_seq_length is None:
            self.max_seq_length = max_seq_length or 128
        return self

    def builder_kwargs(self, data_format: str | None = None) -> dict[str, Any]:
        """Keyword arguments of :func:`nsptask.build_pretraining_dataset` for these options (the tokenizer
        apart): the one place where options become a build, so every command makes the same cache key."""
        self.resolve()
        return {
            "source": self.source,
            "format": data_format or self.data_format or "nsp",
            "reader_kwargs": self.reader_kwargs(),
            "max_seq_length": self.max_seq_length,
            "short_seq_prob": self.short_seq_prob,
            "short_seq_mode": self.short_seq_mode,
            "nsp_probability": self.nsp_probability,
            "dupe_factor": self.dupe_factor,
            "seed": self.instance_seed,
            "validation_fraction": self.validation_fraction,
            "split_seed": self.split_seed,
            "pool_size": self.pool_size,
            "pool_order": self.pool_order,
            "shard_index": self.shard_index,
            "num_shards": self.num_shards,
            "tokenizer_backend": self.tokenizer_backend,
            "allow_unknown_tokens": self.allow_unknown_tokens,
            "cache_dir": self.data_cache_dir,
            "num_proc": self.num_proc,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_READING_FIELDS = (
    "corpus",
    "corpus_format",
    "text_column",
    "doc_id_column",
    "document_per",
    "splitter",
    "language",
    "encoding",
    "encoding_errors",
    "wiki_min_chars",
    "tokenizer_backend",
    "instance_seed",
)


def read_data_record(model_dir: str | os.PathLike | None) -> dict | None:
    """The record of the data a model was pretrained on (``nsptask_data.json`` beside the weights), if any."""
    if model_dir is None:
        return None
    path = Path(model_dir) / DATA_RECORD_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _default_report_to() -> str:
    try:
        import tensorboard  # noqa: F401

        return "tensorboard"
    except ImportError:
        return "none"


@dataclass
class PretrainOptions:
    """nsptask's own options of ``nsptask pretrain`` (with the ``TrainingArguments`` defaults it changes for a quick
    CPU run); :class:`nsptask.NspTrainingArguments` is these plus ``transformers.TrainingArguments``."""

    _argument_group_name = "model and objective options"

    objective: Literal["mlm+nsp", "mlm+sop", "mlm", "nsp", "sop"] = field(
        default="mlm+nsp",
        metadata={"help": "Pretraining objective: mlm+nsp (BERT), mlm+sop (ALBERT), mlm (RoBERTa), nsp, sop."},
    )
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Pretrained model (local path or Hub id). Default: a preset built from a config."},
    )
    model_family: Literal["bert", "roberta", "albert", "deberta-v2", "modernbert", "distilbert"] = field(
        default="bert", metadata={"help": "Family of a preset model (a checkpoint brings its own)."}
    )
    preset: Literal["tiny", "mini", "small", "base"] = field(
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


@dataclass
class FinetuneOptions:
    """nsptask's own options of ``nsptask finetune``; :class:`nsptask.FinetuneArguments` is these plus
    ``transformers.TrainingArguments``."""

    _argument_group_name = "task options"

    task: Literal["nsp", "sop", "coherence", "classification", "segment-tagging", "ner"] = field(
        default="nsp",
        metadata={
            "help": "Downstream task: nsp, sop, coherence, segment-tagging (from the corpus), "
            "ner (CoNLL files), classification (CSV/JSONL/Parquet files)."
        },
    )
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Checkpoint to fine-tune (nsptask's own, a local path or a Hub id)."}
    )
    train_file: str | None = field(default=None, metadata={"help": "Training file (CoNLL for ner; CSV/JSONL/Parquet)."})
    validation_file: str | None = field(default=None, metadata={"help": "Evaluation file, same format."})
    test_file: str | None = field(default=None, metadata={"help": "Optional test file, evaluated at the end."})
    text_a_column: str = field(default="sentence1", metadata={"help": "Classification: first text column."})
    text_b_column: str | None = field(
        default="sentence2", metadata={"help": "Classification: second text column; 'none' for single sentences."}
    )
    label_column: str = field(default="label", metadata={"help": "Classification: label column."})
    task_test_fraction: float = field(
        default=0.3, metadata={"help": "Corpus tasks: share of the held-out documents in the task's test set."}
    )
    task_validation_fraction: float = field(
        default=0.0,
        metadata={
            "help": "Corpus tasks: share of the held-out documents in a task validation set, for model selection "
            "and early stopping (the test set is then scored once, at the end, as test_*)."
        },
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Fine-tune on at most this many examples."})
    label_all_tokens: bool = field(
        default=False, metadata={"help": "Token tasks: label every sub-token in training (scoring stays per word)."}
    )
    seqeval_mode: Literal["default", "strict"] | None = field(
        default=None, metadata={"help": "seqeval mode: default, or 'strict' (IOB2 entities must start with B-)."}
    )
    repair_iob: bool = field(default=False, metadata={"help": "CoNLL: turn IOB1 I- tags that start an entity into B-."})
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "Stop after this many evaluations without improvement (needs eval steps)."}
    )
    allow_pretraining_documents: bool = field(
        default=False,
        metadata={"help": "Build a corpus task even from documents the checkpoint was pretrained on (a leak)."},
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
class EvaluateArguments:
    """Options of ``nsptask evaluate``: score a fine-tuned model on its task's held-out data, without training."""

    _argument_group_name = "evaluation options"

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A fine-tuned model folder (made by nsptask finetune) or Hub id."}
    )
    task: Literal["nsp", "sop", "coherence", "classification", "segment-tagging", "ner"] | None = field(
        default=None, metadata={"help": "The task; default: the one recorded in the model's config."}
    )
    validation_file: str | None = field(default=None, metadata={"help": "Evaluation file (ner, classification)."})
    test_file: str | None = field(default=None, metadata={"help": "A second evaluation file, reported as test_*."})
    text_a_column: str = field(default="sentence1", metadata={"help": "Classification: first text column."})
    text_b_column: str | None = field(default="sentence2", metadata={"help": "Classification: second text column."})
    label_column: str = field(default="label", metadata={"help": "Classification: label column."})
    task_test_fraction: float | None = field(
        default=None, metadata={"help": "Corpus tasks: the test share (default: the model's fine-tuning record)."}
    )
    seqeval_mode: Literal["default", "strict"] | None = field(default=None, metadata={"help": "seqeval mode."})
    repair_iob: bool = field(default=False, metadata={"help": "CoNLL: turn IOB1 I- tags that start an entity into B-."})
    allow_pretraining_documents: bool = field(
        default=False, metadata={"help": "Score even on documents the model was pretrained on (a leak)."}
    )
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Batch size per device."})
    output_dir: str | None = field(
        default=None, metadata={"help": "Where eval_results.json goes (default: the model folder)."}
    )

    def __post_init__(self):
        if not self.model_name_or_path:
            raise ValueError("nsptask evaluate needs --model_name_or_path (a model made by nsptask finetune).")
        check_path_or_hub_id(self.model_name_or_path, "model folder", "model_name_or_path")
        for name in ("validation_file", "test_file"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise ValueError(f"--{name} {path}: no such file.")
        if self.text_b_column in ("none", ""):
            self.text_b_column = None
        if self.seqeval_mode == "default":
            self.seqeval_mode = None
