"""Sphinx configuration of the skmm documentation (``make docs``).

The build needs no network (no intersphinx, no remote assets) and no GPU.
"""

import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "sphinxext"))

from skmm_docs import write_api_reference  # noqa: E402

import skmm  # noqa: E402

project = "skmm"
author = "The skmm developers"
copyright = "the skmm developers"
version = release = skmm.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "sphinxext"]
default_role = "literal"

# API reference: one page per public name, listed from the __all__ lists
write_api_reference(HERE / "api.rst")
autosummary_generate = True
autosummary_generate_overwrite = True
autodoc_typehints = "none"
autodoc_inherit_docstrings = False
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# numpydoc_validation_checks is left empty: the docstrings are checked by
# their doctests (tests/test_docs.py), not by numpydoc's style rules.


def _skip_foreign_member(app, what, name, obj, skip, options):
    """Document the members skmm defines (also in its private base classes),
    not those inherited from scikit-learn, skorch or torch: their docstrings
    point into those projects' own documentation."""
    if what not in ("class", "exception") or skip:
        return skip
    target = getattr(obj, "fget", obj)
    target = getattr(target, "__func__", target)
    module = getattr(target, "__module__", None) or ""
    if not module.startswith("skmm"):
        return True
    return None


# A word ending in "_" is a hyperlink reference in reStructuredText, and
# skmm's docstrings name fitted attributes that way (``n_features_in_``) in
# their type lines: escape such words outside literals and doctests.
_TRAILING_UNDERSCORE = re.compile(r"(?<![\w`\\|])([A-Za-z]\w*)_(?=[\s,.;:)\]]|$)")
_LITERAL = re.compile(r"(``.+?``|`[^`]+`)")


def _escape_trailing_underscores(line):
    parts = _LITERAL.split(line)
    return "".join(
        part if i % 2 else _TRAILING_UNDERSCORE.sub(r"\1\\_", part)
        for i, part in enumerate(parts)
    )


def _fix_docstring(app, what, name, obj, options, lines):
    """Run after numpydoc: escape fitted-attribute names, and point numpydoc's
    links to a class's own properties at that class (numpydoc writes
    ``<.summary_>``, which two classes with a ``summary_`` make ambiguous)."""
    in_doctest = False
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith((">>>", "...")):
            in_doctest = True
        elif not stripped:
            in_doctest = False
        if in_doctest or stripped.startswith(".."):
            continue
        if what in ("class", "exception"):
            line = re.sub(r":obj:`(\w+) <\.(\w+)>`", rf":obj:`\1 <{name}.\2>`", line)
        lines[i] = _escape_trailing_underscores(line)


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_member)
    # after numpydoc's own handler (priority 500)
    app.connect("autodoc-process-docstring", _fix_docstring, priority=600)


# Gallery of the examples. They run at build time on the bundled data, on the
# CPU, and keep their frozen embeddings in the user's cache folder, so that a
# second build embeds nothing. The slow ones are shown with their code but not
# run: end_to_end embeds every photo again at each run (it has no cache), and
# quickstart's nested cross-validation trains dozens of networks.
# SKMM_DOCS_EXAMPLES, a comma-separated list of example names, picks others
# (the docs test runs one).
FAST_EXAMPLES = "cross_modal_search,few_labels_graph,impute_missing_photos"
EXECUTED_EXAMPLES = [
    name for name in os.environ.get("SKMM_DOCS_EXAMPLES", FAST_EXAMPLES).split(",") if name
]
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/(" + "|".join(EXECUTED_EXAMPLES) + r")\.py$",
    "reset_argv": "skmm_docs.reset_argv",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "show_memory": False,
    "capture_repr": (),
    "min_reported_time": 1,
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib",),
}

html_theme = "pydata_sphinx_theme"
html_title = f"skmm {release}"
html_static_path = []
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 5,
    "footer_start": ["copyright"],
    "footer_end": [],
}
