"""Space URL handling: bare hosts become https URLs; plain http only on loopback."""

import ipaddress
from urllib.parse import urlsplit


class SpaceURLError(ValueError):
    """The configured Space URL is malformed or would send the API token in the clear."""


def is_loopback(host: str) -> bool:
    """Tell whether a host name or address stays on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalise_space_url(value: str) -> str:
    """Return the Space's base URL (scheme://host[:port]) or raise SpaceURLError."""
    value = (value or "").strip()
    if not value:
        raise SpaceURLError("no Space URL is set")
    if "://" not in value:
        value = f"https://{value}"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise SpaceURLError(f"scheme {parts.scheme!r} is not http or https")
    host = parts.hostname
    if not host:
        raise SpaceURLError("the URL has no host")
    if parts.username or parts.password:
        raise SpaceURLError("credentials do not belong in the URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise SpaceURLError("give the Space's base URL only, without a path")
    if parts.scheme == "http" and not is_loopback(host):
        raise SpaceURLError(
            f"plain http:// to {host} would send the API token unencrypted; use https://"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise SpaceURLError("the port is not a number") from exc
    netloc = f"[{host}]" if ":" in host else host
    if port:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}"
