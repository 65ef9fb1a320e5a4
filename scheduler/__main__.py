"""``smm`` and ``python -m scheduler``: the command line, started with the cyclic garbage collector paused.

Starting ``smm`` imports and builds tens of thousands of objects (SQLAlchemy, click, the config) and none of them
is garbage; the collector would walk them again and again. :func:`scheduler.cli.main` starts it again for every
command but the short ones that touch one post (``SHORT_COMMANDS``), so a command that runs long collects as usual.
"""

from __future__ import annotations

import gc


def main() -> None:
    """Entry point of the ``smm`` console script."""
    gc.disable()
    from scheduler.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
