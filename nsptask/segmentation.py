"""Sentence splitting for raw text.

nsptask does not split sentences with its own regular expressions: it wraps maintained segmenters.
The default is `sentencex <https://pypi.org/project/sentencex/>`_ (Wikimedia; ~300 languages, Chinese
closing quotes kept with their sentence); `pysbd <https://pypi.org/project/pysbd/>`_ is the
alternative. ``benchmarks/bench_splitters.py`` measures both on the bundled corpus (speed) and on a
gold set of hard cases (abbreviations, decimals, quotes, Chinese); docs/data.md has the figures.

Any callable ``str -> list[str]`` is a splitter, so the choice is swappable everywhere a ``splitter``
argument is taken.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sentencex import segment

__all__ = ["SentenceSplitter", "SentencexSplitter", "PysbdSplitter", "get_splitter", "SPLITTERS"]

SentenceSplitter = Callable[[str], list[str]]


@dataclass
class SentencexSplitter:
    """Split text into sentences with `sentencex`.

    Args:
        language (`str`, *optional*, defaults to `"en"`): ISO 639-1 code (``"zh"`` for Chinese).

    Example:
        ```python
        >>> from nsptask.segmentation import SentencexSplitter
        >>> SentencexSplitter("en")("Dr. Smith paid 3.5 dollars. He left.")
        ['Dr. Smith paid 3.5 dollars.', 'He left.']
        ```
    """

    language: str = "en"

    def __call__(self, text: str) -> list[str]:
        return [s.strip() for s in segment(self.language, text) if s.strip()]


@dataclass
class PysbdSplitter:
    """Split text into sentences with `pysbd` (rule-based, Golden Rules tested).

    Args:
        language (`str`, *optional*, defaults to `"en"`): ISO 639-1 code.
    """

    language: str = "en"
    _segmenter: object = field(default=None, init=False, repr=False, compare=False)

    def __call__(self, text: str) -> list[str]:
        if self._segmenter is None:
            import pysbd

            self._segmenter = pysbd.Segmenter(language=self.language, clean=False)
        return [s.strip() for s in self._segmenter.segment(text) if s.strip()]

    def __getstate__(self):  # the pysbd segmenter is rebuilt in worker processes
        return {"language": self.language}

    def __setstate__(self, state):
        self.language = state["language"]
        self._segmenter = None


SPLITTERS: dict[str, type] = {"sentencex": SentencexSplitter, "pysbd": PysbdSplitter}


def get_splitter(splitter: str | SentenceSplitter | None = None, language: str = "en") -> SentenceSplitter:
    """Return a sentence splitter.

    Args:
        splitter (`str` or callable, *optional*): ``"sentencex"`` (default), ``"pysbd"``, or any
            callable taking a text and returning its sentences.
        language (`str`, *optional*, defaults to `"en"`): Language code for the named splitters.

    Returns:
        A callable ``str -> list[str]``.
    """
    if splitter is None:
        splitter = "sentencex"
    if callable(splitter):
        return splitter
    try:
        return SPLITTERS[splitter](language)
    except KeyError:
        raise ValueError(
            f"Unknown sentence splitter {splitter!r}: expected one of {sorted(SPLITTERS)} or a callable "
            "str -> list[str]."
        ) from None
