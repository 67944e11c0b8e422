"""Secrets kept out of every output: URLs shown or stored without their passwords."""

from __future__ import annotations


def redact(url: str) -> str:
    """A storage URL without its password, for tags and printing."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':')[0]}:***@{host}"
    return url
