"""A ``transformers`` pipeline for next-sentence prediction, registered as ``"next-sentence-prediction"``.

After ``import nsptask``::

    from transformers import pipeline
    nsp = pipeline("next-sentence-prediction", model="runs/tiny-nsp")
    nsp({"text": "The city was founded in 1200.", "text_pair": "It grew along the river."})
    # {'label': 'IsNext', 'score': 0.93, 'is_next_probability': 0.93}

Inputs are ``{"text": A, "text_pair": B}`` dicts or ``(A, B)`` tuples, one or a list (batched with
``batch_size=``); the device is the pipeline's (``device=``), as for any pipeline.
"""

from __future__ import annotations

from typing import Any

from transformers import AutoModelForNextSentencePrediction, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

__all__ = ["NextSentencePredictionPipeline"]


class NextSentencePredictionPipeline(Pipeline):
    """Scores whether B continues A with a model's sentence-relation head (NSP, or SOP: 0 = in order)."""

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def _sanitize_parameters(self, max_length: int | None = None, **kwargs):
        preprocess = {"max_length": max_length} if max_length is not None else {}
        return preprocess, {}, {}

    def preprocess(self, inputs: Any, max_length: int | None = None):
        if isinstance(inputs, dict):
            text, text_pair = inputs["text"], inputs["text_pair"]
        else:
            text, text_pair = inputs
        return self.tokenizer(
            text,
            text_pair,
            truncation=True,
            max_length=max_length or self.tokenizer.model_max_length,
            return_tensors="pt",
        )

    def _forward(self, model_inputs):
        outputs = self.model(**model_inputs)
        logits = getattr(outputs, "seq_relationship_logits", None)
        if logits is None:
            logits = getattr(outputs, "sop_logits", None)
        if logits is None:
            logits = outputs.logits
        return {"logits": logits}

    def postprocess(self, model_outputs):
        probabilities = model_outputs["logits"][0].float().softmax(-1)
        names = getattr(self.model.config, "id2label", None) or {}
        label_zero, label_one = names.get(0, "IsNext"), names.get(1, "NotNext")
        if label_zero.startswith("LABEL_"):
            label_zero, label_one = "IsNext", "NotNext"
        score = float(probabilities[0])
        return {
            "label": label_zero if score >= 0.5 else label_one,
            "score": max(score, 1 - score),
            "is_next_probability": score,
        }


PIPELINE_REGISTRY.register_pipeline(
    "next-sentence-prediction",
    pipeline_class=NextSentencePredictionPipeline,
    pt_model=AutoModelForNextSentencePrediction,
    type="text",
)
