"""Public names imported on first use, so that importing a package stays light."""

import importlib


def lazy_getattr(package, names):
    """A module ``__getattr__`` for ``package`` that imports each of ``names``
    (name -> its module, relative to the package) when it is first asked for."""

    def __getattr__(name):
        if name in names:
            return getattr(importlib.import_module(names[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
