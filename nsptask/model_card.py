"""Model cards for nsptask's models (``huggingface_hub.ModelCard``, with ``model-index`` metadata).

The card says what the model is and how it was made, in metadata the Hub accepts: ``base_model`` only when the
base is a Hub id (a local checkpoint is named in the text instead), the license, the Hub datasets it was trained
on (when the corpus was one), and a snippet that loads the class that was saved.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .corpus import looks_like_hub_id

__all__ = ["ModelCardInfo", "write_model_card", "render_model_card", "loading_snippet"]

BUNDLED_CORPUS_LICENSE = "cc-by-sa-4.0"  # the bundled Wikipedia sample (nsptask/data/ATTRIBUTION.md)

_METRIC_NAMES = {
    "eval_mlm_accuracy": ("accuracy", "MLM accuracy (masked positions)"),
    "eval_mlm_perplexity": ("perplexity", "MLM perplexity"),
    "eval_nsp_accuracy": ("accuracy", "NSP accuracy"),
    "eval_nsp_f1": ("f1", "NSP F1 (NotNext)"),
    "eval_sop_accuracy": ("accuracy", "SOP accuracy"),
    "eval_sop_f1": ("f1", "SOP F1 (Swapped)"),
    "eval_accuracy": ("accuracy", "Accuracy"),
    "eval_f1": ("f1", "F1"),
    "eval_f1_macro": ("f1", "Macro F1"),
    "eval_matthews_correlation": ("matthews_correlation", "Matthews correlation"),
    "eval_boundary_accuracy": ("accuracy", "Exact-boundary accuracy"),
}

_OBJECTIVE_TEXT = {
    "mlm+nsp": "masked-language modelling plus next-sentence prediction (BERT)",
    "mlm+sop": "masked-language modelling plus sentence-order prediction (ALBERT)",
    "mlm": "masked-language modelling alone, next-sentence prediction removed (RoBERTa)",
    "nsp": "next-sentence prediction alone",
    "sop": "sentence-order prediction alone",
}

# The Auto class that loads each kind of saved model (by its class name's suffix).
_AUTO_CLASSES = (
    ("ForPreTraining", "AutoModelForPreTraining"),
    ("ForMaskedLM", "AutoModelForMaskedLM"),
    ("ForSequenceClassification", "AutoModelForSequenceClassification"),
    ("ForTokenClassification", "AutoModelForTokenClassification"),
    ("ForNextSentencePrediction", "AutoModelForNextSentencePrediction"),
)


@dataclass
class ModelCardInfo:
    """What a model card says about a model and its run.

    Args:
        objective (`str`): The training objective (``mlm+nsp``, ..., or ``finetune:TASK``).
        data_format (`str`): The instance format (or task) it was trained on.
        metrics (`dict`): Final metrics (``eval_*`` keys become ``model-index`` results).
        model_name (`str`): The model's name (its folder or Hub id).
        base_model (`str`, *optional*): What it started from: a Hub id (metadata) or a local folder (text only).
        license (`str`, *optional*): A Hub license id; default: the bundled corpus's for a model trained on it,
            else ``other``.
        datasets (`list[str]`, *optional*): Hub datasets it was trained on (metadata).
        Other fields describe the model and the run.
    """

    objective: str
    data_format: str
    metrics: dict[str, float]
    model_name: str = "nsptask-model"
    base_model: str | None = None
    preset: str | None = None
    architecture: str = ""
    num_parameters: int = 0
    steps: int = 0
    tokens_seen: int = 0
    data_report: dict[str, Any] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    hub_model_id: str | None = None
    task: dict[str, str] | None = None
    language: str = "en"
    dataset_name: str | None = None
    license: str | None = None
    datasets: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.hub_model_id or self.model_name

    @property
    def hub_base_model(self) -> str | None:
        """The base model when it is a Hub id (the Hub's metadata validation refuses local paths)."""
        base = self.base_model
        if base and not os.path.exists(base) and looks_like_hub_id(base):
            return base
        return None


def loading_snippet(architecture: str, name: str) -> list[str]:
    """Python lines that load a saved model of class `architecture` (nsptask's sentence-head classes through
    :func:`nsptask.load_pretraining_model`, the others through the matching ``transformers`` Auto class)."""
    if architecture.endswith("WithSentenceHead"):
        return [
            "from nsptask import load_pretraining_model",
            "from transformers import AutoTokenizer",
            f'model = load_pretraining_model("{name}")  # {architecture}: the masked-LM class with a sentence head',
            f'tokenizer = AutoTokenizer.from_pretrained("{name}")',
        ]
    auto = next((a for suffix, a in _AUTO_CLASSES if architecture.endswith(suffix)), "AutoModel")
    return [
        f"from transformers import {auto}, AutoTokenizer",
        f'model = {auto}.from_pretrained("{name}")  # {architecture}',
        f'tokenizer = AutoTokenizer.from_pretrained("{name}")',
    ]


def _card_data(info: ModelCardInfo) -> ModelCardData:
    task = info.task or {
        "type": "fill-mask" if info.objective.startswith("mlm") else "text-classification",
        "name": "Masked language modelling" if info.objective.startswith("mlm") else "Sentence relation",
    }
    dataset_name = info.dataset_name or (info.data_report or {}).get("source") or "the corpus given to nsptask"
    results = [
        EvalResult(
            task_type=task["type"],
            task_name=task["name"],
            dataset_type="nsptask-" + info.data_format,
            dataset_name=f"{dataset_name} ({info.data_format}, held-out documents)",
            metric_type=metric_type,
            metric_name=metric_name,
            metric_value=round(float(info.metrics[key]), 4),
        )
        for key, (metric_type, metric_name) in _METRIC_NAMES.items()
        if key in info.metrics
    ]
    bundled = dataset_name.startswith("bundled")
    return ModelCardData(
        language=info.language,
        license=info.license or (BUNDLED_CORPUS_LICENSE if bundled else "other"),
        library_name="transformers",
        tags=["nsptask", info.objective, info.data_format, "pretraining"],
        base_model=info.hub_base_model,
        datasets=list(info.datasets) or None,
        model_name=info.name,
        eval_results=results or None,
        pipeline_tag=task["type"],
    )


def _data_lines(report: dict) -> list[str]:
    corpus = report["corpus"]
    train = report["splits"].get("train", {})
    return [
        "",
        "## Data",
        "",
        f"{corpus['documents_used']} documents ({corpus['sentences']:,} sentences, {corpus['tokens']:,} tokens); "
        f"training split: {train.get('documents', 0)} documents, {train.get('instances', 0):,} instances of mean "
        f"length {train.get('mean_length', 0)}"
        + (f", label balance {train['label_balance']}" if "label_balance" in train else "")
        + ". Train and evaluation splits share no document.",
    ]


def render_model_card(info: ModelCardInfo) -> ModelCard:
    """Build the ``huggingface_hub.ModelCard`` of a pretrained (or fine-tuned) model."""
    base = info.base_model
    origin = f", from `{base}`" + ("" if info.hub_base_model else " (a local checkpoint)") if base else ""
    lines = [
        "---",
        _card_data(info).to_yaml(),
        "---",
        "",
        f"# {info.name}",
        "",
        f"Trained with [nsptask](https://pypi.org/project/nsptask/) on "
        f"{_OBJECTIVE_TEXT.get(info.objective, info.objective)}, data format `{info.data_format}`.",
        "",
        "| | |",
        "|---|---|",
        f"| objective | `{info.objective}` |",
        f"| data format | `{info.data_format}` |",
        f"| model | {info.architecture}{f' (preset `{info.preset}`)' if info.preset else ''}{origin} |",
        f"| parameters | {info.num_parameters:,} |",
        f"| optimisation steps | {info.steps:,} |",
        f"| tokens seen (without padding) | {info.tokens_seen:,} |",
    ]
    lines += [f"| {key.replace('_', ' ')} | {value} |" for key, value in info.training.items()]
    if info.data_report:
        lines += _data_lines(info.data_report)
    lines += ["", "## Evaluation (held-out documents)", "", "| metric | value |", "|---|---|"]
    lines += [
        f"| {key[5:]} | {value:.4f} |"
        for key, value in sorted(info.metrics.items())
        if key.startswith("eval_") and isinstance(value, (int, float))
    ]
    lines += ["", "## Use", "", "```python", *loading_snippet(info.architecture, info.name), "```", ""]
    return ModelCard("\n".join(lines))


def write_model_card(output_dir: str | Path, info: ModelCardInfo) -> Path:
    """Render the card and save it as ``README.md`` in `output_dir`."""
    path = Path(output_dir) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    render_model_card(info).save(path)
    return path
