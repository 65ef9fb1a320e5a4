"""Odnoklassniki (OK.ru) group posts over the OK REST API, with httpx.

Every call is a signed form POST to ``/fb.do`` (https://apiok.ru/dev/methods/). Photos are uploaded through
``photosV2.getUploadUrl`` and a multipart POST of ``pic1..picN``; the topic itself is ``mediatopic.post`` with
``type=GROUP_THEME`` and a JSON ``attachment`` of media blocks.

The access token travels in the form body, never in a URL, so request logs cannot leak it.
"""

from adapters.ok.adapter import API_URL, OkAdapter
from adapters.ok.api import sign

__all__ = ["API_URL", "OkAdapter", "sign"]
