#!/bin/bash
# Install everything fusefs needs on a fresh Debian machine, build and install
# it, then run the main job: a vault mounted, filled and checked, and a
# standalone stream encrypted and decrypted.
#
#   scripts/setup.sh                  install + demo
#   scripts/setup.sh --dev --no-demo  editable install, no demo (scripts/test.sh, CI):
#                                     the native module is built into fusefs/, so
#                                     the source tree itself imports and runs; and mypy
set -euo pipefail
demo=1; editable=""
for arg in "$@"; do
  case "$arg" in
    --no-demo) demo=0 ;;
    --dev) editable="-e" ;;
    *) echo "setup: unknown option $arg" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# Debian's own python3 marks itself externally managed (PEP 668); installing
# there is what this script is for. Harmless for pyenv or a virtualenv.
export PIP_BREAK_SYSTEM_PACKAGES=1
# man-db and groff-base: `man fusefs` (the pages ship with the package) and tests/test_manpage.py.
need_apt=0
for pkg in fuse3 libfuse3-dev pkg-config gcc age rsync sqlite3 git man-db groff-base; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt=1
done
if [ "$need_apt" = 1 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq fuse3 libfuse3-dev pkg-config gcc age rsync sqlite3 git man-db groff-base >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: Rust (cargo) is required: https://rustup.rs" >&2; exit 1; }

# pyfuse3: the releases fusefs.requestloop was verified on (its VERIFIED_PYFUSE3).
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "maturin>=1.5,<2" pytest cryptography zstandard click trio "pyfuse3>=3.5,<3.6"
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-build-isolation $editable .
# --dev: mypy too, whose stubtest (tests/test_stub.py) holds fusefs/_native.pyi to the module.
[ -z "$editable" ] || python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore mypy

[ "$demo" = 1 ] || exit 0

# The main job, in a scratch directory (`python3 -m` puts the current
# directory first on the import path, and the source tree's fusefs/ without
# the built module must not shadow the installed package):
#  1. a vault: init, mount, copy a tree in, unmount, mount again, compare,
#     unmount; and show that the vault directory holds no plaintext name;
#  2. a standalone stream: encrypt and decrypt 64 MiB, compare.
work=$(mktemp -d)
cleanup() {
  mountpoint -q "$work/mnt" 2>/dev/null && { python3 -m fusefs umount "$work/mnt" || fusermount3 -uz "$work/mnt"; }
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
printf 'demo password\n' > "$work/pass"
if [ -e /dev/fuse ]; then
  mkdir "$work/mnt"
  python3 -m fusefs init "$work/vault" --passfile "$work/pass" --quiet
  python3 -m fusefs mount "$work/vault" "$work/mnt" --passfile "$work/pass"
  tree=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')/email
  cp -a "$tree" "$work/mnt/email"
  python3 -m fusefs umount "$work/mnt"
  python3 -m fusefs mount "$work/vault" "$work/mnt" --passfile "$work/pass"
  diff -r "$tree" "$work/mnt/email"
  python3 -m fusefs stats "$work/mnt"
  python3 -m fusefs umount "$work/mnt"
  if grep -rq "feedparser" "$work/vault"; then
    echo "fusefs: a plaintext name reached the vault" >&2; exit 1
  fi
  echo "fusefs: vault round trip of $(find "$tree" | wc -l) entries OK (no plaintext name in the vault)"
else
  echo "fusefs: /dev/fuse is missing: skipping the vault demo (a container without FUSE?)" >&2
fi
head -c $((64 * 1024 * 1024)) /dev/urandom > "$work/plain"
head -c 32 /dev/urandom > "$work/key"
python3 -m fusefs encrypt --keyfile "$work/key" --stats "$work/plain" "$work/plain.fusefs"
python3 -m fusefs decrypt --keyfile "$work/key" --stats "$work/plain.fusefs" "$work/plain.out"
cmp "$work/plain" "$work/plain.out" && echo "fusefs: stream round trip of 64 MiB OK"
