"""Where a browser may be sent after a form: paths on this site only."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

# Browsers strip tab, CR and LF anywhere in a URL and treat a backslash as a slash, so "/\t/evil"
# and "/\\evil" both leave the site; anything below a space or DEL is refused outright.
_CONTROL = {chr(code) for code in range(0x20)} | {"\x7f"}


def safe_next(target: str | None, default: str) -> str:
    """`target` if it is a path on this site, else `default`: an open redirect would let a link
    send a doctor elsewhere after logging in or labeling, and a CR/LF would break the header."""
    if not target or len(target) > 2000:
        return default
    # judge the URL as a browser will read it, after one round of percent-decoding as well
    for form in (target, unquote(target)):
        if any(char in _CONTROL for char in form) or "\\" in form or form != form.strip():
            return default
        if not form.startswith("/") or form.startswith("//"):
            return default
        parts = urlsplit(form)
        if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
            return default
    if any(char.isspace() or not char.isprintable() for char in target):
        return default
    return target
