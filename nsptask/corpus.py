"""Reading document corpora: nsptask reads documents, not lines.

Every source is turned into a stream of document records::

    {"doc_id": "corpus.txt:12", "sentences": ["First sentence.", "Second one."], "skipped": ""}

``skipped`` is empty for a usable document and names the reason otherwise (``"empty"``,
``"redirect"``, ``"stub"``, ...): skipped documents are kept as rows with no sentences so that
every later statistic can count them, even when the data comes back from the ``datasets`` cache.

Sources (`source` argument):

- ``None``: the bundled English Wikipedia sample (see :func:`bundled_corpus_path`).
- A path (or list of paths) to a text file in BERT's format (``format="sentences"``, the default for
  ``.txt``/``.gz``/other files): one sentence per line, a blank line between documents.
- Raw text (``format="text"``): paragraphs (``document_per="paragraph"``) or whole files
  (``document_per="file"``) are documents, split into sentences by a maintained segmenter.
- ``.jsonl`` / ``.json`` / ``.csv`` / ``.tsv`` / ``.parquet`` files with a text column (and an optional
  document-id column: consecutive rows with the same id form one document), or a column that
  already holds a list of sentences.
- Wikipedia XML dumps (``.xml`` / ``.xml.bz2``).
- A ``datasets.Dataset`` / ``IterableDataset``, or a Hub dataset name (loaded with
  ``datasets.load_dataset``; needs network unless it is cached).
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .segmentation import SentenceSplitter, get_splitter

__all__ = [
    "CorpusError",
    "bundled_corpus_path",
    "detect_format",
    "iter_documents",
    "load_documents",
    "source_fingerprint",
]

BUNDLED_CORPUS = "enwiki_sample.txt.gz"
TABLE_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}
FORMATS = ("sentences", "text", "json", "csv", "parquet", "wikipedia", "dataset")


class CorpusError(ValueError):
    """A corpus that cannot be read: the message names the file and line, what was expected, what
    was found and how to fix it."""


def _document_features():
    import datasets

    return datasets.Features(
        {
            "doc_id": datasets.Value("string"),
            "sentences": datasets.List(datasets.Value("string")),
            "skipped": datasets.Value("string"),
        }
    )


def bundled_corpus_path() -> Path:
    """Path of the bundled corpus: 103 English Wikipedia articles (CC BY-SA 4.0), one sentence per line.

    Produced by ``scripts/make_bundled_corpus.py`` from the shortened dump in the ``gensim`` wheel;
    ``nsptask/data/ATTRIBUTION.md`` has the attribution.

    Example:
        ```python
        >>> from nsptask.corpus import bundled_corpus_path
        >>> bundled_corpus_path().name
        'enwiki_sample.txt.gz'
        ```
    """
    return Path(str(resources.files("nsptask") / "data" / BUNDLED_CORPUS))


def detect_format(path: str | os.PathLike) -> str:
    """Guess a corpus file's format from its name (``"sentences"`` when nothing more specific fits)."""
    name = os.fspath(path).lower()
    for suffix in (".bz2", ".gz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name.endswith(".xml"):
        return "wikipedia"
    for ext, fmt in TABLE_FORMATS.items():
        if name.endswith(ext):
            return fmt
    return "sentences"


def _as_paths(source: Any) -> list[str]:
    if isinstance(source, (str, os.PathLike)):
        source = [source]
    paths: list[str] = []
    for item in source:
        item = os.fspath(item)
        if os.path.isdir(item):
            paths.extend(sorted(str(p) for p in Path(item).rglob("*") if p.is_file()))
        else:
            paths.append(item)
    return paths


def source_fingerprint(source: Any) -> str:
    """A string that changes when the corpus changes: paths with size and modification time for files,
    ``_fingerprint`` for datasets, the name for Hub datasets. Used to key the ``datasets`` caches."""
    if source is None:
        source = bundled_corpus_path()
    fp = getattr(source, "_fingerprint", None)
    if fp is not None:
        return f"dataset:{fp}"
    if isinstance(source, (str, os.PathLike, list, tuple)):
        parts = []
        for path in _as_paths(source):
            if os.path.exists(path):
                st = os.stat(path)
                parts.append(f"{os.path.abspath(path)}:{st.st_size}:{st.st_mtime_ns}")
            else:
                parts.append(f"hub:{path}")
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    return f"object:{id(source)}"


def _open_binary(path: str):
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    if path.endswith(".bz2"):
        import bz2

        return bz2.open(path, "rb")
    return open(path, "rb")


@dataclass(frozen=True)
class FileSlice:
    """A byte range of an uncompressed text file that starts at a line after a blank line (a document
    boundary), with the line number it starts at: lets several processes read one big file."""

    path: str
    start: int
    end: int
    first_line: int


def plan_file_slices(path: str, num_slices: int) -> list[FileSlice]:
    """Cut an uncompressed file into about `num_slices` byte ranges at blank lines, so that reading the
    slices one after the other gives exactly the documents (and line numbers) of reading the whole file."""
    size = os.path.getsize(path)
    cuts = [0]
    with open(path, "rb") as f:
        for k in range(1, num_slices):
            target = max(size * k // num_slices, cuts[-1])
            f.seek(target)
            f.readline()  # to the start of the next line
            previous_blank = False
            while True:
                position = f.tell()
                line = f.readline()
                if not line:
                    position = size
                    break
                if previous_blank and line.strip():
                    break
                previous_blank = not line.strip()
            if cuts[-1] < position < size:
                cuts.append(position)
        cuts.append(size)
        slices, line = [], 1
        for start, end in zip(cuts, cuts[1:]):
            slices.append(FileSlice(path, start, end, line))
            f.seek(start)
            line += f.read(end - start).count(b"\n")
    return slices


def _iter_lines(
    path: str, encoding: str, errors: str, file_slice: FileSlice | None = None
) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line without line break); a decoding error names its line and byte
    offset. Handles a UTF-8 BOM and CRLF / CR line ends."""
    if not os.path.exists(path):
        raise CorpusError(f"{path}: no such file. Expected a corpus file or directory; check the path.")
    offset, lineno, end = 0, 1, None
    with _open_binary(path) as stream:
        if file_slice is not None:
            stream.seek(file_slice.start)
            offset, lineno, end = file_slice.start, file_slice.first_line, file_slice.end
        for raw in stream:
            if end is not None and offset >= end:
                break
            try:
                line = raw.decode(encoding, errors)
            except UnicodeDecodeError as err:
                raise CorpusError(
                    f"{path}, line {lineno} (byte offset {offset + err.start}): invalid {encoding}: "
                    f"found bytes {raw[err.start : err.end]!r}, expected {encoding} text. Re-encode the file "
                    f"as {encoding}, pass encoding= with its real encoding, or pass errors='replace' "
                    "(or 'ignore') to read it anyway."
                ) from None
            if offset == 0 and line.startswith("\ufeff"):
                line = line[1:]
            offset += len(raw)
            # A lone '\r' (old Mac line ends) is a line break too.
            if "\r" in line:
                for part in line.rstrip("\r\n").split("\r"):
                    yield lineno, part
            else:
                yield lineno, line.rstrip("\n")
            lineno += 1


def _sentence_file_documents(
    path: str, encoding: str, errors: str, file_slice: FileSlice | None = None
) -> Iterator[dict]:
    """BERT's format: one sentence per line, blank lines between documents."""
    sentences: list[str] = []
    start_line = 1
    any_line = file_slice is not None and file_slice.start > 0
    for lineno, line in _iter_lines(path, encoding, errors, file_slice):
        any_line = True
        text = line.strip()
        if text:
            if not sentences:
                start_line = lineno
            sentences.append(" ".join(text.split()))
        elif sentences:
            yield {"doc_id": f"{os.path.basename(path)}:{start_line}", "sentences": sentences, "skipped": ""}
            sentences = []
        else:
            # A blank line that ends no document (several in a row, or leading) holds an empty
            # document, as in Google's reader: counted, not an error.
            yield {"doc_id": f"{os.path.basename(path)}:{lineno}", "sentences": [], "skipped": "empty"}
    if sentences:
        yield {"doc_id": f"{os.path.basename(path)}:{start_line}", "sentences": sentences, "skipped": ""}
    if not any_line:
        yield {"doc_id": f"{os.path.basename(path)}:0", "sentences": [], "skipped": "empty-file"}


def _text_file_documents(
    path: str, encoding: str, errors: str, splitter: SentenceSplitter, document_per: str
) -> Iterator[dict]:
    """Raw text: a paragraph block (or the whole file) is a document, split into sentences."""
    if document_per not in ("paragraph", "file"):
        raise ValueError(f"document_per must be 'paragraph' or 'file', got {document_per!r}")
    base = os.path.basename(path)
    block: list[str] = []
    start_line = 1
    yielded = False
    for lineno, line in _iter_lines(path, encoding, errors):
        if line.strip():
            if not block:
                start_line = lineno
            block.append(line.strip())
        elif block and document_per == "paragraph":
            yield {"doc_id": f"{base}:{start_line}", "sentences": splitter(" ".join(block)), "skipped": ""}
            yielded = True
            block = []
        elif block:
            block.append("\n")
    if block:
        text = " ".join(b for b in block if b != "\n") if document_per == "paragraph" else _join_paragraphs(block)
        yield {"doc_id": f"{base}:{start_line}", "sentences": _split_paragraphs(text, splitter), "skipped": ""}
        yielded = True
    if not yielded:
        yield {"doc_id": f"{base}:0", "sentences": [], "skipped": "empty-file"}


def _join_paragraphs(lines: list[str]) -> str:
    return "\n".join(" ".join(group.split()) for group in " ".join(lines).split("\n"))


def _split_paragraphs(text: str, splitter: SentenceSplitter) -> list[str]:
    out: list[str] = []
    for paragraph in text.split("\n"):
        if paragraph.strip():
            out.extend(splitter(paragraph.strip()))
    return out


def _column_error(where: str, column: str, available: Iterable[str], what: str) -> CorpusError:
    return CorpusError(
        f"{where}: no {what} column {column!r}. Expected a column named {column!r}; found columns "
        f"{sorted(available)}. Pass the right name with text_column= (CLI: --text_column)."
    )


def _row_documents(
    rows: Iterable[dict],
    where: str,
    text_column: str,
    doc_id_column: str | None,
    splitter: SentenceSplitter,
) -> Iterator[dict]:
    """Group table rows into documents. A row's text is either a string (split into sentences;
    paragraphs separated by newlines) or a list of sentences."""
    current_id: str | None = None
    sentences: list[str] = []
    for index, row in enumerate(rows):
        if index == 0:
            if text_column not in row:
                raise _column_error(where, text_column, row.keys(), "text")
            if doc_id_column is not None and doc_id_column not in row:
                raise _column_error(where, doc_id_column, row.keys(), "document-id")
        value = row[text_column]
        if value is None:
            row_sentences: list[str] = []
        elif isinstance(value, str):
            row_sentences = _split_paragraphs(value, splitter)
        elif isinstance(value, (list, tuple)):
            row_sentences = [" ".join(str(s).split()) for s in value if s and str(s).strip()]
        else:
            raise CorpusError(
                f"{where}, row {index}: column {text_column!r} holds {type(value).__name__}; expected a string "
                "or a list of sentences. Point text_column= at the text."
            )
        doc_id = f"{where}:{index}" if doc_id_column is None else str(row[doc_id_column])
        if doc_id_column is not None and doc_id == current_id:
            sentences.extend(row_sentences)
            continue
        if current_id is not None:
            yield {"doc_id": current_id, "sentences": sentences, "skipped": "" if sentences else "empty"}
        current_id, sentences = doc_id, row_sentences
    if current_id is not None:
        yield {"doc_id": current_id, "sentences": sentences, "skipped": "" if sentences else "empty"}
    else:
        yield {"doc_id": f"{where}:0", "sentences": [], "skipped": "empty-file"}


def _table_rows(path: str, fmt: str) -> Iterator[dict]:
    """Stream rows of a JSONL / CSV / Parquet file with constant memory (pyarrow batch readers)."""
    if not os.path.exists(path):
        raise CorpusError(f"{path}: no such file. Expected a {fmt} corpus file; check the path.")
    if os.path.getsize(path) == 0:
        return
    if fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            yield from batch.to_pylist()
    elif fmt == "csv":
        import pyarrow.csv as pcsv

        delimiter = "\t" if path.lower().endswith((".tsv", ".tsv.gz")) else ","
        try:
            reader = pcsv.open_csv(path, parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True))
            for batch in reader:
                yield from batch.to_pylist()
        except Exception as err:  # pyarrow names the row in its message
            raise CorpusError(f"{path}: not a readable CSV file ({err}). Check quoting and the delimiter.") from err
    else:
        import json

        for lineno, line in _iter_lines(path, "utf-8", "strict"):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise CorpusError(
                    f"{path}, line {lineno}: invalid JSON ({err.msg} at column {err.colno}); expected one JSON "
                    f"object per line, found {line[:60]!r}. Fix or remove that line."
                ) from None
            if not isinstance(row, dict):
                raise CorpusError(
                    f"{path}, line {lineno}: expected a JSON object per line, found {type(row).__name__}."
                )
            yield row


def _wikipedia_documents(path: str, min_chars: int, splitter: SentenceSplitter) -> Iterator[dict]:
    from .wikipedia import iter_wikipedia_articles

    counts: Counter = Counter()
    reported: Counter = Counter()
    for article in iter_wikipedia_articles(path, min_chars=min_chars, counts=counts):
        # Skipped pages are counted by the reader; emit them as rows so the report sees them.
        for reason in ("redirects", "non_article_pages", "stubs"):
            for _ in range(counts[reason] - reported[reason]):
                yield {"doc_id": f"{os.path.basename(path)}:skipped", "sentences": [], "skipped": reason}
            reported[reason] = counts[reason]
        sentences = [s for p in article.paragraphs for s in splitter(p)]
        yield {"doc_id": f"wiki:{article.page_id}", "sentences": sentences, "skipped": "" if sentences else "empty"}
    for reason in ("redirects", "non_article_pages", "stubs"):
        for _ in range(counts[reason] - reported[reason]):
            yield {"doc_id": f"{os.path.basename(path)}:skipped", "sentences": [], "skipped": reason}


def iter_documents(
    source: Any = None,
    *,
    format: str | None = None,
    text_column: str = "text",
    doc_id_column: str | None = None,
    splitter: str | SentenceSplitter | None = None,
    language: str = "en",
    document_per: str = "paragraph",
    encoding: str = "utf-8",
    errors: str = "strict",
    split: str = "train",
    wiki_min_chars: int = 500,
) -> Iterator[dict]:
    """Stream the documents of a corpus, lazily and with constant memory.

    Args:
        source (`str`, `os.PathLike`, `list`, `datasets.Dataset`, `datasets.IterableDataset`, *optional*):
            Corpus file(s) or directory, a dataset object, or a Hub dataset name. Defaults to the bundled
            Wikipedia sample.
        format (`str`, *optional*): One of ``"sentences"`` (BERT's one-sentence-per-line format), ``"text"``
            (raw text), ``"json"``, ``"csv"``, ``"parquet"``, ``"wikipedia"``. Guessed from the file name
            when not given.
        text_column (`str`, *optional*, defaults to `"text"`): Column with the text (tables, datasets).
        doc_id_column (`str`, *optional*): Column with a document id; consecutive rows sharing it form one
            document. Without it every row is a document.
        splitter (`str` or callable, *optional*): Sentence splitter for raw text, tables and Wikipedia:
            ``"sentencex"`` (default), ``"pysbd"`` or a callable.
        language (`str`, *optional*, defaults to `"en"`): Language for the splitter (``"zh"`` for Chinese).
        document_per (`str`, *optional*, defaults to `"paragraph"`): For raw text, whether a paragraph
            block or a whole file is one document.
        encoding (`str`, *optional*, defaults to `"utf-8"`): Text encoding of text files.
        errors (`str`, *optional*, defaults to `"strict"`): Decoding error handling: ``"strict"`` raises a
            `CorpusError` naming the file, line and byte offset; ``"replace"`` / ``"ignore"`` read on.
        split (`str`, *optional*, defaults to `"train"`): Split of a Hub dataset.
        wiki_min_chars (`int`, *optional*, defaults to 500): Wikipedia articles with less prose are stubs.

    Yields:
        `dict`: ``{"doc_id": str, "sentences": list[str], "skipped": str}``.

    Example:
        ```python
        >>> from nsptask.corpus import iter_documents
        >>> doc = next(iter_documents())
        >>> doc["doc_id"], doc["sentences"][0][:9]
        ('enwiki_sample.txt.gz:1', 'Anarchism')
        ```
    """
    if source is None:
        source = bundled_corpus_path()
    split_fn = get_splitter(splitter, language)
    if _is_dataset(source):
        if format not in (None, "dataset"):
            raise ValueError(f"format={format!r} does not apply to a dataset object")
        yield from _row_documents(source, "dataset", text_column, doc_id_column, split_fn)
        return
    paths = _as_paths(source)
    if not paths:
        raise CorpusError(f"{source}: no files found. Expected a corpus file or a directory holding some.")
    for path in paths:
        if not os.path.exists(path):
            if isinstance(source, str) and len(paths) == 1 and _looks_like_hub_id(path):
                yield from _hub_documents(path, split, text_column, doc_id_column, split_fn)
                return
            raise CorpusError(f"{path}: no such file. Expected a corpus file, a directory or a Hub dataset name.")
        fmt = format or detect_format(path)
        if fmt == "sentences":
            yield from _sentence_file_documents(path, encoding, errors)
        elif fmt == "text":
            yield from _text_file_documents(path, encoding, errors, split_fn, document_per)
        elif fmt in ("json", "csv", "parquet"):
            yield from _row_documents(_table_rows(path, fmt), path, text_column, doc_id_column, split_fn)
        elif fmt == "wikipedia":
            yield from _wikipedia_documents(path, wiki_min_chars, split_fn)
        else:
            raise ValueError(f"Unknown corpus format {fmt!r}: expected one of {FORMATS}")


def _is_dataset(obj: Any) -> bool:
    try:
        import datasets
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, (datasets.Dataset, datasets.IterableDataset))


def _looks_like_hub_id(name: str) -> bool:
    # "owner/name" or "name": no file extension, not an explicit relative or absolute path.
    return not name.startswith((".", "/", "~")) and name.count("/") <= 1 and "." not in os.path.basename(name)


def _hub_documents(name, split, text_column, doc_id_column, split_fn) -> Iterator[dict]:
    import datasets

    try:
        dataset = datasets.load_dataset(name, split=split, streaming=True)
    except Exception as err:
        raise CorpusError(
            f"{name}: not a local file, and loading it as a Hub dataset failed ({type(err).__name__}: {err}). "
            "Check the path, or the dataset name and your network (HF_HUB_OFFLINE=1 allows cached datasets only)."
        ) from err
    yield from _row_documents(dataset, name, text_column, doc_id_column, split_fn)


def _generate_documents(shards: list, reader_kwargs: dict, fingerprint: str) -> Iterator[dict]:
    # `fingerprint` is unused here: it is part of gen_kwargs so the datasets cache key changes with the files.
    for shard in shards:
        if isinstance(shard, FileSlice):
            yield from _sentence_file_documents(
                shard.path, reader_kwargs.get("encoding", "utf-8"), reader_kwargs.get("errors", "strict"), shard
            )
        else:
            yield from iter_documents(shard, **reader_kwargs)


def _sliceable(path: str, reader_kwargs: dict) -> bool:
    fmt = reader_kwargs.get("format") or detect_format(path)
    return (
        fmt == "sentences"
        and not path.endswith((".gz", ".bz2"))
        and os.path.getsize(path) > 1 << 20
        and codecs.lookup(reader_kwargs.get("encoding", "utf-8")).name == "utf-8"
    )


def load_documents(source: Any = None, num_proc: int | None = None, **reader_kwargs: Any):
    """Read a corpus into a ``datasets.Dataset`` of documents (Arrow, memory-mapped, cached).

    The cache key includes the files' sizes and modification times, so an edited corpus is read again.
    With several input files and ``num_proc`` > 1, files are read in parallel.

    Args:
        source: See :func:`iter_documents`.
        num_proc (`int`, *optional*): Processes for reading several files.
        **reader_kwargs: Passed to :func:`iter_documents`.

    Returns:
        `datasets.Dataset` with columns ``doc_id``, ``sentences``, ``skipped``.
    """
    import datasets

    if _is_dataset(source):
        if isinstance(source, datasets.IterableDataset):
            raise ValueError("An IterableDataset source can only be read in streaming mode (streaming=True).")
        shards: list = [source]
    elif source is None:
        shards = [str(bundled_corpus_path())]
    elif isinstance(source, (str, os.PathLike, list, tuple)) and all(os.path.exists(p) for p in _as_paths(source)):
        shards = _as_paths(source)
        if not shards:
            raise CorpusError(f"{source}: no files found. Expected a corpus file or a directory holding some.")
    else:
        shards = [source]
    if (
        num_proc
        and num_proc > 1
        and len(shards) == 1
        and isinstance(shards[0], str)
        and _sliceable(shards[0], reader_kwargs)
    ):
        # One big plain file in BERT's format: several processes read byte ranges cut at blank lines.
        shards = plan_file_slices(shards[0], 4 * num_proc)
    num_proc = num_proc if num_proc and num_proc > 1 and len(shards) > 1 else None
    return datasets.Dataset.from_generator(
        _generate_documents,
        features=_document_features(),
        gen_kwargs={"shards": shards, "reader_kwargs": reader_kwargs, "fingerprint": source_fingerprint(source)},
        num_proc=num_proc,
    )
