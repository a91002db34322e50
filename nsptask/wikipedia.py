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


def iter_wikipedia_articles(
    path: str | os.PathLike,
    min_chars: int = 500,
    counts: Counter | None = None,
) -> Iterator[WikiArticle]:
    """Stream the articles of a Wikipedia XML dump as plain text.

    Redirects, pages outside namespace 0, and stubs (articles shorter than `min_chars` characters of
    prose, or tagged with a ``{{...-stub}}`` template) are skipped and counted in `counts`.

    Args:
        path (`str` or `os.PathLike`): A ``.xml``, ``.xml.bz2`` or ``.xml.gz`` dump.
        min_chars (`int`, *optional*, defaults to 500): Articles with less prose are stubs.
        counts (`collections.Counter`, *optional*): Receives ``pages``, ``redirects``,
            ``non_article_pages``, ``stubs`` and ``articles``.

    Yields:
        `WikiArticle`: One per kept article, in dump order.
    """
    counts = counts if counts is not None else Counter()
    with _open_dump(path) as stream:
        context = ET.iterparse(stream, events=("end",))
        for _, elem in context:
            tag = elem.tag.rsplit("}", 1)[-1]
            if tag != "page":
                continue
            counts["pages"] += 1
            ns = elem.find("{*}ns")
            title = elem.findtext("{*}title") or ""
            page_id = elem.findtext("{*}id") or ""
            if elem.find("{*}redirect") is not None:
                counts["redirects"] += 1
            elif ns is not None and (ns.text or "0").strip() != "0":
                counts["non_article_pages"] += 1
            else:
                wikitext = elem.findtext("{*}revision/{*}text") or ""
                if wikitext.lstrip().lower().startswith("#redirect"):
                    counts["redirects"] += 1
                else:
                    lowered = wikitext.lower()
                    paragraphs = wikitext_to_paragraphs(wikitext)
                    if "stub}}" in lowered or sum(len(p) for p in paragraphs) < min_chars:
                        counts["stubs"] += 1
                    else:
                        counts["articles"] += 1
                        yield WikiArticle(page_id=page_id, title=title, paragraphs=paragraphs)
            elem.clear()
