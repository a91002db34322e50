"""The pretraining collator: dynamic padding and dynamic masking, with BERT's masking rules, vectorised over the batch.

Padding goes to the longest sequence of the batch, a multiple of 8, on the tokenizer's padding side (labels follow
it). Masking differs from ``transformers.DataCollatorForLanguageModeling`` where the reference implementations and
the issue tracker say it should:

- two budgets: transformers' independent Bernoulli(p) per token (``masking="bernoulli"``) and BERT's exact
  ``min(max_predictions_per_seq, max(1, round(p * n)))`` positions per sequence (``masking="exact"``);
- random replacements are drawn only from the non-special vocabulary (never ``[CLS]``, ``[SEP]``,
  ``[PAD]``, ``[MASK]``);
- masks are drawn per occurrence, from (seed, epoch, the instance's index in its dataset, the position in the
  sequence): the column ``instance_index`` that :func:`nsptask.pretrain` adds. A new mask every epoch and for every
  copy of a duplicated instance, yet the same mask for a given instance and epoch whatever the batch, the process
  count, the data loader worker, gradient accumulation or resumption. Features without that column are masked by
  their content instead;
- whole-word masking with the tokenizer's own word convention (WordPiece ``##`` continuations, byte-level BPE
  ``Ġ`` and SentencePiece ``▁`` word starts), and for Chinese, whose words (runs of single-character tokens)
  are found by the ``jieba`` segmenter.

The random numbers are counter-based (a SplitMix64 hash of seed, epoch, index, position and purpose), so a whole
batch is drawn with a few numpy operations and no per-sequence generator: ``benchmarks/bench_collator.py`` measures
it against the per-sequence collator it replaced and against transformers' ``DataCollatorForLanguageModeling``.
The epoch lives in shared memory (:attr:`epoch`), so data loader worker processes (``--dataloader_num_workers``,
persistent or not) mask with the epoch the Trainer is in.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import torch

from .preprocessing import _splitmix64_array
from .tokenization import word_start_convention

__all__ = ["PretrainingCollator", "INDEX_COLUMN"]

_MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")
INDEX_COLUMN = "instance_index"
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
# The purposes of the random numbers of one position: which tokens are chosen, how each chosen one is replaced, and
# by which random token.
_CHOOSE, _REPLACE, _RANDOM_TOKEN = np.uint64(0x63686F6F), np.uint64(0x7265706C), np.uint64(0x746F6B65)


def _is_cjk(char: str) -> bool:
    cp = ord(char)
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _strip_mark(token: str) -> str:
    for mark in ("##", "\u0120", "\u2581"):
        if token.startswith(mark):
            return token[len(mark) :]
    return token


def _unit(hashes: np.ndarray) -> np.ndarray:
    """64-bit hashes as uniform numbers in [0, 1) (their top 53 bits)."""
    return (hashes >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _cell_hashes(row_keys: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """One 64-bit hash per (row, position in the unpadded sequence): the root of every random number of a cell.
    `positions` is one row of positions shared by every row (right padding) or one per row (left padding)."""
    with np.errstate(over="ignore"):
        position_hashes = _splitmix64_array(positions.astype(np.uint64) * _GOLDEN ^ _CHOOSE)
    if position_hashes.ndim == 1:
        position_hashes = position_hashes[None, :]
    return _splitmix64_array(row_keys[:, None] ^ position_hashes)


@dataclass
class PretrainingCollator:
    """Pad a batch and mask it for masked-language modelling; sentence labels pass through.

    Args:
        tokenizer (`PreTrainedTokenizerBase`): The tokenizer the instances were built with.
        mlm (`bool`, *optional*, defaults to `True`): Mask tokens and add ``labels``; `False` for the
            sentence objectives alone.
        mlm_probability (`float`, *optional*, defaults to 0.15): Share of tokens to predict.
        masking (`str`, *optional*, defaults to `"bernoulli"`): ``"bernoulli"`` (transformers) or ``"exact"`` (BERT).
        max_predictions_per_seq (`int`, *optional*): Cap of the exact budget (Google: 20 at length 128).
        whole_word_mask (`bool`, *optional*, defaults to `False`): Mask whole words.
        mask_replace_prob (`float`, *optional*, defaults to 0.8): Share of chosen tokens set to the mask token.
        random_replace_prob (`float`, *optional*, defaults to 0.1): Share set to a random non-special token.
        pad_to_multiple_of (`int`, *optional*, defaults to 8): Pad lengths to a multiple of this.
        seed (`int`, *optional*, defaults to 42): Masking seed.
        token_types (`str`, *optional*, defaults to `"keep"`): ``"drop"`` leaves ``token_type_ids`` out (models
            with one token type or none, see :func:`nsptask.modeling.model_capabilities`).
        length_column (`str`, *optional*, defaults to `"length"`): The lengths ``group_by_length`` reads
            (``TrainingArguments.length_column_name``): not passed to the model.

    Example:
        ```python
        >>> from nsptask import PretrainingCollator, default_tokenizer
        >>> tok = default_tokenizer()
        >>> collate = PretrainingCollator(tok, masking="exact")
        >>> batch = collate([{**tok("The cat sat.", "It purred."), "next_sentence_label": 0, "instance_index": 0}])
        >>> sorted(batch)
        ['attention_mask', 'input_ids', 'labels', 'next_sentence_label', 'token_type_ids']
        ```
    """

    tokenizer: Any
    mlm: bool = True
    mlm_probability: float = 0.15
    masking: str = "bernoulli"
    max_predictions_per_seq: int | None = None
    whole_word_mask: bool = False
    mask_replace_prob: float = 0.8
    random_replace_prob: float = 0.1
    pad_to_multiple_of: int | None = 8
    seed: int = 42
    token_types: str = "keep"
    length_column: str = "length"
    counts: dict = field(default_factory=lambda: {"tokens": 0, "padding": 0, "masked": 0, "sequences": 0}, repr=False)

    def __post_init__(self):
        if self.masking not in ("bernoulli", "exact"):
            raise ValueError(f"masking must be 'bernoulli' or 'exact', got {self.masking!r}")
        if not 0 < self.mlm_probability < 1:
            raise ValueError(f"mlm_probability must lie in (0, 1), got {self.mlm_probability}")
        if self.mask_replace_prob + self.random_replace_prob > 1:
            raise ValueError("mask_replace_prob + random_replace_prob must not exceed 1")
        if self.token_types not in ("keep", "drop"):
            raise ValueError(f"token_types must be 'keep' or 'drop', got {self.token_types!r}")
        if self.mlm and self.tokenizer.mask_token_id is None:
            raise ValueError(
                f"Tokenizer {getattr(self.tokenizer, 'name_or_path', '')!r} has no mask token; masked-language "
                "modelling needs one. Use a BERT/RoBERTa-style tokenizer or set tokenizer.mask_token."
            )
        # Shared memory: data loader workers (forked or spawned) read the epoch the main process sets.
        self._epoch = multiprocessing.get_context("spawn").Value("q", 0, lock=False)
        vocab_size = len(self.tokenizer)
        self._special = np.zeros(vocab_size, dtype=bool)
        self._special[[i for i in self.tokenizer.all_special_ids if i is not None and i < vocab_size]] = True
        self._replacements = np.flatnonzero(~self._special)
        tokens = self.tokenizer.convert_ids_to_tokens(list(range(vocab_size)))
        tokens = [t if t is not None else "" for t in tokens]
        self._tokens = tokens
        convention = word_start_convention(self.tokenizer)
        if self.whole_word_mask and convention is None:
            raise ValueError(
                "Whole-word masking needs the tokenizer's word convention (WordPiece '##' continuations, byte-level "
                "BPE 'Ġ' or SentencePiece '▁' word starts), and this tokenizer has none nsptask knows."
            )
        bare = [_strip_mark(t) for t in tokens]
        self._cjk = np.array([len(b) == 1 and _is_cjk(b) for b in bare], dtype=bool)
        kind, mark = convention or ("continues", "\0")
        if kind == "continues":
            continues = [t.startswith(mark) for t in tokens]
        else:
            continues = [not t.startswith(mark) for t in tokens]
        # A CJK character is a word of its own here; jieba joins characters into words afterwards.
        self._continuation = np.array(continues, dtype=bool) & ~self._cjk & ~self._special
        self._left = getattr(self.tokenizer, "padding_side", "right") == "left"
        self._pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self._pad_type = getattr(self.tokenizer, "pad_token_type_id", 0) or 0

    @property
    def epoch(self) -> int:
        """The epoch the masks are drawn for (shared with data loader workers)."""
        return int(self._epoch.value)

    @epoch.setter
    def epoch(self, value: int) -> None:
        self._epoch.value = int(value)

    # -- random numbers ---------------------------------------------------------------------------------
    def _row_keys(self, rows: list, indices: list[int | None]) -> np.ndarray:
        """One 64-bit key per sequence: of (seed, epoch, its index), or of (seed, epoch, its tokens) without one."""
        base = _splitmix64_array(np.array([self.seed], dtype=np.uint64) ^ np.uint64(0x6D61736B))
        base = _splitmix64_array(base ^ np.uint64(self.epoch))[0]
        if all(index is not None for index in indices):
            keys = np.asarray(indices, dtype=np.int64).astype(np.uint64)
        else:
            keys = np.empty(len(rows), dtype=np.uint64)
            for i, (ids, index) in enumerate(zip(rows, indices)):
                if index is None:
                    digest = hashlib.blake2b(np.asarray(ids, np.int32).tobytes(), digest_size=8, key=b"nsptask-mask")
                    keys[i] = np.uint64(int.from_bytes(digest.digest(), "little")) ^ np.uint64(1 << 63)
                else:
                    keys[i] = np.uint64(int(index))
        return _splitmix64_array(keys ^ base)

    # -- whole words ------------------------------------------------------------------------------------
    def _groups(self, ids: np.ndarray, candidates: np.ndarray) -> list[np.ndarray]:
        """Positions that are masked together: single tokens, or whole words."""
        if not self.whole_word_mask:
            return [candidates[i : i + 1] for i in range(len(candidates))]
        groups: list[list[int]] = []
        previous = -2
        for pos in candidates.tolist():
            if groups and previous == pos - 1 and self._continuation[ids[pos]]:
                groups[-1].append(pos)
            else:
                groups.append([pos])
            previous = pos
        if self._cjk[ids[candidates]].any():
            groups = self._chinese_words(ids, groups)
        return [np.array(g) for g in groups]

    def _chinese_words(self, ids: np.ndarray, groups: list[list[int]]) -> list[list[int]]:
        """Merge runs of single Chinese characters into the words jieba finds in them."""
        try:
            import jieba
        except ImportError as err:
            raise ImportError("Whole-word masking of Chinese needs jieba: pip install 'nsptask[chinese]'") from err
        out: list[list[int]] = []
        run: list[int] = []

        def flush():
            if not run:
                return
            text = "".join(self._tokens[ids[p]].lstrip("\u2581").removeprefix("##") for p in run)
            start = 0
            for word in jieba.lcut(text, HMM=False):
                out.append(run[start : start + len(word)])
                start += len(word)
            run.clear()

        for group in groups:
            if len(group) == 1 and self._cjk[ids[group[0]]] and (not run or run[-1] == group[0] - 1):
                run.append(group[0])
                continue
            flush()
            if len(group) == 1 and self._cjk[ids[group[0]]]:
                run.append(group[0])
            else:
                out.append(group)
        flush()
        return out

    def _whole_word_choice(self, ids: np.ndarray, choose: np.ndarray) -> np.ndarray:
        """Chosen positions of one unpadded sequence with whole-word masking: a word is drawn with the number of its
        first position; the exact budget takes words in that order, skipping one that would overflow (Google)."""
        groups = self._groups(ids, np.flatnonzero(~self._special[ids]))
        chosen = np.zeros(len(ids), dtype=bool)
        if self.masking == "bernoulli":
            for group in groups:
                if choose[group[0]] < self.mlm_probability:
                    chosen[group] = True
            return chosen
        budget = self._budget(np.array([len(ids)]))[0]
        count = 0
        for k in np.argsort([choose[g[0]] for g in groups], kind="stable"):
            if count >= budget:
                break
            if count + len(groups[k]) > budget:
                continue
            chosen[groups[k]] = True
            count += len(groups[k])
        return chosen

    def _budget(self, lengths: np.ndarray) -> np.ndarray:
        budget = np.maximum(1, np.round(lengths * self.mlm_probability)).astype(np.int64)
        if self.max_predictions_per_seq is not None:
            budget = np.minimum(budget, self.max_predictions_per_seq)
        return budget

    # -- the batch ------------------------------------------------------------------------------------------
    def _mask(self, ids: np.ndarray, attention: np.ndarray, positions: np.ndarray, keys: np.ndarray, rows):
        """Masked ids and labels (-100 where nothing is predicted) of a padded batch."""
        hashes = _cell_hashes(keys, positions)
        choose = _unit(hashes)
        candidates = attention & ~self._special[ids]
        if self.whole_word_mask:
            chosen = np.zeros_like(candidates)
            for b, row in enumerate(rows):
                cols = np.flatnonzero(attention[b])
                chosen[b, cols] = self._whole_word_choice(np.asarray(row, np.int64), choose[b, cols])
        elif self.masking == "bernoulli":
            chosen = candidates & (choose < self.mlm_probability)
        else:
            # The budget's smallest numbers among the candidates (53-bit numbers: no ties in practice).
            keyed = np.where(candidates, choose, np.inf)
            budget = np.minimum(self._budget(attention.sum(1)), candidates.sum(1))
            threshold = np.sort(keyed, axis=1)[np.arange(len(ids)), np.maximum(budget - 1, 0)]
            chosen = candidates & (keyed <= threshold[:, None]) & (budget > 0)[:, None]
        labels = np.where(chosen, ids, -100)
        masked = ids.copy()
        at_row, at_col = np.nonzero(chosen)
        chosen_hashes = hashes[at_row, at_col]
        replace = _unit(_splitmix64_array(chosen_hashes ^ _REPLACE))
        to_mask = replace < self.mask_replace_prob
        to_random = ~to_mask & (replace < self.mask_replace_prob + self.random_replace_prob)
        draws = _unit(_splitmix64_array(chosen_hashes[to_random] ^ _RANDOM_TOKEN)) * len(self._replacements)
        masked[at_row[to_mask], at_col[to_mask]] = self.tokenizer.mask_token_id
        tokens = self._replacements[np.minimum(draws.astype(np.int64), len(self._replacements) - 1)]
        masked[at_row[to_random], at_col[to_random]] = tokens
        return masked, labels

    def mask_sequence(self, ids: np.ndarray, index: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return (masked ids, labels with -100 where nothing is predicted) for one unpadded sequence; `index`
        (the instance's position in its dataset) seeds the draw, else the tokens do."""
        ids = np.asarray(ids, dtype=np.int64)
        keys = self._row_keys([ids], [index])
        masked, labels = self._mask(ids[None, :], np.ones((1, len(ids)), bool), np.arange(len(ids)), keys, [ids])
        return masked[0], labels[0]

    def _pad(self, rows: list, value: int, length: int, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows padded to `length` on the tokenizer's side; with the attention mask and each cell's position in its
        unpadded sequence."""
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        out = np.full((len(rows), length), value, dtype=dtype)
        flat = np.fromiter(chain.from_iterable(rows), dtype=dtype, count=int(lengths.sum()))
        row_of = np.repeat(np.arange(len(rows)), lengths)
        position = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        if self._left:
            starts = length - lengths
            out[row_of, position + starts[row_of]] = flat
            positions = np.arange(length)[None, :] - starts[:, None]
            return out, (positions >= 0) & (positions < lengths[:, None]), positions
        out[row_of, position] = flat
        positions = np.arange(length)
        return out, positions[None, :] < lengths[:, None], positions

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        rows = [f["input_ids"] for f in features]
        longest = max(len(r) for r in rows)
        multiple = self.pad_to_multiple_of or 1
        length = -(-longest // multiple) * multiple
        ids, attention, positions = self._pad(rows, self._pad_id, length, np.int64)
        batch: dict[str, Any] = {}
        if self.mlm:
            keys = self._row_keys(rows, [f.get(INDEX_COLUMN) for f in features])
            ids, labels = self._mask(ids, attention, positions, keys, rows)
            batch["labels"] = torch.from_numpy(labels)
            self.counts["masked"] += int((labels != -100).sum())
        batch["input_ids"] = torch.from_numpy(ids)
        if self.token_types == "keep" and "token_type_ids" in features[0]:
            types, _, _ = self._pad([f["token_type_ids"] for f in features], self._pad_type, length, np.int64)
            batch["token_type_ids"] = torch.from_numpy(types)
        batch["attention_mask"] = torch.from_numpy(attention.astype(np.int64))
        for key in features[0]:
            if key not in _MODEL_INPUTS and key not in (INDEX_COLUMN, self.length_column):
                batch[key] = torch.tensor([f[key] for f in features])
        n_real = int(attention.sum())
        self.counts["sequences"] += len(features)
        self.counts["tokens"] += n_real
        self.counts["padding"] += attention.size - n_real
        return batch

    @property
    def padding_fraction(self) -> float:
        """Share of padding among all tokens this collator produced so far, in this process (the Trainer's logs
        count the batches the training loop took, whichever process made them)."""
        total = self.counts["tokens"] + self.counts["padding"]
        return self.counts["padding"] / total if total else 0.0

    def __getstate__(self):
        state = dict(self.__dict__)
        if multiprocessing.context.get_spawning_popen() is None:
            # Shared memory travels only to a process being started (a data loader worker); any other copy (a deepcopy,
            # a pickle) takes the epoch's value into memory of its own.
            state["_epoch"] = self.epoch
        return state

    def __setstate__(self, state):
        epoch = state.pop("_epoch")
        self.__dict__.update(state)
        if isinstance(epoch, int):
            self._epoch = multiprocessing.get_context("spawn").Value("q", epoch, lock=False)
        else:
            self._epoch = epoch
