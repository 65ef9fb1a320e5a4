"""No token or secret is ever printed, logged, stored or shown, whatever goes wrong; and what smm creates on disk is
readable by its owner only.

The daemon runs at ``-vv`` (the HTTP libraries' debug logs included) and ``-v`` with JSON logs, and the CLI at
``-v``, against the four fakes, through every error path the fakes can provoke: auth errors and revoked tokens,
5xx, answers slower than the timeout, dropped connections, rate limits, content refused, errors that quote the token
back, garbage answers that make an adapter fail unexpectedly (tracebacks), a missing secret, and doctor's failures.
Then every output (stdout, stderr, logs, JSON, every column of every table, the outbox) is searched for every
secret, for its URL-encoded form, and for any 12 characters of it in a row.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.conftest import make_png, write_config
from tests.fakes.base import FakeRequest, FakeResponse, Fault
from tests.fakes.telegram import error_body as telegram_error
from tests.fakes.vk import error_body as vk_error
from tests.reliability.harness import Networks, queue_posts
from tests.support import smm, smm_env, wait_for

pytestmark = pytest.mark.slow

SETTINGS = """
[daemon]
tick = "0.2s"
reconcile_delay = "0.5s"
late_grace = "1d"
lease = "3s"
[retry]
max_attempts = 3
in_call_attempts = 2
in_call_max_wait = "0.5s"
backoff_base = "0.2s"
backoff_cap = "0.5s"
"""


@dataclass
class World:
    tmp: Path
    networks: Networks
    config: Path
    secrets: dict[str, str]
    env: dict[str, str]
    outputs: list[tuple[str, str]] = field(default_factory=list)
    """(what, text) of everything printed or written, to search."""

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = smm(*args, config=self.config, env=self.env if env is None else env)
        shown = " ".join(args)
        self.outputs += [(f"stdout of smm {shown}", result.stdout), (f"stderr of smm {shown}", result.stderr)]
        return result

    def run_script(self, script: str, *args: str) -> None:
        result = subprocess.run(
            [sys.executable, "-c", script, str(self.config), *args],
            env=smm_env(self.env),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.tmp,
        )
        assert result.returncode == 0, result.stderr
        self.outputs += [("stdout of smm show", result.stdout), ("stderr of smm show", result.stderr)]


SHOW_ALL = """
import sys
from scheduler.cli import main
config, ids = sys.argv[1], sys.argv[2:]
for post_id in ids:
    for extra in ([], ["--json"]):
        try:
            main(["--config", config, "-v", "show", post_id, *extra])
        except SystemExit as exc:
            assert not exc.code, (post_id, exc.code)
"""


def faults(world: World) -> None:
    """Queue, on each network's publishing call, one of every way it can go wrong (each taken by the next request),
    several of them quoting the token (and OK's application secret) back in the error."""
    n = world.networks
    tg_token = world.env["TG_TOKEN"]
    vk_token, fb_token, ok_token = world.env["VK_TOKEN_0"], world.secrets["fb file token"], world.env["OK_TOKEN_0"]
    ok_secret = world.env["OK_SECRET"]
    n.telegram.inject(
        "sendMessage",
        Fault.respond(502, telegram_error(502, "Bad Gateway")),
        Fault.delay(1.5),
        Fault.respond(429, telegram_error(429, "Too Many Requests: retry after 1", retry_after=1)),
        Fault.respond(400, telegram_error(400, f"Bad Request: can't parse entities for bot{tg_token}")),
        Fault.respond(200, {"ok": True, "result": 42}),
        Fault.drop_after(),
        Fault.respond(401, telegram_error(401, f"Unauthorized: {tg_token}")),
    )
    n.vk.inject(
        "wall.post",
        Fault.respond(500, b"Internal Server Error"),
        Fault.respond(200, vk_error(5, f"User authorization failed: invalid access_token {vk_token}.")),
        Fault.respond(200, vk_error(6, "Too many requests per second")),
        Fault.respond(200, {"response": "garbage"}),
        Fault.respond(
            200,
            vk_error(
                100,
                f"One of the parameters specified was missing: {vk_token}",
                request_params=[{"key": "access_token", "value": vk_token}],
            ),
        ),
        Fault.delay(1.5),
        Fault.drop_before(),
    )
    n.facebook.inject(
        "feed",
        Fault.respond(
            500, {"error": {"message": f"Unknown error for {fb_token}", "type": "OAuthException", "code": 2}}
        ),
        Fault.respond(
            400,
            {"error": {"message": f"Error validating access token {fb_token}", "type": "OAuthException", "code": 190}},
        ),
        Fault.respond(400, {"error": {"message": "(#32) Page request limit reached", "code": 32}}),
        Fault.respond(400, {"error": {"message": f"(#100) Invalid parameter access_token={fb_token}", "code": 100}}),
        Fault.respond(200, {"id": ["not", "an", "id"]}),
        Fault.drop_after(),
    )
    n.ok.inject(
        "mediatopic.post",
        Fault.respond(502, b"Bad Gateway"),
        Fault.respond(200, {"error_code": 102, "error_msg": f"PARAM_SESSION_EXPIRED : {ok_token}", "error_data": None}),
        Fault.respond(
            200,
            {"error_code": 104, "error_msg": f"PARAM_SIGNATURE : sig for {ok_token}{ok_secret}", "error_data": None},
        ),
        Fault.respond(200, b"garbage, not JSON"),
        Fault.drop_after(),
    )


def revoke_everything(n: Networks) -> None:
    n.telegram.revoke_token()
    n.vk.revoke_token()
    for token in list(n.facebook.tokens):
        n.facebook.revoke_token(token)
    for token in list(n.ok.users):
        n.ok.revoke_token(token)


def revoke_all_on(world: World, marker: str) -> None:
    """Revoke every token just before the first request (to any fake) whose parameters contain ``marker``."""
    n = world.networks
    for fake in (n.telegram, n.vk, n.facebook, n.ok):
        handle: Callable[[FakeRequest], FakeResponse] = fake.handle

        def hooked(request: FakeRequest, handle: Callable[[FakeRequest], FakeResponse] = handle) -> FakeResponse:
            if any(marker in v for v in request.params.values()):
                revoke_everything(n)
            return handle(request)

        setattr(fake, "handle", hooked)  # noqa: B010 - an instance hook


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Every error path, once: the daemon at -vv then -v with JSON logs, then the CLI at -v."""
    tmp = tmp_path_factory.mktemp("secrets")
    networks = Networks(per_network=5)  # a channel per fault: pacing (OK: 5 s a post) is per channel
    try:
        token_file = tmp / "fb0.token"
        token_file.write_text(networks.env["FB_TOKEN_0"] + "\n")
        token_file.chmod(0o600)
        body = networks.config_body().replace('timeout = "3s"', 'timeout = "1s"')
        body = body.replace('token_env = "FB_TOKEN_0"', f'token_file = "{token_file}"')
        db_url = f"sqlite:///{tmp / 'smm.db'}"
        config = write_config(tmp / "config.toml", db_url, body, outbox=True, extra_top=SETTINGS)
        env = {k: v for k, v in networks.env.items() if k != "FB_TOKEN_0"}
        secrets = {f"env {k}": v for k, v in env.items()} | {"fb file token": networks.env["FB_TOKEN_0"]}
        world = World(tmp, networks, config, secrets, env)
        queue_posts(config, networks, 0, per_channel=2)
        picture = make_png(tmp / "picture.png", 4, 3)
        on = [arg for name in ("vk4", "fb4", "tg5", "outbox") for arg in ("--channel", name)]
        assert world.run("add", "with a picture", "--media", str(picture), *on, "--now").returncode == 0

        faults(world)
        world.run("-vv", "run", "--once")
        revoke_all_on(world, "after the revocation")
        assert world.run("add", "after the revocation", "--now").returncode == 0
        world.run("-v", "run", "--once", "--log-format", "json")

        # A secret that is not there: its channel is disabled, the others go on.
        missing = {k: v for k, v in env.items() if k != "OK_TOKEN_2"}
        world.run("-v", "run", "--once", env=missing)
        world.run("-v", "doctor", env=missing)
        world.run("-vv", "doctor")
        for args in (("queue",), ("queue", "--all", "--limit", "0"), ("queue", "--all", "--json", "--limit", "0")):
            world.run("-v", *args)
        views = json.loads(world.run("queue", "--all", "--json", "--limit", "0").stdout)
        world.run_script(SHOW_ALL, *[str(view["id"]) for view in views])
        yield world
    finally:
        networks.stop()


def stored(world: World) -> list[tuple[str, str]]:
    """Every column of every table, and every file of the outbox."""
    found: list[tuple[str, str]] = []
    engine = create_engine(f"sqlite:///{world.tmp / 'smm.db'}")
    try:
        with engine.connect() as conn:
            for table in inspect(engine).get_table_names():
                rows = conn.execute(text(f"SELECT * FROM {table}")).all()
                found.append((f"table {table}", "\n".join(" | ".join(str(v) for v in row) for row in rows)))
    finally:
        engine.dispose()
    for path in sorted((world.tmp / "outbox").rglob("*")):
        if path.is_file():
            found.append((f"outbox file {path.name}", path.read_bytes().decode("utf-8", "replace")))
    return found


def leaks(secret: str, haystack: str, *, fold: bool = False) -> list[str]:
    """How ``secret`` shows in ``haystack``: whole, URL-encoded, or as 12 characters of it in a row; with ``fold``,
    in any letter case too."""
    if fold:
        secret, haystack = secret.lower(), haystack.lower()
    found = [form for form in {secret, quote(secret, safe=""), quote_plus(secret)} if form in haystack]
    width = 12
    found += [secret[i : i + width] for i in range(len(secret) - width + 1) if secret[i : i + width] in haystack]
    return found


def test_the_error_paths_were_really_taken(world: World) -> None:
    """Without this, a test that finds no secret could simply have seen no error."""
    everything = "\n".join(out for _, out in world.outputs)
    for sign in (
        "Telegram answered HTTP 502",
        "Telegram did not answer in time",
        "Telegram flood control",
        "Telegram rejected the post",
        "the bot token was rejected",
        "VK answered HTTP 500",
        "the VK token is invalid or expired",
        "VK: too many requests per second",
        "Facebook failed while posting",
        "the Facebook Page token for page",
        "Facebook throttled page",
        "OK failed while posting",
        "the OK access token expired",
        "the request signature was rejected",
        "unexpected error; treating the outcome as unknown",
        "Traceback (most recent call last)",
        "environment variable OK_TOKEN_2 is not set",
        "FAIL",
        "needs attention",
        '"level": "error"',
        "HTTP Request: POST",  # httpx's debug log of each request URL (-vv)
    ):
        assert sign in everything, sign
    # The fakes quoted each token back in an error: it was there, and it was taken out (by the adapter, which knows
    # its own token as <token>, or as <secret> in OK's, or by the log's redaction of every configured secret). Which
    # one did depends on which channel's request took the fault: OK_TOKEN_0's own channel, or another.
    gone = r"(\[REDACTED\]|<token>|<secret>)"
    for quoted in (
        rf"invalid access_token {gone}",
        rf"Error validating access token {gone}",
        rf"Invalid parameter access_token={gone}",
        rf"PARAM_SESSION_EXPIRED : {gone}",
    ):
        assert re.search(quoted, everything), quoted
    assert "can't parse entities for bot" in everything.lower()
    for fake in (world.networks.telegram, world.networks.vk, world.networks.facebook, world.networks.ok):
        assert not any(fake._faults.values()), f"{type(fake).__name__} left faults unused: {fake._faults}"


def test_the_search_finds_a_secret_whole_encoded_or_in_part() -> None:
    secret = "vk1.a.some/token+value-not-real"
    assert leaks(secret, f"token {secret}!") != []
    assert leaks(secret, "url?t=vk1.a.some%2Ftoken%2Bvalue-not-real") != []
    assert leaks(secret, "cut short: vk1.a.some/to…") != []
    assert leaks(secret, "vk1.a.some/ (11 characters) and [REDACTED]") == []


def test_no_secret_appears_in_any_output_log_column_or_file(world: World) -> None:
    places = world.outputs + stored(world)
    found = [
        (name, where, leak)
        for name, secret in world.secrets.items()
        for where, out in places
        for leak in leaks(secret, out)
    ]
    assert found == []


def test_no_secret_appears_in_any_letter_case(world: World) -> None:
    places = world.outputs + stored(world)
    found = {
        (name, leak)
        for name, secret in world.secrets.items()
        for _, out in places
        for leak in leaks(secret, out, fold=True)
    }
    assert found == set()


def test_the_telegram_token_in_its_api_url_is_redacted(world: World) -> None:
    everything = "\n".join(out for _, out in world.outputs)
    urls = [line for line in everything.splitlines() if "HTTP Request: POST" in line and "/bot" in line]
    assert urls, "no Telegram request URL was logged at -vv"
    assert all("/bot[REDACTED]/" in line for line in urls), urls[:3]


# -- owner-only files -----------------------------------------------------------------------------------------------


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


UMASK_RUN = """
import os, sys
os.umask(0)
from scheduler.cli import main
main(sys.argv[1:])
"""


def smm_with_umask_0(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``smm`` with the most permissive umask, so that only smm's own modes protect what it creates."""
    return subprocess.run(
        [sys.executable, "-c", UMASK_RUN, "--config", str(config), *args],
        env=smm_env(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=config.parent,
    )


def test_the_database_its_journal_the_lock_and_the_media_store_are_owner_only(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    config = write_config(tmp_path / "config.toml", f"sqlite:///{state / 'smm.db'}")
    picture = make_png(tmp_path / "picture.png", 2, 2)
    added = smm_with_umask_0(config, "add", "owner only", "--media", str(picture), "--now")
    assert added.returncode == 0, added.stderr
    holder = subprocess.Popen(
        [sys.executable, "-c", UMASK_RUN, "--config", str(config), "run"],
        env=smm_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        # While the daemon runs, its -wal and -shm files and its lock file exist.
        wait_for(lambda: (tmp_path / "outbox").is_dir() and (state / "smm.db-wal").exists(), timeout=20)
        created = {p.name: mode(p) for p in state.iterdir()}
    finally:
        holder.terminate()
        holder.wait(30)
    assert created == {
        "smm.db": "0o600",
        "smm.db-wal": "0o600",
        "smm.db-shm": "0o600",
        "smm.db.lock": "0o600",
        "media": "0o700",
    }, created
    media = state / "media"
    for path in media.rglob("*"):
        assert mode(path) == ("0o700" if path.is_dir() else "0o600"), path
    assert len([p for p in media.rglob("*") if p.is_file()]) == 1
    assert os.stat(state / "smm.db").st_uid == os.getuid()


PG_PASSWORD = "pg-secret-password-not-real"


def password_never_printed(config: Path, *, unreachable: bool) -> None:
    printed = []
    for args in (
        ("-v", "add", "x"),
        ("-v", "queue"),
        ("-vv", "run", "--once"),
        ("-v", "doctor"),
        ("-v", "db", "upgrade"),
    ):
        result = smm(*args, config=config)
        printed += [result.stdout, result.stderr]
        if unreachable:
            assert result.returncode == 1, (args, result.stderr)
            assert "postgresql+psycopg://smm:***@127.0.0.1:1/smm" in result.stdout + result.stderr
        else:
            assert result.returncode == 0, (args, result.stderr)
    assert [leak for out in printed for leak in leaks(PG_PASSWORD, out, fold=True)] == []


def test_the_password_of_an_unreachable_database_is_never_printed(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://smm:{PG_PASSWORD}@127.0.0.1:1/smm"
    password_never_printed(write_config(tmp_path / "config.toml", url, extra_top=SETTINGS), unreachable=True)


def test_the_password_of_a_working_database_is_never_printed(tmp_path: Path, postgres_url: str) -> None:
    url = postgres_url.replace("://postgres@", f"://postgres:{PG_PASSWORD}@")  # the test server trusts local users
    assert PG_PASSWORD in url and "search_path" in url  # a fresh schema of its own, never the shared one
    password_never_printed(write_config(tmp_path / "config.toml", url, extra_top=SETTINGS), unreachable=False)
