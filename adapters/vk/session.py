"""The ``requests`` session vk_api runs on: VK's API root rewritten, and one total deadline for each request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

VK_API_ROOT = "https://api.vk.ru"


def build_session(api_url: str | None = None, timeout: float = 30.0) -> requests.Session:
    """A ``requests.Session`` for vk_api: ``https://api.vk.ru`` rewritten to ``api_url``, and each request ended
    by a total deadline of ``timeout`` seconds, whatever per-read timeouts it asks for.

    Other hosts (the upload servers VK names in ``upload_url``) are not rewritten.
    """
    import requests

    from adapters.requests_deadline import DeadlineAdapter, deadline

    root = api_url.rstrip("/") if api_url else None
    default_timeout = (min(timeout, 10.0), timeout)

    class VkSession(requests.Session):
        def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
            if root and isinstance(url, str) and (url == VK_API_ROOT or url.startswith(VK_API_ROOT + "/")):
                url = root + url[len(VK_API_ROOT) :]
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = default_timeout
            with deadline(timeout):
                return super().request(method, url, *args, **kwargs)

    session = VkSession()
    for prefix in ("http://", "https://"):
        session.mount(prefix, DeadlineAdapter())
    return session
