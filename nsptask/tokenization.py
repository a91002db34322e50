"""Tokenizers: BERT-style WordPiece, byte-level BPE (RoBERTa) and SentencePiece-style Unigram (ALBERT,
DeBERTa-v3) tokenizers trained locally on a corpus, loading any other, and a fast path.

Nothing here touches the Hugging Face Hub unless the user passes a Hub id. The default tokenizer is
an 8k WordPiece vocabulary trained on the bundled corpus and shipped with the package; ``nsptask
tokenizer`` (:func:`train_tokenizer`) trains one on the user's corpus, Chinese included (CJK characters cut
apart, as BERT's Chinese model does; whole-word masking finds Chinese words with jieba).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator
from importlib import resources
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import transformers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from .arguments import FAMILY_TOKENIZERS
from .corpus import iter_documents

logger = logging.getLogger(__name__)

__all__ = [
    "train_wordpiece_tokenizer",
    "train_tokenizer",
    "TOKENIZER_MODELS",
    "default_tokenizer",
    "load_tokenizer",
    "check_pair_tokenizer",
    "TokieEncoder",
    "plain_backend",
    "needs_prefix_space",
    "encode_flat",
    "choose_backend",
    "word_start_convention",
    "continuation_flags",
    "cache_dir",
]

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TOKENIZER_MODELS = ("wordpiece", "bpe", "unigram")
# CJK ideographs (and their extensions and compatibility forms): one token each, as BERT's Chinese model.
_CJK_PATTERN = "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002f800-\U0002fa1f]"


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
    return train_tokenizer(
        texts,
        model="wordpiece",
        vocab_size=vocab_size,
        lowercase=lowercase,
        min_frequency=min_frequency,
        output_dir=output_dir,
        model_max_length=model_max_length,
    )


def _untrained(model: str, vocab_size: int, lowercase: bool, cjk: bool, min_frequency: int):
    """The untrained tokenizer of a family (normaliser, pre-tokeniser, model, decoder), its trainer, special tokens
    and model input names."""
    isolate_cjk = pre_tokenizers.Split(Regex(_CJK_PATTERN), behavior="isolated")
    if model == "wordpiece":
        specials = dict(unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
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
        tokenizer.decoder = decoders.WordPiece(prefix="##")
        input_names = ["input_ids", "token_type_ids", "attention_mask"]
    elif model == "bpe":
        specials = dict(
            bos_token="<s>",
            eos_token="</s>",
            unk_token="<unk>",
            sep_token="</s>",
            cls_token="<s>",
            pad_token="<pad>",
            mask_token=AddedToken("<mask>", lstrip=True, special=True),
        )
        tokenizer = Tokenizer(models.BPE())
        if lowercase:
            tokenizer.normalizer = normalizers.Lowercase()
        byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([isolate_cjk, byte_level]) if cjk else byte_level
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.decoder = decoders.ByteLevel()
        input_names = ["input_ids", "attention_mask"]
    else:
        specials = dict(unk_token="<unk>", pad_token="<pad>", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
        tokenizer = Tokenizer(models.Unigram())
        steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
        tokenizer.normalizer = normalizers.Sequence(steps)
        metaspace = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first" if cjk else "always")
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([isolate_cjk, metaspace]) if cjk else metaspace
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size,
            special_tokens=["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"],
            unk_token="<unk>",
            show_progress=False,
        )
        tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first" if cjk else "always")
        input_names = ["input_ids", "token_type_ids", "attention_mask"]
    return tokenizer, trainer, specials, input_names


def train_tokenizer(
    texts: Iterable[str],
    model: str = "wordpiece",
    vocab_size: int = 8000,
    lowercase: bool | None = None,
    language: str = "en",
    min_frequency: int = 2,
    output_dir: str | os.PathLike | None = None,
    model_max_length: int = 512,
):
    """Train a tokenizer of one of the three families encoders use, with the ``tokenizers`` library.

    | model | like | pieces | special tokens | pair template |
    |---|---|---|---|---|
    | ``wordpiece`` | BERT, DistilBERT | ``##`` continuations, BERT normaliser | ``[PAD] [UNK] [CLS] [SEP] [MASK]`` | ``[CLS] A [SEP] B [SEP]``, types 0/1 |
    | ``bpe`` | RoBERTa, ModernBERT | byte-level, ``Ġ`` word starts, no unknown token | ``<s> <pad> </s> <unk> <mask>`` | ``<s> A </s></s> B </s>``, types 0 |
    | ``unigram`` | ALBERT, DeBERTa-v3 (SentencePiece) | ``▁`` word starts, NFKC | ``<pad> <unk> [CLS] [SEP] [MASK]`` | ``[CLS] A [SEP] B [SEP]``, types 0/1 |

    With ``language="zh"`` (or ``ja``) CJK characters are cut apart before the model (BERT's Chinese model does
    this; whole-word masking then finds words with jieba): with ``wordpiece`` and ``unigram`` every CJK character
    is one token; with ``bpe`` no token spans two characters, but a character outside the learnt merges is
    spelled as its UTF-8 bytes.

    Args:
        texts (`Iterable[str]`): Training text, e.g. the corpus's sentences.
        model (`str`, *optional*, defaults to `"wordpiece"`): ``wordpiece``, ``bpe`` or ``unigram``.
        vocab_size (`int`, *optional*, defaults to 8000): Vocabulary size.
        lowercase (`bool`, *optional*): Lowercase the text (WordPiece also strips accents). Default: `True` for
            WordPiece and Unigram (BERT-uncased, ALBERT), `False` for BPE (RoBERTa is cased).
        language (`str`, *optional*, defaults to `"en"`): ``zh``/``ja`` split CJK characters one per token.
        min_frequency (`int`, *optional*, defaults to 2): Minimum frequency of a merge (WordPiece, BPE).
        output_dir (`str`, *optional*): Save the tokenizer there (``save_pretrained``).
        model_max_length (`int`, *optional*, defaults to 512): Stored in the tokenizer config.

    Returns:
        `transformers.PreTrainedTokenizerFast`

    Example:
        ```python
        >>> from nsptask.tokenization import train_tokenizer
        >>> tok = train_tokenizer(["Paris is the capital of France."] * 10, model="bpe", vocab_size=300)
        >>> tok.convert_ids_to_tokens(tok(" Paris")["input_ids"])[1]
        'ĠParis'
        ```
    """
    if model not in TOKENIZER_MODELS:
        raise ValueError(f"Unknown tokenizer model {model!r}: expected one of {TOKENIZER_MODELS}")
    if lowercase is None:
        lowercase = model != "bpe"
    cjk = language.split("-")[0].lower() in ("zh", "ja")
    tokenizer, trainer, specials, input_names = _untrained(model, vocab_size, lowercase, cjk, min_frequency)
    tokenizer.train_from_iterator(_iter_strings(texts), trainer=trainer)
    cls, sep = specials["cls_token"], specials["sep_token"]
    cls_id, sep_id = tokenizer.token_to_id(cls), tokenizer.token_to_id(sep)
    if model == "bpe":
        tokenizer.post_processor = processors.RobertaProcessing((sep, sep_id), (cls, cls_id), add_prefix_space=False)
    else:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{cls}:0 $A:0 {sep}:0",
            pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
            special_tokens=[(cls, cls_id), (sep, sep_id)],
        )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        model_max_length=model_max_length,
        model_input_names=input_names,
        **({"do_lower_case": lowercase} if model == "wordpiece" else {}),
        **specials,
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
    if (vocab_size, lowercase) == (8000, True) and (bundled_tokenizer_path() / "tokenizer.json").exists():
        return _from_pretrained(str(bundled_tokenizer_path()))
    path = cache_dir() / "tokenizers" / f"enwiki-sample-wordpiece-{vocab_size}-{'uncased' if lowercase else 'cased'}"
    if not (path / "tokenizer.json").exists():
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        sentences = (s for doc in iter_documents() for s in doc["sentences"])
        train_wordpiece_tokenizer(sentences, vocab_size=vocab_size, lowercase=lowercase, output_dir=tmp)
        try:
            os.replace(tmp, path)  # atomic: concurrent processes never see half a tokenizer
        except OSError:  # another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
    return _from_pretrained(str(path))


def _from_pretrained(name_or_path: str):
    """Load a tokenizer. A local folder whose ``tokenizer_config.json`` names a fast tokenizer class is loaded
    with that class directly: ``AutoTokenizer`` imports torch (through the model configs), which building data
    does not need."""
    config_file = Path(name_or_path) / "tokenizer_config.json"
    if config_file.is_file() and (Path(name_or_path) / "tokenizer.json").is_file():
        name = json.loads(config_file.read_text()).get("tokenizer_class") or ""
        cls = getattr(transformers, name, None) if name else None
        if cls is not None and (name.endswith("Fast") or name == "TokenizersBackend"):
            return cls.from_pretrained(name_or_path)
    return transformers.AutoTokenizer.from_pretrained(name_or_path)


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
    return _from_pretrained(os.fspath(name_or_path))


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


_PLAIN_BACKENDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def plain_backend(tokenizer: Any) -> Tokenizer:
    """A copy of the tokenizer's Rust backend with truncation and padding off.

    A fast tokenizer keeps the truncation and padding of its last ``tokenizer(..., truncation=True,
    max_length=...)`` call in its backend; encoding corpus sentences with that backend directly would cut
    them silently. The copy is made once per tokenizer.
    """
    backend = _PLAIN_BACKENDS.get(tokenizer)
    if backend is None:
        backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        backend.no_truncation()
        backend.no_padding()
        _PLAIN_BACKENDS[tokenizer] = backend
    return backend


_PREFIX_SPACE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def needs_prefix_space(tokenizer: Any) -> bool:
    """Whether a word gets other tokens after a space than at the start of the text (byte-level BPE without
    ``add_prefix_space``: ``'ĠThe'`` vs ``'The'``). Such a tokenizer encodes a sentence that follows other
    text with its leading space, as it would see it in running text."""
    cached = _PREFIX_SPACE.get(tokenizer)
    if cached is None:
        backend = plain_backend(tokenizer)
        probe = "The"
        cached = (
            backend.encode(" " + probe, add_special_tokens=False).ids
            != backend.encode(probe, add_special_tokens=False).ids
        )
        _PREFIX_SPACE[tokenizer] = cached
    return cached


class TokieEncoder:
    """The fast path: encode with `tokie <https://pypi.org/project/tokie/>`_ from the same ``tokenizer.json``.
    :func:`choose_backend` uses it only where its ids equal the tokenizers library's on a sample of the corpus
    (checked at the start of every build); a parity test checks the whole bundled corpus.

    Args:
        tokenizer (`PreTrainedTokenizerFast`): The standard tokenizer to mirror.
    """

    def __init__(self, tokenizer):
        # tokie is a base dependency only where it ships wheels (setup.cfg): elsewhere it is missing, and
        # choose_backend falls back to the tokenizers library.
        import tokie

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "tokenizer.json")
            plain_backend(tokenizer).save(path)  # without the truncation of earlier calls
            self._tokenizer = tokie.Tokenizer.from_json(path)

    def encode_flat(self, texts: list[str]):
        """Return ``(ids, lengths)`` numpy arrays for texts encoded without special tokens."""
        return self._tokenizer.encode_batch_flat(texts, add_special_tokens=False)


_TOKIE_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _tokie(tokenizer) -> TokieEncoder:
    encoder = _TOKIE_CACHE.get(tokenizer)
    if encoder is None:
        encoder = _TOKIE_CACHE[tokenizer] = TokieEncoder(tokenizer)
    return encoder


_CHOSEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def reset_backend_choice(tokenizer: Any) -> None:
    """Forget the ``auto`` backend's choice for a tokenizer: the next batch is checked again (every build starts
    with a parity check on its own first sentences)."""
    _CHOSEN.pop(tokenizer, None)


def encode_flat(tokenizer: Any, sentences: list[str], backend: str = "hf") -> tuple[np.ndarray, np.ndarray]:
    """Flat token ids and per-sentence lengths of `sentences`, without special tokens, with the ``hf`` (the
    tokenizers library) or ``tokie`` backend; ``auto`` is tokie where its ids equal the tokenizers library's on the
    first batch it encodes for this tokenizer (:func:`choose_backend`, once per process and build), else hf."""
    if not sentences:
        return np.zeros(0, np.int32), np.zeros(0, np.int64)
    if backend in ("auto", "tokie-checked"):
        if tokenizer not in _CHOSEN:
            _CHOSEN[tokenizer] = choose_backend(tokenizer, sentences[:2000], required=backend == "tokie-checked")
        backend = _CHOSEN[tokenizer]
    if backend == "tokie":
        ids, lengths = _tokie(tokenizer).encode_flat(sentences)
        return ids.astype(np.int32), lengths.astype(np.int64)
    encodings = plain_backend(tokenizer).encode_batch_fast(sentences, add_special_tokens=False)
    id_lists = [e.ids for e in encodings]
    lengths = np.fromiter(map(len, id_lists), dtype=np.int64, count=len(id_lists))
    ids = np.fromiter(chain.from_iterable(id_lists), dtype=np.int32, count=int(lengths.sum()))
    return ids, lengths


def choose_backend(tokenizer: Any, sentences: list[str], required: bool = False) -> str:
    """``"tokie"`` when tokie is installed, loads the tokenizer and gives exactly the tokenizers library's ids on
    `sentences` (a sample of the corpus), else ``"hf"``, with one log line saying why. With `required` (the user
    asked for tokie), a difference is an error instead.

    Example:
        ```python
        >>> from nsptask.tokenization import choose_backend, default_tokenizer
        >>> choose_backend(default_tokenizer(), ["Paris is the capital of France."])
        'tokie'
        ```
    """
    texts = list(sentences)
    try:
        fast_ids, fast_lengths = encode_flat(tokenizer, texts, "tokie")
    except Exception as err:  # not installed on this platform, or a tokenizer tokie cannot load
        reason = f"tokie cannot encode with this tokenizer ({type(err).__name__}: {err})"
        if required:
            raise ValueError(f"--tokenizer_backend tokie: {reason}. Use --tokenizer_backend hf or auto.") from err
        logger.info("nsptask: tokenizing with the tokenizers library: %s.", reason)
        return "hf"
    ids, lengths = encode_flat(tokenizer, texts, "hf")
    if not (np.array_equal(lengths, fast_lengths) and np.array_equal(ids, fast_ids)):
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        fast_bounds = np.concatenate([[0], np.cumsum(fast_lengths)])
        first = next(
            i
            for i in range(len(texts))
            if lengths[i] != fast_lengths[i]
            or not np.array_equal(ids[bounds[i] : bounds[i + 1]], fast_ids[fast_bounds[i] : fast_bounds[i + 1]])
        )
        reason = f"tokie's ids differ from the tokenizers library's on sentence {first + 1} of the sample ({texts[first][:60]!r})"
        if required:
            raise ValueError(f"--tokenizer_backend tokie: {reason}. Use --tokenizer_backend hf or auto.")
        logger.warning("nsptask: tokenizing with the tokenizers library: %s.", reason)
        return "hf"
    logger.info("nsptask: tokenizing with tokie (its ids equal the tokenizers library's on %d sentences).", len(texts))
    return "tokie"


def word_start_convention(tokenizer) -> tuple[str, str] | None:
    """How the tokenizer marks words, read from its ``tokenizer.json``: WordPiece continuation prefix, byte-level
    BPE's ``Ġ`` word starts, SentencePiece's ``▁`` word starts."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    model = state.get("model") or {}
    if model.get("type") == "WordPiece":
        return ("continues", model.get("continuing_subword_prefix") or "##")

    def walk(node):
        if not node:
            return
        yield node
        for child in node.get("pretokenizers", []) or []:
            yield from walk(child)

    for node in walk(state.get("pre_tokenizer")):
        if node.get("type") == "ByteLevel":
            return ("starts", "\u0120")
        if node.get("type") == "Metaspace":
            return ("starts", node.get("replacement") or "\u2581")
    if model.get("continuing_subword_prefix"):
        return ("continues", model["continuing_subword_prefix"])
    return None


_CONTINUES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def continuation_flags(tokenizer) -> np.ndarray:
    """For every token id of the vocabulary, whether it continues the word of the token before it (a WordPiece
    ``##`` piece; for byte-level BPE and SentencePiece, a piece without the word-start mark); special tokens never
    do. Cached per tokenizer."""
    flags = _CONTINUES.get(tokenizer)
    if flags is None:
        tokens = [t or "" for t in tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))]
        kind, mark = word_start_convention(tokenizer) or ("continues", "\0")
        flags = np.array([t.startswith(mark) == (kind == "continues") for t in tokens], dtype=bool)
        flags[[i for i in tokenizer.all_special_ids if i is not None and i < len(flags)]] = False
        _CONTINUES[tokenizer] = flags
    return flags


def train_corpus_tokenizer(data, args) -> dict:
    """``nsptask tokenizer``: train a tokenizer on the corpus of the data options (`data`, a
    :class:`~nsptask.arguments.DataArguments`) with the options of `args` (a
    :class:`~nsptask.arguments.TokenizerArguments`), save it, and report its unknown-token rate on the corpus."""
    model = args.tokenizer_model or FAMILY_TOKENIZERS[args.model_family]

    def sentences():
        for doc in iter_documents(data.source, data.reader):
            yield from doc["sentences"]

    tokenizer = train_tokenizer(
        sentences(),
        model=model,
        vocab_size=args.vocab_size,
        lowercase=args.lowercase,
        language=data.reader.language,
        min_frequency=args.min_frequency,
        output_dir=args.output_dir,
    )
    sample = []
    for sentence in sentences():
        sample.append(sentence)
        if len(sample) == 20000:
            break
    ids, _ = encode_flat(tokenizer, sample, "hf")
    unknown = int((ids == tokenizer.unk_token_id).sum()) if tokenizer.unk_token_id is not None else 0
    return {
        "output_dir": args.output_dir,
        "model": model,
        "vocab_size": len(tokenizer),
        "language": data.reader.language,
        "sentences_checked": len(sample),
        "unknown_token_rate": round(unknown / max(len(ids), 1), 5),
        "tokens_per_sentence": round(len(ids) / max(len(sample), 1), 2),
    }
