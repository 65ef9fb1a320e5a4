"""Issue 17, "VK rights": dev.vk.com grants a user token's ``wall`` right only on request to VK's support. A token
without it is refused by VK (error 15, "Access denied: no access to call this method", which the fake answers as VK
does); ``smm doctor`` finds it before any post is refused, and a refused post flags the channel, both saying where
the right comes from.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.vk import USER_TOKEN
from tests.integration.test_doctor import config_with, doctor
from tests.integration.test_networks import add, run_once, start

pytestmark = pytest.mark.slow

WITHOUT_WALL = {"photos", "offline", "groups"}
HOW_TO_GET_IT = (
    "VK grants a user token the wall right only on request to its support (devsupport@corp.vk.com, see "
    "https://dev.vk.com/method/wall.post): ask for it for your app, then issue a new token"
)


def test_doctor_says_where_the_wall_right_comes_from(tmp_path: Path, sqlite_url: str) -> None:
    net = start("vk")
    try:
        net.fake.rights[USER_TOKEN] = WITHOUT_WALL
        config = config_with(tmp_path, sqlite_url, net)
        result = doctor(config, net.env, list(net.env.values()))
    finally:
        net.fake.stop()
    assert result.code == 1, result.printed
    assert result.line("vk").split(None, 2)[2] == (
        f"vk: the token of user 1001 has no wall right, so VK refuses wall.post: {HOW_TO_GET_IT}"
    )
    assert net.fake.published == []


def test_a_wall_post_refused_for_lack_of_the_right_flags_the_channel_with_how_to_get_it(
    tmp_path: Path, sqlite_url: str
) -> None:
    net = start("vk")
    try:
        config = config_with(tmp_path, sqlite_url, net)
        net.fake.rights[USER_TOKEN] = WITHOUT_WALL
        add(net, config, "Refused: no wall right", "--channel", "vk", "--now")
        log = run_once(config, net.env, net.outputs)
        queue = net.cli(config, "queue").out
    finally:
        net.fake.stop()
    refused = "VK refused wall.post (error 15: Access denied: no access to call this method)"
    [failed] = [line for line in log.splitlines() if "failed:" in line]
    assert refused in failed and HOW_TO_GET_IT in failed
    [flagged] = [line for line in queue.splitlines() if "needs attention" in line]
    assert flagged.startswith(f"! channel 'vk' needs attention: {refused}") and HOW_TO_GET_IT in flagged
    assert net.fake.published == []
    net.assert_no_secret_printed()
