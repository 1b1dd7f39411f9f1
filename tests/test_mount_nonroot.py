"""fusefs as an ordinary user: their own vault, their own mount, and a clear
"no" for everyone else (throw-away users, see tests/users.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mounting import FAST_KDF, PASSWORD, fuse_unavailable, fusefs, is_mounted
from users import User, ordinary_users, why_no_users

EXIT_MOUNT = 7


@pytest.fixture(scope="module")
def users() -> Iterator[list[User]]:
    reason = fuse_unavailable() or why_no_users()
    if reason is not None:
        pytest.skip(reason)
    with ordinary_users(2) as made:
        yield made


def one_line_error(done: object) -> str:
    stderr = done.stderr  # type: ignore[attr-defined]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fusefs: error: "), stderr
    assert "Traceback" not in stderr
    return str(lines[0])


def init_and_mount(user: User, name: str, *mount_options: str) -> tuple[Path, Path]:
    vault, mnt = user.home / name, user.home / f"{name}.mnt"
    done = user.sh(f"printf '%s\\n' '{PASSWORD}' > pw; mkdir -p {mnt}")
    assert done.returncode == 0, done.stderr
    done = user.fusefs("init", vault, "--passfile", user.home / "pw", "-q", *FAST_KDF, umask=0o027)
    assert done.returncode == 0, done.stderr
    done = user.fusefs(
        "mount",
        vault,
        mnt,
        "--passfile",
        user.home / "pw",
        "--log",
        user.home / f"{name}.log",
        *mount_options,
    )
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout == f"Mounted {vault} on {mnt} (read-write); 'fusefs umount {mnt}' to unmount.\n"
    )
    return vault, mnt


def test_the_whole_cycle_as_an_ordinary_user(users: list[User]) -> None:
    ann = users[0]
    vault, mnt = init_and_mount(ann, "cycle")
    try:
        done = ann.run("stat", "-c", "%u %g %a", mnt)  # not even root may look
        assert done.stdout.split() == [str(ann.uid), str(ann.gid), "750"], done.stderr
        done = ann.sh(
            "cd cycle.mnt && echo hello > a.txt && mkdir d && cp /etc/services d/s && "
            "ln -s a.txt link && chmod 600 a.txt && ls -l >/dev/null"
        )
        assert done.returncode == 0, done.stderr
        done = ann.fusefs("stats", mnt)
        assert done.returncode == 0 and "requests:" in done.stdout, done.stderr
        done = ann.fusefs("umount", mnt)
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"Unmounted {mnt} ({vault}).\n"
        assert not is_mounted(mnt)

        done = ann.fusefs("mount", vault, mnt, "--passfile", ann.home / "pw", "-q")
        assert done.returncode == 0 and done.stdout == "", done.stderr
        done = ann.sh("cd cycle.mnt && cat a.txt && cmp d/s /etc/services && readlink link")
        assert done.returncode == 0, done.stderr
        assert done.stdout == "hello\na.txt\n"
        done = ann.run("stat", "-c", "%u %a", mnt / "a.txt")
        assert done.stdout.split() == [str(ann.uid), "600"], done.stderr
        # umount --compact, and by the vault's path instead of the mount point.
        done = ann.fusefs("umount", "--compact", vault)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"Unmounted {mnt} ({vault}); compacted: ")
        assert not is_mounted(mnt)
    finally:
        ann.fusefs("umount", mnt)
    # Nothing the user could not act on was logged (the /sys/class/bdi
    # tuning is root's): no warning, no error.
    log = (ann.home / "cycle.log").read_text()
    assert "WARNING" not in log and "ERROR" not in log, log


def test_another_user_gets_a_clear_refusal(users: list[User]) -> None:
    ann, bob = users
    vault, mnt = init_and_mount(ann, "refusals")
    try:
        for command in (["umount", mnt], ["umount", "--compact", mnt], ["stats", mnt]):
            done = bob.fusefs(*command)
            assert done.returncode == EXIT_MOUNT, done.stderr
            assert one_line_error(done) == (
                f"fusefs: error: {mnt} was mounted by {ann.name} (uid {ann.uid}): "
                "only that user or root may do this"
            )
        assert is_mounted(mnt)
        # Root cannot look inside a mount without allow_other (the kernel
        # says so), but may unmount it.
        done = fusefs("stats", mnt)
        assert done.returncode == EXIT_MOUNT and one_line_error(done) == (
            f"fusefs: error: {mnt} was mounted by {ann.name} (uid {ann.uid}) without "
            "--allow-other: no other user can look inside it, root included"
        )
        done = fusefs("umount", mnt)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"Unmounted {mnt} ({vault}); its daemon, of {ann.name}")
        assert not is_mounted(mnt)
    finally:
        ann.fusefs("umount", mnt)
