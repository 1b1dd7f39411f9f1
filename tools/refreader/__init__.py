"""The reference reader's package: streams (FORMAT.md §1-§4) and vaults (§6-§10),
written from FORMAT.md alone, sharing no code with ``fusefs/``. The command
line is ``tools/reference_decrypt.py``."""
