"""What skmm's tests and benchmarks start for themselves: a throwaway PostgreSQL server."""

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

POSTGRES_BINARIES = ("initdb", "pg_ctl", "postgres")


def missing_postgres_binaries():
    """The PostgreSQL server programs that are not on the PATH."""
    return [name for name in POSTGRES_BINARIES if shutil.which(name) is None]


@contextlib.contextmanager
def throwaway_postgres():
    """Start a PostgreSQL server of its own in a temporary folder, on a free
    local port, with trust authentication and no fsync; stop it and delete
    the folder on exit. Yields its URL without a database name
    (``postgresql://skmm@127.0.0.1:PORT``; the ``postgres`` database exists).
    Run as root, the server runs as the ``postgres`` user (or ``nobody``).
    """
    missing = missing_postgres_binaries()
    if missing:
        raise RuntimeError(
            f"PostgreSQL server programs not on the PATH ({', '.join(missing)}): "
            "apt-get install postgresql, or put its bin/ folder on the PATH"
        )
    # under /tmp itself: the server's user must be able to reach the folder
    root = Path(tempfile.mkdtemp(prefix="skmm-postgres-"))
    run_as = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        import pwd

        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            user = pwd.getpwnam("nobody")
        os.chown(root, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", user.pw_name, "--"]
    data = root / "data"
    try:
        subprocess.run(
            run_as + ["initdb", "-D", str(data), "-U", "skmm", "--auth=trust", "-E", "UTF8",
                      "--no-sync", "--no-instructions"],
            check=True, capture_output=True,
        )
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            run_as + ["pg_ctl", "-D", str(data), "-l", str(root / "server.log"), "-w",
                      "-o", options, "start"],
            check=True, capture_output=True,
        )
        try:
            yield f"postgresql://skmm@127.0.0.1:{port}"
        finally:
            subprocess.run(run_as + ["pg_ctl", "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def new_database(server, name):
    """Create (or re-create) the empty database ``name`` on ``server``; its URL."""
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"
