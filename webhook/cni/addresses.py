"""IP addresses and CIDRs, parsed the way Go's net.ParseIP / net.ParseCIDR read them.

The plugins that consume these configs are Go programs; Python's ipaddress is more lenient in
places (scope ids, netmask prefixes, a missing prefix), so the differences are closed here.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# A dotted IPv4 address, alone or closing an IPv6 one, up to a CIDR's "/".
_DOTTED = re.compile(r"(?<![^:])([0-9]+)\.([0-9]+)\.([0-9]+)\.([0-9]+)(?=/|$)")


def _unpad(match: re.Match[str]) -> str:
    # A part of more than three digits after its zeros is above 255 and stays, for the parser to refuse.
    return ".".join(part.lstrip("0") or "0" if len(part.lstrip("0")) <= 3 else part for part in match.groups())


def unpadded(text: str) -> str:
    """``text`` with leading zeros dropped from the parts of its dotted IPv4 address, as k8s.io/utils'
    ParseIPSloppy and ParseCIDRSloppy read them: in decimal ("10.0.0.010" is 10.0.0.10). Go's own
    parser, and parse_ip here, refuse such parts (since Go 1.17); other tools read them as octal."""
    return _DOTTED.sub(_unpad, text, count=1)


def parse_ip(value: Any) -> IPAddress | None:
    """The address Go's net.ParseIP returns for ``value``, or None when Go would refuse it.

    An IPv4-mapped IPv6 address comes back as IPv4, as Go's To4() canonicalisation does."""
    if not isinstance(value, str) or "%" in value or "/" in value:
        return None
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def prefix_length(text: str) -> int | None:
    """The prefix length after a CIDR's "/", as net.ParseCIDR reads it (decimal digits, leading zeros
    allowed), or None when it is not one. Its size is bounded, so that a prefix of thousands of digits
    costs nothing and never reaches int()'s digit limit."""
    if not text.isascii() or not text.isdigit():
        return None
    digits = text.lstrip("0")
    # More than three significant digits exceed every address length (128).
    return int(digits or "0") if len(digits) <= 3 else None


def parse_cidr(value: Any) -> tuple[IPAddress, IPNetwork] | None:
    """(address, network) as Go's net.ParseCIDR returns them; the address keeps its host bits."""
    if not isinstance(value, str) or value.count("/") != 1:
        return None
    addr_text, prefix_text = value.split("/")
    prefix = prefix_length(prefix_text)
    if prefix is None:
        return None
    addr = parse_ip(addr_text)
    if addr is None or (":" in addr_text and addr.version == 4):
        # Go keeps a mapped address 16 bytes long with a 128-bit mask, which host-local's subnets,
        # whereabouts' ranges and the routes refuse or misread; static reads it (parse_static_cidr).
        return None
    if prefix > addr.max_prefixlen:
        return None
    return addr, ipaddress.ip_network(f"{addr}/{prefix}", strict=False)


def mapped_prefix(value: Any) -> int | None:
    """The prefix length written after an IPv4-mapped IPv6 address (::ffff:10.1.0.5/120), or None when
    ``value`` is no such CIDR."""
    if not isinstance(value, str) or value.count("/") != 1:
        return None
    addr_text, prefix_text = value.split("/")
    addr, prefix = parse_ip(addr_text), prefix_length(prefix_text)
    return prefix if addr is not None and ":" in addr_text and addr.version == 4 and prefix is not None \
        and prefix <= 128 else None


def parse_static_cidr(value: Any) -> tuple[IPAddress, IPNetwork] | None:
    """(address, network) as the static IPAM (plugins v1.10.0) reads a CIDR, wherever it takes one from:
    net.ParseCIDR, then canonicalizeIP makes an IPv4-mapped address 4 bytes long under its 128-bit mask,
    of which IPNet.String (and the interface's address) keeps the last 32 bits: ::ffff:10.1.0.5/120 is
    10.1.0.5/24, /128 is /32, and /96 or less is /0. Any other CIDR as parse_cidr."""
    prefix = mapped_prefix(value)
    if prefix is None:
        return parse_cidr(value)
    addr = parse_ip(value.split("/")[0])
    assert addr is not None
    return addr, ipaddress.ip_network(f"{addr}/{max(prefix - 96, 0)}", strict=False)



def parse_network_cidr(value: Any) -> tuple[IPAddress, IPNetwork] | None:
    """(address, network) as a program reads a CIDR that keeps net.ParseCIDR's network and reads it back
    through IPNet.String and Contains (whereabouts' ranges and excludes). An IPv4-mapped CIDR of /96 or
    longer keeps its ::ffff: under the mask and so reads as IPv4, as parse_static_cidr gives it
    (::ffff:10.1.0.0/120 is 10.1.0.0/24); a shorter mask clears the ::ffff:, leaving an IPv6 network
    without the address (::ffff:10.1.0.0/80 is ::/80). Any other CIDR as parse_cidr."""
    prefix = mapped_prefix(value)
    if prefix is None or prefix >= 96:
        return parse_static_cidr(value)
    addr = ipaddress.IPv6Address(value.split("/")[0])
    return addr, ipaddress.IPv6Network((addr, prefix), strict=False)

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def parse_mac(value: Any) -> bytes | None:
    """The hardware address Go's net.ParseMAC reads in ``value``, or None when it refuses it: 6, 8 or 20
    bytes, as hex pairs joined by ":" or "-", groups of four hex digits joined by ".", or (since Go 1.26,
    which builds the plugins v1.10.0) hex digits alone."""
    if not isinstance(value, str) or not value.isascii() or len(value) < 12:
        return None
    if value[2] in ":-":
        groups, width = value.split(value[2]), 2
    elif value[4] == ".":
        groups, width = value.split("."), 4
    else:
        groups, width = [value[i:i + 2] for i in range(0, len(value), 2)], 2
    digits = "".join(groups)
    if any(len(group) != width for group in groups) or not _HEX_DIGITS.issuperset(digits):
        return None
    return bytes.fromhex(digits) if len(digits) // 2 in (6, 8, 20) else None


def family(addr: IPAddress | IPNetwork) -> str:
    return f"IPv{addr.version}"


def within(addr: IPAddress, net: IPNetwork) -> bool:
    # ipaddress does not compare families in `in`: ::1 would be "in" 0.0.0.0/0.
    return addr.version == net.version and addr in net


def between(addr: IPAddress, first: IPAddress, last: IPAddress) -> bool:
    return addr.version == first.version == last.version and int(first) <= int(addr) <= int(last)
