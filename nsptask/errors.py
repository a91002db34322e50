"""The error every reader raises for a bad input file, and the one way nsptask opens a (compressed) file.

Readers never let a raw traceback reach the user: a file that cannot be read ends in a :class:`CorpusError` naming
the file (and the line where there is one), what was expected, what was found and how to fix it. A compressed
input that ends early (``.gz``, ``.bz2``, ``.xz`` cut short, as a download or copy that stopped) is one of those.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import zlib

__all__ = ["CorpusError", "open_compressed", "COMPRESSED_SUFFIXES"]

COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz")


class CorpusError(ValueError):
    """A corpus or task file that cannot be read: the message names the file and line, what was expected, what
    was found and how to fix it."""


_DECOMPRESSION_ERRORS = (EOFError, gzip.BadGzipFile, lzma.LZMAError, zlib.error, OSError)


class _CheckedStream:
    """A binary stream over a compressed file whose decompression errors become one :class:`CorpusError`."""

    def __init__(self, path: str, stream):
        self.path, self._stream = path, stream

    def _fail(self, err: Exception):
        try:
            where = f" after {self._stream.tell():,} decompressed bytes"
        except Exception:  # the stream may be unusable by now
            where = ""
        raise CorpusError(
            f"{self.path}: the compressed file ends early or is corrupt{where} ({type(err).__name__}: {err}). "
            f"Expected a complete {os.path.splitext(self.path)[1]} file: copy or download it again (check its "
            "checksum), or decompress what is left and pass that."
        ) from None

    def read(self, *args):
        try:
            return self._stream.read(*args)
        except _DECOMPRESSION_ERRORS as err:
            self._fail(err)

    def readline(self, *args):
        try:
            return self._stream.readline(*args)
        except _DECOMPRESSION_ERRORS as err:
            self._fail(err)

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def seek(self, *args):
        try:
            return self._stream.seek(*args)
        except _DECOMPRESSION_ERRORS as err:
            self._fail(err)

    def tell(self) -> int:
        return self._stream.tell()

    def close(self) -> None:
        self._stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_compressed(path: str | os.PathLike):
    """Open a file for binary reading, decompressing ``.gz``, ``.bz2`` and ``.xz``; a compressed file that ends
    early or is corrupt raises :class:`CorpusError` with its name when it is read (never ``EOFError``).

    Example:
        ```python
        >>> from nsptask.errors import open_compressed
        >>> from nsptask.corpus import bundled_corpus_path
        >>> with open_compressed(bundled_corpus_path()) as f:
        ...     f.readline()[:9]
        b'Anarchism'
        ```
    """
    path = os.fspath(path)
    if path.endswith(".zst"):
        raise CorpusError(
            f"{path}: Zstandard-compressed input is not read directly. Decompress it first (zstd -d {path}) and "
            "pass the result, or recompress it as .gz, .bz2 or .xz."
        )
    openers = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    opener = openers.get(os.path.splitext(path)[1])
    if opener is None:
        return open(path, "rb")
    return _CheckedStream(path, opener(path, "rb"))
