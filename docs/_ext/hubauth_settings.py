"""Sphinx extension: the configuration reference, generated from ``hubauth.config.SETTINGS``.

The ``hubauth-settings`` directive renders every entry of the table in the code as one row:
setting (the keyword argument), environment variable(s), default, meaning. Nothing about a
setting is written by hand in the documentation, so a new setting appears on its own.

Each row is a link target: ``{setting}`api_url``` and ``{envvar}`JUPYTERHUB_API_URL``` point
at it, and a name that is in no row is a build warning (an error under ``-W``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from hubauth.config import SETTINGS, Setting

logger = logging.getLogger(__name__)

HEADERS = ("Setting", "Environment variable", "Default", "Meaning")
WIDTHS = (22, 26, 18, 34)  # per cent of the page width
# Settings that have no environment variable are keyword arguments only.
NO_ENV = "keyword only"


def row_id(setting: Setting) -> str:
    """The HTML id of a setting's row (stable: other pages and sites may link to it)."""
    return f"setting-{setting.name.replace('_', '-')}"


def inline(text: str) -> list[nodes.Node]:
    """``text`` with its `backticked` parts as literals; nothing else is markup."""
    parts = re.split(r"`([^`]*)`", text)
    out: list[nodes.Node] = []
    for i, part in enumerate(parts):
        if not part:
            continue
        out.append(nodes.literal(part, part) if i % 2 else nodes.Text(part))
    return out


def _cell(*children: nodes.Node) -> nodes.entry:
    return nodes.entry("", nodes.paragraph("", "", *children))


def _literals(names: Iterable[str]) -> list[nodes.Node]:
    out: list[nodes.Node] = []
    for i, name in enumerate(names):
        if i:
            out.append(nodes.Text(", then "))
        out.append(nodes.literal(name, name))
    return out


def build_table(settings: Iterable[Setting] = SETTINGS) -> nodes.table:
    """The reference table for ``settings``: one row per setting, its id from :func:`row_id`."""
    table = nodes.table(classes=["hubauth-settings", "colwidths-given"])
    group = nodes.tgroup(cols=len(HEADERS))
    table += group
    for width in WIDTHS:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    group += head
    head += nodes.row("", *(_cell(nodes.Text(h)) for h in HEADERS))
    body = nodes.tbody()
    group += body
    for s in settings:
        env = _literals(s.env) if s.env else [nodes.emphasis(NO_ENV, NO_ENV)]
        row = nodes.row(
            "",
            _cell(nodes.literal(s.name, s.name)),
            _cell(*env),
            _cell(*inline(s.default)),
            _cell(*inline(s.help)),
            ids=[row_id(s)],
        )
        body += row
    return table


class SettingsDirective(SphinxDirective):
    """``{hubauth-settings}``: the table of every setting, each row a cross-reference target."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        table = build_table(SETTINGS)
        std: Any = self.env.get_domain("std")
        entries = []
        for s in SETTINGS:
            node_id = row_id(s)
            std.note_object("setting", s.name, node_id, location=self.get_location())
            entries.append(("single", f"{s.name} (hubauth setting)", node_id, "", None))
            for var in s.env:
                std.note_object("envvar", var, node_id, location=self.get_location())
                entries.append(("single", f"{var} (environment variable)", node_id, "", None))
        return [addnodes.index(entries=entries), table]


def warn_unknown(
    app: Sphinx, env: BuildEnvironment, node: addnodes.pending_xref, contnode: nodes.Element
) -> None:
    """Without ``nitpicky``, Sphinx is silent about unknown ``setting``/``envvar`` names: warn."""
    if app.config.nitpicky:
        return  # Sphinx reports every unresolved reference itself
    kind = node.get("reftype")
    if node.get("refdomain") == "std" and kind in ("setting", "envvar"):
        what = "hubauth setting" if kind == "setting" else "environment variable"
        logger.warning(
            "unknown %s %r: it is not in hubauth.config.SETTINGS",
            what,
            node["reftarget"],
            location=node,
            type="ref",
            subtype=kind,
        )


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_object_type("setting", "setting", objname="hubauth setting")
    app.add_directive("hubauth-settings", SettingsDirective)
    app.connect("missing-reference", warn_unknown)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
