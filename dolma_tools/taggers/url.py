"""URL taggers: `metadata.url` against block or allow lists read from local (or s3://) files.

Dolma 1.2.1's URL taggers download their lists at run time; ours take the same files through
`list=PATH` (a file, a glob or a directory; several files are read as one list) and never download.
Each Dolma name keeps Dolma's list format, URL clean-up and output: one whole-document span of type
`url`, score 1.0, when the URL is listed, and no key otherwise. `url_blocklist:list=PATH,format=F`
applies any list in one of those formats.

Formats (how Dolma parses each line, lowercased and stripped; `#`, `;` and `!` lines are comments):
- `domains` (alias `hosts`): plain domains, hosts-file lines (`0.0.0.0 ads.example.com`: both the
  address and the name are listed) and `||domain^` rules. A document matches when its host, with
  any leading run of "w" and "." removed, is listed bare or with "www." (no subdomain matching).
- `urls`: exact URLs written as host[:port]/path (no scheme), compared with the document URL's
  host, port and path (query and fragment dropped, trailing "/" removed).
- `wikidata`: Dolma's allowlist files, each line a JSON array of rows with a `url`; a document
  matches when its host, or the last two labels of a host with more than two dots, is listed.
- `abp`: Adblock Plus rules, through the `adblock` package (Brave's engine, as Dolma's Rust code).
"""

from __future__ import annotations

import json
import logging
import re
import socket
from typing import Any, Callable, ClassVar, Iterable, Iterator, Sequence

from dolma_tools.errors import UserError
from dolma_tools.taggers.base import Document, Tagger, TagResult, register
from dolma_tools.taggers.url_parse import UrlParseError, parse_url

LOGGER = logging.getLogger(__name__)
SPAN_TYPE = "url"  # Dolma names the span after the metadata key it reads


# ---- a document URL as Dolma's taggers reduce it ------------------------------------------------

_PLAIN_HOST = re.compile(r"[a-z0-9._-]+")


def link_key(url: str) -> str | None:
    """host[:port]/path, lowercased, trailing "/" removed; None for a blank URL.

    A URL without a host gives "none..." (Dolma formats the missing host as "None")."""
    if _PLAIN_HOST.fullmatch(url):  # a bare lowercase host parses to itself (allowlists check many)
        return url
    if not url.strip():
        return None
    parsed = parse_url(url)
    port = f":{parsed.port}" if parsed.port else ""  # port 0 is dropped too
    return f"{parsed.host}{port}{parsed.path or ''}".rstrip("/").lower()


def _host_of(key: str) -> str | None:
    if _PLAIN_HOST.fullmatch(key):  # parses to itself: skip the parser for the common case
        return key
    return parse_url(key).host


def domain_keys(url: str) -> tuple[str, ...]:
    """The two names a domain list is searched for: the host without leading "w"/"." characters
    (Dolma's `lstrip("www.")`, so "www.wwwhite.net" -> "hite.net"), and that with "www."."""
    key = link_key(url)
    if key is None:
        return ()
    # Dolma parses the key again, so "localhost:8080/x" reads as scheme "localhost" and has no host
    host = _host_of(key)
    if not host:
        return ()
    bare = host.lstrip("w.")
    return bare, "www." + bare


def allowlist_keys(url: str) -> list[str]:
    """Each domain key followed by its last two labels when it has more than two dots."""
    keys = []
    for key in domain_keys(url):
        keys.append(key)
        keys.append(".".join(key.rsplit(".", 2)[1:]) if key.count(".") > 2 else key)
    return keys


# ---- list lines ---------------------------------------------------------------------------------

class UnparsedLine(ValueError):
    """A list line none of Dolma's patterns accepts; Dolma logs and skips it."""


_NAME_CHARS = "a-z0-9_-"
# a run of name characters and single dots (Dolma's `([a-z0-9\-_]+\.?){2,}`, written so that a
# failed match cannot backtrack exponentially); at least two name characters, checked in code
_NAME = rf"[{_NAME_CHARS}]+(?:\.[{_NAME_CHARS}]+)*\.?"
_HOSTS_LINE = re.compile(rf"([0-9a-f.:]+)\s+({_NAME})")
_ABP_DOMAIN_LINE = re.compile(rf"\|+({_NAME})\^")
_STARTS_WITH_NAME = re.compile(rf"[{_NAME_CHARS}](?:[{_NAME_CHARS}]|\.[{_NAME_CHARS}])")


def _long_enough(name: str) -> bool:
    return len(name) - name.count(".") >= 2


def _is_ip(text: str) -> bool:
    # socket.inet_pton, not ipaddress: the same acceptance rules as Dolma on the same platform
    for family in (socket.AF_INET6, socket.AF_INET):
        try:
            socket.inet_pton(family, text)
            return True
        except OSError:
            pass
    return False


def is_comment(line: str) -> bool:
    return not line or line[0] in "#;!"


def domain_line_entries(line: str, clean: Callable[[str], Iterable[str]]) -> list[str]:
    """The entries one stripped, lowercased domain-list line adds, `clean` being the tagger's key
    function (Dolma cleans names with the same function it applies to documents)."""
    if is_comment(line):
        return []
    hosts = _HOSTS_LINE.match(line)
    if hosts and _long_enough(hosts.group(2)):
        address, name = hosts.groups()
        if not _is_ip(address):
            raise UnparsedLine(f"invalid IP address {address!r}")
        # Dolma means to skip 127.0.0.1, 0.0.0.0 and ::1 but its pattern never matches: they are listed
        entries = [address]
        if name not in ("localhost", "localdomain"):
            entries.extend(clean(name))
        return entries
    if _STARTS_WITH_NAME.match(line):
        return list(clean(line))  # the whole line, so "evil.com # note" keeps its " # note"
    abp = _ABP_DOMAIN_LINE.match(line)
    if abp and _long_enough(abp.group(1)):
        return [abp.group(1)]  # taken as written: no "www." handling
    raise UnparsedLine(line)


def link_line_entry(line: str) -> str | None:
    # Dolma keeps blank lines here (as ""), and only "#" starts a comment
    return None if line.startswith("#") else line


def allowlist_row_entries(row: Any, entries: set[str]) -> None:
    """Add one allowlist row's entries: each key of its URL, read as a domain-list line.

    As in Dolma, a row whose URL is not a string, or whose key a line pattern rejects, stops there
    (entries added before stay); every row counts, whatever its description."""
    try:
        url = row["url"]
        if url is None:
            return
        for key in allowlist_keys(url):
            entries.update(domain_line_entries(key.strip().lower(), allowlist_keys))
    except (TypeError, KeyError, AttributeError, UnparsedLine, UrlParseError):
        pass


# ---- reading list files -------------------------------------------------------------------------

def list_files(tagger: str, patterns: Any) -> list[str]:
    """The files `list=` names: one path, glob or directory, or a sequence of them (config files)."""
    from dolma_tools.io.paths import expand_one

    if isinstance(patterns, str):
        patterns = [patterns]
    if not patterns:
        raise UserError(f"tagger {tagger!r} needs the option list: --taggers {tagger}:list=PATH")
    files: list[str] = []
    for pattern in patterns:
        found = expand_one(str(pattern))
        if not found:
            raise UserError(f"tagger {tagger!r}: no list file matches {str(pattern)!r} "
                            f"(list=PATH: a local or s3:// copy of the list; nothing is downloaded)")
        files.extend(p for p in found if p not in files)
    return files


def read_lines(path: str) -> Iterator[str]:
    from dolma_tools.io.files import open_text

    try:
        with open_text(path) as text:  # .gz/.zst by extension, as Dolma's smart_open
            yield from text
    except UnicodeDecodeError as exc:
        raise UserError(f"list {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except FileNotFoundError:
        raise UserError(f"list file not found: {path}") from None


def _domain_entries(files: Sequence[str], clean: Callable[[str], Iterable[str]]) -> set[str]:
    entries: set[str] = set()
    skipped = 0
    for path in files:
        for line in read_lines(path):
            try:
                entries.update(domain_line_entries(line.strip().lower(), clean))
            except (UnparsedLine, UrlParseError):
                # Dolma logs an unparsed line and stops on a line its URL parser rejects; we skip both
                skipped += 1
    if skipped:
        LOGGER.info("skipped %d list lines no domain pattern accepts", skipped)
    return entries


def _link_entries(files: Sequence[str]) -> set[str]:
    entries = {link_line_entry(line.strip().lower()) for path in files for line in read_lines(path)}
    entries.discard(None)
    return entries  # type: ignore[return-value]


def _allowlist_rows(path: str) -> Iterator[Any]:
    """Rows of a Wikidata allowlist: a JSON array per line (Dolma's files); a file holding one
    pretty-printed array is read whole (Dolma would fail on it)."""
    lines = list(read_lines(path))
    arrays = []
    try:
        arrays = [json.loads(line) for line in lines if line.strip()]
    except json.JSONDecodeError:
        try:
            arrays = [json.loads("".join(lines))]
        except json.JSONDecodeError as exc:
            raise UserError(f"allowlist {path} is not JSON (a JSON array of rows per line): {exc}") from None
    for array in arrays:
        if not isinstance(array, list):
            raise UserError(f"allowlist {path}: expected JSON arrays of rows with a `url`, "
                            f"found a {type(array).__name__}")
        yield from array


def _allowlist_entries(files: Sequence[str]) -> set[str]:
    entries: set[str] = set()
    for path in files:
        for row in _allowlist_rows(path):
            allowlist_row_entries(row, entries)
    return entries


# ---- matchers: load a list once, then answer "is this URL listed?" ------------------------------

class SetMatcher:
    """Lists Dolma holds as a set of strings, searched with keys derived from the URL."""

    def __init__(self, entries: set[str], keys: Callable[[str], Iterable[str]], recheck: bool = False) -> None:
        self.entries = frozenset(entries)
        self.keys = keys
        self.recheck = recheck  # allowlists search the keys of each key (Dolma cleans twice)

    def matches(self, url: str) -> bool:
        for key in self.keys(url):
            found = any(k in self.entries for k in self.keys(key)) if self.recheck else key in self.entries
            if found:
                return True
        return False


class AbpMatcher:
    """Adblock Plus rules in Brave's engine; the URL is checked as a network request made from
    nowhere (no source URL, no request type), as Dolma does."""

    def __init__(self, files: Sequence[str]) -> None:
        adblock = import_adblock()
        # Dolma drops lines starting with "!" before stripping them, then de-duplicates and sorts
        rules = sorted({line.strip() for path in files for line in read_lines(path) if not line.startswith("!")})
        if not any(rules):  # as for the other formats (Dolma: an assertion)
            raise UserError(f"no abp entries in list {', '.join(files)}")
        filters = adblock.FilterSet()
        filters.add_filters(rules)
        self.engine = adblock.Engine(filters)

    def matches(self, url: str) -> bool:
        key = link_key(url)
        if key is None:
            return False
        if parse_url(key).scheme is None:
            key = "http://" + key
        return bool(self.engine.check_network_urls(key, "", "").matched)


def import_adblock() -> Any:
    try:
        import adblock
    except ModuleNotFoundError:
        raise UserError("the Adblock Plus URL taggers need the package adblock: "
                        "pip install 'dolma-tools[url]'") from None
    return adblock


FORMATS = ("domains", "hosts", "urls", "wikidata", "abp")


def load_matcher(files: Sequence[str], fmt: str) -> SetMatcher | AbpMatcher:
    if fmt == "abp":
        return AbpMatcher(files)
    if fmt in ("domains", "hosts"):
        entries = _domain_entries(files, domain_keys)
        matcher = SetMatcher(entries, domain_keys)
    elif fmt == "urls":
        entries = _link_entries(files)
        matcher = SetMatcher(entries, lambda url: [k] if (k := link_key(url)) is not None else [])
    elif fmt == "wikidata":
        entries = _allowlist_entries(files)
        matcher = SetMatcher(entries, allowlist_keys, recheck=True)
    else:
        raise UserError(f"url list format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not entries:  # Dolma refuses an empty list too (an assertion)
        raise UserError(f"no {fmt} entries in list {', '.join(files)}")
    return matcher


# ---- taggers ------------------------------------------------------------------------------------

class UrlListTagger(Tagger):
    """Tags the whole document (`url`, 1.0) when `metadata.url` is listed."""

    FORMAT: ClassVar[str] = "domains"
    options = {"list": "list file(s): a path, glob or directory, local or s3:// (required)"}
    required_options = ("list",)

    @classmethod
    def check_options(cls, options) -> None:
        super().check_options(options)
        fmt = options.get("format", cls.FORMAT)
        if fmt not in FORMATS:
            raise UserError(f"tagger {cls.name!r}: format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        if fmt == "abp":
            import_adblock()
        patterns = options["list"]
        local = [patterns] if isinstance(patterns, str) else list(patterns)
        local = [p for p in local if "://" not in str(p)]
        if local:  # remote lists are listed by the worker that loads them
            list_files(cls.name, local)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        fmt = self.option("format", self.FORMAT)
        self.matcher = load_matcher(list_files(self.name, self.given_options["list"]), fmt)

    def tag(self, doc: Document) -> TagResult:
        url = doc.metadata.get("url")
        # Dolma reads `metadata.get("url") or ""`; a URL that is not a string, or that its parser or
        # the ABP engine rejects, makes Dolma's tagger raise: we tag nothing instead
        if not url or not isinstance(url, str):
            return {}
        try:
            listed = self.matcher.matches(url)
        except UrlParseError:
            return {}
        return {SPAN_TYPE: [(0, len(doc.text), 1.0)]} if listed else {}


@register("url_blocklist", "metadata.url against any list (list=PATH, format=domains|hosts|urls|wikidata|abp): "
                           "`url` (1.0) over the document when listed")
class UrlBlocklist(UrlListTagger):
    options = {**UrlListTagger.options,
               "format": "domains (default; plain domains, hosts-file lines, ||domain^), hosts (the same), "
                         "urls (exact host/path), wikidata (Dolma's allowlist JSON), abp (Adblock Plus rules)"}


_ARTIFACTS = "dolma-artifacts.org/"
# Dolma's name -> (format, the files Dolma downloads for it, under _ARTIFACTS)
DOLMA_URL_TAGGERS: dict[str, tuple[str, str]] = {
    "domain_blocklist_utp_v1": ("domains", "blocklist_utp/blocklist_utp-20240205/adult/domains"),
    "domain_blocklist_phishing_v1": ("domains", "blocklist_phishing_db/blocklist_phishing_db-20240205/domains.txt.gz"),
    "link_blocklist_phishing_v1": ("urls", "blocklist_phishing_db/blocklist_phishing_db-20240205/domains.txt.gz"),
    "oisd_small_abp_v1": ("abp", "blocklist_oisd/blocklist_oisd-20240205/oisd_small_abp.txt.gz"),
    "oisd_big_abp_v1": ("abp", "blocklist_oisd/blocklist_oisd-20240205/oisd_big_abp.txt.gz"),
    "oisd_nsfw_abp_v1": ("abp", "blocklist_oisd/blocklist_oisd-20240205/oisd_nsfw_abp.txt.gz"),
    "brave_core_abp_v1": ("abp", "blocklist_brave/blocklist_brave-20240206/{brave_ad_block_first_party_filters,"
                                 "brave_ad_block_updater}.txt"),
    "brave_nsfw_abp_v1": ("abp", "blocklist_brave/blocklist_brave-20240206/blocklists_anti_porn.txt"),
    "blocklist_project_nsfw_v1": ("domains", "blocklist_project/blocklist_project-20240207/porn.txt"),
    "blocklist_project_social_v1": ("domains", "blocklist_project/blocklist_project-20240207/{facebook,fortnite,"
                                               "tiktok,twitter,whatsapp,youtube}.txt"),
    "blocklist_project_crime_v1": ("domains", "blocklist_project/blocklist_project-20240207/{abuse,fraud,malware,"
                                              "phishing,piracy,ransomware,scam,redirect}.txt"),
    "blocklist_project_vice_v1": ("domains", "blocklist_project/blocklist_project-20240207/{crypto,drugs,gambling,"
                                             "vaping}.txt"),
    "blocklist_project_ads_v1": ("domains", "blocklist_project/blocklist_project-20240207/{adobe,ads,basic,"
                                            "smart-tv,tracking}.txt"),
    "blocklist_firebog_ads_v1": ("domains", "blocklist_firebog/blocklist_firebog-20240208/ads/ (10 files)"),
    "blocklist_firebog_crypto_v1": ("domains", "blocklist_firebog/blocklist_firebog-20240208/crypto/green/"
                                               "hosts_browser.txt"),
    "blocklist_firebog_malicious_v1": ("domains", "blocklist_firebog/blocklist_firebog-20240208/malicious/ (15 files)"),
    "blocklist_firebog_nsfw_v1": ("domains", "blocklist_firebog/blocklist_firebog-20240208/nsfw/ (2 files)"),
    "blocklist_firebog_social_v1": ("domains", "blocklist_firebog/blocklist_firebog-20240208/social/blue/facebook.txt"),
    "blocklist_firebog_suspicious_v1": ("domains", "blocklist_firebog/blocklist_firebog-20240208/suspicious/ "
                                                   "(10 files)"),
    "blocklist_firebog_trackers_v1": ("domains", "blocklist_firebog/blocklist_firebog-20240208/trackers/ (10 files)"),
    **{f"blocklist_hosts_{kind}_v1": ("domains", f"blocklist_hosts/blocklist_hosts-20240208/{kind}.txt")
       for kind in ("adware_malware", "fakenews", "gambling", "porn", "social")},
    **{name: ("wikidata", "wikidata/wikidata-20220208/{periodical-Q1002697,website-Q35127}/response.json")
       for name in ("allowlist_wikidata_v1", "allowlist_wikidata_cleaned_v1")},
}

_FORMAT_WORDS = {"domains": "domain list", "urls": "exact-URL list", "abp": "Adblock Plus rules",
                 "wikidata": "Wikidata allowlist"}

for _name, (_format, _files) in DOLMA_URL_TAGGERS.items():
    register(_name, f"Dolma's {_FORMAT_WORDS[_format]} on metadata.url (needs list=PATH, a copy of {_ARTIFACTS}"
                    f"{_files}): `url` (1.0) over the document when listed")(
        type(f"DolmaUrl_{_name}", (UrlListTagger,), {
            "FORMAT": _format, "__module__": __name__,
            "options": {"list": f"the file(s) Dolma downloads, as a local or s3:// path, glob or directory: "
                                f"{_ARTIFACTS}{_files}"}}))
