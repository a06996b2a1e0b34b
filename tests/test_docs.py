"""The README's code and every docstring example run as written."""

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import skmm

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_code_runs():
    blocks = _python_blocks((ROOT / "README.md").read_text())
    assert blocks, "README.md has no python code block"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})


def _modules():
    return sorted(
        info.name for info in pkgutil.walk_packages(skmm.__path__, prefix="skmm.")
    )


@pytest.mark.parametrize("module_name", _modules())
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
