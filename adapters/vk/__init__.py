"""VK community walls through vk_api (synchronous, imported lazily, run in a thread).

A post is ``wall.post(owner_id=-group, from_group=1, message, attachments, guid)`` after each photo went through the
wall upload flow (photos.getWallUploadServer, a multipart POST to the returned upload_url, photos.saveWallPhoto).
``guid`` is the post's stable key, so publishing it again inside VK's window returns the same post; ``publish_date``
hands the post to VK as a postponed post. vk_api hard-codes ``https://api.vk.ru`` and sets no timeout: our
``requests`` session rewrites that root (``api_url``) and gives every request, uploads included, one total
deadline (the channel's ``timeout``, see :mod:`adapters.requests_deadline`).
"""

from adapters.vk.adapter import DAILY_POSTS, RPS_DELAY, VkAdapter
from adapters.vk.errors import ERROR_6_PAUSE, SCOPES, CaptchaRequired
from adapters.vk.session import VK_API_ROOT, build_session

__all__ = [
    "DAILY_POSTS",
    "ERROR_6_PAUSE",
    "RPS_DELAY",
    "SCOPES",
    "VK_API_ROOT",
    "CaptchaRequired",
    "VkAdapter",
    "build_session",
]
