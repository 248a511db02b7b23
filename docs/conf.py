"""Sphinx configuration: the API reference from the docstrings (autodoc + napoleon) and
the guide pages in Markdown (myst-parser), most of them sections of README.md.

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Two checks run at the end of reading (with -W their warnings fail the build): every
name in ``rnncore.__all__`` and every public submodule of rnncore is documented
somewhere in the reference. The ``rnncore-names`` directive (api/index.md, inside ``{eval-rst}``) lists the
names of ``rnncore.__all__`` with links, and documents those defined in private
modules (``rnncore._module``, ...) under the ``rnncore`` namespace.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

import rnncore

project = "rnncore"
author = "the rnncore authors"
copyright = "the rnncore authors"  # noqa: A001
release = version = rnncore.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath", "amsmath"]   # $...$, $$...$$ in guide pages (MathJax)
# The guide pages include README sections, whose headings start at level 2 or 3.
suppress_warnings = ["myst.header"]

autodoc_default_options = {"member-order": "bysource", "show-inheritance": True}
autodoc_typehints = "description"
autodoc_inherit_docstrings = True
napoleon_google_docstring = True
napoleon_numpy_docstring = True
napoleon_use_rtype = False

html_theme = "alabaster"
html_title = f"rnncore {release}"

# Submodules that are not part of the API (data files only).
NOT_API = {"rnncore.data"}

logger = logging.getLogger("rnncore.docs")


def _private(modname):
    return any(part.startswith("_") for part in modname.split("."))


def _target(name, obj):
    """Where the reference documents rnncore.<name>."""
    if (inspect.isclass(obj) or inspect.isfunction(obj)) and not _private(obj.__module__):
        return f"{obj.__module__}.{obj.__qualname__}"
    return f"rnncore.{name}"


def _summary(obj):
    if not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isroutine(obj)):
        return f"``{obj!r}``"
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split())


class RnncoreNames(SphinxDirective):
    """A table of every name in ``rnncore.__all__`` with a link to its entry; the names
    defined in private modules are documented here, under ``rnncore.``."""

    def run(self):
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 30 70", "",
                 "   * - name", "     - summary"]
        here = []
        for name in rnncore.__all__:
            obj = getattr(rnncore, name)
            target = _target(name, obj)
            lines += [f"   * - :py:obj:`rnncore.{name} <{target}>`", f"     - {_summary(obj)}"]
            if target == f"rnncore.{name}":
                here.append((name, obj))
        lines += ["", ".. rubric:: Defined in private modules, documented here", ""]
        for name, obj in here:
            if inspect.isclass(obj):
                lines += [f".. autoclass:: rnncore.{name}", "   :members:", ""]
            elif inspect.isroutine(obj):
                lines += [f".. autofunction:: rnncore.{name}", ""]
            else:
                lines += [f".. py:data:: {name}", "   :module: rnncore", f"   :value: {obj!r}", "",
                          f"   ``rnncore.{name}``: see the package's description.", ""]
        node = nodes.container()
        self.state.nested_parse(StringList(lines, source="rnncore.__all__"), self.content_offset, node)
        return node.children


def public_modules():
    names = ["rnncore"]
    for info in pkgutil.walk_packages(rnncore.__path__, "rnncore."):
        if not _private(info.name) and info.name not in NOT_API and not info.name.endswith("__main__"):
            names.append(info.name)
    return names


def check_reference(app, env):
    """Warn (an error under -W) for any public name or submodule the reference lacks."""
    py = env.get_domain("py")
    objects, modules = set(py.objects), set(py.modules)
    for name in rnncore.__all__:
        target = _target(name, getattr(rnncore, name))
        if target not in objects:
            logger.warning(f"rnncore.{name} is in rnncore.__all__ but the API reference does not document it "
                           f"(expected {target}): add it to a page under docs/api/")
    for mod in public_modules():
        importlib.import_module(mod)
        if mod not in modules:
            logger.warning(f"the public module {mod} is not in the API reference: add an automodule for it "
                           f"to a page under docs/api/")


def setup(app):
    app.add_directive("rnncore-names", RnncoreNames)
    app.connect("env-check-consistency", check_reference)
    return {"parallel_read_safe": True}
