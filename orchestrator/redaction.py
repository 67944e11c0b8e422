"""Secrets kept out of every output: URLs shown or stored without their passwords.

One function, ``redact``, for every form a storage or tracking URL carries a secret in:

- userinfo: ``postgresql://user:password@host/db`` (also ``postgresql+psycopg2://``, any
  SQLAlchemy dialect+driver, ``http://``, ``mysql://``...), the password being everything
  between the first ``:`` of the userinfo and its last ``@``;
- query parameters whose name says secret, in any case: a part of the name (split at ``_``,
  ``.``, ``-``) that ends in ``password``, ``passwd``, ``pwd``, ``secret`` or ``token``
  (``sslpassword``, ``access_token``, ``client-secret``), or is ``key`` with an optional
  ``ssl``/``api``/``access``/``private``/``secret``/``auth``/``client``/``signing``/``master``
  in front (``sslkey``, ``api_key``, ``AWS_SECRET_ACCESS_KEY``); also in libpq's
  ``key=value`` connection strings. Other names are left alone (``model.monkey=3``,
  ``data.tokenizer=char``).

``redact_text`` cleans free text (a driver's error message, a log line): every URL in it is
redacted, and every known secret value (``secrets_of`` the URLs in play, plus those of
``MLFLOW_TRACKING_URI`` and any ``remember``-ed URL) is replaced, raw or percent-decoded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, unquote_plus

MASK = "***"
# a query parameter (or libpq keyword): secret when a part of its name says so
_PARAM = re.compile(r"(?P<name>(?<![A-Za-z0-9_.-])[A-Za-z0-9_.-]+)=(?P<value>[^&;#\s'\"]*)")
_SECRET_PART = re.compile(r"(?:[a-z0-9]*(?:password|passwd|pwd|secret|token)s?|"
                          r"(?:ssl|api|access|private|secret|auth|client|signing|master)?keys?)")
# scheme://userinfo@ with a password in the userinfo (a URL inside free text)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:@/?#\s]*):"
                       r"(?P<password>[^\s]*?)@(?=[^@\s]*(?:[\s'\"]|$))")
_remembered: set[str] = set()


def redact(url: str) -> str:
    """``url`` without its secrets (userinfo password, secret query parameters), for tags,
    artifacts, terminal output and errors. Anything that is not a URL comes back unchanged
    unless it carries ``password=``-like parameters."""
    if not isinstance(url, str):
        return url
    text = url
    if "://" in text:
        scheme, rest = text.split("://", 1)
        cut = len(rest)
        for stop in "?#":
            position = rest.find(stop)
            if position >= 0:
                cut = min(cut, position)
        head, tail = rest[:cut], rest[cut:]
        if "@" in head:
            credentials, host = head.rsplit("@", 1)
            if ":" in credentials:
                user = credentials.split(":", 1)[0]
                head = f"{user}:{MASK}@{host}"
        text = f"{scheme}://{head}{tail}"
    return _PARAM.sub(_mask_param, text)


def _is_secret(match: re.Match) -> bool:
    """Whether a ``_PARAM`` match carries a secret: a value, under a name that says so."""
    return bool(match.group("value")) and any(
        _SECRET_PART.fullmatch(part) for part in re.split(r"[_.-]", match.group("name").lower()))


def _mask_param(match: re.Match) -> str:
    return f"{match.group('name')}={MASK}" if _is_secret(match) else match.group(0)


def secrets_of(url: str | None) -> set[str]:
    """The secret values ``url`` carries (as written and percent-decoded)."""
    if not url:
        return set()
    found: set[str] = set()
    if "://" in url:
        rest = url.split("://", 1)[1]
        cut = min([p for p in (rest.find("?"), rest.find("#")) if p >= 0] or [len(rest)])
        head = rest[:cut]
        if "@" in head:
            credentials = head.rsplit("@", 1)[0]
            if ":" in credentials:
                found.add(credentials.split(":", 1)[1])
    for match in _PARAM.finditer(url):
        if _is_secret(match):
            found.add(match.group("value"))
    decoded = set()
    for value in found:
        decoded |= {unquote(value), unquote_plus(value)}
    # a one- or two-character "secret" would blank out ordinary text; the URL forms above
    # are still redacted wherever the URL itself appears
    return {s for s in found | decoded if len(s) >= 3}


def remember(*urls: str | None) -> None:
    """Make the secrets of ``urls`` known to every later ``redact_text`` in this process."""
    for url in urls:
        _remembered.update(secrets_of(url))


def known_secrets() -> set[str]:
    """The remembered secrets and those of the tracking URI and storages in the environment."""
    found = set(_remembered)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_BACKEND_STORE_URI", "ORCHESTRATOR_STORAGE"):
        found |= secrets_of(os.environ.get(name))
    return found


def redact_text(text: str, secrets: Iterable[str] = (), known: bool = True) -> str:
    """Free text with every URL redacted and every secret value (``secrets``, plus the
    ``known_secrets`` unless ``known`` is false) replaced by ``***``; longest first, so no part
    of one survives. Values that are data (parameters) pass ``known=False``: a password that
    happens to be a word (``adam``) must not blank it out where it is a value."""
    text = str(text)
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{MASK}@", text)
    text = _PARAM.sub(_mask_param, text)
    for secret in sorted(set(secrets) | (known_secrets() if known else set()), key=len,
                         reverse=True):
        if secret and len(secret) >= 3:
            text = text.replace(secret, MASK)
    return text


class RedactingStream:
    """A text stream that writes ``redact_text`` of each line to the stream it wraps: a child
    process's stderr, where a traceback or a library's log line may echo a URL."""

    def __init__(self, stream) -> None:  # noqa: ANN001  (any text stream)
        self._stream, self._pending = stream, ""

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            complete, self._pending = self._pending.rsplit("\n", 1)
            self._stream.write(redact_text(complete) + "\n")
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._stream.write(redact_text(self._pending))
            self._pending = ""
        self._stream.flush()

    def __getattr__(self, name: str):  # noqa: ANN204  (fileno, isatty, encoding...)
        return getattr(self._stream, name)


def redact_stderr() -> None:
    """Route this process's stderr through ``RedactingStream`` (idempotent)."""
    import sys

    if not isinstance(sys.stderr, RedactingStream) and sys.stderr is not None:
        sys.stderr = RedactingStream(sys.stderr)


def redact_command_line() -> None:
    """Mask the secrets in this process's own command line, in place: what ``ps`` and
    ``/proc/<pid>/cmdline`` show of ``orchestrator tune --storage postgresql://u:pw@h/db``.
    ``sys.argv`` keeps the real values. A child process shows its parent's command line from
    its fork to its exec, so this runs before the command starts any child. Linux only (the
    argument area is found in ``/proc/self/stat`` and rewritten through ``/proc/self/mem``);
    elsewhere, or where the kernel refuses, nothing changes."""
    try:
        stat = Path("/proc/self/stat").read_bytes()
        fields = stat[stat.rindex(b")") + 2:].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end: fields 48 and 49
        with open("/proc/self/mem", "r+b", buffering=0) as memory:
            memory.seek(start)
            area = memory.read(end - start)
            typed = area.rstrip(b"\0")
            shown = [redact_text(a.decode(errors="surrogateescape")) for a in typed.split(b"\0")]
            masked = "\0".join(shown).encode(errors="surrogateescape")
            if masked == typed:
                return
            # never longer than the area, and NUL-terminated: a shorter secret ("ab" -> "***")
            # costs the tail of the line, never a byte of a secret
            masked = masked[:len(area) - 1].ljust(len(area), b"\0")
            memory.seek(start)
            memory.write(masked)
    except (OSError, ValueError, IndexError):
        return
