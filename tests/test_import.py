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


def test_the_former_module_of_the_end_to_end_nets_still_imports_with_a_warning():
    code = (
        "import warnings, skmm\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    from skmm.multimodal_net import MultimodalNetClassifier\n"
        "print(MultimodalNetClassifier is skmm.MultimodalNetClassifier)\n"
        "print([str(w.message) for w in caught if w.category is FutureWarning])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("True") and "skmm.multimodal_net is deprecated" in out
