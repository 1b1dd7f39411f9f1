"""``fusefs/_native.pyi`` against the built module, by mypy's stubtest: a
class, function, parameter, default or ``__all__`` entry the stub gets wrong
(or lacks) fails here, so the stub cannot drift from the binding unnoticed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "fusefs" / "_native.pyi"


def stubtest(**env: str) -> subprocess.CompletedProcess[str]:
    """``python -m mypy.stubtest fusefs._native`` on this tree's package."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy.stubtest",
            "fusefs._native",
            "--concise",
            "--mypy-config-file",
            str(ROOT / "pyproject.toml"),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": path, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_stub_matches_the_native_module() -> None:
    r = stubtest()
    assert (r.returncode, r.stdout) == (0, ""), r.stdout + r.stderr


def test_stubtest_finds_a_stub_that_drifted(tmp_path: Path) -> None:
    # The same stub with a method missing and a parameter misnamed, found
    # first on MYPYPATH.
    stub = STUB.read_text()
    drifted = stub.replace("    def sync(self) -> None: ...\n", "", 1).replace(
        "def readlink(self, ino: int)", "def readlink(self, inode: int)", 1
    )
    assert drifted.count("\n") == stub.count("\n") - 1 and "inode: int" in drifted
    (tmp_path / "fusefs").mkdir()
    (tmp_path / "fusefs" / "__init__.pyi").write_text("")
    (tmp_path / "fusefs" / "_native.pyi").write_text(drifted)
    r = stubtest(MYPYPATH=str(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.splitlines() == [
        'fusefs._native.Vault.readlink is inconsistent, stub parameter "inode" differs'
        ' from runtime parameter "ino"',
        "fusefs._native.Vault.sync is not present in stub",
    ]
