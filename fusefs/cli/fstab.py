"""fstab and mount(8): mount options as ``-o`` strings, and the mount helper's arguments.

``mount -t fuse.fusefs VAULT MNT -o passfile=FILE,ro`` (or the same fields
in /etc/fstab) runs fuse3's ``/sbin/mount.fuse3`` (mount(8) finds it as
``mount.fuse``), which drops the options meant for mount(8) itself (user,
nofail, noauto, _netdev, ...), adds ``dev,suid`` unless told ``nodev``/
``nosuid``, and runs ``sh -c "fusefs VAULT MNT -o OPTS"``: the program named
by the type, found on PATH. So ``fusefs VAULT MNT -o OPTS`` is taken as
``fusefs mount VAULT MNT -o OPTS`` (:func:`is_helper_call`), and the
``mount.fusefs`` script takes mount(8)'s helper convention
``VAULT MNT [-o OPTS] [-n] [-s] [-f] [-v]`` for a ``/sbin/mount.fusefs``
link (``mount -t fusefs``) (:func:`helper_argv`).

The options (:func:`parse_options`) are those of ``fusefs mount``:
passfile=FILE, extpass=CMD, ro/rw, allow_other, idle=TIME, log=FILE,
masterkey; nosuid, nodev, noexec go to the kernel; the generic ones of
mount(8) and systemd are accepted and ignored. A value holding commas is
written in double quotes (``extpass="pass show vault"``), and fstab's
octal escapes (``\\040`` for a space) are decoded. Anything else is refused
(with mount's ``-s``, ignored).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from fusefs.exitcodes import ExitCode, QuietError

#: Options with a value, and the ``fusefs mount`` option each stands for.
VALUE_OPTIONS = {"passfile": "--passfile", "extpass": "--extpass", "idle": "--idle", "log": "--log"}
#: Flags passed on to the kernel as mount flags.
KERNEL_FLAGS = frozenset({"nosuid", "nodev", "noexec"})
#: Options of mount(8), mount.fuse3 and systemd that say nothing to fusefs. suid,
#: dev, exec, async and rw are the defaults; the vault is always mounted noatime.
IGNORED = frozenset(
    {
        "defaults", "auto", "noauto", "user", "nouser", "users", "owner", "group", "nofail",
        "_netdev", "suid", "dev", "exec", "async", "atime", "noatime", "relatime",
        "strictatime", "nodiratime", "loud", "silent",
    }
)  # fmt: skip
#: Prefixes of ignored options: userspace options (x-systemd.automount,
#: x-systemd.requires=...), and comment=.
IGNORED_PREFIXES = ("x-", "comment=")
#: The file system type names this helper answers to (``-t``).
TYPES = frozenset({"fusefs", "fuse.fusefs"})


@dataclass
class FstabOptions:
    """What an ``-o`` string asks of ``fusefs mount``."""

    values: dict[str, str] = field(default_factory=dict)
    read_only: bool = False
    allow_other: bool = False
    masterkey: bool = False
    kernel_flags: set[str] = field(default_factory=set)


def _fail(message: str) -> QuietError:
    return QuietError(message, ExitCode.USAGE)


def split_options(text: str) -> list[str]:
    """``a,b="x,y",c`` -> ``['a', 'b=x,y', 'c']``: commas inside double quotes stay,
    the quotes go; ``\\ooo`` octal escapes (fstab's ``\\040``) are decoded."""
    options: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            options.append("".join(current))
            current = []
        else:
            current.append(ch)
    if quoted:
        raise _fail(f"unbalanced double quote in mount options {text!r}")
    options.append("".join(current))
    return [re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), o) for o in options if o]


def parse_options(texts: Iterable[str], *, sloppy: bool = False) -> FstabOptions:
    """The options of every ``-o`` string; unknown ones refused (ignored if ``sloppy``)."""
    result = FstabOptions()
    for text in texts:
        for option in split_options(text):
            name, has_value, value = option.partition("=")
            if option in IGNORED or option.startswith(IGNORED_PREFIXES):
                continue
            if name in VALUE_OPTIONS:
                if not has_value or not value:
                    raise _fail(f"mount option {name} needs a value ({name}=...)")
                if name in result.values and result.values[name] != value:
                    raise _fail(f"mount option {name} given twice")
                result.values[name] = value
            elif has_value and name in ("ro", "rw", "allow_other", "masterkey", *KERNEL_FLAGS):
                raise _fail(f"mount option {name} takes no value")
            elif option in ("ro", "rw"):
                result.read_only = option == "ro"  # the last one wins, as in mount(8)
            elif option == "allow_other":
                result.allow_other = True
            elif option == "masterkey":
                result.masterkey = True
            elif option in KERNEL_FLAGS:
                result.kernel_flags.add(option)
            elif not sloppy:
                raise _fail(f"unknown mount option {option!r} (see 'fusefs mount --help')")
    return result


def is_helper_call(argv: list[str], commands: Collection[str]) -> bool:
    """Whether ``argv`` is mount.fuse3's ``VAULT MNT -o OPTS`` rather than a command."""
    return (
        len(argv) >= 3
        and not argv[0].startswith("-")
        and argv[0] not in commands
        and not argv[1].startswith("-")
        and any(a.startswith("-o") for a in argv[2:])
    )


def helper_argv(argv: list[str]) -> list[str] | None:
    """``VAULT MNT [-o OPTS]... [-n] [-s] [-f] [-v] [-t TYPE]`` as ``fusefs mount`` arguments.

    -n (no mtab) changes nothing here; -v (verbose) lets ``mount`` say what
    it did (a mount helper is silent on success, as mount(8) is); -s
    (sloppy) drops unknown options instead of refusing them; -f (fake)
    checks the options and returns None: there is nothing to do.
    """
    positional: list[str] = []
    texts: list[str] = []
    sloppy = fake = verbose = False
    args = iter(argv)
    for arg in args:
        if arg == "-o" or arg == "-t":
            value = next(args, None)
            if value is None:
                raise _fail(f"option {arg} needs a value")
            if arg == "-o":
                texts.append(value)
            elif value not in TYPES:
                raise _fail(f"file system type {value!r} is not fusefs")
        elif arg.startswith("-o"):
            texts.append(arg[2:])
        elif arg == "-n":
            pass
        elif arg == "-v":
            verbose = True
        elif arg == "-s":
            sloppy = True
        elif arg == "-f":
            fake = True
        elif arg.startswith("-") and arg != "-":
            raise _fail(f"unknown option {arg} (usage: mount.fusefs VAULT MNT [-o OPTIONS])")
        else:
            positional.append(arg)
    if len(positional) != 2:
        raise _fail("usage: mount.fusefs VAULT MNT [-o OPTIONS] [-n] [-s] [-f] [-v]")
    options = parse_options(texts, sloppy=sloppy)
    if fake:
        return None
    quiet = [] if verbose else ["-q"]
    return [
        "mount",
        *quiet,
        *positional,
        *(x for o in to_option_strings(options) for x in ("-o", o)),
    ]


def to_option_strings(options: FstabOptions) -> list[str]:
    """``options`` again as ``-o`` strings that :func:`parse_options` reads back.

    A value never holds a double quote (:func:`split_options` removes them
    all), so quoting one that holds a comma is enough.
    """
    out = [f'{k}="{v}"' if "," in v else f"{k}={v}" for k, v in options.values.items()]
    out += ["ro"] if options.read_only else []
    out += ["allow_other"] if options.allow_other else []
    out += ["masterkey"] if options.masterkey else []
    out += sorted(options.kernel_flags)
    return out
