"""Rendering with UTM tagging on: 10,000 renders of one Telegram post per parse mode (issue 18, item 5).

Run: ``.venv/bin/python -m bench.render_utm``. Prints the best of three rounds of 10,000 renders per parse mode;
run it for the old and the new code one after the other to compare.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from scheduler.config import load_config
from scheduler.render import PostContent, render

N = 10_000
SHOP = "https://shop.example.org/sale?ref=a"
TEXTS = {
    "none": f"Spring sale: see {SHOP} and https://blog.example.org/post/1. " * 3,
    "HTML": (
        f'<b>Spring sale</b>: see <a href="{SHOP}&amp;b=1">the shop</a> and https://blog.example.org/post/1. '
        "<code>https://x.org</code> "
    )
    * 3,
    "MarkdownV2": (f"*Spring sale*: see [the shop]({SHOP}) and https://blog\\.example\\.org/post/1\\. `https://x.org` ")
    * 3,
}


def _channel_table(mode: str) -> str:
    return (
        f'[[channels]]\nname = "tg_{mode}"\nnetwork = "telegram"\nchat_id = "@acme_news"\ntoken_env = "TG"\n'
        f'parse_mode = "{mode}"\nutm = true\nhashtags = ["#acme", "#news"]\n'
    )


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    config_path = folder / "config.toml"
    head = f'[database]\nurl = "sqlite:///{folder}/smm.db"\n[utm]\nenabled = true\ncampaign = "spring"\n'
    config_path.write_text(head + "\n".join(_channel_table(mode) for mode in TEXTS))
    config = load_config(config_path, env={"TG": "1:x"})
    for mode, text in TEXTS.items():
        channel = config.channel(f"tg_{mode}")
        content = PostContent(text=text, link="https://shop.example.org/")
        rounds = []
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(N):
                render(content, channel, folder)
            rounds.append(time.perf_counter() - start)
        best = min(rounds)
        print(f"{mode:11s} {N:,} renders: best of 3 {best:.3f} s ({best / N * 1e6:.0f} us a render)")


if __name__ == "__main__":
    main()
