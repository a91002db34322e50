"""Reading document corpora: nsptask reads documents, not lines.

Every source is turned into a stream of document records::

    {"doc_id": "corpus.txt:12", "sentences": ["First sentence.", "Second one."], "skipped": ""}

``skipped`` is empty for a usable document and names the reason otherwise (``"empty"``,
``"redirects"``, ``"stubs"``, ...): skipped documents are kept as rows with no sentences so that
every later statistic can count them, even when the data comes back from the ``datasets`` cache.

**Document ids are stable.** An id is the file's name relative to the corpus root (the base name of a
file given directly, the path below a directory given as the corpus), plus the line where the document
starts (text, one-sentence-per-line and JSONL files) or its row (CSV, Parquet, ``datasets``); or the
value of the user's ``doc_id_column``; or the wiki's database name and page id for Wikipedia dumps. It
does not change with the spelling of the path (``corpus.txt``, ``./corpus.txt``, an absolute path) or the
working directory, and adding a file does not change the ids of the others. The train/validation split
and every per-document random choice are keyed by it.

Sources (`source` argument):

- ``None``: the bundled English Wikipedia sample (see :func:`bundled_corpus_path`).
- A path (or list of paths) to a text file in BERT's format (``format="sentences"``, the default for
  ``.txt``/``.gz``/other files): one sentence per line, a blank line between documents. A file whose
  lines look like running prose is not guessed to be in this format: the reader stops and asks for
  ``format``.
- Raw text (``format="text"``): paragraphs (``document_per="paragraph"``), lines (``"line"``: news
  corpora with one document per line) or whole files (``"file"``) are documents, split into sentences
  by a maintained segmenter. Chinese and Japanese lines are never joined to the next line (a headline
  stays its own sentence).
- ``.jsonl`` / ``.json`` / ``.csv`` / ``.tsv`` / ``.parquet`` files with a text column (and an optional
  document-id column: consecutive rows with the same id form one document), or a column that
  already holds a list of sentences.
- Wikipedia XML dumps (``.xml`` / ``.xml.bz2``; a multistream dump with its index beside it is read in
  parallel, stream ranges at a time).
- A ``datasets.Dataset`` / ``IterableDataset``, or a Hub dataset name (loaded with
  ``datasets.load_dataset``; needs network unless it is cached).
- A directory: every file below it, except hidden files and Hadoop/Spark markers (names starting with
  ``.`` or ``_``: ``_SUCCESS``, ``.part-00000.crc``), which are ignored and listed in the build report.

Big inputs are cut into :class:`InputShard` s (byte ranges at document boundaries, Parquet row groups,
bz2 streams of a multistream dump) that processes or machines read independently; reading the shards
one after the other gives exactly the documents of reading the whole corpus.
"""

from __future__ import annotations

import bz2
import codecs
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from .errors import COMPRESSED_SUFFIXES, CorpusError, open_compressed
from .segmentation import SentenceSplitter, get_splitter
from .wikipedia import iter_wikipedia_articles

# `datasets` is imported only where a Dataset is made or recognised: reading files needs none of it, and the
# command line's option parsing (which imports this module for ReaderOptions) stays quick.

__all__ = [
    "ReaderOptions",
    "CorpusError",
    "CorpusFile",
    "InputShard",
    "bundled_corpus_path",
    "corpus_files",
    "detect_format",
    "ignored_files",
    "looks_like_hub_id",
    "iter_documents",
    "load_documents",
    "plan_shards",
    "read_shard",
    "source_fingerprint",
]

BUNDLED_CORPUS = "enwiki_sample.txt.gz"
TABLE_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}
FORMATS = ("sentences", "text", "json", "csv", "parquet", "wikipedia", "dataset")
DOCUMENT_PER = ("paragraph", "line", "file")
# Languages written without spaces between words: a line break is never replaced by a space.
_UNSPACED_LANGUAGES = ("zh", "ja")
# Bytes per shard below which a file is not cut (process start-up would cost more than it saves).
MIN_SHARD_BYTES = 1 << 20

CorpusFormat = Literal["sentences", "text", "json", "csv", "parquet", "wikipedia"]


@dataclass
class ReaderOptions:
    """How a corpus is read into documents: the one object every reader, the builders, the Dask engine and the
    corpus tasks take (``nsptask`` commands parse it as the "corpus reading" options).

    Args:
        corpus_format (`str`, *optional*): ``sentences`` (BERT's one sentence per line, blank line between
            documents), ``text`` (raw text, split into sentences), ``json``, ``csv``, ``parquet``, ``wikipedia``.
            Guessed from the file names when not given.
        text_column (`str`, *optional*, defaults to `"text"`): Text column of tables and datasets.
        doc_id_column (`str`, *optional*): Document-id column; consecutive rows with one id form a document.
        document_per (`str`, *optional*, defaults to `"paragraph"`): Raw text: a paragraph, a line or a file is a
            document.
        splitter (`str` or callable, *optional*, defaults to `"sentencex"`): ``sentencex``, ``pysbd`` or (API) any
            callable ``str -> list[str]``.
        language (`str`, *optional*, defaults to `"en"`): Language of the text (splitter, tokenizer training).
        encoding (`str`, *optional*, defaults to `"utf-8"`), encoding_errors (`str`, *optional*, defaults to
            `"strict"`): Text encoding and what to do with bytes that are not in it.
        wiki_min_chars (`int`, *optional*, defaults to 500): Wikipedia articles with less prose are stubs.
        dataset_config_name, dataset_revision, dataset_split: A Hub corpus's configuration (``20231101.en``),
            revision (a commit or tag) and split.

    Example:
        ```python
        >>> from nsptask.corpus import ReaderOptions, iter_documents
        >>> doc = next(iter_documents(None, ReaderOptions(splitter="sentencex")))
        >>> doc["doc_id"]
        'enwiki_sample.txt.gz:1'
        ```
    """

    _argument_group_name = "data: corpus reading"

    corpus_format: CorpusFormat | None = field(
        default=None,
        metadata={
            "help": "How to read the corpus: sentences (one per line, blank line between documents), text (raw text, "
            "split into sentences), json, csv, parquet, wikipedia. Guessed from file names; a .txt of running "
            "prose stops and asks for this option."
        },
    )
    text_column: str = field(default="text", metadata={"help": "Text column of JSONL/CSV/Parquet/dataset corpora."})
    doc_id_column: str | None = field(
        default=None, metadata={"help": "Document-id column; consecutive rows with the same id form one document."}
    )
    document_per: Literal["paragraph", "line", "file"] = field(
        default="paragraph",
        metadata={"help": "Raw text: a paragraph block, a line (news corpora) or a whole file is a document."},
    )
    splitter: Literal["sentencex", "pysbd"] = field(
        default="sentencex", metadata={"help": "Sentence splitter for raw text, tables and Wikipedia."}
    )
    language: str = field(
        default="en", metadata={"help": "Language of the text, for the splitter and tokenizer training (en, zh, ...)."}
    )
    encoding: str = field(default="utf-8", metadata={"help": "Text encoding of text, JSONL, CSV and CoNLL files."})
    encoding_errors: Literal["strict", "replace", "ignore"] = field(
        default="strict",
        metadata={"help": "Invalid UTF-8: 'strict' stops with the file, line and byte offset; 'replace' or 'ignore'."},
    )
    wiki_min_chars: int = field(default=500, metadata={"help": "Wikipedia articles with less prose are stubs."})
    dataset_config_name: str | None = field(
        default=None, metadata={"help": "A Hub corpus's configuration (e.g. 20231101.en for wikimedia/wikipedia)."}
    )
    dataset_revision: str | None = field(
        default=None, metadata={"help": "A Hub corpus's revision (commit, branch or tag); part of the cache key."}
    )
    dataset_split: str = field(default="train", metadata={"help": "The split of a Hub corpus to read."})

    def __post_init__(self):
        if self.corpus_format is not None and self.corpus_format not in FORMATS:
            raise CorpusError(f"Unknown corpus format {self.corpus_format!r}: expected one of {FORMATS}.")
        if self.document_per not in DOCUMENT_PER:
            raise CorpusError(f"document_per must be one of {DOCUMENT_PER}, got {self.document_per!r}")

    def fingerprint(self) -> dict:
        """The options as the cache key sees them (a splitter object by its class and settings)."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"splitter": _splitter_name(self.splitter)}


def _splitter_name(splitter) -> str:
    if splitter is None or isinstance(splitter, str):
        return splitter or "sentencex"
    return f"{type(splitter).__module__}.{type(splitter).__qualname__}:{getattr(splitter, '__dict__', '')}"


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
    for suffix in COMPRESSED_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name.endswith(".xml"):
        return "wikipedia"
    for ext, fmt in TABLE_FORMATS.items():
        if name.endswith(ext):
            return fmt
    return "sentences"


# -- files of a corpus ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusFile:
    """A file of the corpus: where it is, and its stable name (relative to the corpus root)."""

    path: str
    name: str


def _ignored(relative: Path) -> bool:
    return any(part.startswith((".", "_")) for part in relative.parts)


def corpus_files(source: Any) -> tuple[list[CorpusFile], list[str]]:
    """The files of a corpus given as a path, a directory or a list of them, with their stable names.

    A file given directly is named by its base name; a file found below a directory by its path relative to
    that directory. Hidden files and Hadoop/Spark markers (any path part starting with ``.`` or ``_``) below
    a directory are ignored.

    Returns:
        `(files, ignored)`: the files in corpus order, and the paths of the ignored ones.

    Raises:
        CorpusError: if two files would get the same name (pass their common parent directory instead).
    """
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    files: list[CorpusFile] = []
    ignored: list[str] = []
    for item in items:
        item = os.fspath(item)
        if os.path.isdir(item):
            root = Path(item)
            for path in sorted(root.rglob("*")):
                if not path.is_file():
                    continue
                relative = path.relative_to(root)
                if _ignored(relative):
                    ignored.append(str(path))
                else:
                    files.append(CorpusFile(os.path.abspath(path), relative.as_posix()))
        else:
            files.append(CorpusFile(os.path.abspath(item), os.path.basename(item)))
    seen: dict[str, str] = {}
    for f in files:
        if f.name in seen and seen[f.name] != f.path:
            raise CorpusError(
                f"{seen[f.name]} and {f.path} would give their documents the same ids ({f.name}:LINE): expected "
                "files with distinct names. Pass the directory that holds both as the corpus, so that each is "
                "named by its path below it."
            )
        seen[f.name] = f.path
    return files, ignored


def ignored_files(source: Any) -> list[str]:
    """The files below a corpus directory that reading skips (hidden files, Hadoop/Spark markers)."""
    if source is None or not isinstance(source, (str, os.PathLike, list, tuple)):
        return []
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not all(os.path.exists(os.fspath(i)) for i in items):
        return []  # a Hub name: nothing to list
    return corpus_files(source)[1]


def source_fingerprint(source: Any, reader: ReaderOptions | None = None) -> str:
    """A string that changes when the corpus changes: absolute paths with size and modification time for
    files, ``_fingerprint`` for datasets, the name, configuration and revision for Hub datasets. Keys the
    ``datasets`` caches (not the document ids, which do not depend on where the corpus is)."""
    if source is None:
        source = bundled_corpus_path()
    fp = getattr(source, "_fingerprint", None)
    if fp is not None:
        return f"dataset:{fp}"
    if isinstance(source, (str, os.PathLike, list, tuple)):
        items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
        parts = []
        for item in items:
            item = os.fspath(item)
            if not os.path.exists(item):
                hub = reader or ReaderOptions()
                parts.append(f"hub:{item}:{hub.dataset_config_name}:{hub.dataset_revision}:{hub.dataset_split}")
                continue
            for f in corpus_files(item)[0]:
                st = os.stat(f.path)
                parts.append(f"{os.path.realpath(f.path)}:{f.name}:{st.st_size}:{st.st_mtime_ns}")
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    return f"object:{id(source)}"


# -- shards -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputShard:
    """A unit of reading that one process handles: a whole file, a byte range of an uncompressed file cut at
    a document boundary, a range of Parquet row groups, a range of bz2 streams of a multistream Wikipedia
    dump, or a dataset.

    Args:
        path (`str`): The file (absolute), or the Hub dataset name.
        name (`str`): The file's stable name; document ids start with it.
        format (`str`): How to read it (see ``FORMATS``).
        start, end (`int`): Byte range (plain files, dump streams) or row-group range (Parquet); ``end=-1``
            reads to the end.
        first_line (`int`): Line number at ``start`` (plain files).
        first_row (`int`): Row number of the first row (Parquet row-group ranges).
        index (`int`): Position of the shard in corpus order.
        wiki_name (`str`): Database name of a Wikipedia dump (``enwiki``), read from its header.
        dataset (*optional*): A ``datasets`` object (``format="dataset"``).
    """

    path: str
    name: str
    format: str
    start: int = 0
    end: int = -1
    first_line: int = 1
    first_row: int = 0
    index: int = 0
    wiki_name: str = "wiki"
    dataset: Any = None


_TERMINATOR = re.compile(r"[.!?。！？](?:[\"'”’)\]」』]*)(?=\s+\S|$)")


def looks_like_prose(lines: list[str]) -> tuple[bool, str]:
    """Whether lines look like running prose rather than one sentence per line. Two signs, either enough: at
    least half of the lines hold two or more sentence ends (long unwrapped paragraphs), or at least a third of the
    line breaks fall inside a sentence (hard-wrapped text: a line without a sentence end followed, in the same
    paragraph, by a line that starts in lower case). Returns ``(verdict, what was found)``."""
    stripped = [line.strip() for line in lines]
    text = [line for line in stripped if line]
    if not text:
        return False, ""
    multi = sum(1 for line in text if len(_TERMINATOR.findall(line)) >= 2) / len(text)
    mean_length = sum(map(len, text)) / len(text)
    breaks = [(a, b) for a, b in zip(stripped, stripped[1:]) if a and b]
    wrapped = sum(1 for a, b in breaks if not _TERMINATOR.search(a) and b[0].islower()) / len(breaks) if breaks else 0.0
    if multi >= 0.5 and (len(text) >= 3 or mean_length > 300):
        return True, (
            f"{multi:.0%} of its first lines hold two or more sentence ends (mean line {mean_length:.0f} characters)"
        )
    if wrapped >= 1 / 3 and len(breaks) >= 5:
        return True, f"{wrapped:.0%} of its first line breaks fall inside a sentence (hard-wrapped text)"
    return False, ""


def _head_lines(path: str, encoding: str, limit_bytes: int = 1 << 16, limit_lines: int = 200) -> list[str]:
    with open_compressed(path) as stream:
        data = stream.read(limit_bytes)
    text = data.decode(encoding, "replace")
    return text.splitlines()[:limit_lines]


def _resolve_format(f: CorpusFile, reader: ReaderOptions) -> str:
    if reader.corpus_format is not None:
        return reader.corpus_format
    guessed = detect_format(f.path)
    if guessed == "sentences":
        prose, found = looks_like_prose(_head_lines(f.path, reader.encoding))
        if prose:
            raise CorpusError(
                f"{f.path}: expected one sentence per line (BERT's format, guessed from the file name), found "
                f"running prose: {found}. Pass --corpus_format text (format='text') to split it into "
                "sentences, with --document_per paragraph (blank lines between documents, the default), line (one "
                "document per line) or file; or --corpus_format sentences to read each line as a sentence anyway."
            )
    return guessed


def _count_newlines(path: str, start: int, end: int) -> int:
    count = 0
    with open(path, "rb") as f:
        f.seek(start)
        remaining = end - start
        while remaining > 0:
            chunk = f.read(min(remaining, 1 << 24))
            if not chunk:
                break
            count += chunk.count(b"\n")
            remaining -= len(chunk)
    return count


def _byte_cuts(path: str, pieces: int, at_blank_line: bool) -> list[int]:
    """Offsets that cut a plain file into about `pieces` ranges, each starting at a line start (after a
    blank line when `at_blank_line`), so that every range starts a document."""
    size = os.path.getsize(path)
    cuts = [0]
    with open(path, "rb") as f:
        for k in range(1, pieces):
            target = max(size * k // pieces, cuts[-1])
            f.seek(target)
            if target > 0:
                f.readline()  # to the start of the next line
            if at_blank_line:
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
            else:
                position = f.tell()
            if cuts[-1] < position < size:
                cuts.append(position)
    cuts.append(size)
    return cuts


def _splittable_plain(f: CorpusFile, fmt: str, reader: ReaderOptions) -> bool:
    return (
        not f.path.endswith(COMPRESSED_SUFFIXES)
        and codecs.lookup(reader.encoding).name == "utf-8"
        and (
            fmt == "sentences"
            or (fmt == "text" and reader.document_per in ("paragraph", "line"))
            or (fmt == "json" and not reader.doc_id_column)
        )
    )


def _multistream_index(path: str) -> str | None:
    if not path.endswith(".xml.bz2"):
        return None
    candidate = path[: -len(".xml.bz2")] + "-index.txt.bz2"
    return candidate if os.path.exists(candidate) else None


def _stream_offsets(index_path: str) -> list[int]:
    offsets = set()
    with bz2.open(index_path, "rt", encoding="utf-8") as f:
        for line in f:
            head, _, _ = line.partition(":")
            if head.strip().isdigit():
                offsets.add(int(head))
    return sorted(offsets)


def _dump_header(path: str, first_offset: int) -> str:
    """The wiki's database name, from the header stream of a multistream dump."""
    with open(path, "rb") as f:
        head = bz2.decompress(f.read(first_offset)).decode("utf-8", "replace")
    match = re.search(r"<dbname>([^<]+)</dbname>", head)
    return match.group(1).strip() if match else "wiki"


def plan_shards(
    source: Any = None,
    num_shards: int = 1,
    reader: ReaderOptions | None = None,
    min_shard_bytes: int = MIN_SHARD_BYTES,
    max_shard_bytes: int | None = None,
) -> tuple[list[InputShard], list[str]]:
    """Cut a corpus into about `num_shards` input shards, in corpus order.

    Uncompressed one-sentence-per-line and raw-text files are cut at blank lines (at line ends for
    ``document_per="line"`` and for JSONL without a document-id column), Parquet files at row groups, and a
    multistream Wikipedia dump (``*-multistream.xml.bz2`` with its ``*-multistream-index.txt.bz2`` beside it)
    at bz2 streams; other files are one shard each. Small files are not cut.

    Args:
        source: See :func:`iter_documents`.
        num_shards (`int`, *optional*, defaults to 1): About how many shards to make (a hint).
        min_shard_bytes (`int`, *optional*, defaults to 1 MB): Files smaller than about this are not cut.
        max_shard_bytes (`int`, *optional*): Cut into more shards than `num_shards` where needed so that no
            splittable shard is much larger than this (the Dask engine's bound on memory per worker; a file that
            cannot be cut stays one shard).
        reader (`ReaderOptions`, *optional*): How the corpus is read (its format, ``document_per``, encoding and
            document-id column decide where files may be cut).

    Returns:
        `(shards, ignored_files)`.
    """
    if source is None:
        source = bundled_corpus_path()
    reader = reader or ReaderOptions()
    if _is_dataset(source):
        if reader.corpus_format not in (None, "dataset"):
            raise CorpusError(f"corpus_format={reader.corpus_format!r} does not apply to a dataset object")
        return [InputShard(path="dataset", name="dataset", format="dataset", dataset=source)], []
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not items:
        raise CorpusError("No corpus given: expected a corpus file, a directory or a Hub dataset name.")
    missing = [os.fspath(i) for i in items if not os.path.exists(os.fspath(i))]
    if missing:
        name = missing[0]
        if len(items) == 1 and isinstance(source, str) and looks_like_hub_id(name):
            return [InputShard(path=name, name=name, format="hub")], []
        raise CorpusError(f"{name}: no such file. Expected a corpus file, a directory or a Hub dataset name.")
    files, ignored = corpus_files(source)
    if not files:
        raise CorpusError(
            f"{source}: no files found. Expected a corpus file or a directory holding some"
            + (f" (ignored as hidden or Spark/Hadoop markers: {ignored[:5]})." if ignored else ".")
        )
    formats = [_resolve_format(f, reader) for f in files]
    sizes = [os.path.getsize(f.path) for f in files]
    target_bytes = max(min_shard_bytes, sum(sizes) // max(num_shards, 1) + 1)
    if max_shard_bytes:
        target_bytes = max(1, min(target_bytes, max_shard_bytes))
    shards: list[InputShard] = []
    for f, fmt, size in zip(files, formats, sizes):
        pieces = max(1, round(size / target_bytes))
        if fmt == "wikipedia" and pieces > 1 and (index := _multistream_index(f.path)):
            offsets = _stream_offsets(index)
            if offsets:
                wiki_name = _dump_header(f.path, offsets[0])
                bounds = offsets + [size]
                per = max(1, len(offsets) // pieces)
                for k in range(0, len(offsets), per):
                    shards.append(
                        InputShard(
                            f.path,
                            f.name,
                            fmt,
                            start=bounds[k],
                            end=bounds[min(k + per, len(offsets))],
                            wiki_name=wiki_name,
                        )
                    )
                continue
        if fmt == "parquet" and pieces > 1:
            meta = pq.ParquetFile(f.path).metadata
            groups = meta.num_row_groups
            per = max(1, groups // pieces)
            row = 0
            for g in range(0, groups, per):
                shards.append(InputShard(f.path, f.name, fmt, start=g, end=min(g + per, groups), first_row=row))
                row += sum(meta.row_group(i).num_rows for i in range(g, min(g + per, groups)))
            continue
        if pieces > 1 and _splittable_plain(f, fmt, reader):
            at_blank = fmt == "sentences" or (fmt == "text" and reader.document_per == "paragraph")
            cuts = _byte_cuts(f.path, pieces, at_blank_line=at_blank)
            line = 1
            for start, end in zip(cuts, cuts[1:]):
                shards.append(InputShard(f.path, f.name, fmt, start=start, end=end, first_line=line))
                line += _count_newlines(f.path, start, end)
            continue
        shards.append(InputShard(f.path, f.name, fmt))
    return [replace(s, index=i) for i, s in enumerate(shards)], ignored


# -- readers ------------------------------------------------------------------------------------------


def _iter_lines(
    path: str, encoding: str, errors: str, start: int = 0, end: int = -1, first_line: int = 1
) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line without line break); a decoding error names its line and byte
    offset. Handles a UTF-8 BOM and CRLF / CR line ends."""
    if not os.path.exists(path):
        raise CorpusError(f"{path}: no such file. Expected a corpus file or directory; check the path.")
    offset, lineno = start, first_line
    with open_compressed(path) as stream:
        if start:
            stream.seek(start)
        for raw in stream:
            if end >= 0 and offset >= end:
                break
            try:
                line = raw.decode(encoding, errors)
            except UnicodeDecodeError as err:
                raise CorpusError(
                    f"{path}, line {lineno} (byte offset {offset + err.start}): invalid {encoding}: "
                    f"found bytes {raw[err.start : err.end]!r}, expected {encoding} text. Re-encode the file "
                    f"as {encoding}, pass encoding= with its real encoding, or pass errors='replace' "
                    "(or 'ignore'; CLI: --encoding_errors replace) to read it anyway."
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


def _sentence_file_documents(shard: InputShard, encoding: str, errors: str) -> Iterator[dict]:
    """BERT's format: one sentence per line, blank lines between documents."""
    sentences: list[str] = []
    start_line = shard.first_line
    any_line = shard.start > 0
    for lineno, line in _iter_lines(shard.path, encoding, errors, shard.start, shard.end, shard.first_line):
        any_line = True
        text = line.strip()
        if text:
            if not sentences:
                start_line = lineno
            sentences.append(" ".join(text.split()))
        elif sentences:
            yield {"doc_id": f"{shard.name}:{start_line}", "sentences": sentences, "skipped": ""}
            sentences = []
        else:
            # A blank line that ends no document (several in a row, or leading) holds an empty
            # document, as in Google's reader: counted, not an error.
            yield {"doc_id": f"{shard.name}:{lineno}", "sentences": [], "skipped": "empty"}
    if sentences:
        yield {"doc_id": f"{shard.name}:{start_line}", "sentences": sentences, "skipped": ""}
    if not any_line:
        yield {"doc_id": f"{shard.name}:0", "sentences": [], "skipped": "empty-file"}


def _split_block(lines: list[str], splitter: SentenceSplitter, language: str) -> list[str]:
    """Sentences of a block of lines. Lines are joined with spaces (wrapped prose), except in languages
    written without spaces, where each line is split on its own (a headline line stays a sentence)."""
    if language.split("-")[0].lower() in _UNSPACED_LANGUAGES:
        return [s for line in lines for s in splitter(line)]
    return splitter(" ".join(" ".join(line.split()) for line in lines))


def _text_file_documents(
    shard: InputShard, encoding: str, errors: str, splitter: SentenceSplitter, document_per: str, language: str
) -> Iterator[dict]:
    """Raw text: a paragraph block, a line, or the whole file is a document, split into sentences."""
    block: list[str] = []
    paragraphs: list[list[str]] = []
    start_line = shard.first_line
    yielded = False
    for lineno, line in _iter_lines(shard.path, encoding, errors, shard.start, shard.end, shard.first_line):
        text = line.strip()
        if document_per == "line":
            if text:
                yield {
                    "doc_id": f"{shard.name}:{lineno}",
                    "sentences": _split_block([text], splitter, language),
                    "skipped": "",
                }
                yielded = True
            continue
        if text:
            if not block and not paragraphs:
                start_line = lineno
            block.append(text)
        elif block and document_per == "paragraph":
            yield {
                "doc_id": f"{shard.name}:{start_line}",
                "sentences": _split_block(block, splitter, language),
                "skipped": "",
            }
            yielded = True
            block = []
        elif block:
            paragraphs.append(block)
            block = []
    if block:
        paragraphs.append(block)
    if paragraphs:
        sentences = [s for p in paragraphs for s in _split_block(p, splitter, language)]
        yield {"doc_id": f"{shard.name}:{start_line}", "sentences": sentences, "skipped": ""}
        yielded = True
    if not yielded and shard.start == 0:
        yield {"doc_id": f"{shard.name}:0", "sentences": [], "skipped": "empty-file"}


def _split_paragraphs(text: str, splitter: SentenceSplitter, language: str = "en") -> list[str]:
    """Sentences of a table cell: every line is split on its own (a heading line stays a sentence)."""
    out: list[str] = []
    for line in text.split("\n"):
        if line.strip():
            out.extend(_split_block([line.strip()], splitter, language))
    return out


def _column_error(where: str, column: str, available: Iterable[str], what: str, option: str) -> CorpusError:
    return CorpusError(
        f"{where}: no {what} column {column!r}. Expected a column named {column!r}; found columns "
        f"{sorted(available)}. Pass the right name with {option}= (CLI: --{option})."
    )


def _row_documents(
    rows: Iterable[tuple[int, dict]],
    name: str,
    unit: str,
    text_column: str,
    doc_id_column: str | None,
    splitter: SentenceSplitter,
    language: str,
    path: str,
) -> Iterator[dict]:
    """Group table rows into documents. A row's text is either a string (split into sentences; paragraphs
    separated by blank lines, or by line breaks in Chinese and Japanese) or a list of sentences. `rows` yields
    ``(number, row)`` with the line or row number that goes into errors and default document ids."""
    current_id: str | None = None
    sentences: list[str] = []
    any_row = False
    for number, row in rows:
        any_row = True
        if text_column not in row:
            raise _column_error(f"{path}, {unit} {number}", text_column, row.keys(), "text", "text_column")
        if doc_id_column is not None and doc_id_column not in row:
            raise _column_error(f"{path}, {unit} {number}", doc_id_column, row.keys(), "document-id", "doc_id_column")
        value = row[text_column]
        if value is None:
            row_sentences: list[str] = []
        elif isinstance(value, str):
            row_sentences = _split_paragraphs(value, splitter, language)
        elif isinstance(value, (list, tuple)):
            row_sentences = [" ".join(str(s).split()) for s in value if s and str(s).strip()]
        else:
            raise CorpusError(
                f"{path}, {unit} {number}: column {text_column!r} holds {type(value).__name__}; expected a string "
                "or a list of sentences. Point text_column= (CLI: --text_column) at the text."
            )
        doc_id = f"{name}:{number}" if doc_id_column is None else str(row[doc_id_column])
        if doc_id_column is not None and doc_id == current_id:
            sentences.extend(row_sentences)
            continue
        if current_id is not None:
            yield {"doc_id": current_id, "sentences": sentences, "skipped": "" if sentences else "empty"}
        current_id, sentences = doc_id, row_sentences
    if current_id is not None:
        yield {"doc_id": current_id, "sentences": sentences, "skipped": "" if sentences else "empty"}
    elif not any_row:
        yield {"doc_id": f"{name}:0", "sentences": [], "skipped": "empty-file"}


def _table_rows(shard: InputShard, encoding: str = "utf-8", errors: str = "strict") -> Iterator[tuple[int, dict]]:
    """Stream ``(number, row)`` of a JSONL / CSV / Parquet shard with constant memory (pyarrow batch readers).
    JSONL rows are numbered by line, CSV and Parquet rows from 0. `encoding` applies to JSONL and CSV, `errors`
    to JSONL (pyarrow's CSV reader has no error handler)."""
    path, fmt = shard.path, shard.format
    if not os.path.exists(path):
        raise CorpusError(f"{path}: no such file. Expected a {fmt} corpus file; check the path.")
    if os.path.getsize(path) == 0:
        return
    if fmt == "parquet":
        parquet = pq.ParquetFile(path)
        groups = range(parquet.metadata.num_row_groups)
        if shard.end >= 0:
            groups = range(shard.start, shard.end)
        number = shard.first_row
        for batch in parquet.iter_batches(batch_size=1024, row_groups=list(groups)):
            for row in batch.to_pylist():
                yield number, row
                number += 1
    elif fmt == "csv":
        delimiter = "\t" if path.lower().endswith((".tsv", ".tsv.gz")) else ","
        number = 0
        try:
            reader = pcsv.open_csv(
                path,
                read_options=pcsv.ReadOptions(encoding=encoding),
                parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            )
            for batch in reader:
                for row in batch.to_pylist():
                    yield number, row
                    number += 1
        except CorpusError:
            raise
        except Exception as err:  # pyarrow names the row in its message
            raise CorpusError(
                f"{path}: not a readable CSV file after row {number} ({err}). Expected a header row and "
                "consistently quoted, delimited rows; check quoting and the delimiter."
            ) from err
    else:
        for lineno, line in _iter_lines(path, encoding, errors, shard.start, shard.end, shard.first_line):
            if not line.strip():
                continue
            yield lineno, json_object(path, lineno, line)


def json_object(path, lineno: int, line: str) -> dict:
    """One line of a JSONL file as an object, or an error naming the file and line, what was found and the fix."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise CorpusError(
            f"{path}, line {lineno}: invalid JSON ({err.msg} at column {err.colno}); expected one JSON "
            f"object per line, found {line[:60]!r}. Fix or remove that line."
        ) from None
    if not isinstance(row, dict):
        raise CorpusError(
            f"{path}, line {lineno}: expected a JSON object per line, found {type(row).__name__}. "
            'Write one object per line, e.g. {"text": "..."}.'
        )
    return row


def _wikipedia_documents(
    shard: InputShard, min_chars: int, splitter: SentenceSplitter, language: str
) -> Iterator[dict]:
    counts: Counter = Counter()
    reported: Counter = Counter()
    byte_range = (shard.start, shard.end) if shard.end >= 0 else None
    info: dict = {"dbname": shard.wiki_name}

    def skipped_rows():
        for reason in ("redirects", "non_article_pages", "stubs"):
            for _ in range(counts[reason] - reported[reason]):
                yield {"doc_id": f"{shard.name}:skipped", "sentences": [], "skipped": reason}
            reported[reason] = counts[reason]

    for article in iter_wikipedia_articles(
        shard.path, min_chars=min_chars, counts=counts, byte_range=byte_range, info=info
    ):
        # Skipped pages are counted by the reader; emit them as rows so the report sees them.
        yield from skipped_rows()
        sentences = [s for p in article.paragraphs for s in _split_block([p], splitter, language)]
        yield {
            "doc_id": f"{info.get('dbname') or 'wiki'}:{article.page_id}",
            "sentences": sentences,
            "skipped": "" if sentences else "empty",
        }
    yield from skipped_rows()


def _dataset_rows(dataset) -> Iterator[tuple[int, dict]]:
    yield from enumerate(dataset)


def _hub_rows(name: str, reader: ReaderOptions) -> Iterator[tuple[int, dict]]:
    import datasets

    try:
        dataset = datasets.load_dataset(
            name,
            reader.dataset_config_name,
            split=reader.dataset_split,
            revision=reader.dataset_revision,
            streaming=True,
        )
    except Exception as err:
        raise CorpusError(
            f"{name}: not a local file, and loading it as a Hub dataset failed ({type(err).__name__}: {err}). "
            "Check the path, or the dataset name and your network (HF_HUB_OFFLINE=1 allows cached datasets only)."
        ) from err
    yield from enumerate(dataset)


def read_shard(shard: InputShard, reader: ReaderOptions | None = None) -> Iterator[dict]:
    """The documents of one input shard, read as `reader` says (see :func:`iter_documents`)."""
    reader = reader or ReaderOptions()
    split_fn = get_splitter(reader.splitter, reader.language)
    fmt, encoding, errors, language = shard.format, reader.encoding, reader.encoding_errors, reader.language
    if fmt == "sentences":
        yield from _sentence_file_documents(shard, encoding, errors)
    elif fmt == "text":
        yield from _text_file_documents(shard, encoding, errors, split_fn, reader.document_per, language)
    elif fmt == "wikipedia":
        yield from _wikipedia_documents(shard, reader.wiki_min_chars, split_fn, language)
    else:
        if fmt in ("json", "csv", "parquet"):
            rows, name, unit, where = (
                _table_rows(shard, encoding, errors),
                shard.name,
                "line" if fmt == "json" else "row",
                shard.path,
            )
        elif fmt == "dataset":
            rows, name, unit, where = _dataset_rows(shard.dataset), "dataset", "row", "dataset"
        elif fmt == "hub":
            rows, name, unit, where = _hub_rows(shard.path, reader), shard.name, "row", shard.path
        else:
            raise CorpusError(f"Unknown corpus format {fmt!r}: expected one of {FORMATS}")
        yield from _row_documents(rows, name, unit, reader.text_column, reader.doc_id_column, split_fn, language, where)


def iter_documents(source: Any = None, reader: ReaderOptions | None = None, **options: Any) -> Iterator[dict]:
    """Stream the documents of a corpus, lazily and with constant memory.

    Args:
        source (`str`, `os.PathLike`, `list`, `datasets.Dataset`, `datasets.IterableDataset`, *optional*):
            Corpus file(s) or directory, a dataset object, or a Hub dataset name. Defaults to the bundled
            Wikipedia sample.
        reader (`ReaderOptions`, *optional*): How to read it: the format (guessed from the file names when not
            given; a ``.txt`` of running prose stops with a message instead of being read as one sentence per
            line), text and document-id columns, sentence splitter, language, what a document is in raw text,
            encoding and its error handling (``"strict"`` raises a `CorpusError` naming the file, line and byte
            offset), the Wikipedia stub threshold, a Hub corpus's configuration, revision and split.
        **options: Instead of `reader`, its fields by name (``corpus_format="text"``, ``language="zh"``, ...).

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
    if reader is not None and options:
        raise TypeError("Give reader or reader options by name, not both.")
    reader = reader or ReaderOptions(**options)
    shards, _ = plan_shards(source, 1, reader)
    for shard in shards:
        yield from read_shard(shard, reader)


def _is_dataset(obj: Any) -> bool:
    try:
        import datasets
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, (datasets.Dataset, datasets.IterableDataset))


# Extensions of files nsptask reads or writes: a name ending in one is a path, never a Hub id.
_FILE_EXTENSIONS = {
    ".txt", ".gz", ".bz2", ".xz", ".zst", ".json", ".jsonl", ".csv", ".tsv", ".parquet", ".xml", ".conll",
    ".yaml", ".yml", ".arrow", ".safetensors", ".bin", ".npy", ".md",
}  # fmt: skip


def looks_like_hub_id(name: str) -> bool:
    """ "owner/name" or "name" (dots allowed: ``BAAI/bge-small-en-v1.5``), unless it reads as a local path: it
    starts with ``.``, ``/`` or ``~``, has more than one ``/``, ends in a file extension, or its first part is a
    folder here (``runs/missing-model`` when ``runs/`` exists)."""
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        return False
    if "/" in name and os.path.isdir(name.split("/")[0]):
        return False
    return os.path.splitext(name)[1].lower() not in _FILE_EXTENSIONS


def _generate_documents(shards: list, reader: ReaderOptions, fingerprint: str) -> Iterator[dict]:
    # `fingerprint` is unused here: it is part of gen_kwargs so the datasets cache key changes with the files.
    for shard in shards:
        yield from read_shard(shard, reader)


def load_documents(source: Any = None, reader: ReaderOptions | None = None, num_proc: int | None = None):
    """Read a corpus into a ``datasets.Dataset`` of documents (Arrow, memory-mapped, cached).

    The cache key includes the files' sizes and modification times, so an edited corpus is read again.
    With ``num_proc`` > 1 the corpus is cut into shards (:func:`plan_shards`) that are read in parallel.

    Args:
        source: See :func:`iter_documents`.
        reader (`ReaderOptions`, *optional*): How to read it.
        num_proc (`int`, *optional*): Processes for reading.

    Returns:
        `datasets.Dataset` with columns ``doc_id``, ``sentences``, ``skipped``.
    """
    import datasets

    if isinstance(source, datasets.IterableDataset):
        raise ValueError("An IterableDataset source can only be read in streaming mode (streaming=True).")
    reader = reader or ReaderOptions()
    shards, _ = plan_shards(source, 4 * num_proc if num_proc and num_proc > 1 else 1, reader)
    num_proc = num_proc if num_proc and num_proc > 1 and len(shards) > 1 else None
    return datasets.Dataset.from_generator(
        _generate_documents,
        features=_document_features(),
        gen_kwargs={"shards": shards, "reader": reader, "fingerprint": source_fingerprint(source, reader)},
        num_proc=num_proc,
    )
