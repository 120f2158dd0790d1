"""Sequence and box diagrams drawn as SVG from a few lines of text: no dependency, no browser.

The documentation's pictures are written in two small languages, parsed strictly: a line
that cannot be read is a :class:`DiagramError` naming it, so a broken picture fails the
build instead of showing nothing. The same source gives the text alternative.

Sequence diagram (``parse_sequence``)::

    participant B: Browser           one per column, left to right
    B -> S: 1. GET /page             a request: solid arrow
    S --> B: 2. 302 to the Hub       an answer: dashed arrow
    note S: checks the state         a note on one lifeline; ``note B..H:`` spans several

Box diagram (``parse_boxes``)::

    box core: Core flows | hubauth._flow    a box (title | detail lines) in the current row
    row                                     the next boxes go in a new row, below
    tornado -> core: run_async              an arrow, with an optional label

Blank lines and lines starting with ``#`` are ignored. Text is measured as monospace, which
is how it is drawn, so labels wrap to the room they have.
"""

from __future__ import annotations

import hashlib
import html
import re
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "Boxes",
    "DiagramError",
    "SequenceDiagram",
    "parse_boxes",
    "parse_sequence",
    "render_boxes",
    "render_sequence",
    "text_boxes",
    "text_sequence",
    "well_formed",
]

FONT = 13  # px
CHAR = 8.0  # px per character of a 13 px monospace font (0.6 em, rounded up)
LINE = 17  # px between lines of text
PAD = 8  # px around text in a box
WIDTH = 760  # px: the drawing's natural width (it scales down on narrow screens)
MAX_PARTICIPANTS = 8  # of a sequence diagram: more columns would not fit the width
MAX_BOXES = 6  # in one row of a box diagram
MAX_LABEL = 24  # characters of an arrow's label in a box diagram

_ID = r"[A-Za-z_][A-Za-z0-9_-]*"
_PARTICIPANT = re.compile(rf"participant\s+({_ID})\s*:\s*(\S.*)")
_MESSAGE = re.compile(rf"({_ID})\s*(-->|->)\s*({_ID})\s*:\s*(\S.*)")
_NOTE = re.compile(rf"note\s+({_ID})(?:\s*\.\.\s*({_ID}))?\s*:\s*(\S.*)")
_BOX = re.compile(rf"box\s+({_ID})\s*:\s*(\S.*)")
_EDGE = re.compile(rf"({_ID})\s*->\s*({_ID})\s*(?::\s*(\S.*))?")


class DiagramError(ValueError):
    """A diagram's source cannot be drawn; the message names the line and what to write."""


@dataclass(frozen=True)
class Message:
    source: int  # participant indexes
    target: int
    text: str
    answer: bool  # dashed: the answer to a request


@dataclass(frozen=True)
class Note:
    first: int
    last: int
    text: str


@dataclass(frozen=True)
class SequenceDiagram:
    title: str
    participants: tuple[str, ...]  # labels, left to right
    steps: tuple[Message | Note, ...]


@dataclass(frozen=True)
class Box:
    id: str
    title: str
    details: tuple[str, ...]


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str


@dataclass(frozen=True)
class Boxes:
    title: str
    rows: tuple[tuple[Box, ...], ...]
    edges: tuple[Edge, ...]


def _lines(source: Iterable[str]) -> Iterable[tuple[int, str]]:
    for number, raw in enumerate(source, 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield number, line


def _title(title: str) -> str:
    title = " ".join(title.split())
    if not title:
        raise DiagramError("the diagram has no title: write one after the directive's name")
    return title


def parse_sequence(title: str, source: Iterable[str]) -> SequenceDiagram:
    """Read a sequence diagram; every mistake is a DiagramError naming its line."""
    ids: dict[str, int] = {}
    labels: list[str] = []
    steps: list[Message | Note] = []

    def index(name: str, number: int) -> int:
        if name not in ids:
            known = ", ".join(ids) or "none yet"
            raise DiagramError(
                f"line {number}: {name!r} is not a participant (declared: {known}); "
                f"declare it first: participant {name}: <label>"
            )
        return ids[name]

    for number, line in _lines(source):
        if m := _PARTICIPANT.fullmatch(line):
            if steps:
                raise DiagramError(f"line {number}: declare participants before any step")
            if m[1] in ids:
                raise DiagramError(f"line {number}: participant {m[1]!r} is declared twice")
            ids[m[1]] = len(labels)
            labels.append(m[2].strip())
        elif m := _NOTE.fullmatch(line):
            first, last = index(m[1], number), index(m[2] or m[1], number)
            steps.append(Note(min(first, last), max(first, last), m[3].strip()))
        elif m := _MESSAGE.fullmatch(line):
            source_, target = index(m[1], number), index(m[3], number)
            if source_ == target:
                raise DiagramError(f"line {number}: a message from {m[1]} to itself: use a note")
            steps.append(Message(source_, target, m[4].strip(), m[2] == "-->"))
        else:
            raise DiagramError(
                f"line {number}: cannot read {line!r}; expected 'participant ID: label', "
                "'A -> B: text', 'A --> B: text' or 'note A: text' (or 'note A..B: text')"
            )
    if not 2 <= len(labels) <= MAX_PARTICIPANTS:
        raise DiagramError(f"a sequence diagram has 2 to {MAX_PARTICIPANTS} participants")
    room = int((WIDTH / len(labels) - 2 * PAD) // CHAR)
    for label in labels:
        if len(label) > room:
            raise DiagramError(
                f"participant {label!r} is longer than the {room} characters that fit "
                f"{len(labels)} columns: shorten it"
            )
    if not steps:
        raise DiagramError("the sequence diagram has no step: add 'A -> B: text' lines")
    return SequenceDiagram(_title(title), tuple(labels), tuple(steps))


def parse_boxes(title: str, source: Iterable[str]) -> Boxes:
    """Read a box diagram; every mistake is a DiagramError naming its line."""
    rows: list[list[Box]] = [[]]
    seen: set[str] = set()
    edges: list[tuple[int, Edge]] = []
    for number, line in _lines(source):
        if line == "row":
            if not rows[-1]:
                raise DiagramError(f"line {number}: 'row' after an empty row")
            rows.append([])
        elif m := _BOX.fullmatch(line):
            if m[1] in seen:
                raise DiagramError(f"line {number}: box {m[1]!r} is declared twice")
            seen.add(m[1])
            parts = [p.strip() for p in m[2].split("|")]
            if not all(parts):
                raise DiagramError(f"line {number}: an empty part between '|'")
            if len(rows[-1]) == MAX_BOXES:
                raise DiagramError(f"line {number}: a row has at most {MAX_BOXES} boxes")
            rows[-1].append(Box(m[1], parts[0], tuple(parts[1:])))
        elif m := _EDGE.fullmatch(line):
            if m[1] == m[2]:
                raise DiagramError(f"line {number}: an arrow from {m[1]} to itself")
            label = (m[3] or "").strip()
            if len(label) > MAX_LABEL:
                raise DiagramError(
                    f"line {number}: an arrow's label has {MAX_LABEL} characters at most"
                )
            edges.append((number, Edge(m[1], m[2], label)))
        else:
            raise DiagramError(
                f"line {number}: cannot read {line!r}; expected 'box ID: title | detail', "
                "'row' or 'A -> B: label'"
            )
    if not rows[-1]:
        raise DiagramError("the box diagram ends with an empty row" if seen else "no box")
    for number, edge in edges:
        for end in (edge.source, edge.target):
            if end not in seen:
                raise DiagramError(f"line {number}: {end!r} is not a box (declare: box {end}:)")
    return Boxes(_title(title), tuple(tuple(r) for r in rows), tuple(e for _, e in edges))


# ------------------------------------------------------------------------------ drawing

_STYLE = """
.hd text { font-family: var(--font-stack--monospace, ui-monospace, "DejaVu Sans Mono",
  Menlo, Consolas, monospace); font-size: 13px; fill: var(--color-foreground-primary, #222); }
.hd text.small { font-size: 12px; fill: var(--color-foreground-secondary, #555); }
.hd text.strong { font-weight: bold; }
.hd .box { fill: var(--color-background-secondary, #f6f7f8);
  stroke: var(--color-foreground-secondary, #555); }
.hd .life { stroke: var(--color-foreground-border, #999); stroke-dasharray: 4 4; }
.hd .line { stroke: var(--color-foreground-primary, #222); fill: none; }
.hd .answer { stroke-dasharray: 6 4; }
.hd .note { fill: var(--color-admonition-background, #fdf6e3);
  stroke: var(--color-foreground-border, #999); }
.hd .label { fill: var(--color-background-primary, #fff); }
.hd .head { fill: var(--color-foreground-primary, #222); }
"""


def _wrap(text: str, width_px: float) -> list[str]:
    chars = max(4, int(width_px // CHAR))
    return textwrap.wrap(text, chars, break_long_words=True, break_on_hyphens=False) or [""]


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _text(x: float, y: float, text: str, cls: str = "", anchor: str = "start") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{klass}>{_esc(text)}</text>'


def _group(parts: list[str]) -> str:
    """One thing drawn: a box, a note, a message, with its words (kept together)."""
    return "<g>" + "".join(parts) + "</g>"


def _svg(uid: str, title: str, desc: str, width: float, height: float, body: list[str]) -> str:
    """The whole picture: accessible name and description, its own style and arrow head."""
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" class="hd" role="img" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
            f'aria-labelledby="{uid}-title {uid}-desc">',
            f'<title id="{uid}-title">{_esc(title)}</title>',
            f'<desc id="{uid}-desc">{_esc(desc)}</desc>',
            f"<style>{_STYLE}</style>",
            f'<defs><marker id="{uid}-head" viewBox="0 0 10 10" refX="10" refY="5" '
            'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
            '<path class="head" d="M0,0 L10,5 L0,10 z"/></marker></defs>',
            *body,
            "</svg>",
        ]
    )


def _uid(kind: str, title: str) -> str:
    """An id for this picture's parts, unique on a page with other pictures."""
    return f"hd-{kind}-{hashlib.sha256(title.encode()).hexdigest()[:8]}"


def render_sequence(d: SequenceDiagram) -> str:
    """The sequence diagram as a standalone SVG document."""
    uid = _uid("seq", d.title)
    n = len(d.participants)
    head_w = max(len(p) for p in d.participants) * CHAR + 2 * PAD
    margin = head_w / 2 + 4
    step = (WIDTH - 2 * margin) / (n - 1)
    xs = [margin + i * step for i in range(n)]
    head_h = LINE + 2 * PAD
    body: list[str] = []
    y = head_h + 24
    for s in d.steps:
        if isinstance(s, Note):
            reach = step * 0.45 if s.first == s.last else 2 * PAD  # one lifeline, or a span
            left = max(4.0, xs[s.first] - reach)
            right = min(WIDTH - 4.0, xs[s.last] + reach)
            lines = _wrap(s.text, right - left - 2 * PAD)
            h = len(lines) * LINE + PAD
            rect = (
                f'<rect class="note" x="{left:.1f}" y="{y:.1f}" '
                f'width="{right - left:.1f}" height="{h:.1f}"/>'
            )
            words = [
                _text(left + PAD, y + PAD / 2 + (i + 0.8) * LINE, t) for i, t in enumerate(lines)
            ]
            body.append(_group([rect, *words]))
            y += h + 14
            continue
        x1, x2 = xs[s.source], xs[s.target]
        lines = _wrap(s.text, abs(x2 - x1) - 2 * PAD)
        words = [_text(min(x1, x2) + PAD, y + (i + 0.8) * LINE, t) for i, t in enumerate(lines)]
        y += len(lines) * LINE + 6
        klass = "line answer" if s.answer else "line"
        arrow = (
            f'<line class="{klass}" x1="{x1:.1f}" y1="{y:.1f}" x2="{x2:.1f}" y2="{y:.1f}" '
            f'marker-end="url(#{uid}-head)"/>'
        )
        body.append(_group([*words, arrow]))
        y += 16
    bottom = y + 8
    lifelines = [
        f'<line class="life" x1="{x:.1f}" y1="{head_h:.1f}" x2="{x:.1f}" y2="{bottom:.1f}"/>'
        for x in xs
    ]
    heads: list[str] = []
    for top in (0.0, bottom):
        for x, label in zip(xs, d.participants, strict=True):
            w = len(label) * CHAR + 2 * PAD
            rect = (
                f'<rect class="box" x="{x - w / 2:.1f}" y="{top + 1:.1f}" rx="4" '
                f'width="{w:.1f}" height="{head_h - 2:.1f}"/>'
            )
            heads.append(
                _group([rect, _text(x, top + PAD + 0.8 * LINE, label, "strong", "middle")])
            )
    desc = " ".join(text_sequence(d))
    return _svg(uid, d.title, desc, WIDTH, bottom + head_h, lifelines + heads + body)


def text_sequence(d: SequenceDiagram) -> list[str]:
    """The diagram in words, one sentence per step, in order."""
    names = d.participants
    out = []
    for s in d.steps:
        if isinstance(s, Note):
            where = names[s.first] if s.first == s.last else f"{names[s.first]} to {names[s.last]}"
            out.append(f"Note ({where}): {s.text}")
        elif s.answer:
            out.append(f"{names[s.source]} answers {names[s.target]}: {s.text}")
        else:
            out.append(f"{names[s.source]} to {names[s.target]}: {s.text}")
    return out


@dataclass
class _Placed:
    box: Box
    row: int
    x: float  # left
    y: float  # top
    w: float
    h: float
    title: list[str]
    details: list[str]


def _place(d: Boxes) -> tuple[dict[str, _Placed], float]:
    placed: dict[str, _Placed] = {}
    y = 4.0
    for r, row in enumerate(d.rows):
        slot = WIDTH / len(row)
        natural = max(
            max(len(line) for line in (b.title, *b.details)) * CHAR + 2 * PAD for b in row
        )
        w = min(slot - 32, max(natural, 120.0))
        cells = []
        for i, b in enumerate(row):
            title = _wrap(b.title, w - 2 * PAD)
            details = [line for d_ in b.details for line in _wrap(d_, w - 2 * PAD)]
            cells.append(_Placed(b, r, (i + 0.5) * slot - w / 2, y, w, 0, title, details))
        h = max((len(c.title) + len(c.details)) * LINE + 2 * PAD for c in cells)
        for c in cells:
            c.h = h
            placed[c.box.id] = c
        y += h + 64
    return placed, y - 64 + 4


def _ports(placed: dict[str, _Placed], edges: Sequence[Edge]) -> dict[tuple[int, str], float]:
    """Where each arrow leaves and reaches its boxes: spread along the side, in x order."""
    sides: dict[tuple[str, str], list[tuple[float, int, str]]] = {}
    for i, e in enumerate(edges):
        a, b = placed[e.source], placed[e.target]
        if a.row == b.row:
            continue  # side to side, at mid height
        down = b.row > a.row
        sides.setdefault((e.source, "bottom" if down else "top"), []).append(
            (b.x + b.w / 2, i, "source")
        )
        sides.setdefault((e.target, "top" if down else "bottom"), []).append(
            (a.x + a.w / 2, i, "target")
        )
    ports: dict[tuple[int, str], float] = {}
    for (name, _), ends in sides.items():
        box = placed[name]
        for k, (_, i, end) in enumerate(sorted(ends)):
            ports[(i, end)] = box.x + box.w * (k + 1) / (len(ends) + 1)
    return ports


def render_boxes(d: Boxes) -> str:
    """The box diagram as a standalone SVG document."""
    uid = _uid("box", d.title)
    placed, height = _place(d)
    ports = _ports(placed, d.edges)
    body: list[str] = []
    for c in placed.values():
        parts = [
            f'<rect class="box" x="{c.x:.1f}" y="{c.y:.1f}" rx="6" '
            f'width="{c.w:.1f}" height="{c.h:.1f}"/>'
        ]
        y = c.y + PAD + 0.8 * LINE
        for line in c.title:
            parts.append(_text(c.x + c.w / 2, y, line, "strong", "middle"))
            y += LINE
        for line in c.details:
            parts.append(_text(c.x + c.w / 2, y, line, "small", "middle"))
            y += LINE
        body.append(_group(parts))
    labels: list[str] = []
    for i, e in enumerate(d.edges):
        a, b = placed[e.source], placed[e.target]
        if a.row == b.row:
            left_to_right = a.x < b.x
            x1 = a.x + a.w if left_to_right else a.x
            x2 = b.x if left_to_right else b.x + b.w
            y1 = y2 = a.y + a.h / 2
        else:
            down = b.row > a.row
            x1, x2 = ports[(i, "source")], ports[(i, "target")]
            y1 = a.y + a.h if down else a.y
            y2 = b.y if down else b.y + b.h
        body.append(
            f'<line class="line" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'marker-end="url(#{uid}-head)"/>'
        )
        if e.label:
            mx, my = (x1 + x2) / 2, (y1 + y2) / 2
            w = len(e.label) * CHAR * 12 / 13 + 6
            rect = (
                f'<rect class="label" x="{mx - w / 2:.1f}" y="{my - 9:.1f}" '
                f'width="{w:.1f}" height="16"/>'
            )
            labels.append(_group([rect, _text(mx, my + 4, e.label, "small", "middle")]))
    desc = " ".join(text_boxes(d))
    return _svg(uid, d.title, desc, WIDTH, height, body + labels)


def text_boxes(d: Boxes) -> list[str]:
    """The diagram in words: each box, top row first, with where its arrows go."""
    titles = {b.id: b.title for row in d.rows for b in row}
    out = []
    for row in d.rows:
        for b in row:
            sentence = b.title + (f" ({'; '.join(b.details)})" if b.details else "")
            arrows = [
                f"{titles[e.target]}" + (f" ({e.label})" if e.label else "")
                for e in d.edges
                if e.source == b.id
            ]
            if arrows:
                sentence += ", arrows to: " + ", ".join(arrows)
            out.append(sentence + ".")
    return out


def well_formed(svg: str) -> str:
    """``svg`` itself, once it is known to be well-formed XML (else a DiagramError)."""
    try:
        ET.fromstring(svg)
    except ET.ParseError as e:
        raise DiagramError(f"the drawing is not well-formed SVG: {e}") from None
    return svg
