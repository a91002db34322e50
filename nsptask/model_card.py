"""Model cards for nsptask's models (``huggingface_hub.ModelCard``, with ``model-index`` metadata)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_model_card", "render_model_card"]

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


def render_model_card(
    objective: str,
    data_format: str,
    metrics: dict[str, float],
    model_name: str = "nsptask-model",
    base_model: str | None = None,
    preset: str | None = None,
    architecture: str = "",
    num_parameters: int = 0,
    steps: int = 0,
    tokens_seen: int = 0,
    data_report: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    hub_model_id: str | None = None,
    task: dict[str, str] | None = None,
    language: str = "en",
    dataset_name: str | None = None,
):
    """Build the ``huggingface_hub.ModelCard`` of a pretrained (or fine-tuned) model.

    Args:
        objective (`str`): The training objective.
        data_format (`str`): The instance format it was trained on.
        dataset_name (`str`, *optional*): The corpus the model was trained on (default: the data report's source).
        metrics (`dict`): Final metrics (``eval_*`` keys become ``model-index`` results).
        Other arguments describe the model and the run; all optional.

    Returns:
        `huggingface_hub.ModelCard`
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    task = task or {
        "type": "fill-mask" if objective.startswith("mlm") else "text-classification",
        "name": "Masked language modelling" if objective.startswith("mlm") else "Sentence relation",
    }
    if dataset_name is None:
        dataset_name = (data_report or {}).get("source") or "the corpus given to nsptask"
    results = []
    for key, (metric_type, metric_name) in _METRIC_NAMES.items():
        if key in metrics:
            results.append(
                EvalResult(
                    task_type=task["type"],
                    task_name=task["name"],
                    dataset_type="nsptask-" + data_format,
                    dataset_name=f"{dataset_name} ({data_format}, held-out documents)",
                    metric_type=metric_type,
                    metric_name=metric_name,
                    metric_value=round(float(metrics[key]), 4),
                )
            )
    data = ModelCardData(
        language=language,
        library_name="transformers",
        tags=["nsptask", objective, data_format, "pretraining"],
        base_model=base_model,
        model_name=hub_model_id or model_name,
        eval_results=results or None,
        pipeline_tag=task["type"],
    )
    lines = [
        "---",
        data.to_yaml(),
        "---",
        "",
        f"# {hub_model_id or model_name}",
        "",
        f"Trained with [nsptask](https://pypi.org/project/nsptask/) on {_OBJECTIVE_TEXT.get(objective, objective)}, "
        f"data format `{data_format}`.",
        "",
        "| | |",
        "|---|---|",
        f"| objective | `{objective}` |",
        f"| data format | `{data_format}` |",
        f"| model | {architecture}{f' (preset `{preset}`)' if preset else ''}{f', from `{base_model}`' if base_model else ''} |",
        f"| parameters | {num_parameters:,} |",
        f"| optimisation steps | {steps:,} |",
        f"| tokens seen (without padding) | {tokens_seen:,} |",
    ]
    for key, value in (training or {}).items():
        lines.append(f"| {key.replace('_', ' ')} | {value} |")
    if data_report:
        corpus = data_report["corpus"]
        train = data_report["splits"].get("train", {})
        lines += [
            "",
            "## Data",
            "",
            f"{corpus['documents_used']} documents ({corpus['sentences']:,} sentences, {corpus['tokens']:,} tokens); "
            f"training split: {train.get('documents', 0)} documents, {train.get('instances', 0):,} instances of mean "
            f"length {train.get('mean_length', 0)}"
            + (f", label balance {train['label_balance']}" if "label_balance" in train else "")
            + ". Train and evaluation splits share no document.",
        ]
    lines += ["", "## Evaluation (held-out documents)", "", "| metric | value |", "|---|---|"]
    for key, value in sorted(metrics.items()):
        if key.startswith("eval_") and isinstance(value, (int, float)):
            lines.append(f"| {key[5:]} | {value:.4f} |")
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForPreTraining, AutoTokenizer",
        f'model = AutoModelForPreTraining.from_pretrained("{hub_model_id or model_name}")',
        f'tokenizer = AutoTokenizer.from_pretrained("{hub_model_id or model_name}")',
        "```",
        "",
    ]
    return ModelCard("\n".join(lines))


def write_model_card(output_dir: str | Path, **kwargs: Any) -> Path:
    """Render the card and save it as ``README.md`` in `output_dir`."""
    card = render_model_card(**kwargs)
    path = Path(output_dir) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    card.save(path)
    return path
