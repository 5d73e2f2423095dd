"""Creative Commons licence taggers (Dolma's `cc_re`, `cc_re_fast`), on the page's HTML.

They read the HTML from `metadata.html` (not the extracted text) and find links to
creativecommons.org licences, following DKPro C4Corpus' licence detectors: `cc_re` looks for an
`<a href=...>` or `<meta content=...>` pointing at a licence or public-domain page and reads its
type, version and language; `cc_re_fast` looks for any licence URL and reads only the type. Each
match is a whole-document span of type `cc_<type>[_<version>][_<lang>]`; the k-th match on a page
scores 0.5 + 0.5 / k (1, 0.75, 0.667, ...), so pages naming several licences score each lower.
"""

from __future__ import annotations

from typing import ClassVar

import regex

from dolma_tools.errors import UserError
from dolma_tools.taggers.base import Document, Tagger, TagResult, register

# cheap substring test before the regex: most pages name no licence
_LICENCE_URL_PARTS = ("creativecommons.org/licenses", "creativecommons.org/publicdomain")

# An anchor or meta element whose href/content attribute is a creativecommons.org licence URL:
# licenses/by[-nc][-nd][-sa] or publicdomain/{zero,certification,mark}, then an optional
# /<major>.<minor> version, then an optional [/<jurisdiction>]/[deed.|legalcode.]<lang>.
_LICENCE_ELEMENT = regex.compile(
    r"<(?:a|A|meta)\s[\w\p{Punct}\s=]*\n*(?:href|HREF|content)"
    r"=(?:'|\"|&quot;)?https*://creativecommons\.org/"
    r"(?:licenses/(?P<type>by(?:-nc)?(?:-nd)?(?:-sa)?)|(?P<type>publicdomain/(?:zero|certification|mark)))"
    r"(?P<version>/\d+\.\d+)?"
    r"(?:(?:/\w{2})?/(?:(?:deed|legalcode)\.)?(?P<lang>\w{2}))?"
    r".*?(?:'|\"|&quot;).*?>"
)

# any licence URL followed by a quote, slash, space or `>`
_LICENCE_URL = regex.compile(
    r"https?://creativecommons\.org/licenses/(?P<type>by|by-sa|by-nd|by-nc|by-nc-sa|by-nc-nd|publicdomain)[\"/ >]"
)


@register("cc_re", "Creative Commons licences linked from `<a>`/`<meta>` in `metadata.html`: one span per "
                   "link, type `cc_<type>[_<version>][_<lang>]`, score 0.5 + 0.5/k for the k-th")
class CreativeCommonsLicences(Tagger):
    pattern: ClassVar[regex.Pattern] = _LICENCE_ELEMENT

    def tag(self, doc: Document) -> TagResult:
        html = doc.metadata.get("html")
        if not isinstance(html, str):
            raise UserError(f"tagger {self.name!r} reads the page's HTML from metadata.html, which document "
                            f"{doc.id!r} does not have (use it on corpora that keep the HTML)")
        out: TagResult = {}
        if not any(part in html for part in _LICENCE_URL_PARTS):
            return out
        n = len(doc.text)
        for k, match in enumerate(self.pattern.finditer(html), start=1):
            out.setdefault("cc_" + licence_name(match), []).append((0, n, 0.5 + 0.5 / k))
        return out


@register("cc_re_fast", "as cc_re, from any creativecommons.org/licenses/<type> URL in `metadata.html`: "
                        "type `cc_<type>` only")
class CreativeCommonsLicenceUrls(CreativeCommonsLicences):
    pattern = _LICENCE_URL


def licence_name(match: regex.Match) -> str:
    """`<type>[_<version>][_<lang>]`, from whichever of those groups the pattern has and matched."""
    groups = match.groupdict()
    name = groups["type"]
    if groups.get("version") is not None:
        name += "_" + groups["version"].strip("/")
    if groups.get("lang") is not None:
        name += "_" + groups["lang"]
    return name
