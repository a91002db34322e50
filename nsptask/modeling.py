"""Models for the pretraining objectives: stock ``transformers`` heads, named size presets, and a sparse
MLM head.

Objectives and the stock model classes they use:

| objective | model | data format (default) | sentence label argument |
|---|---|---|---|
| ``mlm+nsp`` | ``AutoModelForPreTraining`` (``BertForPreTraining``, ``AlbertForPreTraining``) | ``nsp`` | ``next_sentence_label`` / ``sentence_order_label`` |
| ``mlm+sop`` | the same two-head models, the sentence head predicting order | ``sop`` | as above |
| ``mlm`` | ``AutoModelForMaskedLM`` (BERT, RoBERTa, ALBERT, ModernBERT, ...) | ``full-sentences`` | none |
| ``nsp`` / ``sop`` | ``BertForNextSentencePrediction`` | ``nsp`` / ``sop`` | ``next_sentence_label`` |

The sparse MLM head (as in Google's BERT and MosaicBERT) computes the vocabulary projection only at the
positions that carry a label, instead of at every token. It is installed on the model *instance*
(``model.forward``), so the model stays a stock class: ``save_pretrained`` / ``from_pretrained`` work
unchanged, and DDP/FSDP wrap it as usual. Architectures without a known layout keep their dense head.
"""

from __future__ import annotations

import logging
import types
from dataclasses import dataclass
from typing import Any

__all__ = [
    "OBJECTIVES",
    "PRESETS",
    "DEFAULT_FORMATS",
    "build_model",
    "sentence_label_argument",
    "enable_sparse_mlm",
]

logger = logging.getLogger(__name__)

OBJECTIVES = ("mlm+nsp", "mlm+sop", "mlm", "nsp", "sop")
DEFAULT_FORMATS = {"mlm+nsp": "nsp", "mlm+sop": "sop", "mlm": "full-sentences", "nsp": "nsp", "sop": "sop"}
SENTENCE_FORMATS = {
    "mlm+nsp": ("nsp", "sentence-pair"),
    "mlm+sop": ("sop",),
    "nsp": ("nsp", "sentence-pair"),
    "sop": ("sop",),
}

# BERT shapes (Turc et al., 2019, "Well-Read Students Learn Better": BERT-Tiny/Mini/Small; BERT-base).
PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"num_hidden_layers": 2, "hidden_size": 128, "num_attention_heads": 2, "intermediate_size": 512},
    "mini": {"num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4, "intermediate_size": 1024},
    "small": {"num_hidden_layers": 4, "hidden_size": 512, "num_attention_heads": 8, "intermediate_size": 2048},
    "base": {"num_hidden_layers": 12, "hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072},
}


def _auto_class(objective: str):
    import transformers

    if objective in ("mlm+nsp", "mlm+sop"):
        return transformers.AutoModelForPreTraining
    if objective == "mlm":
        return transformers.AutoModelForMaskedLM
    return transformers.AutoModelForNextSentencePrediction


def sentence_label_argument(model) -> str | None:
    """The forward argument of the model's sentence-relation head, or None if it has none."""
    import inspect

    params = inspect.signature(type(model).forward).parameters
    for name in ("next_sentence_label", "sentence_order_label"):
        if name in params:
            return name
    if type(model).__name__.endswith("ForNextSentencePrediction"):
        return "labels"  # the sentence head alone takes its label as `labels`
    return None


def build_model(
    objective: str,
    tokenizer,
    model_name_or_path: str | None = None,
    preset: str = "tiny",
    max_position_embeddings: int = 512,
    seed: int = 42,
    dropout: float | None = None,
):
    """Create the model for an objective: from a checkpoint (missing heads are initialised and reported)
    or from a size preset with the tokenizer's vocabulary.

    Args:
        objective (`str`): One of ``OBJECTIVES``.
        tokenizer: The tokenizer (its vocabulary size and pad id configure preset models).
        model_name_or_path (`str`, *optional*): Local path or Hub id of a pretrained encoder.
        preset (`str`, *optional*, defaults to `"tiny"`): ``tiny``, ``mini``, ``small`` or ``base``.
        max_position_embeddings (`int`, *optional*, defaults to 512): For preset models.
        seed (`int`, *optional*, defaults to 42): Initialisation seed of preset models and new heads.
        dropout (`float`, *optional*): Override hidden and attention dropout.

    Returns:
        `(model, loading_info)`: the model and ``{"missing_keys": [...], "unexpected_keys": [...]}``.

    Raises:
        ValueError: If the model has no head for the objective (e.g. ``mlm+nsp`` on RoBERTa), before any
            training, with what to use instead.
    """
    import transformers

    if objective not in OBJECTIVES:
        raise ValueError(f"Unknown objective {objective!r}: expected one of {OBJECTIVES}")
    transformers.set_seed(seed)
    auto = _auto_class(objective)
    info: dict[str, Any] = {"missing_keys": [], "unexpected_keys": []}
    overrides = {}
    if dropout is not None:
        overrides = {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    if model_name_or_path is None:
        if preset not in PRESETS:
            raise ValueError(f"Unknown preset {preset!r}: expected one of {sorted(PRESETS)}")
        config = transformers.BertConfig(
            vocab_size=len(tokenizer),
            max_position_embeddings=max_position_embeddings,
            pad_token_id=tokenizer.pad_token_id,
            **PRESETS[preset],
            **overrides,
        )
        model = auto.from_config(config)
    else:
        try:
            config = transformers.AutoConfig.from_pretrained(model_name_or_path)
        except OSError as err:
            raise ValueError(f"Cannot load a model config from {model_name_or_path!r}: {err}") from err
        try:
            model, info = auto.from_pretrained(model_name_or_path, output_loading_info=True, **overrides)
        except ValueError as err:
            raise ValueError(_mismatch_message(objective, model_name_or_path, config.model_type)) from err
        if info.get("missing_keys"):
            logger.warning(
                "nsptask: %d weights of %s were not in %s and are newly initialised (heads): %s",
                len(info["missing_keys"]),
                type(model).__name__,
                model_name_or_path,
                sorted(info["missing_keys"])[:8],
            )
    if objective != "mlm" and sentence_label_argument(model) is None:
        raise ValueError(_mismatch_message(objective, model_name_or_path or preset, model.config.model_type))
    check_vocabulary(tokenizer, model)
    return model, {k: list(v) for k, v in info.items() if k in ("missing_keys", "unexpected_keys")}


def check_vocabulary(tokenizer, model) -> None:
    """A tokenizer with more tokens than the model's vocabulary does not belong to it: say so now, not as an
    index error in the middle of training."""
    if len(tokenizer) > model.config.vocab_size:
        raise ValueError(
            f"The tokenizer has {len(tokenizer)} tokens but the model's vocabulary has {model.config.vocab_size}: "
            "they do not belong together. Pass the model's own tokenizer (tokenizer_name_or_path)."
        )


def _mismatch_message(objective: str, name: str, model_type: str) -> str:
    return (
        f"Objective {objective!r} needs a model with a sentence-relation head (BERT's NSP head or ALBERT's SOP "
        f"head); {name!r} is a {model_type!r} model without one. Use objective 'mlm' for it (NSP removed, as "
        "RoBERTa does), or a BERT/ALBERT model (a preset: --preset tiny) for the sentence objectives."
    )


# -- sparse MLM head ---------------------------------------------------------------------------------

_LAYOUTS = {
    # class name: (encoder attribute, MLM head getter, sentence head getter)
    "BertForPreTraining": ("bert", lambda m: m.cls.predictions, lambda m: m.cls.seq_relationship),
    "BertForMaskedLM": ("bert", lambda m: m.cls.predictions, None),
    "AlbertForPreTraining": ("albert", lambda m: m.predictions, lambda m: m.sop_classifier),
    "AlbertForMaskedLM": ("albert", lambda m: m.predictions, None),
    "RobertaForMaskedLM": ("roberta", lambda m: m.lm_head, None),
    "XLMRobertaForMaskedLM": ("roberta", lambda m: m.lm_head, None),
}


def _output_class():
    from transformers.utils import ModelOutput

    @dataclass
    class SparsePretrainingOutput(ModelOutput):
        """Loss, plus (in evaluation) what the metrics need, all small: argmax MLM predictions at the
        labelled positions (-100 elsewhere), per-sequence MLM loss sums and counts, sentence logits."""

        loss: Any = None
        mlm_predictions: Any = None
        mlm_loss_sum: Any = None
        mlm_count: Any = None
        sentence_logits: Any = None

    return SparsePretrainingOutput


def __getattr__(name: str):
    if name == "SparsePretrainingOutput":
        return _output_class()
    raise AttributeError(name)


def enable_sparse_mlm(model) -> bool:
    """Make the model compute its MLM head only at labelled positions (and return small outputs).

    The loss equals the dense head's (a test checks it to float tolerance). Returns `False`, leaving the
    model as it is, for architectures whose layout is not known.
    """
    layout = _LAYOUTS.get(type(model).__name__)
    if layout is None:
        return False
    encoder_name, mlm_getter, sentence_getter = layout
    output_class = _output_class()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        labels=None,
        next_sentence_label=None,
        sentence_order_label=None,
    ):
        import torch
        import torch.nn.functional as F

        encoder = getattr(self, encoder_name)
        kwargs = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        encoded = encoder(input_ids, **kwargs)
        sequence = encoded[0]
        loss = None
        out: dict[str, Any] = {}
        if labels is not None:
            selected = labels != -100
            rows = selected.nonzero(as_tuple=True)[0]
            hidden = sequence[selected]
            n_selected = hidden.shape[0]
            # Round the row count up to a multiple of 64 with zero rows: the head's allocations then come in a
            # few sizes that the allocator reuses, instead of a new size every batch (which fragments memory).
            padded = -n_selected % 64
            if padded:
                hidden = torch.cat([hidden, hidden.new_zeros(padded, hidden.shape[1])])
            logits = mlm_getter(self)(hidden)[:n_selected]
            targets = labels[selected]
            per_token = F.cross_entropy(logits.float(), targets, reduction="none")
            # An empty selection gives a zero loss that still touches the graph (DDP needs every parameter).
            loss = per_token.mean() if per_token.numel() else logits.sum() * 0.0
            if not self.training:
                predictions = torch.full_like(labels, -100)
                predictions[selected] = logits.argmax(-1)
                out["mlm_predictions"] = predictions
                out["mlm_loss_sum"] = torch.zeros(labels.shape[0], device=labels.device).index_add(
                    0, rows, per_token.detach()
                )
                out["mlm_count"] = selected.sum(-1)
        sentence_label = next_sentence_label if next_sentence_label is not None else sentence_order_label
        if sentence_getter is not None:
            sentence_logits = sentence_getter(self)(encoded[1])
            if sentence_label is not None:
                sentence_loss = F.cross_entropy(sentence_logits.float().view(-1, 2), sentence_label.view(-1))
                loss = sentence_loss if loss is None else loss + sentence_loss
            if not self.training:
                out["sentence_logits"] = sentence_logits
        return output_class(loss=loss, **out)

    model.forward = types.MethodType(forward, model)
    return True
