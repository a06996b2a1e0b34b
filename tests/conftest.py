import os

import numpy as np
import pytest

# Tests never reach a model hub: everything they load is local.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _cuda_available():
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def user_cache_folder(tmp_path_factory):
    """Caches that default to the user's cache folder (cache="auto") write to a
    folder of the test session, not to the home of whoever runs the tests."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("user_cache")))
        yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# -- a throwaway PostgreSQL server, for the embedding cache's server backend -------


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server of its own for the test session (stopped at the end):
    its URL without a database name. Skipped only where the server programs
    are not installed."""
    from skmm._utils.testing import missing_postgres_binaries, throwaway_postgres

    missing = missing_postgres_binaries()
    if missing:
        pytest.skip(
            f"PostgreSQL server programs not on the PATH ({', '.join(missing)}): "
            "apt-get install postgresql, or put its bin/ folder on the PATH"
        )
    with throwaway_postgres() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server, request):
    """The URL of a new, empty database on the session's server."""
    import re

    from skmm._utils.testing import new_database

    name = "t_" + re.sub(r"\W", "_", request.node.name.lower())[-50:] + f"_{os.getpid()}"
    return new_database(postgres_server, name)


@pytest.fixture
def run_example(tmp_path):
    """Run ``examples/<name>`` with ``args`` in a temporary folder, as a user
    would; return its standard output (the test fails with its stderr if it
    fails)."""
    import subprocess
    import sys
    from pathlib import Path

    def run(name, *args):
        script = Path(__file__).parents[1] / "examples" / name
        out = subprocess.run([sys.executable, str(script), *args], cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout

    return run

