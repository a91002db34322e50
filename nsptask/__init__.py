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
    # corpus reading
    "CorpusError": "corpus",
    "iter_documents": "corpus",
    "load_documents": "corpus",
    "bundled_corpus_path": "corpus",
    # sentence splitting
    "get_splitter": "segmentation",
    "SentencexSplitter": "segmentation",
    "PysbdSplitter": "segmentation",
    # Wikipedia dumps
    "iter_wikipedia_articles": "wikipedia",
    # tokenizers
    "train_wordpiece_tokenizer": "tokenization",
    "default_tokenizer": "tokenization",
    "load_tokenizer": "tokenization",
    # instances and builders
    "FORMATS": "instances",
    "InstanceConfig": "instances",
    "create_instances": "instances",
    "PretrainingConfig": "builder",
    "PretrainingDataBuilder": "builder",
    "build_pretraining_dataset": "builder",
    "instance_features": "builder",
    # preprocessing map functions
    "tokenize_documents": "preprocessing",
    # reports
    "build_report": "stats",
    "format_report": "stats",
    # pretraining
    "PretrainingCollator": "collator",
    "OBJECTIVES": "modeling",
    "PRESETS": "modeling",
    "build_model": "modeling",
    "enable_sparse_mlm": "modeling",
    "pretraining_compute_metrics": "metrics",
    "preprocess_logits_for_metrics": "metrics",
    "NspTrainingArguments": "training",
    "NspTrainer": "training",
    "pretrain": "training",
    "write_model_card": "model_card",
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
