"""Throw-away ordinary users for tests of what a non-root user gets.

Tests run as root; most users are not. :func:`ordinary_users` creates users
(``useradd``), lets them use ``/dev/fuse`` (mode 0666, as Debian's udev
rule gives it on desktops) and reach this checkout and its Python (``o+x``
on each directory on the way, e.g. ``/root`` is 0700), and undoes all of it
in teardown: their processes killed, mounts under their homes detached,
users and homes removed, modes restored.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mounting import REPO, force_cleanup, is_mounted


def why_no_users() -> str | None:
    if os.geteuid() != 0:
        return "creating throw-away users needs root"
    for tool in ("useradd", "userdel"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian package passwd)"
    return None


@dataclass
class User:
    name: str
    uid: int
    gid: int
    home: Path

    def run(
        self, *argv: str | os.PathLike[str], timeout: float = 60, **kw: object
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as this user, in their home, with a login-like environment."""
        env = {
            "HOME": str(self.home),
            "USER": self.name,
            "LOGNAME": self.name,
            "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"]),
            "LANG": "C.UTF-8",
        }
        return subprocess.run(
            [str(a) for a in argv],
            user=self.uid,
            group=self.gid,
            extra_groups=[],
            cwd=self.home,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            **kw,  # type: ignore[arg-type]
        )

    def fusefs(
        self, *args: str | os.PathLike[str], **kw: object
    ) -> subprocess.CompletedProcess[str]:
        """``python -m fusefs ARGS`` as this user, from this checkout."""
        return self.run(sys.executable, "-c", _RUN_CHECKOUT, str(REPO), *map(str, args), **kw)

    def sh(self, script: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return self.run("/bin/sh", "-ec", script, **kw)


# Runs the CLI of the checkout given as argv[1] (the user cannot cd into it
# when it is under /root; only search permission is given on the way).
_RUN_CHECKOUT = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); sys.argv[0] = 'fusefs'; "
    "from fusefs.cli import main; main()"
)


def _directories_to_open() -> set[Path]:
    """Every directory an ordinary user must pass through to run this checkout."""
    import click
    import pyfuse3
    import trio

    targets = [Path(sys.executable).resolve(), REPO / "fusefs" / "__init__.py"]
    targets += [Path(m.__file__).resolve() for m in (click, pyfuse3, trio)]  # type: ignore[arg-type]
    targets += [Path(p).resolve() for p in sys.path if p and os.path.isdir(p)]
    dirs: set[Path] = set()
    for target in targets:
        dirs.update(p for p in target.parents)
    return dirs


@contextmanager
def ordinary_users(count: int = 1) -> Iterator[list[User]]:
    """``count`` new ordinary users, each with a home; all undone on exit."""
    restore: list[tuple[Path, int]] = []
    made: list[User] = []
    try:
        for path in [Path("/dev/fuse"), *_directories_to_open()]:
            mode = path.stat().st_mode & 0o7777
            wanted = mode | (0o666 if path == Path("/dev/fuse") else 0o001)
            if wanted != mode:
                restore.append((path, mode))
                os.chmod(path, wanted)
        for _ in range(count):
            name = f"fsu{uuid.uuid4().hex[:8]}"
            subprocess.run(
                ["useradd", "--create-home", "--user-group", "--shell", "/bin/sh", name],
                check=True,
                capture_output=True,
            )
            pw = pwd.getpwnam(name)
            made.append(User(name, pw.pw_uid, pw.pw_gid, Path(pw.pw_dir)))
        yield made
    finally:
        for user in made:
            _remove(user)
        for path, mode in reversed(restore):
            os.chmod(path, mode)


def _remove(user: User) -> None:
    # Their mounts first (a daemon of theirs may hold one), then every
    # process of theirs, then the user and home.
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f if f" {user.home}/" in f" {line.split()[4]}/"]
    for point in reversed(points):
        if is_mounted(Path(point)):
            force_cleanup(Path(point))
    subprocess.run(["pkill", "-KILL", "-u", str(user.uid)], capture_output=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = subprocess.run(["pgrep", "-u", str(user.uid)], capture_output=True)
        if alive.returncode != 0:
            break
        for pid in alive.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    subprocess.run(["userdel", "--remove", user.name], capture_output=True)
    shutil.rmtree(user.home, ignore_errors=True)
