"""Dolma's code taggers (`code_*`) and Creative Commons taggers (`cc_re*`), against Dolma 1.2.1.

Expected values were written by Dolma 1.2.1 (with beautifulsoup4 4.15, detect-secrets 1.4.0,
pygments 2.21): tests/taggers/data/dolma_code_taggers/attributes/ for the documents beside them
(`generate_dolma_code_taggers.sh`; the documents come from `make_dolma_code_taggers_inputs.py`),
and the lines below for hand-written documents (one `dolma tag --experiment e` run). The visible
text lengths are BeautifulSoup's (`html.parser`, scripts and styles removed).
"""

from __future__ import annotations

import io
import json
import shutil
import tokenize
from pathlib import Path

import pytest
from dolma_reference import read_lines, tag_documents, write_documents

from dolma_tools.errors import UserError
from dolma_tools.taggers.code_text import python_comments
from dolma_tools.taggers.html_text import visible_text_length
from dolma_tools.taggers.runner import TagConfig, run_tag

DATA = Path(__file__).resolve().parent / "data" / "dolma_code_taggers"
CODE_TAGGERS = ["code_copyright_comments_v1", "code_redpajama_taggers_v1", "code_starcoder_taggers_v1",
                "code_starcoder_taggers_v2", "code_secrets_v1"]
LICENCE_TAGGERS = ["cc_re", "cc_re_fast"]


@pytest.mark.parametrize("name, taggers", [("code", CODE_TAGGERS), ("html", LICENCE_TAGGERS)])
def test_fixture_corpus_as_dolma(tmp_path: Path, name: str, taggers: list[str]):
    docs = tmp_path / "documents"
    docs.mkdir()
    shutil.copy(DATA / "documents" / f"{name}.jsonl.gz", docs)
    run_tag(TagConfig(documents=[str(docs / "*.jsonl.gz")], taggers=taggers, experiment="x", debug=True),
            progress=False)
    ours = read_lines(tmp_path / "attributes" / "x" / f"{name}.jsonl.gz")
    theirs = read_lines(DATA / "attributes" / f"{name}.jsonl.gz")
    assert len(ours) == len(theirs) == {"code": 97, "html": 20}[name]
    for mine, dolma in zip(ours, theirs):
        assert mine == dolma


HAND_WRITTEN = [
    {"id": "a", "text": "", "metadata": {"ext": "c"}},
    {"id": "b", "text": "# Copyright 2024\n\n// note\nint x;\n", "metadata": {"ext": "c", "max_stars_count": 42}},
    {"id": "c", "text": "int y; /* COPYRIGHT (c) me */ int z;\n", "metadata": {"ext": "h", "max_stars_count": None}},
    {"id": "d", "text": '"""Module."""\n\n\nclass A:\n    """Class A."""\n\n    def f(self):\n        """  f of A."""\n'
                        '        return 1  # one\n', "metadata": {"ext": "py", "max_stars_count": 7}},
    {"id": "e", "text": "ab1\n\n\u00e9\u0663 \u4e00\u00bd\r\nlast", "metadata": {"ext": "txt"}},
    {"id": "f", "text": '<?xml version="1.0"?>\n<p>   hi &amp; bye   </p><script>x()</script>', "metadata": {"ext": "html"}},
    {"id": "g", "text": "// Hello\nvar s = 'x'; /* two */\n", "metadata": {"ext": "js"}},
    {"id": "h", "text": 'password = "correct-horse-battery-staple-9"\nkey = "AKIAIOSFODNN7EXAMPLE"\n',
     "metadata": {"ext": "py"}},
]

# Dolma 1.2.1's attributes for HAND_WRITTEN, per tagger: C = copyright, R = redpajama, S1/S2 = starcoder, K = secrets
CR = "e__code_copyright_comments_v1__"
RP = "e__code_redpajama_taggers_v1__"
DOLMA_HAND_WRITTEN = {
    "a": f'"{CR}comment_block":[[0,1,1.0]],"{CR}doc":[[0,0,-1.0]],"{RP}max_line_length_doc":[[0,0,0.0]],'
         f'"{RP}avg_line_length_doc":[[0,0,0.0]],"{RP}alnum_prop_doc":[[0,0,0.0]],"{RP}alpha_token_prop_doc":[[0,0,0.0]],'
         '"S1has_xml_template_doc":[[0,0,0.0]],"S1num_github_stars_doc":[[0,0,0.0]],"S1nl_ratio_doc":[[0,0,-1.0]],'
         '"S1code_to_text_ratio_html_doc":[[0,0,-1.0]],"S2has_xml_template_doc":[[0,0,0.0]],'
         '"S2num_github_stars_doc":[[0,0,0.0]],"S2code_to_comment_ratio_doc":[[0,0,0.5]],'
         '"S2code_to_text_ratio_html_doc":[[0,0,1.0]],"Kdoc":[[0,0,-1.0]]',
    "b": f'"{CR}comment_block":[[0,24,1.0]],"{CR}doc":[[0,33,0.75758]],"{RP}max_line_length_doc":[[0,33,16.0]],'
         f'"{RP}avg_line_length_doc":[[0,33,7.25]],"{RP}alnum_prop_doc":[[0,33,0.63636]],'
         f'"{RP}alpha_token_prop_doc":[[0,33,1.88889]],"S1has_xml_template_doc":[[0,33,0.0]],'
         '"S1num_github_stars_doc":[[0,33,42.0]],"S1nl_ratio_doc":[[0,33,0.24242]],'
         '"S1code_to_text_ratio_html_doc":[[0,33,1.0]],"S2has_xml_template_doc":[[0,33,0.0]],'
         '"S2num_github_stars_doc":[[0,33,42.0]],"S2code_to_comment_ratio_doc":[[0,33,0.5]],'
         '"S2code_to_text_ratio_html_doc":[[0,33,1.0]],"Kdoc":[[0,33,0.0]]',
    "c": f'"{CR}copyright_notice":[[7,29,1.0]],"{CR}doc":[[0,37,0.62162]],"{RP}max_line_length_doc":[[0,37,36.0]],'
         f'"{RP}avg_line_length_doc":[[0,37,36.0]],"{RP}alnum_prop_doc":[[0,37,0.54054]],'
         f'"{RP}alpha_token_prop_doc":[[0,37,1.42857]],"S1has_xml_template_doc":[[0,37,0.0]],'
         '"S1num_github_stars_doc":[[0,37,0.0]],"S1nl_ratio_doc":[[0,37,0.59459]],'
         '"S1code_to_text_ratio_html_doc":[[0,37,1.0]],"S2has_xml_template_doc":[[0,37,0.0]],'
         '"S2num_github_stars_doc":[[0,37,0.0]],"S2code_to_comment_ratio_doc":[[0,37,0.5]],'
         '"S2code_to_text_ratio_html_doc":[[0,37,1.0]],"Kdoc":[[0,37,0.0]]',
    "d": f'"{CR}doc":[[0,110,0.0]],"{RP}max_line_length_doc":[[0,110,23.0]],"{RP}avg_line_length_doc":[[0,110,11.22222]],'
         f'"{RP}alnum_prop_doc":[[0,110,0.36364]],"{RP}alpha_token_prop_doc":[[0,110,1.56]],'
         '"S1has_xml_template_doc":[[0,110,0.0]],"S1num_github_stars_doc":[[0,110,7.0]],'
         '"S1nl_ratio_doc":[[0,110,0.26364]],"S1code_to_text_ratio_html_doc":[[0,110,1.0]],'
         '"S2has_xml_template_doc":[[0,110,0.0]],"S2num_github_stars_doc":[[0,110,7.0]],'
         '"S2code_to_comment_ratio_doc":[[0,110,0.26364]],"S2code_to_text_ratio_html_doc":[[0,110,1.0]],'
         '"Kdoc":[[0,110,0.0]]',
    "e": f'"{CR}doc":[[0,16,0.0]],"{RP}max_line_length_doc":[[0,16,5.0]],"{RP}avg_line_length_doc":[[0,16,3.0]],'
         f'"{RP}alnum_prop_doc":[[0,16,0.6875]],"{RP}alpha_token_prop_doc":[[0,16,1.33333]],'
         '"S1has_xml_template_doc":[[0,16,0.0]],"S1num_github_stars_doc":[[0,16,0.0]],"S1nl_ratio_doc":[[0,16,0.0]],'
         '"S1code_to_text_ratio_html_doc":[[0,16,1.0]],"S2has_xml_template_doc":[[0,16,0.0]],'
         '"S2num_github_stars_doc":[[0,16,0.0]],"S2code_to_comment_ratio_doc":[[0,16,0.5]],'
         '"S2code_to_text_ratio_html_doc":[[0,16,1.0]],"Kdoc":[[0,16,0.0]]',
    "f": f'"{CR}doc":[[0,67,0.0]],"{RP}max_line_length_doc":[[0,67,45.0]],"{RP}avg_line_length_doc":[[0,67,33.0]],'
         f'"{RP}alnum_prop_doc":[[0,67,0.52239]],"{RP}alpha_token_prop_doc":[[0,67,1.26923]],'
         '"S1has_xml_template_doc":[[0,67,1.0]],"S1num_github_stars_doc":[[0,67,0.0]],"S1nl_ratio_doc":[[0,67,0.0]],'
         '"S1code_to_text_ratio_html_doc":[[0,67,0.0]],"S2has_xml_template_doc":[[0,67,1.0]],'
         '"S2num_github_stars_doc":[[0,67,0.0]],"S2code_to_comment_ratio_doc":[[0,67,0.5]],'
         '"S2code_to_text_ratio_html_doc":[[0,67,0.0]],"Kdoc":[[0,67,0.0]]',
    "g": f'"{CR}doc":[[0,32,0.0]],"{RP}max_line_length_doc":[[0,32,22.0]],"{RP}avg_line_length_doc":[[0,32,15.0]],'
         f'"{RP}alnum_prop_doc":[[0,32,0.40625]],"{RP}alpha_token_prop_doc":[[0,32,1.08333]],'
         '"S1has_xml_template_doc":[[0,32,0.0]],"S1num_github_stars_doc":[[0,32,0.0]],"S1nl_ratio_doc":[[0,32,0.53125]],'
         '"S1code_to_text_ratio_html_doc":[[0,32,1.0]],"S2has_xml_template_doc":[[0,32,0.0]],'
         '"S2num_github_stars_doc":[[0,32,0.0]],"S2code_to_comment_ratio_doc":[[0,32,0.53125]],'
         '"S2code_to_text_ratio_html_doc":[[0,32,1.0]],"Kdoc":[[0,32,0.0]]',
    "h": f'"{CR}doc":[[0,73,0.0]],"{RP}max_line_length_doc":[[0,73,43.0]],"{RP}avg_line_length_doc":[[0,73,35.5]],'
         f'"{RP}alnum_prop_doc":[[0,73,0.78082]],"{RP}alpha_token_prop_doc":[[0,73,2.89474]],'
         '"S1has_xml_template_doc":[[0,73,0.0]],"S1num_github_stars_doc":[[0,73,0.0]],"S1nl_ratio_doc":[[0,73,0.0]],'
         '"S1code_to_text_ratio_html_doc":[[0,73,1.0]],"S2has_xml_template_doc":[[0,73,0.0]],'
         '"S2num_github_stars_doc":[[0,73,0.0]],"S2code_to_comment_ratio_doc":[[0,73,0.0]],'
         '"S2code_to_text_ratio_html_doc":[[0,73,1.0]],"KSECRET_Secret_Keyword":[[12,42,1.0]],'
         '"KSECRET_AWS_Access_Key":[[51,71,1.0]],"Kdoc":[[0,73,0.33333]]',
}


def test_hand_written_documents_as_dolma(tmp_path: Path):
    lines = tag_documents(tmp_path, [{**doc, "source": "s"} for doc in HAND_WRITTEN], CODE_TAGGERS)
    prefixes = {'"S1': '"e__code_starcoder_taggers_v1__', '"S2': '"e__code_starcoder_taggers_v2__',
                '"K': '"e__code_secrets_v1__'}
    expected = []
    for doc in HAND_WRITTEN:
        attributes = DOLMA_HAND_WRITTEN[doc["id"]]
        for short, long in prefixes.items():
            attributes = attributes.replace(short, long)
        expected.append(f'{{"id":"{doc["id"]}","attributes":{{{attributes}}},"source":"s"}}')
    assert lines == expected


def test_licence_pages_as_dolma(tmp_path: Path):
    pages = [{"id": "p", "text": "text", "source": "s", "metadata": {"html": (
                 '<a href="https://creativecommons.org/licenses/by-sa/4.0/deed.es">a</a> '
                 '<meta content="http://creativecommons.org/licenses/by/3.0/">')}},
             {"id": "q", "text": "text", "source": "s", "metadata": {"html": "<p>no licence</p>"}}]
    assert tag_documents(tmp_path, pages, LICENCE_TAGGERS) == [
        '{"id":"p","attributes":{"e__cc_re__cc_by_sa_4_0_es":[[0,4,1.0]],"e__cc_re__cc_by_3_0":[[0,4,0.75]],'
        '"e__cc_re_fast__cc_by_sa":[[0,4,1.0]],"e__cc_re_fast__cc_by":[[0,4,0.75]]},"source":"s"}',
        '{"id":"q","attributes":{},"source":"s"}',
    ]


def test_licence_taggers_need_the_html(tmp_path: Path):
    with pytest.raises(UserError, match=r"^/.*\.jsonl\.gz: tagger 'cc_re' reads .* metadata\.html, which document 'x'"):
        tag_documents(tmp_path, [{"id": "x", "text": "t", "source": "s"}], ["cc_re"])


def test_v2_scores_empty_python_minus_one(tmp_path: Path):
    # Dolma's v2 fails with ZeroDivisionError here; ours scores -1, as v1 does
    line = tag_documents(tmp_path, [{"id": "x", "text": "", "source": "s", "metadata": {"ext": "py"}}],
               ["code_starcoder_taggers_v2"])[0]
    assert json.loads(line)["attributes"]["e__code_starcoder_taggers_v2__code_to_comment_ratio_doc"] == [[0, 0, -1.0]]


def test_missing_package_fails_before_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pygments" else real(name, *a))
    write_documents(tmp_path / "documents" / "t.jsonl.gz", [{"id": "x", "text": "t", "source": "s"}])
    with pytest.raises(UserError, match=r"needs the package pygments: pip install 'dolma-tools\[code\]'"):
        run_tag(TagConfig(documents=[str(tmp_path / "documents" / "*.gz")], taggers=["code_starcoder_taggers_v1"],
                          experiment="e"), progress=False)
    assert not (tmp_path / "attributes").exists()


@pytest.mark.parametrize("source", [
    "x = rb'#' + Rb\"\\\"#\" + f'{1}#'  # real\n",
    "s = '''a\n# not\\''' '''  # yes\ny = \"\"\"\\\n\"\"\"  # after\n",
    "s = 'a\\\n# continued string'\n#end",
    "if x:\n    pass\n    # dedented comment\n# top\n",
])
def test_python_comment_scan_matches_tokenize(source: str):
    tokens = [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT]
    assert python_comments(source, parses=True) == "".join(tokens)


@pytest.mark.parametrize("html, length", [  # len(BeautifulSoup(html, "html.parser").get_text()), scripts removed
    ("<p>  a  </p>\n\n<p>b</p>", 7),
    ("<pre>  \n  </pre><div>  \n  </div>", 6),
    ("<template><b>x</b></template><ruby>\u5b57<rt>zi</rt></ruby>", 1),
    ("<![CDATA[]]><![CDATA[ c ]]><!-- gone -->", 4),
    ("&amp;&amp&unknown;&#65;&#x20;&NotEqualTilde;", 14),
    ("<br></br></br><img/></img>", 0),
    ("<script>alert(1)</script><style>p{}</style>t", 1),
    ("<p>unclosed <b>x</p> y", 12),
])
def test_visible_text_length_as_beautifulsoup(html: str, length: int):
    assert visible_text_length(html) == length
