"""A ``transformers`` pipeline for next-sentence prediction, registered as ``"next-sentence-prediction"``.

Importing this module registers the task (``import nsptask.pipelines``, or ``from nsptask import
NextSentencePredictionPipeline``; ``import nsptask`` registers it too when ``transformers.pipelines`` is already
imported)::

    import nsptask.pipelines  # registers "next-sentence-prediction"
    from transformers import pipeline
    nsp = pipeline("next-sentence-prediction", model="runs/tiny-nsp")
    nsp("The city was founded in 1200.", text_pair="It grew along the river.")
    # {'label': 'IsNext', 'score': 0.93, 'is_next_probability': 0.93}

The model is loaded with the head it was trained with: a pretraining model's own NSP or SOP head
(``BertForPreTraining``, ``AlbertForPreTraining``, a family's masked-LM model with nsptask's sentence head), or a
model fine-tuned by ``nsptask finetune --task nsp|sop|coherence`` with its classifier; never a fresh random head.
Inputs take the forms of transformers' text-classification pipeline for pairs: ``nsp(A, text_pair=B)``,
``nsp(A, B)``, ``nsp({"text": A, "text_pair": B})``, ``nsp((A, B))``, or a list of dicts or tuples (batched with
``batch_size=``). ``is_next_probability`` is the probability of label 0 (B continues A, or the segments are in
order).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from accelerate import PartialState
from transformers import Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .arguments import PredictArguments
from .finetuning import load_finetuned_model, predict_words
from .modeling import sentence_label_argument, sentence_logits
from .tokenization import load_tokenizer

__all__ = ["NextSentencePredictionPipeline", "AutoModelForSentenceRelation", "predict_command"]


class AutoModelForSentenceRelation:
    """Loads a model with its sentence-relation head, as recorded in its config (the pipeline's model class)."""

    @classmethod
    def from_pretrained(cls, name_or_path, **kwargs):
        for key in ("_from_pipeline", "code_revision", "trust_remote_code"):
            kwargs.pop(key, None)
        return load_finetuned_model(name_or_path, **kwargs)


def _label_names(model) -> tuple[str, str]:
    names = getattr(model.config, "id2label", None) or {}
    zero, one = names.get(0, ""), names.get(1, "")
    if zero and not zero.startswith("LABEL_"):
        return zero, one
    data_format = (getattr(model.config, "nsptask", None) or {}).get("data_format")
    return ("InOrder", "Swapped") if data_format == "sop" else ("IsNext", "NotNext")


class NextSentencePredictionPipeline(Pipeline):
    """Scores whether B continues A with a model's sentence-relation head (NSP; SOP: 0 = in order)."""

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        name = type(self.model).__name__
        if not (name.endswith("ForSequenceClassification") or sentence_label_argument(self.model)):
            raise ValueError(
                f"{name} has no sentence-relation head: the next-sentence-prediction pipeline needs a model pretrained "
                "with mlm+nsp, mlm+sop, nsp or sop, or fine-tuned with nsptask finetune --task nsp|sop|coherence."
            )

    def __call__(self, inputs: Any = None, *args, text_pair: Any = None, **kwargs):
        if args and text_pair is None and isinstance(args[0], (str, list)):
            text_pair, args = args[0], args[1:]
        if text_pair is not None:
            if isinstance(inputs, str):
                inputs = {"text": inputs, "text_pair": text_pair}
            else:
                inputs = [{"text": a, "text_pair": b} for a, b in zip(inputs, text_pair)]
        return super().__call__(inputs, *args, **kwargs)

    def _sanitize_parameters(self, max_length: int | None = None, **kwargs):
        preprocess = {"max_length": max_length} if max_length is not None else {}
        return preprocess, {}, {}

    def preprocess(self, inputs: Any, max_length: int | None = None):
        if isinstance(inputs, dict):
            text, text_pair = inputs.get("text"), inputs.get("text_pair")
        elif isinstance(inputs, (tuple, list)) and len(inputs) == 2:
            text, text_pair = inputs
        else:
            text, text_pair = inputs, None
        if not isinstance(text, str) or not isinstance(text_pair, str):
            raise ValueError(
                "next-sentence prediction scores a pair of texts: call nsp(A, text_pair=B), nsp({'text': A, "
                f"'text_pair': B}}) or nsp((A, B)); got {type(inputs).__name__} {str(inputs)[:60]!r}."
            )
        encoded = self.tokenizer(
            text,
            text_pair,
            truncation=True,
            max_length=max_length or self.tokenizer.model_max_length,
            return_tensors="pt",
        )
        type_vocab = getattr(self.model.config, "type_vocab_size", 0) or 0
        if type_vocab < 2:
            encoded.pop("token_type_ids", None)
        return encoded

    def _forward(self, model_inputs):
        outputs = self.model(**model_inputs)
        logits = sentence_logits(outputs)
        if logits is None:
            logits = outputs.logits
        return {"logits": logits}

    def postprocess(self, model_outputs):
        probabilities = model_outputs["logits"][0].float().softmax(-1)
        label_zero, label_one = _label_names(self.model)
        score = float(probabilities[0])
        return {
            "label": label_zero if score >= 0.5 else label_one,
            "score": max(score, 1 - score),
            "is_next_probability": score,
        }


PIPELINE_REGISTRY.register_pipeline(
    "next-sentence-prediction",
    pipeline_class=NextSentencePredictionPipeline,
    pt_model=AutoModelForSentenceRelation,
    type="text",
)


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


def predict_command(args: PredictArguments) -> int:
    """``nsptask predict``: score pairs with a sentence model, or tag words with a token model; JSONL out."""
    rows = _read_inputs(args)
    device = args.device or PartialState().device
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
    return 0
