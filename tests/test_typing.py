"""The Python API type-checks in user code, as ``mypy --strict`` sees it from
outside the package: the README's ``with Vault.create(...)`` pattern passes
(``Vault.__exit__`` does not claim to swallow exceptions: were it typed
``-> bool``, a function returning inside the block would be "missing a
return statement"), and a misspelt name such as ``fusefs.Vaultt`` is an
error, not ``Any``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def mypy_strict(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    user = tmp_path / "user_code.py"
    user.write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(user)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "MYPYPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_readme_pattern_type_checks(tmp_path: Path) -> None:
    r = mypy_strict(
        tmp_path,
        """
        import os
        from fusefs import ROOT_INO, Vault

        def notes(path: str) -> bytes:
            with Vault.create(path, b"password") as v:
                f = v.create_file(ROOT_INO, b"notes.txt", 0o644, os.getuid(), os.getgid())
                v.write(f.ino, 0, b"hello")
                v.fsync(f.ino)
                return bytes(v.read(f.ino, 0, 5))
        """,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_misspelt_name_is_a_type_error(tmp_path: Path) -> None:
    r = mypy_strict(
        tmp_path,
        """
        import fusefs

        v = fusefs.Vaultt
        """,
    )
    assert r.returncode != 0
    assert 'Module has no attribute "Vaultt"' in r.stdout, r.stdout
