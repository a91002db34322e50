"""Reading Wikipedia XML dumps (``pages-articles*.xml`` / ``.xml.bz2``) into plain-text documents.

Articles become documents; redirects, pages outside the article namespace and stubs are dropped
(and counted). Wiki markup is removed with `mwparserfromhell <https://github.com/earwig/mwparserfromhell>`_
(the ``wikipedia`` extra), not with hand-written regular expressions.
"""

from __future__ import annotations

import bz2
import gzip
import os
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from xml.sax.saxutils import escape

from .errors import CorpusError

__all__ = ["WikiArticle", "iter_wikipedia_articles", "wikitext_to_paragraphs"]

# Tags whose contents are never prose: references, tables, galleries, maths, source code, ...
_DROPPED_TAGS = {
    "ref",
    "references",
    "table",
    "gallery",
    "math",
    "chem",
    "ce",
    "code",
    "pre",
    "source",
    "syntaxhighlight",
    "score",
    "timeline",
    "imagemap",
    "graph",
    "templatedata",
    "noinclude",
    "includeonly",
    "div",
    "sup",
    "sub",
    "small",
    "br",
    "hr",
}
# Link namespaces that are not running text.
_DROPPED_LINK_PREFIXES = ("file:", "image:", "category:", "media:", "wikt:", "wiktionary:", ":category:")
# List items, definition lists and indented lines are not sentences of prose.
_LIST_MARKUP = {"li", "dt", "dd"}
# Sections after which an article holds no prose.
_END_SECTIONS = {
    "see also",
    "references",
    "notes",
    "further reading",
    "external links",
    "bibliography",
    "sources",
    "footnotes",
    "citations",
}


@dataclass
class WikiArticle:
    """One article of a dump, as plain text paragraphs.

    Args:
        page_id (`str`): The page id in the dump.
        title (`str`): The article title.
        paragraphs (`list[str]`): Plain-text paragraphs, markup removed.
    """

    page_id: str
    title: str
    paragraphs: list[str]


def _open_dump(path: str | os.PathLike):
    path = os.fspath(path)
    if path.endswith(".bz2"):
        return bz2.open(path, "rb")
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def wikitext_to_paragraphs(wikitext: str) -> list[str]:
    """Strip wiki markup and return the article's prose paragraphs.

    Headings, templates, references, tables, file and category links, list items and everything
    after a "See also" / "References" section are removed; link texts are kept.

    Args:
        wikitext (`str`): Raw wikitext of one article.

    Returns:
        `list[str]`: Non-empty plain-text paragraphs, in article order.

    Example:
        ```python
        >>> from nsptask.wikipedia import wikitext_to_paragraphs
        >>> wikitext_to_paragraphs("'''Paris''' is the [[capital city|capital]] of France.<ref>x</ref>")
        ['Paris is the capital of France.']
        ```
    """
    try:
        import mwparserfromhell
        from mwparserfromhell.nodes import Comment, Heading, Tag, Template, Wikilink
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError("Reading Wikipedia dumps needs mwparserfromhell: pip install 'nsptask[wikipedia]'") from err

    code = mwparserfromhell.parse(wikitext)
    # Cut the article at its first trailing section (See also, References, ...).
    for heading in code.filter_headings(recursive=False):
        if heading.title.strip_code().strip().lower() in _END_SECTIONS:
            index = code.index(heading)
            del code.nodes[index:]
            break
    removals = []
    for node in code.ifilter(recursive=True):
        if isinstance(node, (Heading, Template, Comment)):
            removals.append(node)
        elif isinstance(node, Tag) and (
            str(node.tag).lower() in _DROPPED_TAGS or str(node.tag).lower() in _LIST_MARKUP
        ):
            removals.append(node)
        elif isinstance(node, Wikilink) and str(node.title).strip().lower().startswith(_DROPPED_LINK_PREFIXES):
            removals.append(node)
    for node in removals:
        try:
            code.remove(node)
        except ValueError:  # already removed with an enclosing node
            pass
    text = code.strip_code(normalize=True, collapse=True)
    paragraphs = []
    for block in text.split("\n"):
        block = " ".join(block.split())
        # Leftovers of list/indent markup, table rows or a bare caption are not prose.
        if not block or block[0] in "*#:;|!{}" or len(block) < 20:
            continue
        paragraphs.append(block)
    return paragraphs


def _multistream_chunks(path: str, start: int, end: int) -> Iterator[bytes]:
    """Decompressed bz2 streams of a multistream dump between byte offsets `start` and `end` (stream starts),
    one stream at a time; the closing ``</mediawiki>`` of the last stream is dropped."""
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    position = 0
    while position < len(data):
        decompressor = bz2.BZ2Decompressor()
        chunk = decompressor.decompress(data[position:])
        if not decompressor.eof:
            raise EOFError("a bz2 stream ends before its end-of-stream marker")
        position = len(data) - len(decompressor.unused_data)
        yield chunk.replace(b"</mediawiki>", b"")


def _page_elements(path: str, byte_range: tuple[int, int] | None, info: dict) -> Iterator[ET.Element]:
    """``<page>`` elements of a dump (or of a stream range of a multistream dump), cleared after use; the
    wiki's database name goes into ``info["dbname"]`` when the header holds one."""
    if byte_range is None:
        with _open_dump(path) as stream:
            root = None
            for event, elem in ET.iterparse(stream, events=("start", "end")):
                if root is None:
                    root = elem
                if event != "end":
                    continue
                tag = elem.tag.rsplit("}", 1)[-1]
                if tag == "dbname" and elem.text:
                    info["dbname"] = elem.text.strip()
                elif tag == "page":
                    yield elem
                    root.clear()  # pages read so far are dropped: memory stays flat over the dump
        return
    parser = ET.XMLPullParser(events=("start", "end"))
    parser.feed(b"<mediawiki>")
    root = None

    def pages():
        nonlocal root
        for event, elem in parser.read_events():
            if root is None:
                root = elem
            if event == "end" and elem.tag.rsplit("}", 1)[-1] == "page":
                yield elem
                root.clear()

    for chunk in _multistream_chunks(path, *byte_range):
        parser.feed(chunk)
        yield from pages()
    parser.feed(b"</mediawiki>")
    yield from pages()
    parser.close()


def iter_wikipedia_articles(
    path: str | os.PathLike,
    min_chars: int = 500,
    counts: Counter | None = None,
    byte_range: tuple[int, int] | None = None,
    info: dict | None = None,
) -> Iterator[WikiArticle]:
    """Stream the articles of a Wikipedia XML dump as plain text.

    Redirects, pages outside namespace 0, and stubs (articles shorter than `min_chars` characters of
    prose, or tagged with a ``{{...-stub}}`` template) are skipped and counted in `counts`.

    Args:
        path (`str` or `os.PathLike`): A ``.xml``, ``.xml.bz2`` or ``.xml.gz`` dump.
        min_chars (`int`, *optional*, defaults to 500): Articles with less prose are stubs.
        counts (`collections.Counter`, *optional*): Receives ``pages``, ``redirects``,
            ``non_article_pages``, ``stubs`` and ``articles``.
        byte_range (`tuple[int, int]`, *optional*): Read only the bz2 streams between these offsets of a
            multistream dump (offsets from its index).
        info (`dict`, *optional*): Receives ``dbname`` (e.g. ``enwiki``) when the dump's header has one.

    Yields:
        `WikiArticle`: One per kept article, in dump order.

    Raises:
        CorpusError: if the dump is truncated or is not well-formed XML (with the line and column, and the
            number of pages read before).
    """
    path = os.fspath(path)
    counts = counts if counts is not None else Counter()
    info = info if info is not None else {}
    try:
        for elem in _page_elements(path, byte_range, info):
            counts["pages"] += 1
            ns = elem.find("{*}ns")
            title = elem.findtext("{*}title") or ""
            page_id = elem.findtext("{*}id") or ""
            if elem.find("{*}redirect") is not None:
                counts["redirects"] += 1
                continue
            if ns is not None and (ns.text or "0").strip() != "0":
                counts["non_article_pages"] += 1
                continue
            wikitext = elem.findtext("{*}revision/{*}text") or ""
            if wikitext.lstrip().lower().startswith("#redirect"):
                counts["redirects"] += 1
                continue
            lowered = wikitext.lower()
            paragraphs = wikitext_to_paragraphs(wikitext)
            if "stub}}" in lowered or sum(len(p) for p in paragraphs) < min_chars:
                counts["stubs"] += 1
                continue
            counts["articles"] += 1
            yield WikiArticle(page_id=page_id, title=title, paragraphs=paragraphs)
    except ET.ParseError as err:
        line, column = err.position
        where = f" (streams from byte {byte_range[0]})" if byte_range else ""
        raise CorpusError(
            f"{path}{where}, line {line}, column {column}: expected well-formed MediaWiki XML, found {err.msg!r} "
            f"after {counts['pages']} pages. The dump is truncated or corrupt: download it again (check its "
            "checksum), or cut the pages read so far into a complete file."
        ) from None
    except (EOFError, OSError) as err:
        raise CorpusError(
            f"{path}: the compressed dump ends early ({err}) after {counts['pages']} pages. Expected a complete "
            ".bz2/.gz file: download it again (check its checksum)."
        ) from None


def write_multistream_dump(
    pages: list[tuple[str, str]],
    path: str | os.PathLike,
    pages_per_stream: int = 100,
    dbname: str = "testwiki",
) -> tuple[str, str]:
    """Write pages as a MediaWiki XML dump in Wikipedia's multistream layout: a header stream, then bz2
    streams of `pages_per_stream` pages each, and the ``*-index.txt.bz2`` beside it (``offset:page_id:title``
    per page), as ``pages-articles-multistream`` dumps are published. For tests and benchmarks of parallel
    reading.

    Args:
        pages (`list[tuple[str, str]]`): ``(title, wikitext)`` per page; page ids are 1, 2, ...
        path (`str`): The dump to write, ending in ``-multistream.xml.bz2``.
        pages_per_stream (`int`, *optional*, defaults to 100): Pages per bz2 stream.
        dbname (`str`, *optional*, defaults to `"testwiki"`): The database name in the header.

    Returns:
        `(dump path, index path)`.
    """
    path = os.fspath(path)
    if not path.endswith("-multistream.xml.bz2"):
        raise ValueError(f"{path}: a multistream dump's name ends in -multistream.xml.bz2")
    index_path = path[: -len(".xml.bz2")] + "-index.txt.bz2"
    header = (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11">\n'
        f"  <siteinfo>\n    <sitename>Test</sitename>\n    <dbname>{dbname}</dbname>\n  </siteinfo>\n"
    )
    index_lines = []
    with open(path, "wb") as out:
        out.write(bz2.compress(header.encode()))
        for first in range(0, len(pages), pages_per_stream):
            offset = out.tell()
            chunk = []
            for page_id, (title, text) in enumerate(pages[first : first + pages_per_stream], start=first + 1):
                chunk.append(
                    f"  <page>\n    <title>{escape(title)}</title>\n    <ns>0</ns>\n    <id>{page_id}</id>\n"
                    f'    <revision>\n      <id>{page_id}0</id>\n      <text xml:space="preserve">{escape(text)}</text>\n'
                    "    </revision>\n  </page>\n"
                )
                index_lines.append(f"{offset}:{page_id}:{title}")
            last = first + pages_per_stream >= len(pages)
            out.write(bz2.compress(("".join(chunk) + ("</mediawiki>\n" if last else "")).encode()))
    with bz2.open(index_path, "wt", encoding="utf-8") as index:
        index.write("\n".join(index_lines) + "\n")
    return path, index_path
