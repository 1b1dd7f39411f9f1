"""Writing a vault's tree into a directory: the export of the reference reader.

Everything is built in a temporary sibling of DEST and renamed into place
only when the whole tree was written, so DEST is never half-written.
What is exported of each inode reachable from the root (orphans are not):

* names as bytes (not necessarily UTF-8); a non-directory inode named twice
  becomes a hard link;
* contents: the segments of the map, holes as zeros, length = the inode's size;
* symlink targets as bytes; FIFOs with mkfifo; devices with mknod, and if
  that is not permitted (not root) a warning and the device is left out;
  sockets are left out with a note (a socket file means nothing without its
  listening process);
* xattrs by their stored names (one the filesystem refuses, e.g. ``user.*``
  on a symlink, is a warning); uid/gid only when running as root; the
  permission bits (setuid, setgid, sticky included) after the owner (chown
  clears setuid); atime and mtime in ns. A directory gets its attributes
  after its contents, so read-only directories and their times come out right.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable

from refreader.errors import IntegrityError, UsageError
from refreader.packs import Packs
from refreader.state import (
    KIND_BLK,
    KIND_CHR,
    KIND_DIR,
    KIND_FIFO,
    KIND_FILE,
    KIND_SOCK,
    KIND_SYMLINK,
    ROOT_INO,
    Inode,
    State,
)


def check_dest(dest: str) -> None:
    """DEST must not exist, or be an empty directory (exit 2 otherwise)."""
    if os.path.lexists(dest):
        if not os.path.isdir(dest) or os.path.islink(dest):
            raise UsageError(f"{dest} exists and is not a directory")
        if os.listdir(dest):
            raise UsageError(f"{dest} is not empty")
    parent = _parent(dest)
    if not os.path.isdir(parent):
        raise UsageError(f"{parent} (the parent of DEST) is not a directory")


def _parent(dest: str) -> str:
    """DEST's directory, as given (relative paths work where an ancestor is not searchable)."""
    return os.path.dirname(os.path.normpath(dest)) or "."


def export_tree(state: State, packs: Packs, dest: str, warn: Callable[[str], None]) -> None:
    """Write the tree into a temporary sibling of ``dest``, then rename it to ``dest``."""
    check_dest(dest)
    name = os.path.basename(os.path.normpath(dest))
    tmp = tempfile.mkdtemp(prefix=f".{name}.", suffix=".export", dir=_parent(dest))
    try:
        try:
            _Exporter(state, packs, warn).run(os.fsencode(tmp))
            if os.path.isdir(dest):
                os.rmdir(dest)  # an existing empty DEST: replaced
            os.rename(tmp, dest)
        except OSError as e:
            raise UsageError(f"cannot write the export: {e}") from None
    except BaseException:
        _remove_tree(tmp)
        raise


def _remove_tree(path: str) -> None:
    def writable_and_retry(func: Callable[..., object], p: str, _exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
        with contextlib.suppress(OSError):
            func(p)

    shutil.rmtree(path, onerror=writable_and_retry)


def _check_name(name: bytes, directory: int) -> None:
    # §9.3's valid names; a snapshot's names are authenticated but not checked on decoding.
    if len(name) > 255 or name in (b"", b".", b"..") or b"/" in name or b"\0" in name:
        raise IntegrityError(f"directory {directory} holds an invalid name {name!r}")


class _Exporter:
    def __init__(self, state: State, packs: Packs, warn: Callable[[str], None]) -> None:
        self.state = state
        self.packs = packs
        self.warn = warn
        self.as_root = os.geteuid() == 0
        self.first_path: dict[int, bytes | None] = {}  # ino -> path (None: left out)
        self.top = b""

    def shown(self, path: bytes) -> str:
        """A path as the vault names it, for messages."""
        return os.fsdecode(path[len(self.top) :]) or "/"

    def run(self, top: bytes) -> None:
        self.top = top
        directories: list[tuple[bytes, int]] = [(top, ROOT_INO)]  # in creation order
        seen = {ROOT_INO}
        stack = [(top, ROOT_INO)]
        while stack:
            path, ino = stack.pop()
            for name, child in sorted(self.state.dirs[ino].items()):
                _check_name(name, ino)
                node = self.state.inodes.get(child)
                if node is None:
                    raise IntegrityError(f"directory {ino}: {name!r} names no inode ({child})")
                child_path = os.path.join(path, name)
                if node.kind == KIND_DIR:
                    if child in seen:
                        raise IntegrityError(f"directory {child} is reachable twice")
                    seen.add(child)
                    os.mkdir(child_path, 0o700)
                    directories.append((child_path, child))
                    stack.append((child_path, child))
                else:
                    self._non_directory(child_path, child, node)
        # Reversed creation order: every directory after all its descendants.
        for path, ino in reversed(directories):
            self._attributes(path, self.state.inodes[ino])

    def _non_directory(self, path: bytes, ino: int, node: Inode) -> None:
        if ino in self.first_path:
            first = self.first_path[ino]
            if first is not None:
                os.link(first, path, follow_symlinks=False)
            return
        shown = self.shown(path)
        self.first_path[ino] = path
        if node.kind == KIND_FILE:
            self._contents(path, node)
        elif node.kind == KIND_SYMLINK:
            os.symlink(node.target, path)
        elif node.kind == KIND_FIFO:
            os.mkfifo(path, 0o600)
        elif node.kind in (KIND_CHR, KIND_BLK):
            kind_bits = stat.S_IFCHR if node.kind == KIND_CHR else stat.S_IFBLK
            try:
                os.mknod(path, kind_bits | 0o600, node.rdev)
            except PermissionError:
                self.warn(f"device {shown} left out: mknod is not permitted (run as root)")
                self.first_path[ino] = None
                return
        elif node.kind == KIND_SOCK:
            self.warn(f"socket {shown} left out (sockets are not exported)")
            self.first_path[ino] = None
            return
        self._attributes(path, node)

    def _contents(self, path: bytes, node: Inode) -> None:
        size, seg = node.size, self.state.segment_size
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            for index in sorted(node.segments):
                start = index * seg
                if start >= size:
                    continue  # kept past a truncation, never read (§9.3 SetAttr)
                data = self.packs.segment(node.file_id, index, node.segments[index])
                view = memoryview(data)[: size - start]
                while view:
                    written = os.pwrite(fd, view, start)
                    view, start = view[written:], start + written
            os.ftruncate(fd, size)  # holes and the tail up to the size read as zeros
        finally:
            os.close(fd)

    def _attributes(self, path: bytes, node: Inode) -> None:
        is_link = node.kind == KIND_SYMLINK
        for name, value in sorted(node.xattrs.items()):
            try:
                os.setxattr(path, name, value, follow_symlinks=False)
            except OSError as e:
                self.warn(
                    f"xattr {os.fsdecode(name)} of {self.shown(path)} left out: {e.strerror or e}"
                )
        if self.as_root:
            os.chown(path, node.uid, node.gid, follow_symlinks=False)
        if not is_link:
            os.chmod(path, node.mode & 0o7777)
        os.utime(path, ns=(node.atime, node.mtime), follow_symlinks=False)
