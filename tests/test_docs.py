"""The documentation cannot rot: what its pages name must exist, and its examples must run.

Fast checks that need no Sphinx build (``./dev test`` builds the site separately, with
warnings as errors):

- every hubauth name in the migration tables imports, and every public name of
  ``jupyterhub.services.auth`` has a row (or is listed as a mere import);
- the configuration directive renders a row for every entry of ``hubauth.config.SETTINGS``;
- each troubleshooting heading quotes a message that is still in hubauth's source;
- the API page documents every public name;
- the code the pages show (docs/snippets) runs against the fake Hub.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import hubauth
from hubauth.config import SETTINGS
from hubauth.testing import FakeHub

DOCS = Path(__file__).resolve().parent.parent / "docs"
SOURCE = Path(hubauth.__file__).resolve().parent

CODE = re.compile(r"(?<![}`])`([^`]+)`")
DOTTED = re.compile(r"hubauth(\.\w+)*")
TOKEN = "docs-test-token-0123456789"
SECRET = "51d9851d2fd66a42b7d68a718c6669309bf323ee24197e7c2d0cd0b6a490f96a"


def _page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _load(path: Path) -> ModuleType:
    """Import a file of docs/ as a fresh module (it may read the environment on import)."""
    spec = importlib.util.spec_from_file_location(f"docs_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- migration tables


@dataclasses.dataclass
class Row:
    jupyterhub: list[str]  # names relative to jupyterhub.services.auth
    hubauth_cell: str
    notes: str

    @property
    def hubauth(self) -> list[str]:
        return CODE.findall(self.hubauth_cell)


def migration_rows() -> list[Row]:
    """Rows of every table whose header is ``| jupyterhub.services.auth | hubauth | ... |``."""
    rows: list[Row] = []
    in_table = False
    for line in _page("migration.md").splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[:2] == ["jupyterhub.services.auth", "hubauth"]:
            in_table = True
        elif in_table and not set(cells[0]) <= set("-: "):
            rows.append(Row(CODE.findall(cells[0]), cells[1], " | ".join(cells[2:])))
    return rows


def only_imports() -> set[str]:
    """Names listed in the section 'Names that are only imports'."""
    text = _page("migration.md").split("## Names that are only imports", 1)[1]
    return set(CODE.findall(text.split("\n#", 1)[0]))


def _instance(cls: type) -> object | None:
    """An instance to look up attributes that are set in ``__init__``."""
    env = {
        "JUPYTERHUB_API_TOKEN": TOKEN,
        "JUPYTERHUB_SERVICE_NAME": "docs",
        "JUPYTERHUB_SERVICE_PREFIX": "/services/docs/",
    }
    if isinstance(cls, type) and issubclass(cls, hubauth.HubAuth):
        return cls(environ=env, cookie_secret=SECRET)
    return None


def resolve(dotted: str) -> object:
    """The object a dotted name stands for: the longest importable module, then attributes
    (class attributes, dataclass fields, or attributes an instance gets in ``__init__``).
    """
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        break
    else:
        raise AssertionError(f"no module in {dotted}")
    for attr in parts[i:]:
        if hasattr(obj, attr):
            obj = getattr(obj, attr)
        elif dataclasses.is_dataclass(obj) and attr in {f.name for f in dataclasses.fields(obj)}:
            obj = None
        else:
            instance = _instance(obj)
            if instance is None or not hasattr(instance, attr):
                raise AssertionError(f"{dotted}: {attr!r} not found")
            obj = getattr(instance, attr)
    return obj


def test_migration_tables_parse() -> None:
    rows = migration_rows()
    assert len(rows) > 50
    for row in rows:
        assert row.jupyterhub, f"a row without a JupyterHub name: {row}"
        named = row.hubauth
        assert named or row.hubauth_cell == "—", f"name an equivalent or write '—': {row}"
        assert all(DOTTED.fullmatch(n) for n in named), row
        assert row.notes, f"say what differs: {row}"


def test_every_hubauth_name_in_the_migration_tables_imports() -> None:
    names = set()
    for row in migration_rows():
        names.update(row.hubauth)
        names.update(n for n in CODE.findall(row.notes) if DOTTED.fullmatch(n))
    assert names
    missing = []
    for name in sorted(names):
        try:
            resolve(name)
        except AssertionError as e:
            missing.append(str(e))
    assert not missing


def _jupyterhub_names() -> set[str]:
    """Public names of jupyterhub.services.auth, and of its classes' own members."""
    jh = pytest.importorskip("jupyterhub.services.auth")
    names = {n for n in dir(jh) if not n.startswith("_")}
    for cls_name in (
        "HubAuth",
        "HubOAuth",
        "HubAuthenticated",
        "HubOAuthenticated",
        "HubOAuthCallbackHandler",
    ):
        cls = getattr(jh, cls_name)
        for attr in dir(cls):
            if attr.startswith("_"):
                continue
            owner = next(c for c in cls.__mro__ if attr in vars(c))
            if owner.__module__ == jh.__name__:  # not traitlets', not Tornado's
                names.add(f"{owner.__name__}.{attr}")
    return names


def test_migration_tables_cover_jupyterhub() -> None:
    listed = {n for row in migration_rows() for n in row.jupyterhub}
    missing = _jupyterhub_names() - listed - only_imports()
    assert not missing, f"add rows to docs/migration.md for: {sorted(missing)}"


def test_migration_tables_name_only_jupyterhub_names() -> None:
    unknown = {n for row in migration_rows() for n in row.jupyterhub} - _jupyterhub_names()
    assert not unknown


# ---------------------------------------------------------------- configuration


@pytest.fixture
def settings_ext() -> Iterator[ModuleType]:
    pytest.importorskip("sphinx")
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        yield importlib.import_module("hubauth_settings")
    finally:
        sys.path.remove(str(DOCS / "_ext"))


def test_configuration_page_uses_the_generated_table() -> None:
    assert "```{hubauth-settings}" in _page("configuration.md")


def test_settings_table_has_a_row_for_every_setting(settings_ext: ModuleType) -> None:
    from docutils import nodes

    table = settings_ext.build_table(SETTINGS)
    rows = list(table.findall(nodes.row))[1:]  # after the header
    assert [r["ids"] for r in rows] == [[settings_ext.row_id(s)] for s in SETTINGS]
    for row, setting in zip(rows, SETTINGS, strict=True):
        text = row.astext()
        assert setting.name in text
        for var in setting.env:
            assert var in text
        # Backticked parts become literals; no backtick is left over in the page.
        assert "`" not in text


def test_settings_cross_references_name_real_settings() -> None:
    known = {s.name for s in SETTINGS}
    variables = {v for s in SETTINGS for v in s.env}
    for page in DOCS.rglob("*.md"):
        text = page.read_text(encoding="utf-8")
        for name in re.findall(r"\{setting\}`([^`]+)`", text):
            assert name in known, f"{page.name}: unknown setting {name}"
        for var in re.findall(r"\{envvar\}`([^`]+)`", text):
            assert var in variables, f"{page.name}: unknown variable {var}"


# ---------------------------------------------------------------- troubleshooting


def _source_text() -> str:
    """hubauth's source, with implicitly concatenated string literals joined."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(SOURCE.rglob("*.py")))
    return re.sub(r"([\"'])\s*\n\s*(?:f|rf|fr|r)?\1", "", text)


def test_troubleshooting_headings_quote_real_messages() -> None:
    source = _source_text()
    headings = [line for line in _page("troubleshooting.md").splitlines() if line.startswith("##")]
    quoted = [q for h in headings for q in CODE.findall(h)]
    assert len(quoted) > 30
    missing = [q for q in quoted if q not in source]
    assert not missing, f"messages no longer in hubauth/: {missing}"


def test_troubleshooting_covers_the_messages_the_brief_names() -> None:
    page = _page("troubleshooting.md")
    for message in (
        "ConfigError",
        "could not reach the Hub at",  # HubUnavailable
        "answered with a redirect",  # HubResponseError
        "refused this service as an OAuth client",  # ServiceTokenRejected, invalid_client
        "Mismatching redirect URI",
        "Login loop stopped",
        "Cross-site request refused",
        "This login does not match one started in this browser",
    ):
        assert f"`{message}`" in page


# ---------------------------------------------------------------- API reference

PUBLIC = {
    "hubauth": sorted(set(hubauth.__all__) - set(hubauth._LAZY) | {"HubOAuth"}),
    "hubauth.api": ["HubAPI", "AsyncHubAPI"],
    "hubauth.tornado": [
        "HubAuthenticated",
        "HubOAuthenticated",
        "HubOAuthCallbackHandler",
        "HubOAuthLogoutHandler",
    ],
    "hubauth.flask": ["FlaskHubAuth", "hub_authenticated"],
    "hubauth.wsgi": ["HubAuthMiddleware"],
    "hubauth.asgi": ["HubAuthMiddleware", "HubAuthUser", "HubAuthCredentials"],
    "hubauth.fastapi": [
        "hub_user",
        "hub_token",
        "hub_router",
        "hub_docs",
        "default_auth",
        "HubAuthRefused",
    ],
    "hubauth.testing": ["FakeHub"],
    "hubauth.config": ["load_config", "Config", "SETTINGS"],
    "hubauth.cookies": ["CookieCodec"],
}


def test_api_page_documents_every_public_name() -> None:
    page = _page("api.md")
    documented = set(re.findall(r"\.\. auto\w+:: ([\w.]+)", page))
    documented |= {f"hubauth.config.{n}" for n in re.findall(r"\.\. py:data:: (\w+)", page)}
    for module, names in PUBLIC.items():
        assert f".. automodule:: {module}" in page
        for name in names:
            assert f"{module}.{name}" in documented, f"{module}.{name} is not on the API page"
            resolve(f"{module}.{name}")


def test_included_files_exist() -> None:
    for page in DOCS.rglob("*.md"):
        if "_build" in page.parts:
            continue
        for target in re.findall(r"```\{literalinclude\} (\S+)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).is_file(), f"{page.name}: {target} is missing"


# ---------------------------------------------------------------- the code the pages show


def test_token_check_snippet(fake_hub: FakeHub, fake_hub_env: dict[str, str]) -> None:
    snippet = _load(DOCS / "snippets" / "token_check.py")  # builds HubAuth() from the env
    try:
        alice = fake_hub.add_user("alice")
        status, model = snippet.identify(f"token {alice}")
        assert status == 200 and model is not None and model["name"] == "alice"
        assert snippet.identify(f"Bearer {alice}")[0] == 200
        assert snippet.identify("token not-a-token") == (401, None)
        assert snippet.identify("Basic YWxpY2U6eA==") == (401, None)
        mallory = fake_hub.add_user("mallory", scopes=["read:users"])
        assert snippet.identify(f"token {mallory}")[0] == 403
        fake_hub.fault = "status"
        assert snippet.identify(f"token {fake_hub.add_user('bob')}") == (502, None)
        fake_hub.fault = "down"
        assert snippet.identify(f"token {fake_hub.add_user('carol')}") == (503, None)
    finally:
        snippet.auth.close()


# The example test file of docs/testing.md, collected here as if it were one of ours.
_flask_snippet = _load(DOCS / "snippets" / "test_flask_service.py")
client = _flask_snippet.client
for _name in dir(_flask_snippet):
    if _name.startswith("test_"):
        globals()[f"test_snippet_{_name[5:]}"] = getattr(_flask_snippet, _name)
