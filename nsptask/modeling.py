"""Models for the pretraining objectives, for any encoder family: stock ``transformers`` heads where they
exist, one small generic sentence head where they do not, named size presets, and a sparse MLM head.

Families and what each gets (``--model_family`` for preset models; a checkpoint brings its own):

| family | MLM + sentence head | sentence head | token types | word starts (whole-word masking) |
|---|---|---|---|---|
| ``bert`` | ``BertForPreTraining`` (stock) | pooler + ``seq_relationship`` | 2 | ``##`` continues a word |
| ``albert`` | ``AlbertForPreTraining`` (stock) | pooler + ``sop_classifier`` | 2 | ``▁`` starts a word |
| ``roberta`` | ``RobertaForMaskedLMWithSentenceHead`` | pooled ``<s>`` head | 1 (not passed) | ``Ġ`` starts a word |
| ``deberta-v2`` | ``DebertaV2ForMaskedLMWithSentenceHead`` | pooled ``[CLS]`` head | 0 (not passed) | ``▁`` starts a word |
| ``modernbert`` | ``ModernBertForMaskedLMWithSentenceHead`` | pooled ``[CLS]`` head | none | ``Ġ`` starts a word |
| ``distilbert`` | ``DistilBertForMaskedLMWithSentenceHead`` | pooled ``[CLS]`` head | none | ``##`` continues a word |

``...WithSentenceHead`` is the family's own ``*ForMaskedLM`` class with one more module, ``sentence_head``
(dense, tanh, dropout, a 2-way linear on the first token: BERT's pooler and RoBERTa's classification head in
one). Its weights keep the family's names, so ``save_pretrained`` / ``from_pretrained`` work, and the same
folder loads into the family's ``AutoModelForMaskedLM``, ``AutoModelForSequenceClassification`` and
``AutoModelForTokenClassification`` for fine-tuning (the extra head is reported as unused).

The sparse MLM head (as in Google's BERT and MosaicBERT) computes the vocabulary projection only at the
positions that carry a label: a forward pre-hook on the model's output embeddings (the decoder every family
calls last) keeps only those rows. The model's own ``forward`` runs unchanged, so DDP, FSDP, ``save_pretrained``
and every family work alike; :class:`nsptask.training.NspTrainer` computes the losses from the outputs.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
from dataclasses import dataclass
from typing import Any

import torch
import transformers
from torch import nn
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_MASKED_LM_MAPPING,
    MODEL_FOR_NEXT_SENTENCE_PREDICTION_MAPPING,
    MODEL_FOR_PRETRAINING_MAPPING,
)
from transformers.utils import ModelOutput

from .arguments import DEFAULT_FORMATS, FAMILIES, FAMILY_TOKENIZERS, OBJECTIVES, PRESET_NAMES, SENTENCE_FORMATS
from .tokenization import word_start_convention

__all__ = [
    "OBJECTIVES",
    "FAMILY_TOKENIZERS",
    "PRESETS",
    "FAMILIES",
    "DEFAULT_FORMATS",
    "SENTENCE_FORMATS",
    "build_model",
    "preset_config",
    "load_pretraining_model",
    "sentence_label_argument",
    "sentence_logits",
    "mlm_logits",
    "SparseMlmHead",
    "enable_sparse_mlm",
    "ModelCapabilities",
    "model_capabilities",
    "with_sentence_head",
    "check_vocabulary",
    "check_encoder_loaded",
    "task_model",
    "with_no_split_modules",
    "NO_SPLIT_MODULES",
]

logger = logging.getLogger(__name__)


# BERT shapes (Turc et al., 2019, "Well-Read Students Learn Better": BERT-Tiny/Mini/Small; BERT-base).
PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"num_hidden_layers": 2, "hidden_size": 128, "num_attention_heads": 2, "intermediate_size": 512},
    "mini": {"num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4, "intermediate_size": 1024},
    "small": {"num_hidden_layers": 4, "hidden_size": 512, "num_attention_heads": 8, "intermediate_size": 2048},
    "base": {"num_hidden_layers": 12, "hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072},
}


# The repeated blocks of the families whose transformers classes name none (`_no_split_modules` empty): FSDP's
# transformer wrap policy and device maps read them; accelerate's FSDP plugin fails without any.
NO_SPLIT_MODULES = {
    "albert": ["AlbertLayerGroup"],
    "deberta-v2": ["DebertaV2Layer"],
    "distilbert": ["TransformerBlock"],
}


def with_no_split_modules(model):
    """Give a model of a family whose class names no unsplittable module its repeated block (see
    :data:`NO_SPLIT_MODULES`); other models are left as they are. Returns the model."""
    if not model._no_split_modules and model.config.model_type in NO_SPLIT_MODULES:
        model._no_split_modules = set(NO_SPLIT_MODULES[model.config.model_type])
    return model


# -- configs -----------------------------------------------------------------------------------------


def set_dropout(config, p: float) -> None:
    """Set every dropout of a config (the names differ by family) to `p`."""
    for name in (
        "hidden_dropout_prob",
        "attention_probs_dropout_prob",
        "classifier_dropout_prob",
        "dropout",
        "attention_dropout",
        "embedding_dropout",
        "mlp_dropout",
        "seq_classif_dropout",
        "pooler_dropout",
        "classifier_dropout",
    ):
        if hasattr(config, name) and getattr(config, name) is not None:
            setattr(config, name, p)


def preset_config(
    family: str,
    preset: str,
    tokenizer,
    max_position_embeddings: int = 512,
    dropout: float | None = None,
):
    """The config of a preset-sized model of a family, with the tokenizer's vocabulary and special tokens.

    RoBERTa gets one token type (as released) and its position offset; DeBERTa-v2 the v3 layout (relative
    attention with position buckets, no absolute positions, no token types); ALBERT a 128-wide factorised
    embedding; ModernBERT alternating local and global attention.
    """
    if family not in FAMILIES:
        raise ValueError(f"Unknown model family {family!r}: expected one of {FAMILIES}")
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}: expected one of {sorted(PRESETS)}")
    shape = PRESETS[preset]
    ids = {
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.cls_token_id,
        "eos_token_id": tokenizer.sep_token_id,
    }
    vocab = len(tokenizer)
    if family == "bert":
        config = transformers.BertConfig(
            vocab_size=vocab, max_position_embeddings=max_position_embeddings, pad_token_id=ids["pad_token_id"], **shape
        )
    elif family == "roberta":
        config = transformers.RobertaConfig(
            vocab_size=vocab, max_position_embeddings=max_position_embeddings + 2, type_vocab_size=1, **ids, **shape
        )
    elif family == "albert":
        config = transformers.AlbertConfig(
            vocab_size=vocab,
            embedding_size=min(128, shape["hidden_size"]),
            max_position_embeddings=max_position_embeddings,
            **ids,
            **shape,
        )
    elif family == "deberta-v2":
        config = transformers.DebertaV2Config(
            vocab_size=vocab,
            max_position_embeddings=max_position_embeddings,
            type_vocab_size=0,
            relative_attention=True,
            position_buckets=256,
            max_relative_positions=-1,
            position_biased_input=False,
            pos_att_type=["p2c", "c2p"],
            norm_rel_ebd="layer_norm",
            share_att_key=True,
            pad_token_id=ids["pad_token_id"],
            **shape,
        )
    elif family == "modernbert":
        config = transformers.ModernBertConfig(
            vocab_size=vocab,
            max_position_embeddings=max_position_embeddings,
            global_attn_every_n_layers=2,
            local_attention=min(128, max_position_embeddings),
            cls_token_id=tokenizer.cls_token_id,
            sep_token_id=tokenizer.sep_token_id,
            **ids,
            **shape,
        )
    else:
        config = transformers.DistilBertConfig(
            vocab_size=vocab,
            max_position_embeddings=max_position_embeddings,
            pad_token_id=ids["pad_token_id"],
            dim=shape["hidden_size"],
            n_layers=shape["num_hidden_layers"],
            n_heads=shape["num_attention_heads"],
            hidden_dim=shape["intermediate_size"],
        )
    if dropout is not None:
        set_dropout(config, dropout)
    return config


# -- model classes ------------------------------------------------------------------------------------


def _output_class():
    @dataclass
    class MaskedLMWithSentenceHeadOutput(ModelOutput):
        loss: Any = None
        logits: Any = None
        sentence_logits: Any = None
        hidden_states: Any = None
        attentions: Any = None

    return MaskedLMWithSentenceHeadOutput


@functools.cache
def with_sentence_head(mlm_class: type) -> type:
    """The family's ``*ForMaskedLM`` class with a pooled 2-way sentence head (``sentence_head``), for NSP or SOP
    on families that ship no such head. Its forward takes ``labels`` (MLM) and ``sentence_label``."""
    output_class = _output_class()

    class SentenceHead(nn.Module):
        def __init__(self, config):
            super().__init__()
            hidden = getattr(config, "hidden_size", None) or config.dim
            p = next(
                (
                    getattr(config, n)
                    for n in ("classifier_dropout", "hidden_dropout_prob", "seq_classif_dropout", "dropout")
                    if getattr(config, n, None) is not None
                ),
                0.1,
            )
            self.dense = nn.Linear(hidden, hidden)
            self.dropout = nn.Dropout(p)
            self.out_proj = nn.Linear(hidden, 2)

        def forward(self, first_token):
            return self.out_proj(self.dropout(torch.tanh(self.dense(self.dropout(first_token)))))

    def __init__(self, config):
        mlm_class.__init__(self, config)
        self.sentence_head = SentenceHead(config)
        self.post_init()

    def forward(
        self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, sentence_label=None, **kwargs
    ):
        captured: dict[str, Any] = {}

        def keep_hidden(module, args, output):
            captured["h"] = output[0]  # returns None: the output is left as it is

        handle = self.base_model.register_forward_hook(keep_hidden)
        call = dict(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs)
        if token_type_ids is not None and _accepts(mlm_class, "token_type_ids"):
            call["token_type_ids"] = token_type_ids
        try:
            out = mlm_class.forward(self, **call)
        finally:
            handle.remove()
        sentence = self.sentence_head(captured["h"][:, 0])
        loss = out.loss
        if sentence_label is not None:
            sentence_loss = nn.functional.cross_entropy(sentence.float(), sentence_label.view(-1))
            loss = sentence_loss if loss is None else loss + sentence_loss
        return output_class(
            loss=loss,
            logits=out.logits,
            sentence_logits=sentence,
            hidden_states=getattr(out, "hidden_states", None),
            attentions=getattr(out, "attentions", None),
        )

    name = mlm_class.__name__.replace("ForMaskedLM", "ForMaskedLMWithSentenceHead")
    cls = type(name, (mlm_class,), {"__init__": __init__, "forward": forward, "__module__": __name__})
    cls.__qualname__ = name
    return cls


def _accepts(model_class: type, argument: str) -> bool:
    return argument in inspect.signature(model_class.forward).parameters


def _family_classes(config):
    def lookup(mapping):
        try:
            return mapping[type(config)]
        except KeyError:
            return None

    mlm = lookup(MODEL_FOR_MASKED_LM_MAPPING)
    pretraining = lookup(MODEL_FOR_PRETRAINING_MAPPING)
    nsp = lookup(MODEL_FOR_NEXT_SENTENCE_PREDICTION_MAPPING)
    if pretraining is not None and not _has_sentence_head(pretraining):
        pretraining = None
    return mlm, pretraining, nsp


def _has_sentence_head(model_class: type) -> bool:
    params = inspect.signature(model_class.forward).parameters
    return "next_sentence_label" in params or "sentence_order_label" in params


def model_class_for(config, objective: str) -> type:
    """The class that trains `objective` for a config's family: stock where transformers has one (BERT and
    ALBERT pretraining heads, BERT's NSP head), else the family's masked-LM class with a sentence head."""
    mlm, pretraining, nsp = _family_classes(config)
    if mlm is None:
        raise ValueError(
            f"A {config.model_type!r} model has no masked-language-modelling class in transformers: nsptask "
            "pretrains encoders (BERT, RoBERTa, ALBERT, DeBERTa-v2/v3, ModernBERT, DistilBERT, ...)."
        )
    if objective == "mlm":
        return mlm
    if objective in ("mlm+nsp", "mlm+sop"):
        return pretraining or with_sentence_head(mlm)
    return nsp or with_sentence_head(mlm)


def load_pretraining_model(path: str, objective: str | None = None, **kwargs):
    """Load a model nsptask pretrained (or any checkpoint) with the class it was saved as: a
    ``...WithSentenceHead`` model gets its sentence head back. With `objective`, load the class that objective
    trains instead (``mlm`` loads the encoder and MLM head only)."""
    config = transformers.AutoConfig.from_pretrained(path)
    if objective is not None:
        cls = model_class_for(config, objective)
    else:
        architecture = (config.architectures or [""])[0]
        mlm, pretraining, _ = _family_classes(config)
        if architecture.endswith("WithSentenceHead") and mlm is not None:
            cls = with_sentence_head(mlm)
        else:
            cls = getattr(transformers, architecture, None) or transformers.AutoModelForPreTraining
    return with_no_split_modules(cls.from_pretrained(path, **kwargs))


def sentence_label_argument(model) -> str | None:
    """The forward argument of the model's sentence-relation head, or None if it has none."""
    params = inspect.signature(type(model).forward).parameters
    for name in ("next_sentence_label", "sentence_order_label", "sentence_label"):
        if name in params:
            return name
    if type(model).__name__.endswith("ForNextSentencePrediction"):
        return "labels"  # the sentence head alone takes its label as `labels`
    return None


def sentence_logits(outputs):
    """The sentence-relation logits of any of the pretraining classes' outputs (None if there are none)."""
    for name in ("seq_relationship_logits", "sop_logits", "sentence_logits"):
        value = getattr(outputs, name, None)
        if value is not None:
            return value
    if type(outputs).__name__ == "NextSentencePredictorOutput":
        return outputs.logits
    return None


def mlm_logits(outputs):
    """The masked-LM logits of any of the pretraining classes' outputs (None for a sentence head alone)."""
    value = getattr(outputs, "prediction_logits", None)
    if value is not None:
        return value
    if type(outputs).__name__ == "NextSentencePredictorOutput":
        return None
    return getattr(outputs, "logits", None)


def build_model(
    objective: str,
    tokenizer,
    model_name_or_path: str | None = None,
    preset: str = "tiny",
    max_position_embeddings: int = 512,
    seed: int = 42,
    dropout: float | None = None,
    family: str = "bert",
    attn_implementation: str | None = None,
):
    """Create the model for an objective: from a checkpoint (missing heads are initialised and reported)
    or from a size preset of a family with the tokenizer's vocabulary.

    Args:
        objective (`str`): One of ``OBJECTIVES``.
        tokenizer: The tokenizer (its vocabulary size and special tokens configure preset models).
        model_name_or_path (`str`, *optional*): Local path or Hub id of a pretrained encoder (any family).
        preset (`str`, *optional*, defaults to `"tiny"`): ``tiny``, ``mini``, ``small`` or ``base``.
        max_position_embeddings (`int`, *optional*, defaults to 512): For preset models.
        seed (`int`, *optional*, defaults to 42): Initialisation seed of preset models and new heads.
        dropout (`float`, *optional*): Override every dropout.
        family (`str`, *optional*, defaults to `"bert"`): Family of preset models (``FAMILIES``).
        attn_implementation (`str`, *optional*): ``eager``, ``sdpa`` or ``flash_attention_2`` (default: the
            model's own choice, sdpa where transformers supports it).

    Returns:
        `(model, loading_info)`: the model and ``{"missing_keys": [...], "unexpected_keys": [...]}``.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"Unknown objective {objective!r}: expected one of {OBJECTIVES}")
    transformers.set_seed(seed)
    info: dict[str, Any] = {"missing_keys": [], "unexpected_keys": []}
    attention = {"attn_implementation": attn_implementation} if attn_implementation else {}
    if model_name_or_path is None:
        config = preset_config(family, preset, tokenizer, max_position_embeddings, dropout)
        if attn_implementation:
            config._attn_implementation = attn_implementation
        model = model_class_for(config, objective)(config)
    else:
        try:
            config = transformers.AutoConfig.from_pretrained(model_name_or_path)
        except OSError as err:
            raise ValueError(f"Cannot load a model config from {model_name_or_path!r}: {err}") from err
        if dropout is not None:
            set_dropout(config, dropout)
        cls = model_class_for(config, objective)
        model, info = cls.from_pretrained(model_name_or_path, config=config, output_loading_info=True, **attention)
        if info.get("missing_keys"):
            logger.warning(
                "nsptask: %d weights of %s were not in %s and are newly initialised (heads): %s",
                len(info["missing_keys"]),
                type(model).__name__,
                model_name_or_path,
                sorted(info["missing_keys"])[:8],
            )
    check_vocabulary(tokenizer, model)
    with_no_split_modules(model)
    return model, {k: list(v) for k, v in info.items() if k in ("missing_keys", "unexpected_keys")}


def check_vocabulary(tokenizer, model) -> None:
    """A tokenizer with more tokens than the model's vocabulary does not belong to it: say so now, not as an
    index error in the middle of training."""
    if len(tokenizer) > model.config.vocab_size:
        raise ValueError(
            f"The tokenizer has {len(tokenizer)} tokens but the model's vocabulary has {model.config.vocab_size}: "
            "they do not belong together. Pass the model's own tokenizer (--tokenizer_name_or_path)."
        )


# -- capabilities ---------------------------------------------------------------------------------------


@dataclass
class ModelCapabilities:
    """What a model and tokenizer can take, and how nsptask adapts its data to them.

    Args:
        family (`str`): The config's ``model_type``.
        token_types (`str`): ``"keep"`` (the model has 2+ token types), ``"drop"`` (one or none: segments are
            told apart by the separator, ``token_type_ids`` are not passed).
        word_start (`tuple[str, str] | None`): The tokenizer's word convention for whole-word masking:
            ``("continues", "##")`` (WordPiece), ``("starts", "Ġ")`` (byte-level BPE), ``("starts", "▁")``
            (SentencePiece/Metaspace), or `None` if unknown.
        padding_side (`str`): The tokenizer's padding side (the collator places labels accordingly).
        max_positions (`int`): Longest input the model's positions allow.
    """

    family: str
    token_types: str
    word_start: tuple[str, str] | None
    padding_side: str
    max_positions: int


def model_capabilities(config, tokenizer, max_seq_length: int | None = None, whole_word_mask: bool = False):
    """Check a model config and a tokenizer together, before any work: adapt what can be adapted (token types,
    padding side) and stop with a clear message on what cannot.

    Args:
        config (`PretrainedConfig`): The model's config (any family nsptask knows, or one with the same heads).
        tokenizer (`PreTrainedTokenizerBase`): The tokenizer the data is made with.
        max_seq_length (`int`, *optional*): The instance length, checked against the model's positions
            (RoBERTa's start after its padding index, so 514 positions hold 512 tokens).
        whole_word_mask (`bool`, *optional*, defaults to `False`): Whether whole-word masking is asked for.

    Returns:
        `ModelCapabilities`: ``family``; ``token_types`` (``"keep"`` when the model has two or more token types
        and its masked-LM class takes them, else ``"drop"``: the collator then removes ``token_type_ids``);
        ``word_start`` (from :func:`word_start_convention`); ``padding_side``; ``max_positions``.

    Raises:
        ValueError: if the tokenizer lacks a mask token (MLM), the input length exceeds the model's positions, or
            whole-word masking is asked for with a tokenizer whose word convention is unknown.
    """
    family = config.model_type
    type_vocab = getattr(config, "type_vocab_size", 0) or 0
    mlm, _, _ = _family_classes(config)
    accepts = mlm is not None and _accepts(mlm, "token_type_ids")
    token_types = "keep" if (type_vocab >= 2 and accepts) else "drop"
    positions = getattr(config, "max_position_embeddings", None) or 512
    if family in ("roberta", "xlm-roberta", "camembert"):
        positions -= (config.pad_token_id or 1) + 1  # RoBERTa's positions start after the padding index
    if max_seq_length is not None and max_seq_length > positions:
        raise ValueError(
            f"--max_seq_length {max_seq_length} is longer than the {family} model's {positions} positions: instances "
            f"would index past its position embeddings. Use --max_seq_length {positions} or less."
        )
    convention = word_start_convention(tokenizer)
    if whole_word_mask and convention is None:
        raise ValueError(
            f"Whole-word masking needs the tokenizer's word convention (WordPiece '##' continuations, byte-level BPE "
            f"'Ġ' or SentencePiece '▁' word starts); {getattr(tokenizer, 'name_or_path', 'this tokenizer')!r} has "
            "none nsptask knows. Leave --whole_word_mask off to mask single tokens."
        )
    return ModelCapabilities(
        family=family,
        token_types=token_types,
        word_start=convention,
        padding_side=getattr(tokenizer, "padding_side", "right"),
        max_positions=positions,
    )


# The weights a fine-tuning class adds on top of an encoder (classifier, pooler, ModernBERT's head): new by design.
_HEAD_WEIGHTS = re.compile(r"(^|\.)(classifier|pre_classifier|pooler|score|head)\.")


def check_encoder_loaded(model_dir: str, loading: dict) -> None:
    """Stop when the checkpoint gave the fine-tuning model less than its whole encoder: the missing weights would
    start from random values and the run would measure nothing about the pretraining."""
    missing = [k for k in loading.get("missing_keys", []) if not _HEAD_WEIGHTS.search(k)]
    if missing:
        raise ValueError(
            f"{model_dir}: {len(missing)} encoder weights are missing from the checkpoint (e.g. {missing[:3]}); "
            "expected a checkpoint of the whole encoder (only the task head is new). Check --model_name_or_path: "
            "it must be a pretrained encoder of the same family and size."
        )


def task_model(
    model_name_or_path: str,
    token_task: bool,
    label_names: list[str],
    tokenizer,
    seed: int,
    max_seq_length: int | None = None,
    attn_implementation: str | None = None,
):
    """A checkpoint with a fresh task head (token or sequence classification, the given labels), initialised from
    `seed` (the same head for the same seed), checked to carry its whole encoder and to fit the tokenizer; with the
    model's :class:`ModelCapabilities` for the inputs.

    Returns:
        `(model, capabilities)`.
    """
    config = transformers.AutoConfig.from_pretrained(model_name_or_path)
    capabilities = model_capabilities(config, tokenizer, max_seq_length)
    config.num_labels = len(label_names)
    config.id2label = dict(enumerate(label_names))
    config.label2id = {v: k for k, v in config.id2label.items()}
    transformers.set_seed(seed)
    head = (
        transformers.AutoModelForTokenClassification if token_task else transformers.AutoModelForSequenceClassification
    )
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    model, loading = head.from_pretrained(
        model_name_or_path, config=config, ignore_mismatched_sizes=True, output_loading_info=True, **extra
    )
    check_encoder_loaded(model_name_or_path, loading)
    check_vocabulary(tokenizer, model)
    return with_no_split_modules(model), capabilities


# -- sparse MLM head ------------------------------------------------------------------------------------


class SparseMlmHead:
    """Compute a model's vocabulary projection only at the positions that carry an MLM label.

    A forward pre-hook on ``model.get_output_embeddings()`` (the decoder that every family applies last to the
    hidden states) keeps only the rows selected with :meth:`select` before each forward; the model's outputs then
    hold logits of shape ``(selected rows, vocabulary)`` instead of ``(batch, length, vocabulary)``. The row count
    is rounded up to a multiple of 64 (zero rows, dropped by :meth:`take`) so the allocator sees few sizes and
    memory does not fragment. The model's weights, names and ``forward`` are unchanged.

    Example:
        ```python
        >>> sparse = SparseMlmHead(model)  # doctest: +SKIP
        >>> sparse.select(labels != -100, attention_mask)  # doctest: +SKIP
        >>> logits = sparse.take(model(input_ids=ids, attention_mask=mask).logits)  # doctest: +SKIP
        ```
    """

    def __init__(self, model):
        self.model = model
        self._selection = None
        self._attention_mask = None
        self.used = False
        self._handle = model.get_output_embeddings().register_forward_pre_hook(self._hook)

    def select(self, selection, attention_mask=None) -> None:
        self._selection, self._attention_mask = selection, attention_mask
        self.used = False

    def clear(self) -> None:
        self._selection = self._attention_mask = None

    def _hook(self, module, args):
        if self._selection is None:
            return None
        hidden = args[0]
        selection = self._selection
        if hidden.shape[:-1] != selection.shape:
            if (
                self._attention_mask is not None
                and hidden.dim() == 2
                and hidden.shape[0] == int(self._attention_mask.sum())
            ):
                selection = selection[self._attention_mask.bool()]  # an unpadded model (tokens of all rows in a row)
            else:
                return None  # an unknown layout: the dense head runs
        rows = hidden[selection]
        self.count = rows.shape[0]
        padding = -rows.shape[0] % 64
        if padding:
            rows = torch.cat([rows, rows.new_zeros(padding, rows.shape[-1])])
        self.used = True
        return (rows, *args[1:])

    def take(self, logits):
        """The selected rows' logits, without the padding rows."""
        return logits[: self.count] if self.used else logits

    def remove(self) -> None:
        self._handle.remove()


def enable_sparse_mlm(model) -> SparseMlmHead | None:
    """Install a :class:`SparseMlmHead` on a model with an MLM head (`None` for a model without one)."""
    if model.get_output_embeddings() is None:
        return None
    return SparseMlmHead(model)


assert set(PRESETS) == set(PRESET_NAMES), "the presets and the options' preset names must agree"
