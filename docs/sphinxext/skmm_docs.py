"""Helpers of the documentation build (imported by ``docs/conf.py``).

The API reference is written from the ``__all__`` lists at each build, so a
public name added to skmm appears in it without editing the docs.
"""

import importlib
import pkgutil
import re
from pathlib import Path

import skmm

# Public modules that are not documented: deprecated aliases of other ones.
DEPRECATED_MODULES = {"skmm.multimodal_net"}

# Section order and titles of the API reference; a public module missing
# here is appended after them, titled by its docstring.
SECTIONS = {
    "skmm.fusion": "Fusion of modalities",
    "skmm.image": "Image columns",
    "skmm.text": "Text columns",
    "skmm.tabular": "Tabular columns",
    "skmm.neural": "Neural networks",
    "skmm.crossmodal": "Cross-modal embeddings",
    "skmm.latent": "Joint latent representations",
    "skmm.graph": "Graphs over similar rows",
    "skmm.cache": "Embedding cache",
    "skmm.dask": "Scaling out with dask",
    "skmm.inspection": "Inspection",
    "skmm.metrics": "Retrieval metrics",
    "skmm.plot": "Plotting",
    "skmm.datasets": "Datasets",
    "skmm.export": "ONNX export",
}


def public_modules():
    """The public modules of skmm with an ``__all__``: ``{module name: module}``."""
    names = [
        f"skmm.{info.name}"
        for info in pkgutil.iter_modules(skmm.__path__)
        if not info.name.startswith("_")
    ]
    names = [name for name in names if name not in DEPRECATED_MODULES]
    order = {name: i for i, name in enumerate(SECTIONS)}
    names.sort(key=lambda name: (order.get(name, len(order)), name))
    modules = {name: importlib.import_module(name) for name in names}
    return {name: module for name, module in modules.items() if hasattr(module, "__all__")}


def documented_name(module_name, name):
    """The name a public object is documented under: ``skmm.<name>`` when
    skmm re-exports it, ``<module>.<name>`` otherwise."""
    return f"skmm.{name}" if name in skmm.__all__ else f"{module_name}.{name}"


def _first_paragraph(module):
    text = (module.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(text.split())


def _title(module_name, module):
    if module_name in SECTIONS:
        return SECTIONS[module_name]
    return re.split(r"[.:]", _first_paragraph(module))[0] or module_name


def api_reference():
    """The reStructuredText of the API reference page."""
    lines = [
        ".. This file is written by docs/conf.py from the __all__ lists; do not edit.",
        "",
        ".. _api:",
        "",
        "API reference",
        "=============",
        "",
        "Every public name of skmm, by module. The names that :mod:`skmm` itself",
        "re-exports are documented under that shorter name (``skmm.MultimodalFuser``",
        "is also ``skmm.fusion.MultimodalFuser``).",
        "",
    ]
    seen = set()
    for module_name, module in public_modules().items():
        title = f"{_title(module_name, module)}: ``{module_name}``"
        lines += [
            title,
            "-" * len(title),
            "",
            f".. automodule:: {module_name}",
            "   :no-index:",
            "",
            ".. currentmodule:: skmm",
            "",
            ".. autosummary::",
            "   :toctree: generated/",
            "   :template: object.rst",
            "",
        ]
        for name in sorted(module.__all__, key=str.lower):
            documented = documented_name(module_name, name)
            if documented not in seen:
                seen.add(documented)
                lines.append(f"   ~{documented.removeprefix('skmm.')}")
        lines.append("")
    rest = sorted(
        f"skmm.{name}"
        for name in skmm.__all__
        if not name.startswith("_") and f"skmm.{name}" not in seen
    )
    if rest:
        title = "Other public names: ``skmm``"
        lines += [title, "-" * len(title), "", ".. currentmodule:: skmm", "",
                  ".. autosummary::", "   :toctree: generated/",
                  "   :template: object.rst", ""]
        lines += [f"   ~{name.removeprefix('skmm.')}" for name in rest] + [""]
    return "\n".join(lines)


def write_api_reference(path):
    """Write :func:`api_reference` to ``path`` unless it already holds it (so
    that an unchanged page is not rebuilt)."""
    path = Path(path)
    text = api_reference()
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def reset_argv(gallery_conf, script_vars):
    """The command-line arguments sphinx-gallery runs an example with:
    ``--plot``, which the examples that draw figures wait for and the others
    ignore (none parses its arguments strictly)."""
    return ["--plot"]
