"""Making text that quotes user input safe to show on one line (pure)."""

from __future__ import annotations

import re


def escaped(match: re.Match[str]) -> str:
    """The character ``match`` found, as a Python-style escape (\\xNN, \\uNNNN, \\UNNNNNNNN)."""
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:
        # surrogateescape: the byte 0x80-0xff of a file name that is not UTF-8.
        code -= 0xDC00
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


# Control characters (Unicode's Cc, Go's unicode.IsControl) and surrogates. Messages quote user input:
# a newline in an annotation would start a line of its own in a CI log, where "::error file=x::..." is
# a GitHub workflow command, and an escape sequence would drive the terminal; the apiserver drops a
# webhook's warning that holds any control character, a tab included. A surrogate (a file name that
# is not UTF-8) cannot be written to a strict stdout at all.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(value: str) -> str:
    """``value`` on one line, with nothing a terminal, a CI log or the apiserver acts on: each such
    character as \\xNN."""
    return _UNPRINTABLE.sub(escaped, value)
