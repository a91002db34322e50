"""nsptask: next-sentence prediction, sentence-order prediction and the "remove NSP" study on the
Hugging Face stack.

The public API is listed in ``__all__``. Deliberately lazy: a name's module (and ``datasets``, ``transformers`` or
torch behind it) is imported when the name is first used, so ``import nsptask`` and the command line's ``--help``
take no time. ``import nsptask.pipelines`` registers the ``next-sentence-prediction`` pipeline task (and ``import
nsptask`` does when ``transformers.pipelines`` is already imported).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

__version__ = "0.2.0"

_EXPORTS = {
    # options shared by every command
    "DataArguments": "arguments",
    "CorpusOptions": "arguments",
    "SplitOptions": "arguments",
    "PoolOptions": "arguments",
    "TaskOptions": "arguments",
    "ReaderOptions": "corpus",
    # corpus reading
    "CorpusError": "errors",
    "iter_documents": "corpus",
    "load_documents": "corpus",
    "plan_shards": "corpus",
    "bundled_corpus_path": "corpus",
    # sentence splitting
    "get_splitter": "segmentation",
    "SentencexSplitter": "segmentation",
    "PysbdSplitter": "segmentation",
    # Wikipedia dumps
    "iter_wikipedia_articles": "wikipedia",
    # tokenizers
    "train_wordpiece_tokenizer": "tokenization",
    "train_tokenizer": "tokenization",
    "default_tokenizer": "tokenization",
    "load_tokenizer": "tokenization",
    # instances and builders
    "FORMATS": "instances",
    "InstanceConfig": "instances",
    "SequenceTemplate": "instances",
    "create_instances": "instances",
    "PretrainingConfig": "builder",
    "PretrainingDataBuilder": "builder",
    "pretraining_builder": "builder",
    "build_pretraining_dataset": "builder",
    "instance_features": "builder",
    "build_with_dask": "engine",
    # preprocessing map functions
    "tokenize_documents": "preprocessing",
    # reports
    "build_report": "stats",
    "overlap_baseline": "baselines",
    "format_report": "stats",
    # pretraining
    "PretrainingCollator": "collator",
    "OBJECTIVES": "modeling",
    "PRESETS": "modeling",
    "build_model": "modeling",
    "load_pretraining_model": "modeling",
    "model_capabilities": "modeling",
    "with_sentence_head": "modeling",
    "enable_sparse_mlm": "modeling",
    "SparseMlmHead": "modeling",
    "pretraining_compute_metrics": "metrics",
    "preprocess_logits_for_metrics": "metrics",
    "NspTrainingArguments": "training",
    "NspTrainer": "training",
    "pretrain": "training",
    "load_build_output": "publishing",
    "write_model_card": "model_card",
    # downstream
    "read_conll": "conll",
    "ConllError": "conll",
    "build_sentence_task": "downstream",
    "build_segment_tagging": "downstream",
    "task_documents": "downstream",
    "build_corpus_task": "downstream",
    "load_task_data": "downstream",
    "load_classification_data": "downstream",
    "seqeval_scores": "token_classification",
    "tokenize_and_align_labels": "token_classification",
    "FinetuneArguments": "finetuning",
    "finetune": "finetuning",
    "EvaluateArguments": "arguments",
    "evaluate_model": "finetuning",
    "load_finetuned_model": "finetuning",
    "NextSentencePredictionPipeline": "pipelines",
    # the study
    "AblateArguments": "arguments",
    "run_study": "study",
    "write_report": "report",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nsptask' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if "transformers.pipelines" in sys.modules:  # registering then costs nothing: do it now
    importlib.import_module(".pipelines", __name__)
