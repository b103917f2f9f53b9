"""A chapter's prose, measured on the executed notebook: words, sentences, and numbers typed by hand.

The MyST Markdown is read with myst-parser's own parser; `problems` lists what `make test` refuses.
`python -m fer_book prose --stage _build/stage` prints each chapter's measures and problems (exit 1 on any).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import NamedTuple

from fer_book.assign import is_solution
from fer_book.assign import source as cell_source
from fer_utils.book.cited import CITED, Cited

MAX_WORDS = 2500  # words of prose per chapter: read in one sitting
MAX_MEAN_SENTENCE = 20.0  # mean words per sentence
CODE_PROSE_WORDS = 40  # a code output in Markdown with more words than this is prose written by code
WARNING_MARKS = ("⚠️", "does not bear out")

GLUE = re.compile(r"\{glue(?::text|:md|:any)?\}`([^`]+)`")
SENTENCE_END = re.compile(r"[.!?](?:[\"')\]*_]*)(?=\s|$)")
ABBREVIATIONS = re.compile(r"\b(e\.g|i\.e|et al|etc|cf|vs|Fig|Eq|Ch|St)\.", re.IGNORECASE)
# A number as a result is quoted: two or more digits after the point, not part of a longer token.
DECIMAL = re.compile(r"(?<![\w.])\d[\d,]*\.\d{2,}(?!\.?\d)")
DIRECTIVE_OPENING = re.compile(r"\s*(`{3,}|:{3,})\{")
NOT_PROSE = re.compile(r"https?://\S+|data:[\w/+.-]+;base64,[\w+/=]+")
# What a reader reads of an inline token that is not text (myst-parser's token types); other markup reads as nothing.
READ_AS = {"softbreak": " ", "hardbreak": " ", "math_inline": "x", "code_inline": "code", "html_inline": " "}


@cache
def _parser() -> object:
    """The book's Markdown parser: myst-parser's, with the extensions `_config.yml` enables."""
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    return create_md_parser(MdParserConfig(enable_extensions={"colon_fence", "dollarmath", "deflist"}), RendererHTML)


def paragraphs(source: str) -> list:
    """The inline tokens of a markdown cell's paragraphs and list items, a directive's body included."""
    tokens, found = _parser().parse(source), []
    for before, token in zip([None, *tokens], tokens):
        directive = token.info.startswith("{") and not token.info.startswith(("{code", "{math"))
        if token.type in ("fence", "colon_fence") and directive:
            found += paragraphs("\n".join(s for s in token.content.splitlines() if not re.match(r"\s*:\w[\w-]*:", s)))
        elif token.type == "inline" and before is not None and before.type == "paragraph_open":
            found.append(token)
    return found


def _read(token: object) -> str:
    """An inline token as the words a reader reads: a glued value is one word, a citation none, a role its label."""
    if token.type == "myst_role":
        name = token.meta.get("name", "")
        return "N" if name.startswith("glue") else "" if name.startswith("cite") else token.content.split("<")[0]
    return token.content if token.type in ("text", "image") else READ_AS.get(token.type, "")


def prose_blocks(source: str) -> list[str]:
    """The paragraphs and list items of a markdown cell, as the words a reader reads."""
    blocks = (NOT_PROSE.sub(" ", "".join(_read(child) for child in token.children)) for token in paragraphs(source))
    return [" ".join(block.split()) for block in blocks if re.search(r"[A-Za-z]", block)]


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
    return [cell_source(cell) for cell in nb["cells"] if cell["cell_type"] == "markdown"]


def stats(nb: Mapping) -> Stats:
    """Words and sentences of the notebook's prose (its markdown cells)."""
    blocks = [block for source in markdown_cells(nb) for block in prose_blocks(source)]
    return Stats(sum(words(b) for b in blocks), sum(sentences(b) for b in blocks))


def typed_decimals(markdown: str, figures: Mapping[str, Cited] = CITED) -> list[str]:
    """The decimals typed into `markdown` that are no cited figure stated with its source: results are glued."""
    found = []
    for token in paragraphs(markdown):
        paragraph = GLUE.sub("N", NOT_PROSE.sub(" ", token.content))
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


def unglued(nb: Mapping) -> list[str]:
    """The glued names the markdown cells state that no code cell glued (myst-nb's `scrapbook` metadata)."""
    outputs = [out for cell in nb["cells"] if cell["cell_type"] == "code" for out in cell.get("outputs", [])]
    glued = {out["metadata"]["scrapbook"]["name"] for out in outputs if "scrapbook" in out.get("metadata", {})}
    stated = {m.group(1).split("::")[-1].split(":")[0] for source in markdown_cells(nb) for m in GLUE.finditer(source)}
    return sorted(stated - glued)


def code_prose(nb: Mapping) -> list[str]:
    """Code cells (solutions left out) whose output is prose in Markdown, as "cell N: first words"."""
    found = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code" or is_solution(cell):
            continue
        for out in cell.get("outputs", []):
            blocks = prose_blocks("".join(out.get("data", {}).get("text/markdown") or ""))  # a string or its lines
            if sum(words(b) for b in blocks) > CODE_PROSE_WORDS:
                found.append(f"cell {index}: {' '.join(blocks)[:60]}…")
    return found


def warnings_shown(nb: Mapping) -> list[str]:
    """Every cell, text or output, that shows a warning that the run does not bear out the text."""
    found = []
    for index, cell in enumerate(nb["cells"]):
        texts = [cell_source(cell)] if cell["cell_type"] == "markdown" else []
        for out in cell.get("outputs", []):
            texts.append(json.dumps(out.get("data", {}), ensure_ascii=False) + "".join(out.get("text", "")))
        if any(mark in text for text in texts for mark in WARNING_MARKS):
            found.append(f"cell {index}")
    return found


def broken_directives(nb: Mapping) -> list[str]:
    """Markdown lines that open a directive myst-parser does not read as one, as "cell N: the line"."""
    found = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        source = cell_source(cell)
        fences = [t.map for t in _parser().parse(source) if t.type in ("fence", "colon_fence") and t.map]
        for number, line in enumerate(source.splitlines()):
            in_fence = any(start <= number < end for start, end in fences)  # opening it, or inside it
            if DIRECTIVE_OPENING.match(line) and not in_fence:
                found.append(f"cell {index}: {line.strip()}")
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
    found += [f"a directive read as text: {where}" for where in broken_directives(nb)]
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
