"""What ``nsptask build`` writes, and pushing it to and reading it from the Hugging Face Hub.

A build saved with ``--output_dir`` is a ``save_to_disk`` folder (memory-mapped when read back) with its tokenizer,
its report and its record beside the splits. ``--push_to_hub OWNER/NAME`` uploads the same build as a Hub dataset
repo laid out as ``datasets.push_to_hub`` lays one out, so ``datasets.load_dataset("OWNER/NAME")`` reads it too::

    README.md                         dataset card: configs metadata, the build report
    data/train-00000-of-00001.parquet
    data/validation-00000-of-00001.parquet
    tokenizer/                        the tokenizer the ids belong to
    nsptask_build.json                format, options, fingerprint, report
    pretraining_documents.npy         text hashes of the training documents (the leak checks' record)

``pretrain --dataset OWNER/NAME`` and ``ablate --dataset OWNER/NAME`` download such a repo (``snapshot_download``)
and read it with its tokenizer, as they read a local build folder.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from huggingface_hub import DatasetCard, DatasetCardData, HfApi, snapshot_download

from .arguments import DATA_RECORD_FILE, BuildArguments, DataArguments
from .builder import (
    BUILD_RECORD_FILE,
    PRETRAINING_DOCUMENTS_FILE,
    build_pretraining_dataset,
    prepare_once,
    pretraining_builder,
    training_document_hashes,
)
from .stats import build_report, describe_source, format_report
from .tokenization import load_tokenizer

__all__ = [
    "build_command",
    "save_build",
    "write_hub_layout",
    "push_build",
    "load_build_output",
    "local_build_folder",
    "PretrainingData",
    "pretraining_data",
]

logger = logging.getLogger(__name__)

PARQUET_SHARD_ROWS = 500_000


def _record(data: DataArguments, data_format: str, engine: str, fingerprint: str, report: dict) -> dict:
    return {
        "format": data_format,
        "engine": engine,
        "fingerprint": fingerprint,
        "data_arguments": data.to_dict(),
        "report": report,
    }


def save_build(out: Path, built, tokenizer, report: dict, record: dict, hashes: np.ndarray) -> None:
    """A build as a ``save_to_disk`` folder with its tokenizer, report, record and training-document hashes."""
    built.save_to_disk(str(out))
    _write_extras(out, tokenizer, report, record, hashes)


def _write_extras(out: Path, tokenizer, report: dict, record: dict, hashes: np.ndarray) -> None:
    tokenizer.save_pretrained(out / "tokenizer")
    (out / "report.json").write_text(json.dumps(report, indent=2))
    np.save(out / PRETRAINING_DOCUMENTS_FILE, np.asarray(hashes, dtype=np.uint64))
    (out / BUILD_RECORD_FILE).write_text(json.dumps(record, indent=2, default=str))


def _dataset_card(repo_id: str, report: dict, splits: dict[str, list[str]], language: str) -> DatasetCard:
    data = DatasetCardData(
        language=language,
        tags=["nsptask", report.get("format", ""), "pretraining"],
        configs=[{"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*"} for s in splits]}],
        pretty_name=f"nsptask {report.get('format')} instances",
    )
    text = format_report(report)
    body = (
        f"---\n{data.to_yaml()}\n---\n\n# {repo_id}\n\nPretraining instances built by "
        f"[nsptask](https://pypi.org/project/nsptask/), format `{report.get('format')}`, from "
        f"{report.get('source', 'a corpus')}. The token ids belong to the tokenizer in `tokenizer/`; "
        "`nsptask pretrain --dataset " + repo_id + "` reads both.\n\n## Build report\n\n```\n" + text + "\n```\n"
    )
    return DatasetCard(body)


def write_hub_layout(folder: Path, repo_id: str, built, tokenizer, report: dict, record: dict, hashes, language="en"):
    """Write a build in the Hub repo layout (Parquet shards under ``data/``, the card, tokenizer and records)."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[str]] = {}
    for split, part in built.items():
        shards = max(1, -(-len(part) // PARQUET_SHARD_ROWS))
        files[split] = []
        for index in range(shards):
            name = f"data/{split}-{index:05d}-of-{shards:05d}.parquet"
            (folder / "data").mkdir(exist_ok=True)
            part.shard(shards, index, contiguous=True).to_parquet(str(folder / name))
            files[split].append(name)
    _write_extras(folder, tokenizer, report, record, hashes)
    _dataset_card(repo_id, report, files, language).save(folder / "README.md")
    return folder


def push_build(repo_id: str, folder: Path, private: bool = False) -> str:
    """Upload a folder in the Hub layout as the dataset repo `repo_id` (created if missing)."""
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="dataset", commit_message="nsptask build")
    return f"https://huggingface.co/datasets/{repo_id}"


def local_build_folder(name: str) -> Path:
    """A build's local folder: the folder itself, or the downloaded snapshot of a Hub dataset repo."""
    folder = Path(name)
    if folder.is_dir():
        return folder
    return Path(snapshot_download(name, repo_type="dataset"))


def _build_record(folder: Path) -> dict:
    """A build's record (:data:`BUILD_RECORD_FILE`: format, data options, report), ``{}`` for a dataset from
    elsewhere; a record that is not JSON is an error naming the file and the line."""
    path = folder / BUILD_RECORD_FILE
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        where = f", line {err.lineno}" if isinstance(err, json.JSONDecodeError) else ""
        raise ValueError(
            f"{path}{where}: expected the JSON record `nsptask build` writes beside its data; found {err}. Build the "
            "data again, or remove the file to read the splits without their record."
        ) from None
    if not isinstance(record, dict):
        raise ValueError(f"{path}: expected a JSON object (the build's record); found a {type(record).__name__}.")
    return record


def load_build_output(name: str):
    """Read a dataset made by ``nsptask build`` (a ``save_to_disk`` folder, the Dask engine's Parquet shards, or the
    Hub layout, locally or as a Hub repo). Returns ``(DatasetDict, record, folder)``; the record says which format,
    tokenizer and split made it (``{}`` for a dataset from elsewhere)."""
    folder = local_build_folder(name)
    record = _build_record(folder)
    if (folder / "dataset_dict.json").is_file():
        return datasets.load_from_disk(str(folder)), record, folder
    if (folder / "data").is_dir():
        by_split: dict[str, list[str]] = {}
        for path in sorted((folder / "data").glob("*.parquet")):
            by_split.setdefault(path.name.split("-")[0], []).append(str(path))
        files = by_split
    else:
        files = {
            split.name: sorted(str(p) for p in split.glob("*.parquet")) for split in folder.iterdir() if split.is_dir()
        }
        files = {k: v for k, v in files.items() if v}
    if not files:
        raise ValueError(
            f"--dataset {name}: expected the output of `nsptask build` (dataset_dict.json, data/SPLIT-*.parquet, or one "
            f"folder of Parquet shards per split); found {sorted(p.name for p in folder.iterdir())[:8]}."
        )
    return datasets.load_dataset("parquet", data_files=files), record, folder


def build_command(args: BuildArguments, data: DataArguments) -> int:
    """``nsptask build``: build (on this machine or a Dask cluster), print the report, save and push."""
    tokenizer = load_tokenizer(data.tokenizer_name_or_path)
    if args.engine == "dask":
        from .engine import build_with_dask  # the optional dask extra

        report = build_with_dask(data, args.output_dir, tokenizer, scheduler=args.scheduler, n_workers=args.n_workers)
        print(json.dumps(report, indent=2))
        print(f"saved to {args.output_dir} (pretrain with: nsptask pretrain --dataset {args.output_dir})")
        return 0
    if args.streaming:
        stream = build_pretraining_dataset(tokenizer=tokenizer, data_args=data, streaming=True)
        for i, example in enumerate(stream["train"]):
            if i == 3:
                break
            print(json.dumps({k: v for k, v in example.items() if k != "token_type_ids"}))
        return 0
    builder = pretraining_builder(data, tokenizer)
    builder.download_and_prepare(num_proc=data.num_proc)
    built = builder.as_dataset()
    report = build_report(builder, built)
    record = _record(data, builder.config.data_format, "datasets", builder.config.fingerprint(), report)
    hashes = training_document_hashes(builder)
    if args.output_dir:
        save_build(Path(args.output_dir), built, tokenizer, report, record, hashes)
        report["saved_to"] = args.output_dir
    if args.push_to_hub:
        with tempfile.TemporaryDirectory() as tmp:
            folder = write_hub_layout(
                Path(tmp), args.push_to_hub, built, tokenizer, report, record, hashes, data.reader.language
            )
            report["pushed_to"] = push_build(args.push_to_hub, folder, private=args.private)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    if args.output_dir and not args.json:
        print(f"saved to {args.output_dir} (pretrain with: nsptask pretrain --dataset {args.output_dir})")
    if args.push_to_hub and not args.json:
        print(f"pushed to {report['pushed_to']} (pretrain with: nsptask pretrain --dataset {args.push_to_hub})")
    return 0


@dataclass
class PretrainingData:
    """The data of a pretraining run, made once from the data options: the instances, the tokenizer they belong to,
    their format, the build report and the text hashes of the training documents; and the record written beside the
    model (``nsptask_data.json``, ``pretraining_documents.npy``) that fine-tuning and evaluation read back."""

    data_args: DataArguments
    data_format: str
    tokenizer: Any
    dataset: Any = None
    report: dict | None = None
    hashes: np.ndarray | None = None

    @property
    def max_seq_length(self) -> int:
        return self.data_args.instances.max_seq_length

    @property
    def hub_datasets(self) -> list[str]:
        """The Hub datasets the instances came from (a Hub corpus, or a build pushed to the Hub), for model cards."""
        names = [c for c in (self.data_args.corpus or []) if isinstance(c, str) and not Path(c).exists()]
        if self.data_args.dataset and not Path(self.data_args.dataset).exists():
            names.append(self.data_args.dataset)
        return names

    def write_record(self, output_dir: str) -> None:
        """Write ``nsptask_data.json`` (the data and split a model was pretrained on) and ``pretraining_documents.npy``
        (the text hashes of its training documents) beside the model: fine-tuning and evaluation read them to hold
        the same documents out and refuse to test on training documents."""
        data_args = self.data_args
        record = {
            "format": self.data_format,
            "source": self.report.get("source") if self.report else describe_source(data_args.source),
            "corpus": data_args.corpus,
            "dataset": data_args.dataset,
            "split": {
                "validation_fraction": data_args.split.validation_fraction,
                "split_seed": data_args.split.split_seed,
            },
            "data_arguments": data_args.to_dict(),
            "pretraining_documents": int(len(self.hashes)) if self.hashes is not None else None,
        }
        Path(output_dir, DATA_RECORD_FILE).write_text(json.dumps(record, indent=2, default=str))
        if self.hashes is not None:
            np.save(Path(output_dir, PRETRAINING_DOCUMENTS_FILE), np.asarray(self.hashes, dtype=np.uint64))
        if self.report is not None:
            Path(output_dir, "data_report.json").write_text(json.dumps(self.report, indent=2))


def corpus_of_build(data_args: DataArguments) -> DataArguments:
    """The data options ``--dataset`` (an ``nsptask build`` output, a folder or a Hub repo) was made from: the corpus,
    reader, split and instance options of its record, and its own ``tokenizer/`` (unless the options name one). For a
    study, which builds every arm's format and its tasks from that corpus (a build holds one format).

    Args:
        data_args (`DataArguments`): Options whose ``dataset`` names the build (its cache folder and worker counts
            are kept).
    """
    folder = local_build_folder(data_args.dataset)
    record = _build_record(folder)
    if "data_arguments" not in record or not (folder / "tokenizer").is_dir():
        raise ValueError(
            f"--dataset {data_args.dataset}: a study rebuilds every arm's format from the corpus a build was made "
            f"from, which its record ({BUILD_RECORD_FILE}) names beside its tokenizer/; found "
            f"{sorted(p.name for p in folder.iterdir())[:8]}. Pass --corpus (and --tokenizer_name_or_path) instead."
        )
    try:
        recorded = DataArguments.from_dict(record["data_arguments"])
    except ValueError as err:
        raise ValueError(
            f"--dataset {data_args.dataset}: its record names a corpus this machine cannot read ({err}). Pass "
            "--corpus with a copy of it."
        ) from None
    recorded.dataset = None
    recorded.tokenizer_name_or_path = data_args.tokenizer_name_or_path or str(folder / "tokenizer")
    recorded.data_cache_dir, recorded.num_proc = data_args.data_cache_dir, data_args.num_proc
    return recorded


def pretraining_data(
    data_args: DataArguments, objective_options, tokenizer=None, build: bool = True
) -> PretrainingData:
    """Resolve the data options, decide the format (the objective's unless given) and the tokenizer, and build the
    instances (or read them from ``--dataset``, whose record then decides the corpus, split and instance options).

    Args:
        data_args (`DataArguments`): The data options (resolved in place).
        objective_options (`PretrainOptions`): The objective (its format, checked against the data's).
        tokenizer (*optional*): A tokenizer; else from the options, the ``--dataset`` or the model.
        build (`bool`, *optional*, defaults to `True`): Make the instances (`False` when the caller has them).
    """
    folder = local_build_folder(data_args.dataset) if data_args.dataset else None
    built, record = load_build_output(str(folder))[:2] if folder is not None and build else (None, {})
    if record.get("data_arguments"):
        # The record says which corpus and split made the build: the model's record must say the same.
        recorded = DataArguments.from_dict(record["data_arguments"])
        data_args.corpus, data_args.reader, data_args.split = recorded.corpus, recorded.reader, recorded.split
        data_args.instances, data_args.tokenizer_backend = recorded.instances, recorded.tokenizer_backend
    if tokenizer is None:
        # The data options' tokenizer, else the dataset's own (never a guessed one: token ids mean nothing without
        # the tokenizer that made them), else the model's or nsptask's default.
        name = data_args.tokenizer_name_or_path
        if name is None and folder is not None:
            if not (folder / "tokenizer").is_dir():
                raise ValueError(
                    f"--dataset {data_args.dataset}: expected an `nsptask build` output (a folder or a Hub repo) with "
                    "its tokenizer/ beside the splits; found none. Pass --tokenizer_name_or_path with the tokenizer the "
                    "dataset was built with."
                )
            name = str(folder / "tokenizer")
        tokenizer = load_tokenizer(name or objective_options.model_name_or_path)
    data_args.resolve()
    data_format = objective_options.data_format(data_args)
    data = PretrainingData(data_args, data_format, tokenizer, dataset=built)
    if not build:
        return data
    if folder is not None:
        if record.get("format") and record["format"] != data_format:
            raise ValueError(
                f"--dataset {data_args.dataset} holds {record['format']!r} instances, and objective "
                f"{objective_options.objective!r} trains on {data_format!r}. Build the data with --data_format "
                f"{data_format}, or pass --data_format {record['format']} if the objective allows it."
            )
        hashes_file = folder / PRETRAINING_DOCUMENTS_FILE
        data.report, data.hashes = record.get("report"), np.load(hashes_file) if hashes_file.is_file() else None
        return data
    builder = pretraining_builder(data_args, tokenizer, data_format)
    prepare_once(builder, num_proc=data_args.num_proc)
    data.dataset = builder.as_dataset()
    data.hashes = training_document_hashes(builder)
    data.report = build_report(builder, data.dataset)
    return data
