"""Stream URLs: the local check SignalWire's rule mirrors, and the masked form pages show.

A stream URL carries the destination's stream key (and sometimes credentials), so only
its scheme and host are ever shown without the reveal permission.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ValidationError

from rooms.secrets import MIN_FRAGMENT, mask_secrets_in
from rooms.signalwire import schema

URL_MASK = "••••••••"
# Any rtmp:// or rtmps:// URL inside a text (an error message SignalWire echoed, a log line).
_URL_IN_TEXT = re.compile(r"rtmps?://[^\s'\"<>]+", re.IGNORECASE)
URL_MESSAGE = "Enter an rtmp:// or rtmps:// URL with a host, e.g. rtmps://live.example.com/app/KEY."
HOST_MESSAGE = (
    "The URL's host is not a valid host name: each part between dots must be 1 to 63 "
    "letters, digits or hyphens, not beginning or ending with a hyphen (such as "
    "live.example.com), or an IP address."
)
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z", re.IGNORECASE)
HOST_MAX = 253


def is_host_name(host: str) -> bool:
    """Tell whether a URL's host is an IP address or a DNS host name (one final dot allowed)."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    try:
        # A name in another script is checked in its ASCII (xn--) form.
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return 0 < len(name) <= HOST_MAX and all(
        _HOST_LABEL.match(label) for label in name.split(".")
    )


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
    if not is_host_name(host):
        raise ValidationError(HOST_MESSAGE)


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


def stream_url_secrets(url: str) -> set[str]:
    """The secret parts of a stream URL as an error may echo them without the URL itself.

    Its key and path ("/app/KEY", "app/KEY", "KEY"), the path and query, the credentials,
    and the URL without its scheme; mask_secrets_in adds their encoded forms.
    """
    if not url or url == "None":
        return set()
    try:
        parts = urlsplit(url)
    except ValueError:
        return {url}
    after_host = parts.path + (f"?{parts.query}" if parts.query else "")
    found = {url, parts.netloc + after_host, after_host, parts.path, parts.path.lstrip("/"),
             parts.query}
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        found.update({userinfo, *userinfo.split(":", 1)})
    for path in (parts.path, unquote(parts.path)):
        segments = [s for s in path.split("/") if s]
        found.update(segments)
        # The tail after each segment: "/app/KEY" may come back as "KEY" or "app/KEY".
        found.update("/".join(segments[i:]) for i in range(len(segments)))
    found.update(value for _, _, value in (p.partition("=") for p in parts.query.split("&")))
    return {part for part in found if len(part.strip("/")) >= MIN_FRAGMENT}


def mask_stream_urls_in(text: str, *urls: str, secrets: tuple[str, ...] = ()) -> str:
    """Mask these stream URLs, their keys in any form, other secrets and any rtmp(s) URL.

    A URL the text holds whole keeps its scheme and host readable; its key, path and
    credentials are masked wherever they appear, raw, percent-encoded or decoded.
    """
    for url in urls:
        if url and url != "None":
            text = text.replace(url, mask_stream_url(url))
    text = _URL_IN_TEXT.sub(lambda found: mask_stream_url(found.group(0)), text)
    known = {part for url in urls for part in stream_url_secrets(url)}
    return mask_secrets_in(text, [*known, *secrets])
