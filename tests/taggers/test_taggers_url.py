"""Dolma's URL taggers (block/allow lists on metadata.url), against Dolma 1.2.1.

Expected outputs were written by Dolma 1.2.1 (tests/taggers/data/generate_dolma_url_taggers.sh) with
its list downloads replaced by the small files in dolma_url_taggers/lists/ (lists.json says which
tagger read which); here the same files are passed with `list=`. dolma/entries.json is the set
Dolma built from each list.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from dolma_tools.errors import UserError
from dolma_tools.taggers import Document, get_tagger
from dolma_tools.taggers.runner import TagConfig, run_tag
from dolma_tools.taggers.url import DOLMA_URL_TAGGERS, load_matcher

DATA = Path(__file__).resolve().parent / "data" / "dolma_url_taggers"
LISTS = json.loads((DATA / "lists.json").read_text())
ABP = [name for name, (fmt, _) in DOLMA_URL_TAGGERS.items() if fmt == "abp"]
RAISING_IN_DOLMA = ("allowlist_", "oisd_", "brave_")  # raise on documents_raising.jsonl (see the script)


def list_paths(name: str) -> list[str]:
    return [str(DATA / "lists" / f) for f in LISTS[name]]


def tag_lines(tmp_path: Path, documents: str, taggers: list[str]) -> list[str]:
    folder = tmp_path / "run" / "documents"
    folder.mkdir(parents=True)
    stem = documents.removesuffix(".jsonl")
    with gzip.open(folder / f"{stem}.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write((DATA / documents).read_text(encoding="utf-8"))
    options = {name: {"list": list_paths(name)} for name in taggers}
    run_tag(TagConfig(documents=[str(folder / "*.gz")], taggers=taggers, tagger_options=options,
                      experiment="x", debug=True), progress=False)
    with gzip.open(tmp_path / "run" / "attributes" / "x" / f"{stem}.jsonl.gz", "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def dolma_lines(documents: str) -> list[str]:
    with gzip.open(DATA / "dolma" / documents.replace(".jsonl", ".jsonl.gz"), "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def dolma_records(documents: str, keep=lambda name: True) -> list[dict]:
    records = as_records(dolma_lines(documents))
    for record in records:
        record["attributes"] = {k: v for k, v in record["attributes"].items() if keep(k.split("__")[1])}
    return records


def as_records(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines]


def documents(name: str) -> list[Document]:
    return [Document.from_json(json.loads(line)) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]


def test_every_dolma_url_tagger_is_provided():
    assert sorted(LISTS) == sorted(DOLMA_URL_TAGGERS) and len(LISTS) == 27


def test_exact_lines_as_dolma(tmp_path: Path):
    pytest.importorskip("adblock")
    assert tag_lines(tmp_path, "documents.jsonl", list(LISTS)) == dolma_lines("documents.jsonl")


def test_without_abp_as_dolma(tmp_path: Path):
    # runs without the optional adblock package too
    names = [n for n in LISTS if n not in ABP]
    keep = lambda name: name not in ABP  # noqa: E731
    assert as_records(tag_lines(tmp_path, "documents.jsonl", names)) == dolma_records("documents.jsonl", keep)


def test_urls_on_which_some_dolma_taggers_raise(tmp_path: Path):
    names = [n for n in LISTS if not n.startswith(RAISING_IN_DOLMA)]
    assert tag_lines(tmp_path, "documents_raising.jsonl", names) == dolma_lines("documents_raising.jsonl")
    # where Dolma's allowlist (IPv6 host) and ABP (host without a dot, with a port) taggers raise, ours tag nothing
    raising = [n for n in LISTS if n.startswith(RAISING_IN_DOLMA) and (n not in ABP or _has_adblock())]
    for line in tag_lines(tmp_path / "raising", "documents_raising.jsonl", raising):
        assert json.loads(line)["attributes"] == {}


def _has_adblock() -> bool:
    try:
        import adblock  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


@pytest.mark.parametrize("name, fmt", [
    ("domain_blocklist_utp_v1", "domains"), ("domain_blocklist_phishing_v1", "domains"),
    ("link_blocklist_phishing_v1", "urls"), ("blocklist_project_social_v1", "hosts"),
    ("blocklist_hosts_porn_v1", "domains"), ("allowlist_wikidata_v1", "wikidata"),
])
def test_list_entries_as_dolma(name: str, fmt: str):
    expected = json.loads((DATA / "dolma" / "entries.json").read_text(encoding="utf-8"))[name]
    assert sorted(load_matcher(list_paths(name), fmt).entries) == expected


def test_generic_tagger_matches_the_dolma_names():
    pairs = {"domain_blocklist_utp_v1": "domains", "blocklist_project_social_v1": "hosts",
             "link_blocklist_phishing_v1": "urls", "allowlist_wikidata_cleaned_v1": "wikidata"}
    if _has_adblock():
        pairs["brave_core_abp_v1"] = "abp"
    docs = documents("documents.jsonl")
    for name, fmt in pairs.items():
        dolma_named = get_tagger(name, list=tuple(list_paths(name))).tag_batch(docs)
        generic = get_tagger("url_blocklist", list=tuple(list_paths(name)), format=fmt).tag_batch(docs)
        assert generic == dolma_named and any(dolma_named), name


def test_list_option_takes_a_glob_a_directory_and_gz(tmp_path: Path):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "a.txt").write_text("alpha.example\n")
    with gzip.open(lists / "b.txt.gz", "wt") as f:
        f.write("0.0.0.0 beta.example\n")
    docs = [Document(id=str(i), text="abc", metadata={"url": f"https://{h}/x"})
            for i, h in enumerate(["alpha.example", "www.beta.example", "gamma.example"])]
    for spec in [f"blocklist_hosts_porn_v1:list={lists}/*", f"blocklist_hosts_porn_v1:list={lists}"]:
        assert [bool(r) for r in get_tagger(spec).tag_batch(docs)] == [True, True, False]
    assert get_tagger(f"url_blocklist:list={lists}/a.txt").tag_batch(docs)[0] == {"url": [(0, 3, 1.0)]}


def test_urls_dolma_cannot_tag_get_no_span(tmp_path: Path):
    (tmp_path / "l.txt").write_text("evil.com\n")
    tagger = get_tagger(f"domain_blocklist_utp_v1:list={tmp_path}/l.txt")
    urls = [123, ["https://evil.com"], {"u": 1}, True, "https://evil.com:99999/", "https://evil.com:abc/",
            "https://[::1/", "https://\u00e9 vil.com/", "https://evil.com/"]
    docs = [Document(id="d", text="t", metadata={"url": u}) for u in urls]
    assert [r.get("url") for r in tagger.tag_batch(docs)] == [None] * 8 + [[(0, 1, 1.0)]]


def test_lines_that_stop_dolma_are_skipped(tmp_path: Path):
    # Dolma's loader raises on these (its URL parser rejects them); we skip them and keep the rest
    (tmp_path / "l.txt").write_text("0.0.0.0 \u00e9vil.com\nevil.com:abc\nexa\u0000mple..com:99999\ngood.com\n")
    matcher = load_matcher([str(tmp_path / "l.txt")], "domains")
    assert "good.com" in matcher.entries and not any("vil" in e for e in matcher.entries)


@pytest.mark.parametrize("spec, message", [
    ("domain_blocklist_utp_v1", "needs the option list"),
    ("allowlist_wikidata_v1:list=", "needs the option list"),
    ("blocklist_project_social_v1:list=/nonexistent/social-*.txt", "no list file matches '/nonexistent/social-"),
    ("url_blocklist:list=LISTS/domains.txt,format=csv", "format must be one of domains, hosts, urls, wikidata, abp"),
    ("url_blocklist:list=LISTS/domains.txt,mode=x", "has no option 'mode'"),
])
def test_option_errors_before_any_work(tmp_path: Path, spec: str, message: str):
    docs = tmp_path / "documents"
    docs.mkdir()
    (docs / "a.jsonl").write_text('{"id": "1", "text": "x", "source": "s"}\n')
    spec = spec.replace("LISTS", str(DATA / "lists"))
    with pytest.raises(UserError, match=message):
        run_tag(TagConfig(documents=[str(docs / "*.jsonl")], taggers=[spec], debug=True), progress=False)
    assert not (tmp_path / "attributes").exists()


def test_empty_or_malformed_list_is_one_line_error(tmp_path: Path):
    (tmp_path / "empty.txt").write_text("# only a comment\n\n")
    with pytest.raises(UserError, match="no domains entries in list"):
        load_matcher([str(tmp_path / "empty.txt")], "domains")
    (tmp_path / "empty_abp.txt").write_text("! only a comment\n\n")
    with pytest.raises(UserError, match="no abp entries in list"):
        load_matcher([str(tmp_path / "empty_abp.txt")], "abp")
    (tmp_path / "bad.json").write_text('[{"url": "a.com"}\n')
    with pytest.raises(UserError, match="is not JSON"):
        load_matcher([str(tmp_path / "bad.json")], "wikidata")
    # one pretty-printed array (Dolma's reader wants an array per line) is read whole
    (tmp_path / "pretty.json").write_text(json.dumps([{"url": "https://www.example.org/"}], indent=2))
    assert "example.org" in load_matcher([str(tmp_path / "pretty.json")], "wikidata").entries


def test_list_on_s3(s3_server, tmp_path: Path):
    s3_server.create_bucket(Bucket="lists")
    s3_server.put_object(Bucket="lists", Key="blocklist/hosts.txt.gz",
                         Body=gzip.compress(b"0.0.0.0 remote.example\n"))
    tagger = get_tagger("blocklist_hosts_porn_v1:list=s3://lists/blocklist/*.gz")
    doc = Document(id="1", text="ab", metadata={"url": "http://remote.example/"})
    assert tagger.tag_batch([doc]) == [{"url": [(0, 2, 1.0)]}]


def test_dolma_list_shows_where_the_lists_come_from():
    from dolma_tools.taggers import tagger_class

    options = tagger_class("blocklist_project_crime_v1").options
    assert "blocklist_project-20240207/{abuse,fraud,malware" in options["list"]
