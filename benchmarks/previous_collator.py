"""The per-sequence pretraining collator nsptask shipped before its masking was vectorised (the baseline of
``benchmarks/bench_collator.py``; kept here unchanged but for this paragraph and its imports, never imported by the
package). Its masks come from one numpy generator per sequence; today's collator draws the same kind of masks (the
same rules and budgets) from a counter-based hash, a documented change of random stream.

The pretraining collator: dynamic padding and dynamic masking, with BERT's masking rules.

Padding is the tokenizer's own ``pad`` (to the longest sequence of the batch, a multiple of 8, on the
tokenizer's padding side; labels follow it). Masking differs from ``transformers.DataCollatorForLanguageModeling``
where the reference implementations and the issue tracker say it should:

- two budgets: transformers' independent Bernoulli(p) per token (``masking="bernoulli"``) and BERT's exact
  ``min(max_predictions_per_seq, max(1, round(p * n)))`` positions per sequence (``masking="exact"``);
- random replacements are drawn only from the non-special vocabulary (never ``[CLS]``, ``[SEP]``,
  ``[PAD]``, ``[MASK]``);
- masks are drawn per occurrence: from (seed, epoch, the instance's index in its dataset, the column
  ``instance_index`` that :func:`nsptask.pretrain` adds). A new mask every epoch and for every copy of a
  duplicated instance, yet the same mask for a given instance and epoch whatever the process count, gradient
  accumulation or resumption, so a 2-process run and a resumed run see exactly the masks of a single
  uninterrupted run. Features without that column are masked by their content instead;
- whole-word masking with the tokenizer's own word convention (WordPiece ``##`` continuations, byte-level BPE
  ``Ġ`` and SentencePiece ``▁`` word starts), and for Chinese, whose words (runs of single-character tokens)
  are found by the ``jieba`` segmenter.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from nsptask.modeling import word_start_convention

__all__ = ["PretrainingCollator", "INDEX_COLUMN"]

_MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")
INDEX_COLUMN = "instance_index"


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
    epoch: int = 0
    token_types: str = "keep"
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

    # -- masking of one sequence ---------------------------------------------------------------------
    def _rng(self, ids: np.ndarray, index: int | None) -> np.random.Generator:
        if index is not None:
            return np.random.default_rng([self.seed, self.epoch, int(index), 0x6D61736B])
        digest = hashlib.blake2b(ids.astype(np.int32).tobytes(), digest_size=8, key=b"nsptask-mask").digest()
        return np.random.default_rng([self.seed, self.epoch, int.from_bytes(digest, "little")])

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

    def mask_sequence(self, ids: np.ndarray, index: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return (masked ids, labels with -100 where nothing is predicted) for one unpadded sequence; `index`
        (the instance's position in its dataset) seeds the draw, else the tokens do."""
        rng = self._rng(ids, index)
        candidates = np.flatnonzero(~self._special[ids])
        groups = self._groups(ids, candidates)
        chosen: list[np.ndarray] = []
        if self.masking == "bernoulli":
            keep = rng.random(len(groups)) < self.mlm_probability
            chosen = [g for g, k in zip(groups, keep) if k]
        else:
            budget = max(1, int(round(len(ids) * self.mlm_probability)))
            if self.max_predictions_per_seq is not None:
                budget = min(budget, self.max_predictions_per_seq)
            count = 0
            for index_ in rng.permutation(len(groups)):
                if count >= budget:
                    break
                if count + len(groups[index_]) > budget:
                    continue
                chosen.append(groups[index_])
                count += len(groups[index_])
        labels = np.full(len(ids), -100, dtype=np.int64)
        masked = ids.copy()
        if chosen:
            positions = np.sort(np.concatenate(chosen))
            labels[positions] = ids[positions]
            draw = rng.random(len(positions))
            to_mask = positions[draw < self.mask_replace_prob]
            to_random = positions[
                (draw >= self.mask_replace_prob) & (draw < self.mask_replace_prob + self.random_replace_prob)
            ]
            masked[to_mask] = self.tokenizer.mask_token_id
            masked[to_random] = rng.choice(self._replacements, size=len(to_random))
        return masked, labels

    # -- the batch -----------------------------------------------------------------------------------
    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        keep = _MODEL_INPUTS if self.token_types == "keep" else ("input_ids", "attention_mask")
        indices = [f.get(INDEX_COLUMN) for f in features]
        inputs = [{k: f[k] for k in keep if k in f} for f in features]
        extra = {k: [f[k] for f in features] for k in features[0] if k not in _MODEL_INPUTS and k != INDEX_COLUMN}
        if self.mlm:
            masked_inputs, label_rows = [], []
            for item, index in zip(inputs, indices):
                masked, row = self.mask_sequence(np.asarray(item["input_ids"], dtype=np.int64), index)
                masked_inputs.append({**item, "input_ids": masked.tolist()})
                label_rows.append(row)
            inputs = masked_inputs
        batch = self.tokenizer.pad(inputs, pad_to_multiple_of=self.pad_to_multiple_of, return_tensors="pt")
        if self.mlm:
            length = batch["input_ids"].shape[1]
            labels = torch.full((len(features), length), -100, dtype=torch.long)
            left = getattr(self.tokenizer, "padding_side", "right") == "left"
            for i, row in enumerate(label_rows):
                if left:
                    labels[i, length - len(row) :] = torch.from_numpy(row)
                else:
                    labels[i, : len(row)] = torch.from_numpy(row)
            batch["labels"] = labels
            self.counts["masked"] += int((labels != -100).sum())
        for key, values in extra.items():
            batch[key] = torch.tensor(values)
        n_real = int(batch["attention_mask"].sum())
        self.counts["sequences"] += len(features)
        self.counts["tokens"] += n_real
        self.counts["padding"] += batch["attention_mask"].numel() - n_real
        return dict(batch)

    @property
    def padding_fraction(self) -> float:
        """Share of padding among all tokens this collator produced so far."""
        total = self.counts["tokens"] + self.counts["padding"]
        return self.counts["padding"] / total if total else 0.0
