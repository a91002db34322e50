"""The ``nsptask`` command line: one entry point with subcommands, each a small function over ``HfArgumentParser``.

    nsptask build --data_format nsp --output_dir data/nsp   # build instances, print the statistics report
    nsptask pretrain --dataset data/nsp --max_steps 500      # pretrain on them (or on --corpus directly)

Every subcommand takes ``--config FILE.yaml`` (or ``.json``): its values become the defaults and flags on the
command line override them. ``--help`` shows the command's own options first, then the data options, each group
one of nsptask's option dataclasses (:mod:`nsptask.arguments`); ``--help-all`` adds every inherited
``transformers.TrainingArguments`` option. User mistakes end with one line saying what is wrong (``--traceback``
shows where). nsptask logs through the ``nsptask`` logger at ``--log_level`` (the Trainer's own option for
pretrain and finetune, and ``--log_level_replica`` on the other processes); ``--quiet`` prints errors only.

This module imports only the option dataclasses at start: each command imports what it runs, so ``--help`` answers
at once (``benchmarks/bench_cli.py`` measures it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import yaml
from transformers import HfArgumentParser

from . import __version__
from .arguments import (
    AblateArguments,
    BuildArguments,
    CorpusOptions,
    DataArguments,
    EvaluateArguments,
    FinetuneOptions,
    PoolOptions,
    PredictArguments,
    PretrainOptions,
    ReportArguments,
    SplitOptions,
    TokenizerArguments,
)
from .corpus import ReaderOptions
from .errors import CorpusError
from .instances import InstanceConfig

__all__ = ["main", "COMMANDS"]

logger = logging.getLogger("nsptask")

DATA_PARTS = (CorpusOptions, ReaderOptions, InstanceConfig, SplitOptions, PoolOptions)
TASK_DATA_PARTS = (CorpusOptions, ReaderOptions, InstanceConfig, SplitOptions)  # corpus tasks: no pools


# -- commands ------------------------------------------------------------------------------------------------
# Each takes the command's own options and the composed data options (None where it has none) and returns the exit
# status. The heavy modules (datasets, torch, transformers' Trainer) are imported here, by the command that runs.


def run_build(args: BuildArguments, data: DataArguments) -> int:
    from .publishing import build_command

    return build_command(args, data)


def run_tokenizer(args: TokenizerArguments, data: DataArguments) -> int:
    """Train a tokenizer on the corpus's documents and report its unknown-token rate on the corpus."""
    from .tokenization import train_corpus_tokenizer

    report = train_corpus_tokenizer(data, args)
    print(json.dumps(report, indent=2))
    print(f"use it with: --tokenizer_name_or_path {args.output_dir}")
    return 0


def _shown(metrics: dict, prefixes: tuple[str, ...]) -> dict:
    return {
        k: round(v, 4) if isinstance(v, float) else v
        for k, v in metrics.items()
        if k.startswith(prefixes) and "runtime" not in k and "per_second" not in k
    }


def run_pretrain(args, data: DataArguments) -> int:
    from .training import BarsOnlyProgressCallback, pretrain

    # A quiet console: progress bars, not the log dictionaries (they stay in trainer_state.json and the loggers).
    result = pretrain(
        args, data, resume_from_checkpoint=args.resume_from_checkpoint, callbacks=[BarsOnlyProgressCallback()]
    )
    if result.trainer.is_world_process_zero():
        steps = result.trainer.state.global_step
        print(
            json.dumps({"output_dir": args.output_dir, "steps": steps, **_shown(result.metrics, ("eval_",))}, indent=2)
        )
    return 0


def run_finetune(args, data: DataArguments) -> int:
    from .finetuning import finetune
    from .training import BarsOnlyProgressCallback

    result = finetune(args, data, callbacks=[BarsOnlyProgressCallback()])
    if result.trainer.is_world_process_zero():
        shown = _shown(result.metrics, ("eval_", "test_"))
        print(json.dumps({"output_dir": args.output_dir, "labels": result.label_names, **shown}, indent=2))
        if result.report:
            print(result.report)
    return 0


def run_evaluate(args: EvaluateArguments, data: DataArguments) -> int:
    from .finetuning import evaluate_model

    metrics = evaluate_model(args, data)
    print(json.dumps({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, indent=2))
    return 0


def run_predict(args: PredictArguments, data: None) -> int:
    from .pipelines import predict_command

    return predict_command(args)


def run_ablate(args, data: DataArguments) -> int:
    from .study import run_study

    run_study(args, data)
    if _is_main_process():
        report = Path(args.output_dir) / "report.md"
        print(report.read_text().split("## Budget")[0])
        print(f"report: {report}")
    return 0


def run_report(args: ReportArguments, data: None) -> int:
    from .report import write_report

    path = write_report(args.study_dir, args.compare)
    print(path.read_text().split("## Budget")[0])
    print(f"report: {path}")
    return 0


def _training_types(full: bool, options: type, training: str) -> tuple:
    """A command's own options: nsptask's (``--help``), or the dataclass that joins them with every
    ``TrainingArguments`` option (parsing, ``--help-all``)."""
    if not full:
        return (options,)
    module, name = training.rsplit(":", 1)
    return (getattr(import_module(module, __package__), name),)


def _help_types(types: tuple) -> tuple:
    """For ``--help-all``: a dataclass joining nsptask's options with ``TrainingArguments`` is shown as two groups,
    nsptask's own options (its nsptask base class) and the inherited ones (made from ``TrainingArguments``' own
    field declarations)."""
    shown = []
    for t in types:
        own = next(
            (b for b in t.__mro__[1:] if b.__module__.startswith("nsptask") and dataclasses.is_dataclass(b)), None
        )
        trainer_base = next((b for b in t.__mro__ if b.__module__.startswith("transformers")), None)
        if own is None or trainer_base is None:
            shown.append(t)
            continue
        names = {f.name for f in dataclasses.fields(own)}
        inherited = [
            (
                f.name,
                f.type,
                dataclasses.field(default=f.default, default_factory=f.default_factory, metadata=f.metadata),
            )
            for f in dataclasses.fields(trainer_base)
            if f.init and f.name not in names
        ]
        namespace = {
            "__module__": trainer_base.__module__,
            "_argument_group_name": "training options (transformers.TrainingArguments)",
        }
        shown += [own, dataclasses.make_dataclass("TrainingOptions", inherited, namespace=namespace)]
    return tuple(shown)


@dataclass(frozen=True)
class Command:
    """A subcommand: its own option types (given whether every TrainingArguments option is wanted), whether it takes
    data options and which, the function that runs it, and its one-line description."""

    own: Callable[[bool], tuple]
    data: tuple
    run: Callable
    description: str


COMMANDS: dict[str, Command] = {
    "build": Command(
        lambda full: (BuildArguments,),
        DATA_PARTS,
        run_build,
        "Build NSP / SOP / RoBERTa-format pretraining instances from a corpus (one machine or a Dask cluster).",
    ),
    "tokenizer": Command(
        lambda full: (TokenizerArguments,),
        (CorpusOptions, ReaderOptions),
        run_tokenizer,
        "Train a WordPiece, BPE or Unigram tokenizer on your corpus (Chinese included).",
    ),
    "pretrain": Command(
        lambda full: _training_types(full, PretrainOptions, ".training:NspTrainingArguments"),
        DATA_PARTS,
        run_pretrain,
        "Pretrain with MLM+NSP, MLM+SOP, MLM alone, NSP or SOP on the stock Trainer (accelerate launch too).",
    ),
    "finetune": Command(
        lambda full: _training_types(full, FinetuneOptions, ".finetuning:FinetuneArguments"),
        TASK_DATA_PARTS,
        run_finetune,
        "Fine-tune a checkpoint on a corpus probe, segment tagging, NER (CoNLL) or a GLUE-style classification file.",
    ),
    "evaluate": Command(
        lambda full: (EvaluateArguments,),
        TASK_DATA_PARTS,
        run_evaluate,
        "Score a fine-tuned model on its task's held-out data, no training.",
    ),
    "predict": Command(
        lambda full: (PredictArguments,),
        (),
        run_predict,
        "Score sentence pairs (IsNext probability) or tag words with a model; JSONL out.",
    ),
    "ablate": Command(
        lambda full: (AblateArguments,),
        DATA_PARTS,
        run_ablate,
        "Run the remove-NSP study: pretrain every arm from the same start, judge it, write the report.",
    ),
    "report": Command(
        lambda full: (ReportArguments,),
        (),
        run_report,
        "Rebuild a study's report (report.md, results.json/csv, plots); compare studies side by side.",
    ),
}


# -- parsing -------------------------------------------------------------------------------------------------


def _field_names(types) -> set[str]:
    return {f.name for t in types for f in dataclasses.fields(t) if f.init}


def _parser(types, prog: str, description: str) -> HfArgumentParser:
    parser = HfArgumentParser(types, prog=prog, description=description, allow_abbrev=False, add_help=False)
    general = parser.add_argument_group("general")
    general.add_argument("-h", "--help", action="store_true", help="Show nsptask's own options and exit.")
    general.add_argument("--help-all", action="store_true", help="Show every option, TrainingArguments' too, and exit.")
    general.add_argument("--config", default=None, help="YAML or JSON file of option values; flags override it.")
    general.add_argument(
        "--quiet",
        action="store_true",
        help="No progress bars or log lines below errors (the command's own output, such as the build report, stays).",
    )
    if "log_level" not in _field_names(types):
        general.add_argument(
            "--log_level",
            default="info",
            choices=["debug", "info", "warning", "error", "critical"],
            help="nsptask's log level (info: what each step does and measures).",
        )
    general.add_argument("--traceback", action="store_true", help="Show the full traceback of an error.")
    return parser


def _load_config(path: str, types) -> dict:
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
    unknown = sorted(set(values) - _field_names(types))
    if unknown:
        raise ValueError(f"--config {path}: unknown options {unknown}; see --help-all.")
    return values


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


class _CurrentStderr(logging.StreamHandler):
    """A console handler that writes to ``sys.stderr`` as it is when a record comes (as the standard library's last
    resort handler does), not as it was when the handler was made: several runs in one process (a notebook, the
    tests) each print where their own stderr is."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler's constructor assigns one; the current stderr is always used
        pass


def _setup_logging(options: argparse.Namespace, objects: list) -> None:
    """The ``nsptask`` logger prints to the console at the run's level (the Trainer's log level and replica level
    when the command has them); ``--quiet`` leaves errors only, and turns progress bars off."""
    import datasets  # a run needs it; --help does not (see the module docstring)
    import transformers

    training = next((o for o in objects if hasattr(o, "get_process_log_level")), None)  # TrainingArguments
    if options.quiet:
        level = logging.ERROR
    elif training is not None:
        chosen = training.log_level if _is_main_process() else training.log_level_replica
        level = logging.INFO if chosen == "passive" else transformers.utils.logging.get_log_levels_dict()[chosen]
    else:
        level = getattr(logging, options.log_level.upper()) if _is_main_process() else logging.WARNING
    if not logger.handlers:
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    transformers.logging.set_verbosity(max(level, logging.WARNING))
    datasets.logging.set_verbosity(max(level, logging.WARNING))
    if options.quiet:
        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
    else:
        datasets.enable_progress_bars()
        transformers.utils.logging.enable_progress_bar()
    for obj in objects:
        if options.quiet and hasattr(obj, "disable_tqdm"):
            obj.disable_tqdm = True


def _print_help(command: str, spec: Command, full: bool) -> int:
    own = spec.own(full)
    types = (_help_types(own)[:1] + spec.data + _help_types(own)[1:]) if full else own + spec.data
    parser = _parser(types, f"nsptask {command}", spec.description)
    if command in ("pretrain", "finetune") and not full:
        parser.epilog = (
            "Every transformers.TrainingArguments option applies as well (--max_steps, --gradient_accumulation_steps, "
            f"--bf16, --push_to_hub, ...): nsptask {command} --help-all lists them."
        )
    parser.print_help()
    return 0


def _parse(command: str, spec: Command, rest: list[str]) -> tuple[list, argparse.Namespace]:
    types = spec.own(True) + spec.data
    parser = _parser(types, f"nsptask {command}", spec.description)
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(rest)
    if known.config:
        parser.set_defaults(**_load_config(known.config, types))
    *objects, extra = parser.parse_args_into_dataclasses(rest, return_remaining_strings=True)
    if extra:
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    options = next(o for o in objects if isinstance(o, argparse.Namespace))
    return [o for o in objects if not isinstance(o, argparse.Namespace)], options


def _top_level_help() -> int:
    print("usage: nsptask COMMAND [options]   (nsptask COMMAND --help for its options)\n")
    print("nsptask: next-sentence prediction data, pretraining and the remove-NSP study.\n\ncommands:")
    for name, spec in COMMANDS.items():
        print(f"  {name:<10} {spec.description}")
    print("\n  --version  print the version")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nsptask`` command. Returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        return _top_level_help()
    if argv[0] in ("--version", "-V"):
        print(f"nsptask {__version__}")
        return 0
    if argv[0] not in COMMANDS:
        print(
            f"nsptask: unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)} (nsptask --help)", file=sys.stderr
        )
        return 2
    command, rest = argv[0], argv[1:]
    spec = COMMANDS[command]
    if command == "report" and rest and not rest[0].startswith("-"):
        rest = ["--study_dir", rest[0], *rest[1:]]
    if "-h" in rest or "--help" in rest or "--help-all" in rest:
        return _print_help(command, spec, full="--help-all" in rest)
    try:
        objects, options = _parse(command, spec, rest)
        _setup_logging(options, objects)
        data = DataArguments.from_parsed(objects) if spec.data else None
        own = next(o for o in objects if not isinstance(o, spec.data))
        return spec.run(own, data)
    except SystemExit:
        raise
    except Exception as err:  # user mistakes end in one line; --traceback shows where
        if "--traceback" in rest or not isinstance(err, (CorpusError, ValueError, OSError, ImportError)):
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
