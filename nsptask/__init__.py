"""nsptask: next-sentence prediction, sentence-order prediction and the "remove NSP" study on the
Hugging Face stack.

The public API is listed in ``__all__``; heavy modules (``datasets``, ``transformers``) are imported
only when one of their names is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # options shared by every command
    "DataArguments": "arguments",
    # corpus reading
    "CorpusError": "corpus",
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
    "load_build_output": "training",
    "write_model_card": "model_card",
    # downstream
    "read_conll": "conll",
    "ConllError": "conll",
    "build_sentence_task": "downstream",
    "build_segment_tagging": "downstream",
    "task_documents": "downstream",
    "load_classification_data": "downstream",
    "seqeval_scores": "token_classification",
    "tokenize_and_align_labels": "token_classification",
    "FinetuneArguments": "finetuning",
    "finetune": "finetuning",
    "EvaluateArguments": "arguments",
    "evaluate_model": "finetuning",
    "load_finetuned_model": "finetuning",
    # the study
    "AblateArguments": "study",
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


def _register_pipeline() -> None:
    """Make ``pipeline("next-sentence-prediction", ...)`` work after ``import nsptask``, without importing
    ``transformers.pipelines`` (seconds) now: register right after transformers imports it."""
    import importlib.abc
    import importlib.util
    import sys

    if "transformers.pipelines" in sys.modules:
        importlib.import_module(".pipelines", __name__)
        return

    class _AfterTransformersPipelines(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname != "transformers.pipelines":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(fullname)
            if spec is None or spec.loader is None:
                return spec
            exec_module = spec.loader.exec_module

            def exec_and_register(module):
                exec_module(module)
                importlib.import_module("nsptask.pipelines")

            spec.loader.exec_module = exec_and_register
            return spec

    sys.meta_path.insert(0, _AfterTransformersPipelines())


_register_pipeline()
