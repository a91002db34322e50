"""Rebuild nsptask's bundled corpus, ``nsptask/data/enwiki_sample.txt.gz``.

Source: the shortened English Wikipedia dump that the ``gensim`` wheel on PyPI carries as
``gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2``
(206 pages of the 2016 ``pages-articles1`` dump). gensim itself is not needed: the wheel is
downloaded with ``pip download --no-deps`` and only that file is read out of it.

Articles go through nsptask's own Wikipedia reader (mwparserfromhell strips the markup, redirects and
stubs are dropped) and sentence splitter, and are written in BERT's format: one sentence per line,
a blank line between articles, gzip-compressed with a fixed timestamp so the output is reproducible.

    python scripts/make_bundled_corpus.py            # downloads gensim==4.4.0
    python scripts/make_bundled_corpus.py --wheel path/to/gensim-*.whl
"""

from __future__ import annotations

import argparse
import glob
import gzip
import io
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

DUMP = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
OUT = Path(__file__).resolve().parent.parent / "nsptask" / "data" / "enwiki_sample.txt.gz"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", help="a gensim wheel already on disk (default: pip download gensim)")
    parser.add_argument("--gensim_version", default="4.4.0")
    parser.add_argument("--output", default=str(OUT))
    args = parser.parse_args()

    from nsptask.segmentation import get_splitter
    from nsptask.wikipedia import iter_wikipedia_articles

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel
        if wheel is None:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "-q",
                    "-d",
                    tmp,
                    f"gensim=={args.gensim_version}",
                ],
                check=True,
            )
            wheel = glob.glob(f"{tmp}/gensim-*.whl")[0]
        dump = Path(tmp) / "enwiki.xml.bz2"
        with zipfile.ZipFile(wheel) as zf:
            dump.write_bytes(zf.read(DUMP))
        counts: Counter = Counter()
        splitter = get_splitter("sentencex", "en")
        buffer = io.StringIO()
        n_sentences = 0
        for article in iter_wikipedia_articles(dump, counts=counts):
            sentences = [s for paragraph in article.paragraphs for s in splitter(paragraph)]
            buffer.write("\n".join(sentences) + "\n\n")
            n_sentences += len(sentences)
    data = buffer.getvalue().encode("utf-8")
    with open(args.output, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(data)
    # The default tokenizer ships too: the tokenizers trainer breaks ties at the vocabulary cut-off
    # differently from run to run, and the package must build the same data on every machine.
    from nsptask.tokenization import BUNDLED_TOKENIZER, train_wordpiece_tokenizer

    sentences = [line for line in data.decode("utf-8").split("\n") if line]
    tokenizer_dir = Path(args.output).parent / BUNDLED_TOKENIZER
    train_wordpiece_tokenizer(sentences, vocab_size=8000, lowercase=True, output_dir=tokenizer_dir)
    print(
        f"wrote {args.output}: {counts['articles']} articles, {n_sentences} sentences, {len(data)} bytes of text, "
        f"{Path(args.output).stat().st_size} compressed; skipped {dict(counts)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
