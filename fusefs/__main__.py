"""``python -m fusefs``: the command line."""

from fusefs.cli import main

if __name__ == "__main__":
    main()
