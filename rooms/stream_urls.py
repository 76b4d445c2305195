"""Stream URLs: the local check SignalWire's rule mirrors, and the masked form pages show.

A stream URL carries the destination's stream key (and sometimes credentials), so only
its scheme and host are ever shown without the reveal permission.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from rooms.signalwire import schema

URL_MASK = "••••••••"
# Any rtmp:// or rtmps:// URL inside a text (an error message SignalWire echoed, a log line).
_URL_IN_TEXT = re.compile(r"rtmps?://[^\s'\"<>]+", re.IGNORECASE)
URL_MESSAGE = "Enter an rtmp:// or rtmps:// URL with a host, e.g. rtmps://live.example.com/app/KEY."


def validate_stream_url(value: str) -> None:
    """Accept only rtmp:// and rtmps:// URLs with a host, as SignalWire does."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("Enter the stream's rtmp:// or rtmps:// URL.")
    if any(ord(char) <= 32 or ord(char) == 127 for char in value):
        raise ValidationError("The URL must not contain spaces or control characters.")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - a bad port raises ValueError
    except ValueError as exc:
        raise ValidationError(URL_MESSAGE) from exc
    if parts.scheme.lower() not in schema.STREAM_SCHEMES or not host:
        raise ValidationError(URL_MESSAGE)


def stream_host(value: str) -> str:
    """The host a stream URL points at, the one part of it that is not a secret."""
    try:
        return urlsplit(value).hostname or ""
    except ValueError:
        return ""


def mask_stream_url(value: str) -> str:
    """Show a stream URL's scheme and host only; path, key and credentials stay hidden.

    auditlog hands a missing value over as the text "None" (a create's old value): it is
    no URL and is kept as it is.
    """
    if not value or value == "None":
        return value
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return URL_MASK
    if not parts.scheme or not host:
        return URL_MASK
    where = f"{host}:{port}" if port else host
    return f"{parts.scheme.lower()}://{where}/{URL_MASK}"


def mask_stream_urls_in(text: str, *urls: str) -> str:
    """Mask these stream URLs and any other rtmp(s) URL found in a text, such as an error."""
    for url in urls:
        if url and url != "None":
            text = text.replace(url, mask_stream_url(url))
    return _URL_IN_TEXT.sub(lambda found: mask_stream_url(found.group(0)), text)
