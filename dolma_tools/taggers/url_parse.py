"""URLs as Dolma 1.2.1's URL taggers see them: urllib3 1.26's reading of host, port and path.

Dolma keys its block/allow lists on what `urllib3.util.parse_url` (1.26, the version Dolma pins)
makes of a URL: http(s) and scheme-less hosts lowercased and IDNA-encoded label by label, paths
with dot segments removed and characters outside RFC 3986 percent-encoded. urllib3 2 reads some
URLs differently (it rejects a space or control character in a host, which 1.26 keeps, and calls
more hosts IPv4), so this module derives 1.26's results from RFC 3986 itself instead of calling
whichever urllib3 happens to be installed. Only what the taggers use is computed (no query,
fragment or userinfo).
"""

from __future__ import annotations

import re
from typing import NamedTuple


class UrlParseError(ValueError):
    """A URL urllib3 1.26 refuses (bad port, IPv6 literal, IDNA label); Dolma's tagger raises on it."""


class ParsedUrl(NamedTuple):
    scheme: str | None
    host: str | None
    port: int | None
    path: str | None


# RFC 3986: a scheme (or a leading "/") says the text is a URL rather than "host/path"
_SCHEME_OR_SLASH = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+-]*:|/)")
_URI = re.compile(r"^(?:([a-zA-Z][a-zA-Z0-9+.-]*):)?(?://([^\\/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$",
                  re.DOTALL)

# RFC 3986 section 3.2.2: IPv4address, IPv6address (its nine forms), IP-literal with an RFC 6874 zone
_H16 = "[0-9A-Fa-f]{1,4}"
_IPV4 = r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}"
_LS32 = f"(?:{_H16}:{_H16}|{_IPV4})"
_IPV6 = "(?:" + "|".join([
    f"(?:{_H16}:){{6}}{_LS32}",
    f"::(?:{_H16}:){{5}}{_LS32}",
    f"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
    f"(?:(?:{_H16}:)?{_H16})?::(?:{_H16}:){{3}}{_LS32}",
    f"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
    f"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
    f"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
    f"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
    f"(?:(?:{_H16}:){{0,6}}{_H16})?::",
]) + ")"
_ZONE_ID = r"(?:%25|%)(?:[A-Za-z0-9._~-]|%[0-9A-Fa-f]{2})+"
_IP_LITERAL = rf"\[{_IPV6}(?:{_ZONE_ID})?\]"
_REG_NAME = r"(?:[^\[\]%:/?#]|%[0-9A-Fa-f]{2})*"
# leading zeros of a port are dropped; more than five digits is no port at all
_HOST_PORT = re.compile(rf"^({_REG_NAME}|{_IPV4}|{_IP_LITERAL})(?::0*?(|0|[1-9][0-9]{{0,4}}))?$", re.DOTALL)
_IPV4_HOST = re.compile(rf"^{_IPV4}$")
_IP_LITERAL_HOST = re.compile(rf"^{_IP_LITERAL}$")
_ZONE_AT_END = re.compile(rf"({_ZONE_ID})\]$")

_ESCAPE = re.compile(r"%[a-fA-F0-9]{2}")
# what may stay unescaped: unreserved and sub-delims, plus ":@/" in a path
_NOT_PATH_SAFE = re.compile(r"[^A-Za-z0-9._~!$&'()*+,;=:@/-]")
_NOT_UNRESERVED = re.compile(r"[^A-Za-z0-9._~-]")
_NORMALISED_SCHEMES = ("http", "https", None)


def parse_url(url: str) -> ParsedUrl:
    """Scheme, host, port and path of `url`, as urllib3 1.26's `parse_url` gives them."""
    if not url:
        return ParsedUrl(None, None, None, None)
    if not _SCHEME_OR_SLASH.match(url):
        url = "//" + url  # "example.com/x" is read as an authority and a path
    match = _URI.match(url)
    assert match is not None  # every part of the pattern is optional
    scheme, authority, path = match.group(1, 2, 3)
    scheme = scheme.lower() if scheme else None
    host, port = _host_and_port(authority) if authority else (None, None)
    if scheme in _NORMALISED_SCHEMES:
        host = _normalise_host(host)
        if path:
            path = _percent_encode(_remove_dot_segments(path), _NOT_PATH_SAFE)
    if path and not path.startswith("/"):
        path = "/" + path  # urllib3's Url makes every non-empty path absolute ("mailto:x" -> "/x")
    return ParsedUrl(scheme, host, port, path or None)


def _host_and_port(authority: str) -> tuple[str, int | None]:
    host_port = authority.rpartition("@")[2]
    match = _HOST_PORT.match(host_port)
    if match is None:
        raise UrlParseError(f"not a host[:port]: {host_port!r}")
    host, port = match.groups()
    if not port:  # "host:" has no port
        return host, None
    if int(port) > 65535:
        raise UrlParseError(f"port out of range: {port}")
    return host, int(port)


def _normalise_host(host: str | None) -> str | None:
    if not host:
        return host
    if _IP_LITERAL_HOST.match(host):
        zone = _ZONE_AT_END.search(host)
        if zone is None:
            return host.lower()
        start, end = zone.span(1)
        zone_id = host[start:end]
        # the zone separator may be written "%25" (RFC 6874) or "%"; either way it becomes "%"
        zone_id = zone_id[3:] if zone_id.startswith("%25") and zone_id != "%25" else zone_id[1:]
        return host[:start].lower() + "%" + _percent_encode(zone_id, _NOT_UNRESERVED) + host[end:]
    if _IPV4_HOST.match(host):
        return host
    return ".".join(_idna_label(label) for label in host.split("."))


def _idna_label(label: str) -> str:
    if label.isascii():
        return label.lower()
    import idna  # only for non-ASCII hosts; the same library urllib3 1.26 uses

    try:
        return idna.encode(label.lower(), strict=True, std3_rules=True).decode("ascii")
    except idna.IDNAError as exc:
        raise UrlParseError(f"not a valid IDNA label: {label!r} ({exc})") from None


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, in urllib3 1.26's simplified form ("/a/../b" -> "/b", "/a/." -> "/a/")."""
    output: list[str] = []
    for segment in path.split("/"):
        if segment == ".":
            continue
        if segment == "..":
            if output:
                output.pop()
            continue
        output.append(segment)
    if path.startswith("/") and (not output or output[0]):
        output.insert(0, "")
    if path.endswith(("/.", "/..")):
        output.append("")
    return "/".join(output)


def _percent_encode(component: str, unsafe: re.Pattern[str]) -> str:
    """Escape what `unsafe` matches as UTF-8 %XX. Existing escapes are upper-cased and kept, but only
    when every "%" starts one; otherwise each "%" is escaped too (it was meant literally)."""
    component, escapes = _ESCAPE.subn(lambda m: m.group(0).upper(), component)
    keep_percent = escapes == component.count("%")

    def escape(match: re.Match[str]) -> str:
        char = match.group(0)
        if char == "%" and keep_percent:
            return char
        return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))

    return unsafe.sub(escape, component)
