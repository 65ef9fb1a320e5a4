"""A pre-imported parent that forks ``smm`` processes on request, so a test can kill hundreds of daemons fast.

Importing the daemon and the network client libraries takes about half a second; forking a process that has
already imported them takes a millisecond. The children are real, separate processes running the real
``scheduler.cli.main`` and die by real SIGKILLs, at random moments or at the named crash points.

Protocol (JSON lines): the parent writes ``{"spawn": [args...], "env": {...}, "log": path, "unsafe": false}`` to
stdin and reads ``{"pid": N}``; when a child ends it reads ``{"exit": N, "status": S}`` (S is the exit code, or
minus the signal number). ``unsafe`` turns the attempt record off in the child (publish first, record after),
the broken design the crash tests must catch.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
from typing import Any


def _preload() -> None:
    import apscheduler.schedulers.asyncio
    import httpx
    import psycopg
    import telegram
    import vk_api

    import adapters.facebook
    import adapters.ok
    import adapters.outbox
    import adapters.telegram
    import adapters.vk
    import scheduler.cli
    import scheduler.daemon
    import scheduler.migrate

    del adapters, apscheduler, httpx, psycopg, telegram, vk_api, scheduler


def _make_unsafe() -> None:
    """The naive design: no write-ahead attempt. The delivery stays queued while the network is called and is
    marked published afterwards, so a crash in between sends it again."""
    from sqlalchemy import update

    from scheduler import publisher, store
    from scheduler.models import Delivery, Status

    def mark(session: Any, delivery_id: int, status: Status, remote_id: str | None) -> None:
        session.execute(
            update(Delivery).where(Delivery.id == delivery_id).values(status=status.value, remote_id=remote_id)
        )

    async def publish_then_record(
        self: Any, claim: Any, adapter: Any, channel: Any, slot: Any = None, **_: Any
    ) -> None:
        await self.db_call(store.release, claim, self.clock(), "unsafe: no attempt record")
        try:
            result = await adapter.publish(self.outgoing(claim, channel))
        except Exception:
            await self.db_call(mark, claim.delivery_id, Status.FAILED, None)
            return
        publisher.crash_point("after_accept")
        await self.db_call(mark, claim.delivery_id, Status.PUBLISHED, result.remote_id)

    publisher.Publisher.publish = publish_then_record  # type: ignore[method-assign]


def _child(request: dict[str, Any]) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ.update(request.get("env", {}))
    if request.get("unsafe"):
        _make_unsafe()
    from scheduler.cli import main

    code = 0
    try:
        main(list(request["spawn"]))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 70
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve() -> None:
    _preload()
    out = sys.stdout
    out.write(json.dumps({"ready": os.getpid()}) + "\n")
    out.flush()
    children: set[int] = set()
    buffer = b""
    stdin = sys.stdin.fileno()
    while True:
        readable, _, _ = select.select([stdin], [], [], 0.01)
        if readable:
            chunk = os.read(stdin, 65536)
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _child(request)
                children.add(pid)
                out.write(json.dumps({"pid": pid}) + "\n")
                out.flush()
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                children.discard(pid)
                code = os.waitstatus_to_exitcode(status)
                out.write(json.dumps({"exit": pid, "status": code}) + "\n")
                out.flush()
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass


if __name__ == "__main__":
    serve()
