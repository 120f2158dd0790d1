"""Sphinx extension: present hubauth's private helpers the way users see them.

Two things in the code read badly when autodoc shows them as they are; this fixes how they
are shown without touching ``hubauth/``:

- ``HubAuth``'s settings (``api_url``, ``base_url``, ...) are ``_FromConfig`` descriptors.
  autodoc would show each as ``api_url: _FromConfig[str]`` with the descriptor's own
  docstring. They are shown instead as read-only attributes of their real type, each linked
  to its row in the configuration reference.
- A private base class (``hubauth.tornado._OAuthHandler``) in a "Bases:" line is replaced by
  its own public bases.
- The endpoint methods of ``hubauth.api.HubAPI``/``AsyncHubAPI`` are generated wrappers
  whose own signature is ``(*args, **kwargs)``; they are shown with the signature of the
  endpoint they run. A class whose ``__init__`` only passes ``**kwargs`` on is shown with
  the signature of the ``__init__`` it passes them to.
"""

from __future__ import annotations

import inspect
import re
import typing
from typing import Any

from sphinx.application import Sphinx
from sphinx.util.inspect import stringify_signature
from sphinx.util.typing import stringify_annotation

from hubauth.auth import _FromConfig

_WRAPPED = re.compile(r"_FromConfig\[(?P<inner>.*)\]")


def settings_attributes(cls: type) -> list[tuple[str, str]]:
    """``(name, type)`` of every ``_FromConfig`` attribute ``cls`` itself defines."""
    hints = getattr(cls, "__annotations__", {})
    found = []
    for name, value in vars(cls).items():
        if isinstance(value, _FromConfig):
            match = _WRAPPED.fullmatch(str(hints.get(name, "")))
            found.append((name, match["inner"] if match else ""))
    return found


def skip_settings(
    app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any
) -> bool | None:
    """Leave the descriptors out of the member list; the class docstring lists them."""
    return True if isinstance(obj, _FromConfig) else None


def document_settings(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Append a read-only ``py:attribute`` for each setting a class serves from its config."""
    if what != "class" or not isinstance(obj, type):
        return
    found = settings_attributes(obj)
    if not found:
        return
    lines += [
        "",
        "Each setting below is a read-only attribute: pass it to the constructor, or set its",
        "environment variable (assigning to it raises :exc:`AttributeError`).",
        "",
    ]
    for attr, typ in found:
        lines.append(f".. py:attribute:: {attr}")
        if typ:
            lines.append(f"   :type: {typ}")
        lines += ["", f"   The :setting:`{attr}` setting.", ""]


def public_bases(app: Sphinx, name: str, obj: Any, options: Any, bases: list[type]) -> None:
    """Replace private base classes by their bases, so "Bases:" names public classes."""
    result: list[type] = []
    todo = list(bases)
    while todo:
        base = todo.pop(0)
        if base.__name__.startswith("_"):
            todo[:0] = list(base.__bases__)
        elif base not in result:
            result.append(base)
    bases[:] = result


def _wrapped_flow(obj: Any) -> Any:
    """The endpoint flow a ``hubauth.api`` wrapper runs (found in its closure), or None."""
    for cell in getattr(obj, "__closure__", None) or ():
        try:
            inner = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if inspect.isfunction(inner) and inner.__name__ == "_" + obj.__name__:
            return inner
    return None


def _only_kwargs(sig: inspect.Signature) -> bool:
    params = [p for p in sig.parameters.values() if p.name != "self"]
    return len(params) == 1 and params[0].kind is inspect.Parameter.VAR_KEYWORD


def real_signature(
    app: Sphinx,
    what: str,
    name: str,
    obj: Any,
    options: Any,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str, str | None] | None:
    """Show generated wrappers and pass-through constructors with the signature that counts."""
    if what == "method" and name.startswith("hubauth."):
        flow = _wrapped_flow(obj)
        if flow is None:
            return None
        sig = inspect.signature(flow, eval_str=True)
        params = list(sig.parameters.values())[1:]  # without self
        shown = stringify_signature(
            sig.replace(parameters=params), show_return_annotation=False, unqualified_typehints=True
        )
        result = typing.get_args(sig.return_annotation)  # Generator[request, response, result]
        return shown, (stringify_annotation(result[-1], "smart") if result else return_annotation)
    if what == "class" and name.startswith("hubauth.") and isinstance(obj, type):
        if not _only_kwargs(inspect.signature(obj.__init__)):
            return None
        for base in obj.__mro__[1:]:
            init = vars(base).get("__init__")
            if init is not None:
                sig = inspect.signature(init, eval_str=True)
                if not _only_kwargs(sig):
                    params = list(sig.parameters.values())[1:]
                    shown = stringify_signature(
                        sig.replace(parameters=params),
                        show_return_annotation=False,
                        unqualified_typehints=True,
                    )
                    return shown, None
    return None


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.autodoc")
    app.connect("autodoc-skip-member", skip_settings)
    app.connect("autodoc-process-docstring", document_settings)
    app.connect("autodoc-process-bases", public_bases)
    app.connect("autodoc-process-signature", real_signature)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
