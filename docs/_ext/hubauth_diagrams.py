"""Sphinx extension: the ``sequence`` and ``boxes`` directives draw pictures at build time.

Each directive takes a title and the diagram's source (the languages of
:mod:`hubauth_drawing`) and renders, in HTML, an inline SVG (with the title as its accessible name
and the steps as its description) followed by the same content in words, in a
``<details>`` block; other builders get the words only. A source that cannot be read or
drawn is an error at its line, so the build fails under ``-W``, never shows a broken
picture. Nothing runs in the reader's browser and nothing is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from hubauth_drawing import (
    DiagramError,
    parse_boxes,
    parse_sequence,
    render_boxes,
    render_sequence,
    text_boxes,
    text_sequence,
    well_formed,
)
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

__all__ = ["BoxesDirective", "SequenceDirective", "setup"]


class _DiagramDirective(SphinxDirective):
    """A picture from the directive's content, then its text alternative."""

    required_arguments = 1
    final_argument_whitespace = True
    has_content = True
    option_spec: ClassVar[dict[str, Callable[[str], Any]]] = {"name": directives.unchanged}
    kind = ""

    def draw(self, title: str, source: list[str]) -> tuple[str, list[str]]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        title = self.arguments[0]
        try:
            svg, words = self.draw(title, list(self.content))
            well_formed(svg)
        except DiagramError as e:
            raise self.error(f"{self.kind} diagram {title!r}: {e}") from None
        except Exception as e:  # a bug in the drawing: fail the build, say where
            raise self.error(f"{self.kind} diagram {title!r} could not be drawn: {e!r}") from e
        figure = nodes.container(classes=["hubauth-diagram"])
        self.add_name(figure)
        figure += nodes.raw("", f'<div class="hubauth-diagram-picture">{svg}</div>', format="html")
        figure += nodes.paragraph("", "", nodes.emphasis("", title), classes=["caption"])
        summary = "<details><summary>The same picture in words</summary>"
        figure += nodes.raw("", summary, format="html")
        items = nodes.bullet_list()  # not numbered: the steps carry their own numbers
        for sentence in words:
            items += nodes.list_item("", nodes.paragraph("", sentence))
        figure += items
        figure += nodes.raw("", "</details>", format="html")
        return [figure]


class SequenceDirective(_DiagramDirective):
    """``sequence``: who sends what to whom, in order (see ``hubauth_drawing.parse_sequence``)."""

    kind = "sequence"

    def draw(self, title: str, source: list[str]) -> tuple[str, list[str]]:
        d = parse_sequence(title, source)
        return render_sequence(d), text_sequence(d)


class BoxesDirective(_DiagramDirective):
    """``boxes``: parts in rows, arrows between them (see ``hubauth_drawing.parse_boxes``)."""

    kind = "box"

    def draw(self, title: str, source: list[str]) -> tuple[str, list[str]]:
        d = parse_boxes(title, source)
        return render_boxes(d), text_boxes(d)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("sequence", SequenceDirective)
    app.add_directive("boxes", BoxesDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
