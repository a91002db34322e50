"""The ``nsptask`` command line: one entry point with subcommands.

    nsptask build --format nsp --output_dir data/nsp      # build instances, print the statistics report

Every subcommand takes ``--config FILE.yaml`` (or ``.json``): its values become the defaults and flags on
the command line override them.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .instances import FORMATS

__all__ = ["main", "BuildArguments"]


@dataclass
class BuildArguments:
    """Options of ``nsptask build``."""

    format: str = field(default="nsp", metadata={"help": f"Instance format: one of {', '.join(FORMATS)}."})
    corpus: list[str] | None = field(
        default=None,
        metadata={
            "help": "Corpus: files, a directory, or a Hub dataset name. Default: the bundled English Wikipedia "
            "sample (103 articles)."
        },
    )
    corpus_format: str | None = field(
        default=None,
        metadata={
            "help": "How to read the corpus: sentences (one per line, blank line between documents), text "
            "(raw text, split into sentences), json, csv, parquet, wikipedia. Guessed from the file name."
        },
    )
    text_column: str = field(default="text", metadata={"help": "Text column of JSONL/CSV/Parquet/dataset corpora."})
    doc_id_column: str | None = field(
        default=None, metadata={"help": "Document-id column; consecutive rows with the same id form one document."}
    )
    document_per: str = field(
        default="paragraph", metadata={"help": "Raw text: a 'paragraph' block or a whole 'file' is a document."}
    )
    splitter: str = field(default="sentencex", metadata={"help": "Sentence splitter for raw text: sentencex or pysbd."})
    language: str = field(default="en", metadata={"help": "Language of the text for the splitter (e.g. en, zh)."})
    encoding_errors: str = field(
        default="strict",
        metadata={"help": "Invalid UTF-8: 'strict' stops with the file, line and byte offset; 'replace' or 'ignore'."},
    )
    tokenizer: str | None = field(
        default=None,
        metadata={
            "help": "Tokenizer path or Hub id. Default: a WordPiece tokenizer trained locally on the bundled corpus."
        },
    )
    vocab_size: int = field(default=8000, metadata={"help": "Vocabulary size of the default tokenizer."})
    cased: bool = field(default=False, metadata={"help": "Train the default tokenizer cased (default: uncased)."})
    tokenizer_backend: str = field(
        default="hf", metadata={"help": "'hf' (tokenizers) or 'tokie' (optional fast path, identical ids)."}
    )
    max_seq_length: int = field(default=128, metadata={"help": "Instance length, special tokens included."})
    short_seq_prob: float = field(default=0.1, metadata={"help": "Probability of a shorter random target length."})
    short_seq_mode: str = field(
        default="document",
        metadata={"help": "'document': draw the short target once per document (Google); 'instance': per chunk."},
    )
    nsp_probability: float = field(
        default=0.5, metadata={"help": "Probability of a random B (NSP formats) or of a swap (SOP)."}
    )
    dupe_factor: int = field(default=1, metadata={"help": "Times each document is turned into instances."})
    seed: int = field(default=12345, metadata={"help": "Random seed (same seed, same data)."})
    validation_fraction: float = field(
        default=0.05, metadata={"help": "Share of documents in the validation split (split by document)."}
    )
    pool_size: int = field(default=1000, metadata={"help": "Documents per random-document pool."})
    shard_index: int = field(default=0, metadata={"help": "Build only this shard of the pools (multi-machine)."})
    num_shards: int = field(default=1, metadata={"help": "Number of shards for multi-machine builds."})
    num_proc: int | None = field(default=None, metadata={"help": "Processes for tokenizing and building."})
    streaming: bool = field(default=False, metadata={"help": "Build lazily and print a sample instead of saving."})
    output_dir: str | None = field(
        default=None, metadata={"help": "Save the DatasetDict here (save_to_disk) with report.json beside it."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "datasets cache folder."})
    json: bool = field(default=False, metadata={"help": "Print the report as JSON instead of text."})


def _parser_for(dataclass_type, prog: str, description: str):
    from transformers import HfArgumentParser

    parser = HfArgumentParser(dataclass_type, prog=prog, description=description)
    parser.add_argument("--config", default=None, help="YAML or JSON file of option values; flags override it.")
    return parser


def _parse(dataclass_types, argv: list[str], prog: str, description: str):
    import yaml

    parser = _parser_for(dataclass_types, prog, description)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(argv)
    if known.config:
        text = Path(known.config).read_text()
        values = json.loads(text) if known.config.endswith(".json") else yaml.safe_load(text)
        if not isinstance(values, dict):
            raise SystemExit(f"{known.config}: expected a mapping of option names to values")
        valid = {action.dest for action in parser._actions}
        unknown = sorted(set(values) - valid)
        if unknown:
            raise SystemExit(f"{known.config}: unknown options {unknown}; see --help")
        parser.set_defaults(**values)
    *parsed, extra = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    if extra:
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    # The --config value comes back as an extra namespace: keep the dataclasses only.
    return [p for p in parsed if not isinstance(p, argparse.Namespace)]


def run_build(args: BuildArguments) -> int:
    from .builder import build_pretraining_dataset
    from .stats import format_report
    from .tokenization import load_tokenizer

    reader_kwargs: dict[str, Any] = {
        "text_column": args.text_column,
        "doc_id_column": args.doc_id_column,
        "document_per": args.document_per,
        "splitter": args.splitter,
        "language": args.language,
        "errors": args.encoding_errors,
    }
    if args.corpus_format:
        reader_kwargs["format"] = args.corpus_format
    source: Any = args.corpus[0] if args.corpus and len(args.corpus) == 1 else args.corpus
    tokenizer = load_tokenizer(args.tokenizer, vocab_size=args.vocab_size, lowercase=not args.cased)
    common = dict(
        source=source,
        format=args.format,
        tokenizer=tokenizer,
        reader_kwargs=reader_kwargs,
        max_seq_length=args.max_seq_length,
        short_seq_prob=args.short_seq_prob,
        short_seq_mode=args.short_seq_mode,
        nsp_probability=args.nsp_probability,
        dupe_factor=args.dupe_factor,
        seed=args.seed,
        validation_fraction=args.validation_fraction,
        pool_size=args.pool_size,
        shard_index=args.shard_index,
        num_shards=args.num_shards,
        tokenizer_backend=args.tokenizer_backend,
        cache_dir=args.cache_dir,
    )
    if args.streaming:
        data = build_pretraining_dataset(streaming=True, **common)
        for i, example in enumerate(data["train"]):
            if i == 3:
                break
            print(json.dumps({k: v for k, v in example.items() if k != "token_type_ids"}))
        return 0
    data, report = build_pretraining_dataset(num_proc=args.num_proc, return_report=True, **common)
    if args.output_dir:
        data.save_to_disk(args.output_dir)
        tokenizer.save_pretrained(Path(args.output_dir) / "tokenizer")
        (Path(args.output_dir) / "report.json").write_text(json.dumps(report, indent=2))
        report["saved_to"] = args.output_dir
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    if args.output_dir and not args.json:
        print(
            f"saved to {args.output_dir} (load with datasets.load_from_disk; tokenizer in {args.output_dir}/tokenizer)"
        )
    return 0


def run_pretrain(args) -> int:
    from .training import pretrain

    result = pretrain(args, resume_from_checkpoint=args.resume_from_checkpoint)
    if result.trainer.is_world_process_zero():
        shown = {k: round(v, 4) for k, v in result.metrics.items() if k.startswith("eval_") and isinstance(v, float)}
        print(json.dumps({"output_dir": args.output_dir, "steps": result.trainer.state.global_step, **shown}, indent=2))
    return 0


def run_finetune(args) -> int:
    from .finetuning import finetune

    result = finetune(args)
    if result.trainer.is_world_process_zero():
        shown = {
            k: round(v, 4)
            for k, v in result.metrics.items()
            if k.startswith(("eval_", "test_")) and isinstance(v, float)
        }
        print(json.dumps({"output_dir": args.output_dir, "labels": result.label_names, **shown}, indent=2))
        if result.report:
            print(result.report)
    return 0


def run_evaluate(args) -> int:
    from .finetuning import evaluate_model

    metrics = evaluate_model(args)
    print(json.dumps({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, indent=2))
    return 0


@dataclass
class PredictArguments:
    """Options of ``nsptask predict``."""

    model: str = field(
        default=None, metadata={"help": "Model folder or Hub id (NSP/SOP-trained, or a token classifier)."}
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


def _read_inputs(args: PredictArguments) -> list[dict]:
    if args.text:
        pairs = args.text_pair or [None] * len(args.text)
        if len(pairs) != len(args.text):
            raise ValueError(f"Got {len(args.text)} --text but {len(pairs)} --text_pair; give one pair per text.")
        return [{"text": a, "text_pair": b} for a, b in zip(args.text, pairs)]
    stream = sys.stdin if args.file in (None, "-") else open(args.file, encoding="utf-8")
    rows = []
    with stream:
        for lineno, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            if line.lstrip().startswith("{"):
                row = json.loads(line)
            else:
                a, _, b = line.rstrip("\n").partition("\t")
                row = {"text": a, "text_pair": b or None}
            if "text" not in row:
                raise ValueError(f"{args.file or 'stdin'}, line {lineno}: expected a 'text' field, found {sorted(row)}")
            rows.append(row)
    return rows


def run_predict(args: PredictArguments) -> int:
    import transformers

    from . import pipelines  # noqa: F401  registers the pipeline

    if not args.model:
        raise ValueError("nsptask predict needs --model")
    rows = _read_inputs(args)
    config = transformers.AutoConfig.from_pretrained(args.model)
    device = args.device
    if device is None:
        from accelerate import PartialState

        device = PartialState().device
    if any(a.endswith("ForTokenClassification") for a in (config.architectures or [])):
        from .finetuning import predict_words

        model = transformers.AutoModelForTokenClassification.from_pretrained(args.model).to(device)
        tokenizer = transformers.AutoTokenizer.from_pretrained(args.model)
        for result in predict_words(model, tokenizer, [r["text"] for r in rows], args.stride, args.max_length):
            print(json.dumps(result, ensure_ascii=False))
        return 0
    nsp = transformers.pipeline("next-sentence-prediction", model=args.model, device=device)
    missing = [i for i, r in enumerate(rows) if not r.get("text_pair")]
    if missing:
        raise ValueError(f"Input {missing[0] + 1} has no second sentence (text_pair); NSP scores pairs.")
    outputs = nsp(
        [{"text": r["text"], "text_pair": r["text_pair"]} for r in rows],
        batch_size=args.batch_size,
        max_length=args.max_length,
    )
    for row, out in zip(rows, outputs if isinstance(outputs, list) else [outputs]):
        print(json.dumps({**row, **out}, ensure_ascii=False))
    return 0


def run_ablate(args) -> int:
    from .study import run_study

    run_study(args)
    from .distributed import is_main_process

    if is_main_process():
        report = Path(args.output_dir) / "report.md"
        text = report.read_text()
        print(text.split("## How to read it")[0])
        print(f"report: {report}")
    return 0


@dataclass
class ReportArguments:
    """Options of ``nsptask report``."""

    study_dir: str = field(default=None, metadata={"help": "A study directory (finished or partial)."})
    compare: list[str] | None = field(default=None, metadata={"help": "Other study directories to put side by side."})


def run_report(args: ReportArguments) -> int:
    from .report import write_report

    if not args.study_dir or not Path(args.study_dir).is_dir():
        raise ValueError(f"{args.study_dir!r} is not a study directory (made by nsptask ablate).")
    path = write_report(args.study_dir, args.compare)
    print(path.read_text().split("## How to read it")[0])
    print(f"report: {path}")
    return 0


def _ablate_arguments():
    from .study import AblateArguments

    return AblateArguments


def _finetune_arguments():
    from .finetuning import FinetuneArguments

    return FinetuneArguments


def _pretrain_arguments():
    from .training import NspTrainingArguments

    return NspTrainingArguments


COMMANDS = {
    "build": (BuildArguments, run_build, "Build NSP / SOP / RoBERTa-format pretraining instances from a corpus."),
    "pretrain": (
        _pretrain_arguments,
        run_pretrain,
        "Pretrain with MLM+NSP, MLM+SOP, MLM alone, NSP or SOP on the stock Trainer (runs under accelerate launch).",
    ),
    "finetune": (
        _finetune_arguments,
        run_finetune,
        "Fine-tune a checkpoint on NSP/SOP/coherence, segment tagging, NER (CoNLL) or a classification file.",
    ),
    "evaluate": (
        _finetune_arguments,
        run_evaluate,
        "Evaluate a fine-tuned model on its task's data, without training.",
    ),
    "predict": (PredictArguments, run_predict, "Score sentence pairs (IsNext probability) or tag words; JSONL out."),
    "ablate": (
        _ablate_arguments,
        run_ablate,
        "Run the remove-NSP study: pretrain each arm, judge it intrinsically and downstream, write the report.",
    ),
    "report": (ReportArguments, run_report, "Rebuild a study's report (report.md, results.json/csv, plots)."),
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nsptask`` command. Returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    top = argparse.ArgumentParser(
        prog="nsptask",
        description="nsptask: next-sentence prediction data, pretraining and the remove-NSP study.",
    )
    top.add_argument("command", choices=sorted(COMMANDS), help="what to do; 'nsptask COMMAND --help' for its options")
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return 0
    if argv[0] not in COMMANDS:
        top.print_usage(sys.stderr)
        print(f"nsptask: unknown command {argv[0]!r}; choose from {sorted(COMMANDS)}", file=sys.stderr)
        return 2
    arguments_type, run, description = COMMANDS[argv[0]]
    if not isinstance(arguments_type, type):  # heavy argument classes are imported only when used
        arguments_type = arguments_type()
    rest = argv[1:]
    if argv[0] == "report" and rest and not rest[0].startswith("-"):
        rest = ["--study_dir", rest[0], *rest[1:]]
    (args,) = _parse(arguments_type, rest, f"nsptask {argv[0]}", description)
    from .corpus import CorpusError

    try:
        return run(args)
    except (CorpusError, ValueError) as err:
        print(f"nsptask {argv[0]}: error: {err}", file=sys.stderr)
        return 1
    finally:
        _close_process_group()


def _close_process_group() -> None:
    """Under `accelerate launch`, tear the process group down before exit: a gloo group left open can abort
    the interpreter at shutdown ("terminate called without an active exception")."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(main())
