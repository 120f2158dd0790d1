"""The documentation's pictures: drawn at build time, or the build fails.

``docs/_ext/hubauth_drawing.py`` turns the ``sequence`` and ``boxes`` sources of the pages
into SVG; ``docs/_ext/hubauth_diagrams.py`` puts them in the pages with their text
alternative. A source that cannot be read must stop ``sphinx -W`` with the line at fault,
never give an empty or broken picture; whatever it accepts must draw inside the picture.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
EXT = ROOT / "docs" / "_ext"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXT / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


drawing = _load("hubauth_drawing")
SVG = "{http://www.w3.org/2000/svg}"

LOGIN = """
participant B: Browser
participant S: Service
participant H: Hub
# a comment, then a blank line

B -> S: 1. GET /page
note S: no cookie
S --> B: 2. 302 to the Hub
note B..H: the Hub logs the user in
"""

ARCHITECTURE = """
box a: Adapter | hubauth.wsgi
box b: Other adapter
row
box core: Core | hubauth._flow
a -> core: sync
b -> core
"""


def parse_svg(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314  # our own drawing, not untrusted input


def _extent(el: ET.Element) -> tuple[float, float, float, float]:
    """Where a text element's characters lie, measured as the renderer measures them."""
    size = drawing.CHAR * (12 / 13 if "small" in el.get("class", "") else 1)
    length = len(el.text or "") * size
    x, y = float(el.attrib["x"]), float(el.attrib["y"])
    left = {"start": x, "middle": x - length / 2}[el.attrib["text-anchor"]]
    font = drawing.FONT * (12 / 13 if "small" in el.get("class", "") else 1)
    return left, y - font, left + length, y


def drawn_inside(svg: str) -> list[str]:
    """What is drawn where it does not belong: outside the picture, or words outside the
    box, note or label they are in, or wider than the arrow they name.
    """
    root = parse_svg(svg)
    _, _, width, height = (float(v) for v in root.attrib["viewBox"].split())
    out = []
    for el in root.iter(SVG + "rect"):
        x, y = float(el.attrib["x"]), float(el.attrib["y"])
        w, h = float(el.attrib["width"]), float(el.attrib["height"])
        if x < 0 or y < 0 or x + w > width or y + h > height:
            out.append(f"rect at {x:.0f},{y:.0f} {w:.0f}x{h:.0f}")
    for group in root.iter(SVG + "g"):
        rect, line = group.find(SVG + "rect"), group.find(SVG + "line")
        if rect is not None:
            x, y = float(rect.attrib["x"]), float(rect.attrib["y"])
            room = (x, y, x + float(rect.attrib["width"]), y + float(rect.attrib["height"]))
        elif line is not None:
            x1, x2 = sorted((float(line.attrib["x1"]), float(line.attrib["x2"])))
            room = (x1, 0, x2, height)
        else:
            out.append("a group with neither a shape nor an arrow")
            continue
        for el in group.iter(SVG + "text"):
            left, top, right, bottom = _extent(el)
            if left < room[0] or right > room[2] or top < room[1] or bottom > room[3]:
                out.append(f"text {el.text!r} at {left:.0f}..{right:.0f} outside {room}")
    for el in root.iter(SVG + "text"):
        left, top, right, bottom = _extent(el)
        if left < 0 or right > width or top < 0 or bottom > height:
            out.append(f"text {el.text!r} outside the picture")
    return out


def texts(svg: str) -> list[str]:
    return [el.text or "" for el in parse_svg(svg).iter(SVG + "text")]


def test_a_sequence_diagram_draws_each_step_and_says_it_in_words() -> None:
    d = drawing.parse_sequence("Login", LOGIN.splitlines())
    svg = drawing.render_sequence(d)
    root = parse_svg(svg)
    assert root.attrib["role"] == "img"
    assert root.find(SVG + "title").text == "Login"  # type: ignore[union-attr]
    assert "1. GET /page" in texts(svg) and "2. 302 to the Hub" in texts(svg)
    assert texts(svg).count("Browser") == 2  # head and foot of its lifeline
    assert len(list(root.iter(SVG + "line"))) == 3 + 2  # three lifelines, two arrows
    assert drawn_inside(svg) == []
    assert drawing.text_sequence(d) == [
        "Browser to Service: 1. GET /page",
        "Note (Service): no cookie",
        "Service answers Browser: 2. 302 to the Hub",
        "Note (Browser to Hub): the Hub logs the user in",
    ]
    assert "Browser to Service: 1. GET /page" in root.find(SVG + "desc").text  # type: ignore[operator,union-attr]


def test_a_box_diagram_draws_rows_and_arrows_and_says_them_in_words() -> None:
    d = drawing.parse_boxes("Parts", ARCHITECTURE.splitlines())
    svg = drawing.render_boxes(d)
    assert [len(r) for r in d.rows] == [2, 1]
    assert {"Adapter", "hubauth.wsgi", "Core", "sync"} <= set(texts(svg))
    assert drawn_inside(svg) == []
    assert drawing.text_boxes(d) == [
        "Adapter (hubauth.wsgi), arrows to: Core (sync).",
        "Other adapter, arrows to: Core.",
        "Core (hubauth._flow).",
    ]


def test_markup_in_labels_is_text_not_svg() -> None:
    """A label is drawn as written: `<`, `&` and quotes cannot open an element."""
    source = ['participant A: <b>&"x"', "participant B: b", "A -> B: </text><script>"]
    svg = drawing.render_sequence(drawing.parse_sequence("<t>", source))
    assert '<b>&"x"' in texts(svg) and "</text><script>" in texts(svg)
    assert not parse_svg(svg).findall(f".//{SVG}script")


P2 = ["participant A: a", "participant B: b"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (["participant A: a"], "2 to 8 participants"),
        ([f"participant P{i}: p" for i in range(9)] + ["P0 -> P1: x"], "2 to 8 participants"),
        (P2, "no step"),
        ([*P2, "A -> C: x"], "line 3: 'C' is not a participant (declared: A, B)"),
        (["A -> B: x", *P2], "line 1: 'A' is not a participant (declared: none yet)"),
        ([*P2, "A -> B: x", "participant C: c"], "line 4: declare participants before"),
        (["participant A: a", "participant A: b"], "line 2: participant 'A' is declared twice"),
        ([*P2, "A -> A: x"], "line 3: a message from A to itself"),
        ([*P2, "A => B: x"], "line 3: cannot read 'A => B: x'"),
        ([*P2, "A -> B:"], "line 3: cannot read"),
        ([*P2, "note C: x"], "line 3: 'C' is not a participant"),
        (["participant A: " + "x" * 80, "participant B: b", "A -> B: x"], "shorten it"),
    ],
)
def test_a_sequence_that_cannot_be_read_is_refused_naming_the_line(
    source: list[str], message: str
) -> None:
    with pytest.raises(drawing.DiagramError, match=re.escape(message)):
        drawing.parse_sequence("t", source)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ([], "no box"),
        (["row"], "line 1: 'row' after an empty row"),
        (["box a: A", "row"], "ends with an empty row"),
        (["box a: A", "box a: B"], "line 2: box 'a' is declared twice"),
        (["box a: A | "], "line 1: an empty part"),
        (["box a: A", "a -> b"], "line 2: 'b' is not a box"),
        (["box a: A", "a -> a"], "line 2: an arrow from a to itself"),
        (["box a: A", "box b: B", "a -> b: " + "x" * 25], "line 3: an arrow's label has 24"),
        ([f"box b{i}: B" for i in range(7)], "line 7: a row has at most 6 boxes"),
        (["box a: A", "a <- b"], "line 2: cannot read"),
    ],
)
def test_boxes_that_cannot_be_read_are_refused_naming_the_line(
    source: list[str], message: str
) -> None:
    with pytest.raises(drawing.DiagramError, match=re.escape(message)):
        drawing.parse_boxes("t", source)


def test_a_diagram_needs_a_title() -> None:
    with pytest.raises(drawing.DiagramError, match="no title"):
        drawing.parse_sequence("  ", LOGIN.splitlines())


# Latin text, as the pages are written: the renderer measures characters as monospace.
_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), min_size=1, max_size=90)
_LABEL = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=9)
_WORDS = _TEXT.filter(lambda t: t.strip() and t.isprintable())


@st.composite
def sequences(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    n = draw(st.integers(2, 8))
    labels = [draw(_LABEL) for _ in range(n)]
    lines = [f"participant P{i}: {label}" for i, label in enumerate(labels)]
    for _ in range(draw(st.integers(1, 8))):
        a, b = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        text = draw(_WORDS).strip()
        if draw(st.booleans()) or a == b:
            lines.append(f"note P{a}..P{b}: {text}" if a != b else f"note P{a}: {text}")
        else:
            lines.append(f"P{a} {draw(st.sampled_from(['->', '-->']))} P{b}: {text}")
    return labels, lines


@given(sequences())
def test_any_sequence_it_reads_is_drawn_inside_the_picture(
    case: tuple[list[str], list[str]],
) -> None:
    labels, lines = case
    d = drawing.parse_sequence("t", lines)
    svg = drawing.render_sequence(d)
    assert list(d.participants) == labels
    assert drawn_inside(svg) == []
    assert len(drawing.text_sequence(d)) == len(lines) - len(labels)


@st.composite
def box_diagrams(draw: st.DrawFn) -> list[str]:
    lines, ids = [], []
    for r in range(draw(st.integers(1, 4))):
        if r:
            lines.append("row")
        for _ in range(draw(st.integers(1, 6))):
            parts = draw(st.lists(_WORDS.filter(lambda t: "|" not in t), min_size=1, max_size=3))
            ids.append(f"b{len(ids)}")
            lines.append(f"box {ids[-1]}: " + " | ".join(p.strip() for p in parts))
    for _ in range(draw(st.integers(0, 6))):
        a, b = draw(st.sampled_from(ids)), draw(st.sampled_from(ids))
        if a != b:
            label = draw(st.one_of(st.just(""), _LABEL))
            lines.append(f"{a} -> {b}" + (f": {label}" if label else ""))
    return lines


@given(box_diagrams())
def test_any_box_diagram_it_reads_is_drawn_inside_the_picture(lines: list[str]) -> None:
    svg = drawing.render_boxes(drawing.parse_boxes("t", lines))
    assert drawn_inside(svg) == []


_PIECES = st.sampled_from(
    [
        *("participant", "note", "box", "row", "->", "-->", "..", ":", "|", "#", "A", "B"),
        *(" ", "\t", "x y", "<&>", "é", "\x00", "-", "A:", "B:"),
    ]
)


@given(st.lists(st.lists(_PIECES, max_size=7).map("".join), max_size=10), st.text(max_size=20))
def test_any_text_is_a_picture_or_a_diagram_error(lines: list[str], title: str) -> None:
    """The parsers never fail another way; what they accept always draws as valid SVG."""
    for parse, render in (
        (drawing.parse_sequence, drawing.render_sequence),
        (drawing.parse_boxes, drawing.render_boxes),
    ):
        with contextlib.suppress(drawing.DiagramError):
            drawing.well_formed(render(parse(title, lines)))


def _blocks(page: Path) -> list[tuple[str, str, list[str]]]:
    fence = re.compile(r"^```\{(sequence|boxes)\} (.+?)\n(.*?)^```$", re.M | re.S)
    return [
        (kind, title, [line for line in body.splitlines() if not line.startswith(":")])
        for kind, title, body in fence.findall(page.read_text(encoding="utf-8"))
    ]


def test_the_pages_pictures_are_drawn() -> None:
    """The login flow, the token path and the architecture (a quick check without Sphinx)."""
    found = {}
    for page in (ROOT / "docs").rglob("*.md"):
        for kind, title, source in _blocks(page):
            parse = drawing.parse_sequence if kind == "sequence" else drawing.parse_boxes
            render = drawing.render_sequence if kind == "sequence" else drawing.render_boxes
            svg = drawing.well_formed(render(parse(title, source)))  # type: ignore[operator]
            assert drawn_inside(svg) == [], (page.name, title)
            found[title.split(" (")[0].split(":")[0]] = page.name
    assert found == {
        "Browser login": "concepts.md",
        "Token path": "concepts.md",
        "hubauth's architecture": "contributing.md",
    }
    assert "------>|" not in (ROOT / "docs" / "concepts.md").read_text()  # the ASCII drawing


def _build(tmp_path: Path, page: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(EXT)!r})\n"
        "extensions = ['myst_parser', 'hubauth_diagrams']\n"
    )
    (tmp_path / "index.md").write_text(page)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-q",
            "-W",
            "-b",
            "html",
            str(tmp_path),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_sphinx_puts_the_picture_and_its_words_in_the_page(tmp_path: Path) -> None:
    run = _build(tmp_path, f"# Page\n\n```{{sequence}} Login\n{LOGIN}```\n")
    assert run.returncode == 0, run.stderr
    page = (tmp_path / "out" / "index.html").read_text()
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="hd" role="img"' in page
    assert "The same picture in words" in page
    assert "<p>Browser to Service: 1. GET /page</p>" in page


def test_a_picture_that_cannot_be_drawn_fails_the_build(tmp_path: Path) -> None:
    run = _build(tmp_path, "# Page\n\n```{sequence} Broken\nparticipant A: a\nA -> Z: x\n```\n")
    assert run.returncode != 0
    assert "sequence diagram 'Broken': line 2: 'Z' is not a participant" in run.stderr
    assert "index.md:3" in run.stderr  # where the directive is
