"""Process plumbing of ``smm run``: signals, pool threads, the wake-ups from the CLI, and the way out of a stop that
does not end by itself."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from scheduler.log import redact

if TYPE_CHECKING:
    from scheduler.db import Database

log = logging.getLogger("smm.daemon")

STOP_SLACK = 2.0
"""Seconds past ``shutdown_grace`` after which ``smm run`` exits whatever still runs (a network call in a thread that
a server keeps alive a byte at a time cannot be cancelled): what was in flight is reconciled at the next start."""
PR_SET_NAME = 15
"""prctl(2)'s option that names the calling thread (15 bytes at most)."""
HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)


def install_signals(
    loop: asyncio.AbstractEventLoop,
    stop: Callable[[str], None],
    reload: Callable[[], object],
    summary: Callable[[], object],
) -> None:
    """SIGTERM and SIGINT stop, SIGHUP reloads the config, SIGUSR1 logs the summary (``HANDLED_SIGNALS``)."""
    loop.add_signal_handler(signal.SIGTERM, stop, "SIGTERM")
    loop.add_signal_handler(signal.SIGINT, stop, "SIGINT")
    loop.add_signal_handler(signal.SIGHUP, reload)
    loop.add_signal_handler(signal.SIGUSR1, summary)


def block_signals() -> None:
    """Block the daemon's signals in the calling thread.

    Worker threads block them from the start, so that the kernel delivers them to the main thread, the one running
    the event loop.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)


def ignore_signals(loop: asyncio.AbstractEventLoop) -> None:
    """Take the daemon's signals from the loop and ignore them in this process, up to its very end (the interpreter
    resets the handlers it set before it exits; it keeps ``SIG_IGN``). Not blocked: a process started later (after
    ``smm run`` called in-process) would inherit the mask, where a handler it installs does not unblock them; but
    blocked during the swap, so that none meets a default handler."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
    try:
        for signum in HANDLED_SIGNALS:
            loop.remove_signal_handler(signum)
            signal.signal(signum, signal.SIG_IGN)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def libc(name: str) -> Callable[..., int] | None:
    """A function of the C library (glibc, Linux), or None where there is none of that name."""
    try:
        import ctypes

        function: Callable[..., int] = getattr(ctypes.CDLL(None), name)
    except (ImportError, OSError, AttributeError):
        return None
    return function


def worker_thread() -> None:
    """A pool thread's start: block the daemon's signals, and give the thread its pool's name in the system as well
    (``top -H``, ``ps -T`` and ``/proc/PID/task/*/comm`` then tell the database writer from the readers and the
    network threads)."""
    block_signals()
    if (prctl := libc("prctl")) is not None:
        prctl(PR_SET_NAME, threading.current_thread().name.encode()[:15], 0, 0, 0)


def return_free_memory() -> None:
    """Hand the C heap's free pages back to the system. glibc keeps what start-up's imports and queries freed (part
    of a daemon's resident memory, for months); the summary runs after start-up and once a day."""
    if (trim := libc("malloc_trim")) is not None:
        trim(0)


def exit_now(code: int) -> None:
    """End the process at once, threads and all (the log flushed first)."""
    logging.shutdown()
    os._exit(code)


def exit_late(after: float) -> None:
    """A stop's last resort, in a thread of its own: exit ``after`` seconds from now, should the stop be stuck."""

    def wait_then_exit() -> None:
        worker_thread()
        time.sleep(after)
        log.warning(
            "still running %gs past shutdown_grace (a call that does not return); exiting now; "
            "what was in flight is checked at the next start",
            STOP_SLACK,
            extra={"action": "stopped"},
        )
        exit_now(0)

    threading.Thread(target=wait_then_exit, name="smm-stop", daemon=True).start()


async def finish(tasks: list[asyncio.Task[Any]], deadline: float, monotonic: Callable[[], float]) -> int:
    """Let ``tasks`` run until ``deadline`` (monotonic), then cancel those still running (a second to unwind: one
    in a thread is abandoned, its delivery left leased for reconciliation); returns how many were cancelled."""
    tasks = [task for task in tasks if not task.done()]
    if not tasks:
        return 0
    _, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - monotonic()))
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=1.0)
    return len(pending)


def listen_for_pokes(loop: asyncio.AbstractEventLoop, sock: socket.socket | None, poke: Callable[[], None]) -> None:
    """Poke on each datagram the CLI sends to the lock's socket (SQLite)."""
    if sock is None:
        return

    def drain() -> None:
        try:
            while sock.recv(64):
                pass
        except OSError:
            pass
        poke()

    loop.add_reader(sock.fileno(), drain)


def use_io_threads(loop: asyncio.AbstractEventLoop) -> None:
    """The loop's default thread pool, big enough for the networks: VK's client is synchronous (run in threads) and
    asyncio resolves host names in the same pool, so a few slow VK calls must not hold up every other network's
    connections."""
    from concurrent.futures import ThreadPoolExecutor

    loop.set_default_executor(
        ThreadPoolExecutor(max_workers=32, thread_name_prefix="smm-io", initializer=worker_thread)
    )


async def listen_postgres(db: Database, poke: Callable[[], None], is_stopping: Callable[[], bool]) -> None:
    """Poke on each NOTIFY smm_wake (PostgreSQL), and once each time the connection is made (again)."""
    import psycopg

    conninfo = db.write_engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    delay = 1.0
    while not is_stopping():
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute("LISTEN smm_wake")
                delay = 1.0
                poke()
                async for _ in conn.notifies():
                    poke()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database went away: keep trying, the tick still runs
            reason = " ".join(redact(str(exc)).split())
            log.warning("LISTEN connection lost (%s); reconnecting in %.0fs", reason, delay)
            await asyncio.sleep(delay)
            delay = min(60.0, delay * 2)
