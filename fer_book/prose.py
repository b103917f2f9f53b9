"""A chapter's prose, measured on the executed notebook: words, sentences, and numbers typed by hand.

The book's text is Markdown. This module reads it the way `make test` checks it (`tests/test_book_prose.py`):
- `prose_blocks`: the paragraphs and list items of the markdown cells, without code, math, headings, tables,
  HTML, directive options and citations; a `{glue:text}` value counts as one word;
- `stats`: words, sentences (ended by ".", "!" or "?", and by the end of each paragraph or list item) and the
  mean sentence length;
- `typed_decimals`: a decimal with two or more digits after the point, typed into the text, that is not a
  figure quoted from others (`fer_utils.book.cited`) beside its source: a result must be glued;
- `unglued`: the `{glue:text}` names the text uses that no cell of the chapter glued;
- `code_prose`: a code cell's output that is prose (Markdown of more than a sentence or two): text belongs
  in markdown cells;
- `warnings_shown`: a warning that the run does not bear out the text.

`python -m fer_book prose --stage _build/stage` prints the table per chapter and exits 1 over the limits.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from fer_utils.book.cited import CITED, Cited

MAX_WORDS = 2500  # words of prose per chapter: read in one sitting
MAX_MEAN_SENTENCE = 20.0  # mean words per sentence
CODE_PROSE_WORDS = 40  # a code output in Markdown with more words than this is prose written by code
WARNING_MARKS = ("⚠️", "does not bear out")

FENCE = re.compile(r"^(`{3,}|:{3,})(.*)$")
GLUE = re.compile(r"\{glue(?::text|:md|:any)?\}`([^`]+)`")
ROLE = re.compile(r"\{(term|ref|doc|numref|eq)\}`([^`<]*?)\s*(?:<[^`]*>)?`")
CITE = re.compile(r"\{cite(?::\w+)?\}`[^`]*`")
LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
INLINE_MATH = re.compile(r"\$[^$\n]+\$")
INLINE_CODE = re.compile(r"`[^`]*`")
HTML = re.compile(r"<[^>]+>")
SENTENCE_END = re.compile(r"[.!?](?:[\"')\]*_]*)(?=\s|$)")
ABBREVIATIONS = re.compile(r"\b(e\.g|i\.e|et al|etc|cf|vs|Fig|Eq|Ch|St)\.", re.IGNORECASE)
LIST_ITEM = re.compile(r"^\s*(?:[*+-]|\d+[.)])\s+")
# A number as a result is quoted: two or more digits after the point, not part of a longer token.
DECIMAL = re.compile(r"(?<![\w.])\d[\d,]*\.\d{2,}(?!\.?\d)")
NOT_PROSE = re.compile(r"https?://\S+|data:[\w/+.-]+;base64,[\w+/=]+")


def _markdown_lines(source: str) -> list[str]:
    """The lines of a markdown cell that hold prose: fenced code and math blocks, directive options,
    headings, tables and `$$` blocks removed (a fenced directive's body, an aside, is kept)."""
    kept, fence, in_math = [], None, False
    for line in source.splitlines():
        stripped = line.strip()
        if in_math:
            in_math = not stripped.endswith("$$")
            continue
        if stripped.startswith("$$"):
            in_math = not (len(stripped) > 2 and stripped.endswith("$$"))
            continue
        opened = FENCE.match(stripped)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence) and not opened.group(2):
                fence = None
                continue
            if fence.startswith("code"):
                continue
            if stripped.startswith(":") and re.match(r"^:\w[\w-]*:", stripped):
                continue  # a directive's option
            kept.append(line)
            continue
        if opened:
            marker, info = opened.group(1), opened.group(2).strip()
            is_directive = info.startswith("{") and not info.startswith(("{code", "{math"))
            fence = marker if is_directive else "code" + marker
            continue
        if stripped.startswith(("#", "|")) or stripped.startswith("<!--"):
            kept.append("")
            continue
        kept.append(line)
    return kept


def _clean(text: str) -> str:
    """Inline markup reduced to the words a reader reads."""
    text = NOT_PROSE.sub(" ", text)
    text = GLUE.sub("N", text)
    text = CITE.sub("", text)
    text = ROLE.sub(lambda m: m.group(2), text)
    text = LINK.sub(lambda m: m.group(1), text)
    text = INLINE_MATH.sub("x", text)
    text = INLINE_CODE.sub("code", text)
    return HTML.sub(" ", text)


def prose_blocks(source: str) -> list[str]:
    """The paragraphs and list items of a markdown cell, as the words a reader reads."""
    blocks, current = [], []
    for line in _markdown_lines(source):
        if not line.strip():
            if current:
                blocks.append(" ".join(current))
            current = []
            continue
        if LIST_ITEM.match(line) and current:
            blocks.append(" ".join(current))
            current = []
        current.append(LIST_ITEM.sub("", line).strip())
    if current:
        blocks.append(" ".join(current))
    cleaned = (_clean(block).strip() for block in blocks)
    return [block for block in cleaned if re.search(r"[A-Za-z]", block)]


def words(text: str) -> int:
    """Words: runs of letters or digits (a hyphenated or dotted token is one)."""
    return len(re.findall(r"[\w][\w'’.,×±/-]*", text))


def sentences(block: str) -> int:
    """Sentences of one paragraph or list item: its ends of sentence, and at least one."""
    return max(1, len(SENTENCE_END.findall(ABBREVIATIONS.sub("abbr", block))))


class Stats(NamedTuple):
    """Words and sentences of a chapter's prose."""

    words: int
    sentences: int


def markdown_cells(nb: Mapping) -> list[str]:
    """The sources of the notebook's markdown cells."""
    return [_source(cell) for cell in nb["cells"] if cell["cell_type"] == "markdown"]


def _source(cell: Mapping) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def stats(nb: Mapping) -> Stats:
    """Words and sentences of the notebook's prose (its markdown cells)."""
    blocks = [block for source in markdown_cells(nb) for block in prose_blocks(source)]
    return Stats(sum(words(b) for b in blocks), sum(sentences(b) for b in blocks))


def typed_decimals(markdown: str, figures: Mapping[str, Cited] = CITED) -> list[str]:
    """The decimals typed into `markdown` that are not a cited figure named with its source in the same
    paragraph: a result stated in the text must be glued from the run."""
    found = []
    for paragraph in re.split(r"\n\s*\n", NOT_PROSE.sub(" ", "\n".join(_markdown_lines(markdown)))):
        paragraph = GLUE.sub("N", paragraph)
        quoted = [
            (m.start(), m.end())
            for figure in figures.values()
            if figure.stated_in(paragraph)
            for m in re.finditer(rf"(?<![\w.]){re.escape(figure.text)}(?!\.?\d)", paragraph)
        ]
        found += [
            m.group()
            for m in DECIMAL.finditer(paragraph)
            if not any(start <= m.start() and m.end() <= end for start, end in quoted)
        ]
    return found


def glued_names(nb: Mapping) -> set[str]:
    """The names the notebook's code cells glued (myst-nb's `scrapbook` metadata)."""
    return {
        out["metadata"]["scrapbook"]["name"]
        for cell in nb["cells"]
        if cell["cell_type"] == "code"
        for out in cell.get("outputs", [])
        if "scrapbook" in out.get("metadata", {})
    }


def glue_references(nb: Mapping) -> list[str]:
    """The glued names the markdown cells state, in order (a format spec after ':' left out)."""
    return [m.group(1).split("::")[-1].split(":")[0] for source in markdown_cells(nb) for m in GLUE.finditer(source)]


def unglued(nb: Mapping) -> list[str]:
    """The names the text states that no code cell of the notebook glued."""
    glued = glued_names(nb)
    return sorted({name for name in glue_references(nb) if name not in glued})


def code_prose(nb: Mapping) -> list[str]:
    """Code cells whose output is prose in Markdown (fenced code left out), as "cell N: first words"."""
    found = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        for out in cell.get("outputs", []):
            text = out.get("data", {}).get("text/markdown")
            if text is None:
                continue
            text = "".join(text) if isinstance(text, list) else text
            blocks = prose_blocks(text)
            if sum(words(b) for b in blocks) > CODE_PROSE_WORDS:
                found.append(f"cell {index}: {' '.join(blocks)[:60]}…")
    return found


def warnings_shown(nb: Mapping) -> list[str]:
    """Every cell, text or output, that shows a warning that the run does not bear out the text."""
    found = []
    for index, cell in enumerate(nb["cells"]):
        texts = [_source(cell)] if cell["cell_type"] == "markdown" else []
        for out in cell.get("outputs", []):
            texts.append(json.dumps(out.get("data", {}), ensure_ascii=False) + "".join(out.get("text", "")))
        if any(mark in text for text in texts for mark in WARNING_MARKS):
            found.append(f"cell {index}")
    return found


def mean_sentence(measured: Stats) -> float:
    """Words per sentence."""
    return measured.words / max(measured.sentences, 1)


def problems(nb: Mapping) -> list[str]:
    """Everything `make test` refuses in an executed chapter's prose, in words (empty: none)."""
    measured = stats(nb)
    found = []
    if measured.words > MAX_WORDS:
        found.append(f"{measured.words} words of prose (at most {MAX_WORDS})")
    if mean_sentence(measured) > MAX_MEAN_SENTENCE:
        found.append(f"a mean sentence of {mean_sentence(measured):.1f} words (at most {MAX_MEAN_SENTENCE:g})")
    found += [
        f"typed by hand, not glued: {number}" for source in markdown_cells(nb) for number in typed_decimals(source)
    ]
    found += [f"the text states {name!r}, which no cell glued" for name in unglued(nb)]
    found += [f"prose written by code, not in markdown: {where}" for where in code_prose(nb)]
    found += [f"a warning that the run does not bear out the text: {where}" for where in warnings_shown(nb)]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_book prose", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", type=Path, default=Path("_build/stage"), help="the executed stage")
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to measure (default: the stage's)")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((args.stage / "notebooks").glob("*.ipynb"))
    failed = False
    print(f"{'chapter':<32} {'words':>6} {'sentences':>9} {'mean':>5}")
    for path in paths:
        nb = json.loads(path.read_text(encoding="utf-8"))
        measured, found = stats(nb), problems(nb)
        print(f"{path.stem:<32} {measured.words:>6} {measured.sentences:>9} {mean_sentence(measured):>5.1f}")
        for problem in found:
            print(f"    {problem}")
        failed = failed or bool(found)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
