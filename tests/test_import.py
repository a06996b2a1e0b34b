import subprocess
import sys

import skmm


def test_import_does_not_load_torch():
    code = "import skmm, sys; print('torch' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "False"]


def test_all_names_resolve():
    for name in skmm.__all__:
        assert getattr(skmm, name) is not None
    assert set(skmm.__all__) <= set(dir(skmm))


def test_unknown_attribute():
    try:
        skmm.NotAThing  # noqa: B018
    except AttributeError as exc:
        assert "NotAThing" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")
