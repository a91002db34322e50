"""The ``nsptask`` command line: one entry point with subcommands.

    nsptask build --data_format nsp --output_dir data/nsp   # build instances, print the statistics report
    nsptask pretrain --dataset data/nsp --max_steps 500      # pretrain on them (or on --corpus directly)

Every subcommand takes ``--config FILE.yaml`` (or ``.json``): its values become the defaults and flags on the
command line override them. ``--help`` shows nsptask's own options, grouped; ``--help-all`` adds every inherited
``transformers.TrainingArguments`` option. User mistakes end with one line saying what is wrong
(``--traceback`` shows where).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .arguments import DataArguments

__all__ = ["main", "BuildArguments", "TokenizerArguments", "PredictArguments", "ReportArguments"]


@dataclass
class BuildArguments:
    """Options of ``nsptask build`` beyond the data options."""

    _argument_group_name = "build options"

    output_dir: str | None = field(
        default=None,
        metadata={"help": "Save the instances here (with report.json and the tokenizer) for pretrain --dataset."},
    )
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
    model_family: Literal["bert", "roberta", "albert", "deberta-v2", "modernbert", "distilbert"] = field(
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
        from .arguments import check_path_or_hub_id

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


# -- commands ------------------------------------------------------------------------------------------


def _quiet() -> None:
    """One progress bar per stage: no datasets bars for cached steps, no transformers load reports."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()  # "Writing model shards" bars; the Trainer's bars stay


def run_build(data: DataArguments, args: BuildArguments) -> int:
    from .builder import (
        BUILD_RECORD_FILE,
        PRETRAINING_DOCUMENTS_FILE,
        build_pretraining_dataset,
        training_document_hashes,
    )
    from .stats import format_report
    from .tokenization import load_tokenizer

    data_format = data.data_format or "nsp"
    tokenizer = load_tokenizer(data.tokenizer_name_or_path)
    if args.engine == "dask":
        from .engine import build_with_dask

        report = build_with_dask(
            data,
            args.output_dir,
            tokenizer,
            data_format=data_format,
            scheduler=args.scheduler,
            n_workers=args.n_workers,
        )
        print(json.dumps(report, indent=2))
        print(f"saved to {args.output_dir} (pretrain with: nsptask pretrain --dataset {args.output_dir})")
        return 0
    if args.streaming:
        data_stream = build_pretraining_dataset(tokenizer=tokenizer, streaming=True, **data.builder_kwargs(data_format))
        for i, example in enumerate(data_stream["train"]):
            if i == 3:
                break
            print(json.dumps({k: v for k, v in example.items() if k != "token_type_ids"}))
        return 0
    built, report, builder = build_pretraining_dataset(
        tokenizer=tokenizer, return_report=True, return_builder=True, **data.builder_kwargs(data_format)
    )
    if args.output_dir:
        import numpy as np

        out = Path(args.output_dir)
        built.save_to_disk(str(out))
        tokenizer.save_pretrained(out / "tokenizer")
        (out / "report.json").write_text(json.dumps(report, indent=2))
        np.save(out / PRETRAINING_DOCUMENTS_FILE, training_document_hashes(builder))
        record = {
            "format": data_format,
            "engine": "datasets",
            "fingerprint": builder.config.fingerprint(),
            "data_arguments": data.to_dict(),
            "report": report,
        }
        (out / BUILD_RECORD_FILE).write_text(json.dumps(record, indent=2, default=str))
        report["saved_to"] = str(out)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    if args.output_dir and not args.json:
        print(f"saved to {args.output_dir} (pretrain with: nsptask pretrain --dataset {args.output_dir})")
    return 0


def run_tokenizer(data: DataArguments, args: TokenizerArguments) -> int:
    """Train a tokenizer on the corpus's documents and report its unknown-token rate on the corpus."""
    import itertools

    from .corpus import iter_documents
    from .modeling import FAMILY_TOKENIZERS
    from .preprocessing import plain_backend
    from .tokenization import train_tokenizer

    model = args.tokenizer_model or FAMILY_TOKENIZERS[args.model_family]
    reader = data.reader_kwargs()

    def sentences():
        for doc in iter_documents(data.source, **reader):
            yield from doc["sentences"]

    tokenizer = train_tokenizer(
        sentences(),
        model=model,
        vocab_size=args.vocab_size,
        lowercase=args.lowercase,
        language=data.language,
        min_frequency=args.min_frequency,
        output_dir=args.output_dir,
    )
    backend = plain_backend(tokenizer)
    sample = list(itertools.islice(sentences(), 20000))
    ids = [i for e in backend.encode_batch(sample, add_special_tokens=False) for i in e.ids]
    unknown = sum(1 for i in ids if i == tokenizer.unk_token_id) if tokenizer.unk_token_id is not None else 0
    report = {
        "output_dir": args.output_dir,
        "model": model,
        "vocab_size": len(tokenizer),
        "language": data.language,
        "sentences_checked": len(sample),
        "unknown_token_rate": round(unknown / max(len(ids), 1), 5),
        "tokens_per_sentence": round(len(ids) / max(len(sample), 1), 2),
    }
    print(json.dumps(report, indent=2))
    print(f"use it with: --tokenizer_name_or_path {args.output_dir}")
    return 0


def run_pretrain(data: DataArguments, args) -> int:
    from .training import BarsOnlyProgressCallback, pretrain

    # A quiet console: progress bars, not the log dictionaries (they stay in trainer_state.json and the loggers).
    result = pretrain(
        args, data, resume_from_checkpoint=args.resume_from_checkpoint, callbacks=[BarsOnlyProgressCallback()]
    )
    if result.trainer.is_world_process_zero():
        shown = {
            k: round(v, 4) if isinstance(v, float) else v
            for k, v in result.metrics.items()
            if k.startswith("eval_") and "runtime" not in k and "per_second" not in k
        }
        print(json.dumps({"output_dir": args.output_dir, "steps": result.trainer.state.global_step, **shown}, indent=2))
    return 0


def run_finetune(data: DataArguments, args) -> int:
    from .finetuning import finetune
    from .training import BarsOnlyProgressCallback

    result = finetune(args, data, callbacks=[BarsOnlyProgressCallback()])
    if result.trainer.is_world_process_zero():
        shown = {
            k: round(v, 4) if isinstance(v, float) else v
            for k, v in result.metrics.items()
            if k.startswith(("eval_", "test_")) and "runtime" not in k and "per_second" not in k
        }
        print(json.dumps({"output_dir": args.output_dir, "labels": result.label_names, **shown}, indent=2))
        if result.report:
            print(result.report)
    return 0


def run_evaluate(data: DataArguments, args) -> int:
    from .finetuning import evaluate_model

    metrics = evaluate_model(args, data)
    print(json.dumps({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, indent=2))
    return 0


def _read_inputs(args: PredictArguments) -> list[dict]:
    if args.text:
        pairs = args.text_pair or [None] * len(args.text)
        if len(pairs) != len(args.text):
            raise ValueError(f"Got {len(args.text)} --text but {len(pairs)} --text_pair; give one pair per text.")
        return [{"text": a, "text_pair": b} for a, b in zip(args.text, pairs)]
    name = args.file or "stdin"
    stream = sys.stdin if args.file in (None, "-") else open(args.file, encoding="utf-8")
    rows = []
    with stream:
        for lineno, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            if line.lstrip().startswith("{"):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(
                        f"{name}, line {lineno}: invalid JSON ({err.msg}); expected one object per line."
                    ) from None
            else:
                a, _, b = line.rstrip("\n").partition("\t")
                row = {"text": a, "text_pair": b or None}
            if "text" not in row:
                raise ValueError(f"{name}, line {lineno}: expected a 'text' field, found {sorted(row)}")
            rows.append(row)
    return rows


def run_predict(args: PredictArguments) -> int:
    import transformers

    from .finetuning import load_finetuned_model, predict_words
    from .pipelines import NextSentencePredictionPipeline
    from .tokenization import load_tokenizer

    rows = _read_inputs(args)
    device = args.device
    if device is None:
        from accelerate import PartialState

        device = PartialState().device
    model = load_finetuned_model(args.model).to(device)
    tokenizer = load_tokenizer(args.model)
    if type(model).__name__.endswith("ForTokenClassification"):
        for result in predict_words(model, tokenizer, [r["text"] for r in rows], args.stride, args.max_length):
            print(json.dumps(result, ensure_ascii=False))
        return 0
    missing = [i for i, r in enumerate(rows) if not r.get("text_pair")]
    if missing:
        raise ValueError(f"Input {missing[0] + 1} has no second sentence (text_pair); sentence models score pairs.")
    nsp = NextSentencePredictionPipeline(model=model, tokenizer=tokenizer, device=device)
    outputs = nsp(
        [{"text": r["text"], "text_pair": r["text_pair"]} for r in rows],
        batch_size=args.batch_size,
        max_length=args.max_length,
    )
    for row, out in zip(rows, outputs if isinstance(outputs, list) else [outputs]):
        print(json.dumps({**row, **out}, ensure_ascii=False))
    del transformers
    return 0


def run_ablate(data: DataArguments, args) -> int:
    from .distributed import is_main_process
    from .study import run_study

    run_study(args, data)
    if is_main_process():
        report = Path(args.output_dir) / "report.md"
        print(report.read_text().split("## Budget")[0])
        print(f"report: {report}")
    return 0


def run_report(args: ReportArguments) -> int:
    from .report import write_report

    path = write_report(args.study_dir, args.compare)
    print(path.read_text().split("## Budget")[0])
    print(f"report: {path}")
    return 0


def _pretrain_types(full: bool):
    if full:
        from .training import NspTrainingArguments

        return (DataArguments, NspTrainingArguments)
    from .arguments import PretrainOptions

    return (DataArguments, PretrainOptions)


def _finetune_types(full: bool):
    if full:
        from .finetuning import FinetuneArguments

        return (DataArguments, FinetuneArguments)
    from .arguments import FinetuneOptions

    return (DataArguments, FinetuneOptions)


def _evaluate_types(full: bool):
    from .arguments import EvaluateArguments

    return (DataArguments, EvaluateArguments)


def _ablate_types(full: bool):
    from .study import AblateArguments

    return (DataArguments, AblateArguments)


COMMANDS: dict[str, tuple[Any, Any, str]] = {
    "build": (
        lambda full: (DataArguments, BuildArguments),
        run_build,
        "Build NSP / SOP / RoBERTa-format pretraining instances from a corpus (one machine or a Dask cluster).",
    ),
    "tokenizer": (
        lambda full: (DataArguments, TokenizerArguments),
        run_tokenizer,
        "Train a WordPiece, BPE or Unigram tokenizer on your corpus (Chinese included).",
    ),
    "pretrain": (
        _pretrain_types,
        run_pretrain,
        "Pretrain with MLM+NSP, MLM+SOP, MLM alone, NSP or SOP on the stock Trainer (accelerate launch too).",
    ),
    "finetune": (
        _finetune_types,
        run_finetune,
        "Fine-tune a checkpoint on NSP/SOP/coherence, segment tagging, NER (CoNLL) or a classification file.",
    ),
    "evaluate": (_evaluate_types, run_evaluate, "Score a fine-tuned model on its task's held-out data, no training."),
    "predict": (
        lambda full: (PredictArguments,),
        run_predict,
        "Score sentence pairs (IsNext probability) or tag words with a model; JSONL out.",
    ),
    "ablate": (
        _ablate_types,
        run_ablate,
        "Run the remove-NSP study: pretrain every arm from the same start, judge it, write the report.",
    ),
    "report": (
        lambda full: (ReportArguments,),
        run_report,
        "Rebuild a study's report (report.md, results.json/csv, plots); compare studies side by side.",
    ),
}


def _parser(types, prog: str, description: str, full: bool):
    from transformers import HfArgumentParser

    parser = HfArgumentParser(types, prog=prog, description=description, allow_abbrev=False, add_help=False)
    own = {f.name for t in types for f in dataclasses.fields(t) if not _inherited(t, f.name)}
    inherited = [a for a in parser._actions if a.dest not in own and a.option_strings]
    if inherited:
        group = parser.add_argument_group("training options (transformers.TrainingArguments)")
        for action in inherited:
            for g in parser._action_groups:
                if action in g._group_actions:
                    g._group_actions.remove(action)
            group._group_actions.append(action)
    general = parser.add_argument_group("general")
    general.add_argument("-h", "--help", action="store_true", help="Show nsptask's own options and exit.")
    general.add_argument("--help-all", action="store_true", help="Show every option, TrainingArguments' too, and exit.")
    general.add_argument("--config", default=None, help="YAML or JSON file of option values; flags override it.")
    general.add_argument("--traceback", action="store_true", help="Show the full traceback of an error.")
    return parser


def _inherited(dataclass_type, name: str) -> bool:
    """Whether a field comes from transformers' TrainingArguments (and nsptask does not redefine it)."""
    for base in dataclass_type.__mro__[1:]:
        if base.__module__.startswith("transformers") and name in getattr(base, "__dataclass_fields__", {}):
            own = [b for b in dataclass_type.__mro__ if not b.__module__.startswith("transformers")]
            return not any(name in getattr(b, "__annotations__", {}) for b in own)
    return False


def _load_config(path: str, parser) -> dict:
    import yaml

    if not Path(path).is_file():
        raise ValueError(f"--config {path}: no such file. Expected a YAML or JSON file of option values.")
    text = Path(path).read_text()
    try:
        values = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ValueError(
            f"--config {path}: not valid {'JSON' if path.endswith('.json') else 'YAML'} ({err})."
        ) from None
    if not isinstance(values, dict):
        raise ValueError(
            f"--config {path}: expected a mapping of option names to values, found {type(values).__name__}."
        )
    valid = {action.dest for action in parser._actions}
    unknown = sorted(set(values) - valid)
    if unknown:
        raise ValueError(f"--config {path}: unknown options {unknown}; see --help-all.")
    return values


def _help_epilog(command: str, types) -> str:
    inherited = sum(1 for t in types for f in dataclasses.fields(t) if _inherited(t, f.name))
    if command in ("pretrain", "finetune") and not inherited:
        return (
            "Every transformers.TrainingArguments option applies as well (--max_steps, --gradient_accumulation_steps, "
            f"--bf16, --push_to_hub, ...): nsptask {command} --help-all lists them."
        )
    return ""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nsptask`` command. Returns the exit status."""
    from . import __version__

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: nsptask COMMAND [options]   (nsptask COMMAND --help for its options)\n")
        print("nsptask: next-sentence prediction data, pretraining and the remove-NSP study.\n\ncommands:")
        for name, (_, _, description) in COMMANDS.items():
            print(f"  {name:<10} {description}")
        print("\n  --version  print the version")
        return 0
    if argv[0] in ("--version", "-V"):
        print(f"nsptask {__version__}")
        return 0
    if argv[0] not in COMMANDS:
        print(
            f"nsptask: unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)} (nsptask --help)", file=sys.stderr
        )
        return 2
    command = argv[0]
    types_for, run, description = COMMANDS[command]
    rest = argv[1:]
    if command == "report" and rest and not rest[0].startswith("-"):
        rest = ["--study_dir", rest[0], *rest[1:]]
    prog = f"nsptask {command}"
    debug = "--traceback" in rest
    if "-h" in rest or "--help" in rest or "--help-all" in rest:
        full = "--help-all" in rest
        types = types_for(full)
        parser = _parser(types, prog, description, full)
        parser.epilog = _help_epilog(command, types) if not full else None
        parser.print_help()
        return 0
    try:
        types = types_for(True)
        parser = _parser(types, prog, description, True)
        pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
        pre.add_argument("--config", default=None)
        known, _ = pre.parse_known_args(rest)
        if known.config:
            parser.set_defaults(**_load_config(known.config, parser))
        parsed = parser.parse_args_into_dataclasses(rest, return_remaining_strings=True)
        *objects, extra = parsed
        if extra:
            parser.error(f"unrecognised arguments: {' '.join(extra)}")
        objects = [o for o in objects if not isinstance(o, argparse.Namespace)]
        _quiet()
        return run(*objects)
    except SystemExit:
        raise
    except Exception as err:  # user mistakes end in one line; --traceback shows where
        from .corpus import CorpusError

        if debug or not isinstance(err, (CorpusError, ValueError, OSError, ImportError)):
            raise
        print(f"nsptask {command}: error: {err}", file=sys.stderr)
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
