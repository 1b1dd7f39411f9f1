#!/usr/bin/env python3
"""Standalone-stream benchmark: fusefs encrypt/decrypt (v2 and v1) against age.

    python3 scripts/bench_stream.py [--size-mib 1024] [--runs 5] [--dir /dev/shm/fusefs-bench]

CLI against CLI in the same run, on a random file on tmpfs, so the tools are
measured rather than the disk. fusefs uses a 32-byte key file and age an X25519
recipient (neither runs a password KDF). Each round runs every tool once, in
turn, after deleting the previous outputs; the table shows the fastest run (VM
noise only ever adds time) and the median, peak RSS, and the ratio against age
from the same run. Memory the runs will use is touched once before starting
(first-touch page faults in these VMs otherwise swamp the figures).
Installs age from Debian's packages if it is missing. Not a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path


def ensure_age() -> None:
    if shutil.which("age") and shutil.which("age-keygen"):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "age"], check=True, env=env)


def run(cmd: list[str]) -> tuple[float, int]:
    """Run cmd; return (wall seconds, peak RSS in KiB) of that child alone."""
    t0 = time.perf_counter()
    p = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        err = p.stderr.read().decode() if p.stderr else ""
        sys.exit(f"bench: {' '.join(cmd)} failed ({p.returncode}): {err.strip()}")
    return elapsed, usage.ru_maxrss


def touch_memory(work: Path, mib: int) -> None:
    warm = work / "warm"
    with open(warm, "wb") as f:
        block = b"\0" * (1 << 20)
        for _ in range(mib):
            f.write(block)
    warm.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", default="/dev/shm/fusefs-bench")
    args = ap.parse_args()
    ensure_age()
    # The console script itself, not a pyenv shim (a shell script that adds ~50 ms).
    script = Path(sysconfig.get_path("scripts")) / "fusefs"
    fusefs = str(script) if script.exists() else shutil.which("fusefs")
    if not fusefs:
        sys.exit("bench: fusefs is not installed (scripts/setup.sh)")
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    plain = work / "plain"
    if not plain.exists() or plain.stat().st_size != args.size_mib << 20:
        with open(plain, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
    key = work / "key"
    key.write_bytes(os.urandom(32))
    identity = work / "age.key"
    identity.unlink(missing_ok=True)
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = next(
        line.split(": ")[1] for line in identity.read_text().splitlines() if "public key" in line
    )
    out = {n: str(work / n) for n in ("v2", "v1", "age", "v2.out", "v1.out", "age.out", "cat.out")}
    p = str(plain)
    # name -> (command, the output it writes, removed before every run)
    cases: dict[str, tuple[list[str], str]] = {
        "fusefs v2 encrypt": ([fusefs, "encrypt", "--keyfile", str(key), p, out["v2"]], out["v2"]),
        "fusefs v2 decrypt": (
            [fusefs, "decrypt", "--keyfile", str(key), out["v2"], out["v2.out"]],
            out["v2.out"],
        ),
        "fusefs v1 encrypt": (
            [fusefs, "encrypt", "--format", "v1", "--keyfile", str(key), p, out["v1"]],
            out["v1"],
        ),
        "fusefs v1 decrypt": (
            [fusefs, "decrypt", "--keyfile", str(key), out["v1"], out["v1.out"]],
            out["v1.out"],
        ),
        "age encrypt": (["age", "-r", recipient, "-o", out["age"], p], out["age"]),
        "age decrypt": (
            ["age", "-d", "-i", str(identity), "-o", out["age.out"], out["age"]],
            out["age.out"],
        ),
        # A plain single-threaded copy in 1 MiB blocks, for scale.
        "dd bs=1M (copy)": (
            ["dd", f"if={p}", f"of={out['cat.out']}", "bs=1M", "status=none"],
            out["cat.out"],
        ),
    }
    times: dict[str, list[float]] = {c: [] for c in cases}
    rss: dict[str, int] = {c: 0 for c in cases}
    touch_memory(work, 3 * args.size_mib + 1024)
    for r in range(args.runs):
        for name, (cmd, dest) in cases.items():
            Path(dest).unlink(missing_ok=True)
            t, m = run(cmd)
            times[name].append(t)
            rss[name] = max(rss[name], m)
        for f in ("v2.out", "v1.out", "age.out", "cat.out"):
            Path(out[f]).unlink(missing_ok=True)
        print(f"round {r + 1}/{args.runs} done", file=sys.stderr)
    size = args.size_mib << 20
    best = {c: min(v) for c, v in times.items()}
    print(
        f"\n{args.size_mib} MiB random file on tmpfs, {args.runs} runs each, "
        f"{os.cpu_count()} cores, {cpu_model()}\n"
    )
    cols = ["command", "fastest s", "median s", "MB/s", "peak RSS MiB", "vs age (fastest)"]
    cols.append("vs age (median)")
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("-" * (len(c) + 2) for c in cols) + "|")
    for name, v in times.items():
        med = statistics.median(v)
        peer = "age encrypt" if "encrypt" in name else "age decrypt" if "decrypt" in name else None
        ratio_b = f"{best[peer] / best[name]:.2f}x" if peer and not name.startswith("age") else ""
        ratio_m = (
            f"{statistics.median(times[peer]) / med:.2f}x"
            if peer and not name.startswith("age")
            else ""
        )
        print(
            f"| {name:<18} | {best[name]:9.3f} | {med:8.3f} | {size / best[name] / 1e6:6.0f} | "
            f"{rss[name] / 1024:12.1f} | {ratio_b:>16} | {ratio_m:>15} |"
        )
    print("\nratio = age's time / fusefs's time (higher is faster than age)")
    verify(plain, work, fusefs, key)
    rss_by_size(work, fusefs, key)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def verify(plain: Path, work: Path, fusefs: str, key: Path) -> None:
    """The benchmark is only meaningful if the round trip is exact."""
    back = work / "verify.out"
    subprocess.run(
        [fusefs, "decrypt", "--keyfile", str(key), str(work / "v2"), str(back)], check=True
    )
    same = subprocess.run(["cmp", "-s", str(plain), str(back)]).returncode == 0
    back.unlink(missing_ok=True)
    print(f"round trip check: {'identical' if same else 'MISMATCH'}")
    if not same:
        sys.exit(1)


def rss_by_size(work: Path, fusefs: str, key: Path) -> None:
    """Peak RSS of v2 encrypt and decrypt does not grow with the input.

    Sparse files (no memory on tmpfs) piped encrypt | decrypt > /dev/null, and
    one file encrypt with a password (Argon2id, 32 MiB by default).
    """
    print("\n| v2 run | input | encrypt peak RSS MiB | decrypt peak RSS MiB |")
    print("|---|---|---|---|")
    for gib in (1, 8):
        sparse = work / f"sparse{gib}"
        with open(sparse, "wb") as f:
            f.truncate(gib << 30)
        enc = subprocess.Popen(
            [fusefs, "encrypt", "--keyfile", str(key), str(sparse), "-"], stdout=subprocess.PIPE
        )
        dec = subprocess.Popen(
            [fusefs, "decrypt", "--keyfile", str(key), "-", "-"],
            stdin=enc.stdout,
            stdout=subprocess.DEVNULL,
        )
        assert enc.stdout is not None
        enc.stdout.close()
        _, s1, u1 = os.wait4(enc.pid, 0)
        _, s2, u2 = os.wait4(dec.pid, 0)
        sparse.unlink()
        if s1 or s2:
            sys.exit(f"bench: pipe of {gib} GiB failed")
        print(
            f"| key file, piped | {gib} GiB | {u1.ru_maxrss / 1024:.1f} "
            f"| {u2.ru_maxrss / 1024:.1f} |"
        )
    pw = work / "pw"
    pw.write_text("bench-password\n")
    out = work / "pw.out"
    t, m = run([fusefs, "encrypt", "--passfile", str(pw), str(work / "plain"), str(out)])
    t2, m2 = run([fusefs, "decrypt", "--passfile", str(pw), str(out), str(work / "pw.back")])
    for f in (out, work / "pw.back"):
        f.unlink(missing_ok=True)
    size = (work / "plain").stat().st_size >> 20
    print(f"| password (Argon2id 32 MiB), files | {size} MiB | {m / 1024:.1f} | {m2 / 1024:.1f} |")


if __name__ == "__main__":
    main()
