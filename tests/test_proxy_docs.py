"""hubauth-proxy's documentation and recipes cannot rot: what they show must parse.

- every option of the command is in the options table of docs/proxy.md, and the table
  names no option the command lacks;
- every ``examples/proxy-*/jupyterhub_config.py`` loads, runs hubauth-proxy, and its
  hubauth-proxy options parse (with what the Hub would give in the environment);
- every recipe folder the docs name exists, with a README.
"""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import pytest
from traitlets.config import Config

from hubauth.proxy import parse_args
from hubauth.proxy._options import _parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "proxy.md"
RECIPES = sorted(p.parent for p in (ROOT / "examples").glob("proxy-*/jupyterhub_config.py"))


def _table_options() -> set[str]:
    options: set[str] = set()
    in_table = False
    for line in DOCS.read_text().splitlines():
        if line.startswith("| option |"):
            in_table = True
        elif in_table and line.startswith("|"):
            options |= set(re.findall(r"`(--[a-z-]+)`", line.split("|")[1]))
        elif in_table:
            break
    return options


def test_the_options_table_matches_the_command() -> None:
    parser_options = {
        s for a in _parser()._actions for s in a.option_strings if s.startswith("--")
    } - {"--help"}
    assert _table_options() == parser_options


def _commands(config: Config) -> list[list[str]]:
    found = [list(s["command"]) for s in config.JupyterHub.get("services", []) if "command" in s]
    if "cmd" in config.Spawner:
        found.append(list(config.Spawner.cmd))
    return found


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipes_run_hubauth_proxy_with_options_that_parse(recipe: Path) -> None:
    config = Config()
    runpy.run_path(str(recipe / "jupyterhub_config.py"), {"get_config": lambda: config})
    commands = [c for c in _commands(config) if "hubauth.proxy" in c]
    assert commands, f"{recipe.name} does not run hubauth-proxy"
    env = {
        "JUPYTERHUB_SERVICE_PREFIX": "/services/x/",
        "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:9",
    }
    for command in commands:
        assert command[:3] == [sys.executable, "-m", "hubauth.proxy"]
        options = parse_args(command[3:], env)
        if options.command:
            assert any("{port}" in a for a in command) or options.forward_auth
            assert not any("{port}" in a or "{prefix}" in a for a in options.command)
    assert (recipe / "README.md").is_file()


def test_the_docs_name_every_recipe() -> None:
    text = DOCS.read_text()
    named = set(re.findall(r"`examples/(proxy-[a-z]+)`", text))
    assert named == {p.name for p in RECIPES} - {"proxy-nginx"}
    forward = (ROOT / "docs" / "forward-auth.md").read_text()
    assert "examples/proxy-nginx/hubauth-forward-auth.conf" in forward


def test_the_bokeh_recipe_serves_the_tested_app() -> None:
    """The app the real-Hub test drives in Chromium is the recipe's own file."""
    config = Config()
    runpy.run_path(
        str(ROOT / "examples/proxy-bokeh/jupyterhub_config.py"), {"get_config": lambda: config}
    )
    (command,) = _commands(config)
    assert str(ROOT / "examples/proxy-bokeh/dashboard.py") in command
    assert "--group" in command
