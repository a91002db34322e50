"""Tokenizers: a BERT-style WordPiece tokenizer trained locally, loading any other, and a fast path.

Nothing here touches the Hugging Face Hub unless the user passes a Hub id. The default tokenizer is
trained with the ``tokenizers`` library on the bundled corpus the first time it is asked for, and
cached under ``$NSPTASK_CACHE`` (default ``~/.cache/nsptask``) as a normal tokenizer directory that
``AutoTokenizer.from_pretrained`` loads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "train_wordpiece_tokenizer",
    "default_tokenizer",
    "load_tokenizer",
    "check_pair_tokenizer",
    "TokieEncoder",
    "cache_dir",
]

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def cache_dir() -> Path:
    """nsptask's cache folder: ``$NSPTASK_CACHE`` or ``~/.cache/nsptask``."""
    return Path(os.environ.get("NSPTASK_CACHE", Path.home() / ".cache" / "nsptask"))


def train_wordpiece_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 8000,
    lowercase: bool = True,
    min_frequency: int = 2,
    output_dir: str | os.PathLike | None = None,
    model_max_length: int = 512,
):
    """Train a BERT-style WordPiece tokenizer with the ``tokenizers`` library.

    BERT's normaliser (optional lowercasing and accent stripping, CJK characters split one per token),
    BERT's pre-tokeniser, ``##`` continuation pieces, the five BERT special tokens and BERT's
    ``[CLS] A [SEP] B [SEP]`` post-processor with token type ids.

    Args:
        texts (`Iterable[str]`): Training text, e.g. sentences.
        vocab_size (`int`, *optional*, defaults to 8000): Vocabulary size.
        lowercase (`bool`, *optional*, defaults to `True`): Uncased (lowercase, strip accents) or cased.
        min_frequency (`int`, *optional*, defaults to 2): Minimum pair frequency for a merge.
        output_dir (`str`, *optional*): Save the tokenizer there (``save_pretrained``).
        model_max_length (`int`, *optional*, defaults to 512): Stored in the tokenizer config.

    Returns:
        `transformers.PreTrainedTokenizerFast`

    Example:
        ```python
        >>> from nsptask.tokenization import train_wordpiece_tokenizer
        >>> tok = train_wordpiece_tokenizer(["Paris is the capital of France."] * 10, vocab_size=100)
        >>> tok("Paris", "France")["input_ids"][0] == tok.cls_token_id
        True
        ```
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=lowercase, lowercase=lowercase
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        continuing_subword_prefix="##",
        show_progress=False,
    )
    tokenizer.train_from_iterator(_iter_strings(texts), trainer=trainer)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
        do_lower_case=lowercase,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )
    if output_dir is not None:
        fast.save_pretrained(output_dir)
    return fast


def _iter_strings(texts: Iterable[str]) -> Iterator[str]:
    for text in texts:
        if text:
            yield text


BUNDLED_TOKENIZER = "tokenizer-wordpiece-8000-uncased"


def bundled_tokenizer_path() -> Path:
    """The default tokenizer shipped with the package (8k WordPiece, uncased, trained on the bundled corpus
    by ``scripts/make_bundled_corpus.py``)."""
    from importlib import resources

    return Path(str(resources.files("nsptask") / "data" / BUNDLED_TOKENIZER))


def default_tokenizer(vocab_size: int = 8000, lowercase: bool = True):
    """The default tokenizer: WordPiece trained on the bundled corpus.

    The 8k uncased one ships with the package, so every machine builds the same data: the ``tokenizers``
    trainer breaks frequency ties at the vocabulary cut-off differently from run to run (measured: 6 of 8,000
    tokens differ between some runs). Other sizes are trained at the first call and cached under
    ``$NSPTASK_CACHE``.

    Args:
        vocab_size (`int`, *optional*, defaults to 8000): Vocabulary size.
        lowercase (`bool`, *optional*, defaults to `True`): Uncased or cased.

    Returns:
        `transformers.PreTrainedTokenizerFast`
    """
    from transformers import AutoTokenizer

    from .corpus import iter_documents

    if (vocab_size, lowercase) == (8000, True) and (bundled_tokenizer_path() / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(str(bundled_tokenizer_path()))
    path = cache_dir() / "tokenizers" / f"enwiki-sample-wordpiece-{vocab_size}-{'uncased' if lowercase else 'cased'}"
    if not (path / "tokenizer.json").exists():
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        sentences = (s for doc in iter_documents() for s in doc["sentences"])
        train_wordpiece_tokenizer(sentences, vocab_size=vocab_size, lowercase=lowercase, output_dir=tmp)
        try:
            os.replace(tmp, path)  # atomic: concurrent processes never see half a tokenizer
        except OSError:  # another process won the race
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return AutoTokenizer.from_pretrained(str(path))


def load_tokenizer(name_or_path: Any = None, vocab_size: int = 8000, lowercase: bool = True):
    """Return a tokenizer: the default one (``None``), a tokenizer object, or a local path / Hub id.

    Args:
        name_or_path (`str`, `PreTrainedTokenizerBase` or `None`): What to load.
        vocab_size, lowercase: For the default tokenizer only.
    """
    if name_or_path is None:
        return default_tokenizer(vocab_size=vocab_size, lowercase=lowercase)
    if not isinstance(name_or_path, (str, os.PathLike)):
        return name_or_path
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(os.fspath(name_or_path))


def check_pair_tokenizer(tokenizer, needs_pair: bool = True) -> None:
    """Raise a clear error if a tokenizer lacks what nsptask's instances need.

    Pair formats need a classification token and a separator ([CLS]/[SEP] or <s>/</s>); every
    format needs a fast tokenizer (batched Rust tokenization).
    """
    name = getattr(tokenizer, "name_or_path", type(tokenizer).__name__)
    missing = [t for t in ("cls_token", "sep_token") if getattr(tokenizer, t + "_id", None) is None]
    if missing:
        raise ValueError(
            f"Tokenizer {name!r} has no {' or '.join(missing)} (expected [CLS] and [SEP], or <s> and </s>); "
            f"found special tokens {getattr(tokenizer, 'all_special_tokens', [])}. "
            + (
                "Sentence-pair instances start with a classification token and separate segments with a separator. "
                if needs_pair
                else "Packed instances are framed by them. "
            )
            + "Use a BERT-style tokenizer, or set tokenizer.cls_token / tokenizer.sep_token and add them to "
            "the vocabulary."
        )
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"Tokenizer {name!r} is a slow (Python) tokenizer; nsptask tokenizes in batches with a fast "
            "(Rust `tokenizers`) one. Load it with AutoTokenizer.from_pretrained(..., use_fast=True)."
        )


class TokieEncoder:
    """Optional fast path: encode with `tokie <https://pypi.org/project/tokie/>`_ from the same
    ``tokenizer.json``. Used only when asked for (``tokenizer_backend="tokie"``); a parity test checks
    that it gives exactly the ids of the standard tokenizer on the bundled corpus.

    Args:
        tokenizer (`PreTrainedTokenizerFast`): The standard tokenizer to mirror.
    """

    def __init__(self, tokenizer):
        import tempfile

        import tokie

        from .preprocessing import plain_backend

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "tokenizer.json")
            plain_backend(tokenizer).save(path)  # without the truncation of earlier calls
            self._tokenizer = tokie.Tokenizer.from_json(path)

    def encode_flat(self, texts: list[str]):
        """Return ``(ids, lengths)`` numpy arrays for texts encoded without special tokens."""
        return self._tokenizer.encode_batch_flat(texts, add_special_tokens=False)
