"""Facebook Pages over the Graph API, with httpx.

Text and link posts go to ``POST /{page}/feed``; one photo to ``POST /{page}/photos`` (multipart ``source``);
several photos are uploaded unpublished and attached to a ``/feed`` post with ``attached_media[i]``. A post with
``publish_at`` is handed to Facebook's own scheduler (``published=false`` + ``scheduled_publish_time``).
Docs: https://developers.facebook.com/docs/pages-api/posts

The Page token travels in the ``Authorization: Bearer`` header only, never in a URL, so request logs cannot leak it.
"""

from adapters.facebook.adapter import API_URL, FacebookAdapter
from adapters.facebook.graph import usage_backoff

__all__ = ["API_URL", "FacebookAdapter", "usage_backoff"]
