"""Tagger modules written against Dolma's public API load and give Dolma's output.

The expected lines were written by Dolma 1.2.1 (`dolma tag --tagger_modules ... --experiment e`)
from the same modules and documents.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dolma_tools.cli import cli
from dolma_tools.errors import UserError
from dolma_tools.taggers import Document, get_tagger, import_tagger_modules
from dolma_tools.taggers.runner import TagConfig, run_tag

MODULES = {
    # the import paths of Dolma's docs/taggers.md and of its README / own taggers
    "dolma_api_paragraphs.py": '''
from dolma import add_tagger, BaseTagger
from dolma.core.data_types import DocResult, Document, Span
from dolma.core.utils import split_paragraphs


@add_tagger("para_q_v1")
class ParaQuestions(BaseTagger):
    @property
    def defaults(self):
        return ["questions", "never"]

    def predict(self, doc: Document) -> DocResult:
        spans = [Span(start=p.start, end=p.end, type="questions", score=p.text.count("?") / 3)
                 for p in split_paragraphs(doc.text) if "?" in p.text]
        spans.append(Span(0, len(doc.text), "", 1.0))
        spans.append(Span(0, len(doc.text), "src-" + doc.source, len(doc.id)))
        return DocResult(doc=doc, spans=spans)
''',
    "dolma_api_metadata.py": '''
from dolma.core.data_types import DocResult, DocumentWithMetadata, Span
from dolma.core.registry import TaggerRegistry
from dolma.core.taggers import BaseTaggerWithMetadata


@TaggerRegistry.add("url_len_v1")
class UrlLength(BaseTaggerWithMetadata):
    def predict(self, doc: DocumentWithMetadata) -> DocResult:
        url = doc.metadata.get("url") or ""
        return DocResult(doc=doc, spans=[Span(0, len(doc.text), "url_length", len(url) / 7)])
''',
    "dolma_api_core.py": '''
from dolma.core import BaseTagger, DocResult, Document, Span, TaggerRegistry


@TaggerRegistry.add("excl_v1")
class Excl(BaseTagger):
    def predict(self, doc: Document) -> DocResult:
        return DocResult(doc=doc, spans=[Span(start=0, end=len(doc.text), type="count", score=doc.text.count("!"))])
''',
}

DOCS = [{"id": "q1", "text": "Why?\n\nBecause! Really?? Yes.\nEnd", "source": "web",
         "metadata": {"url": "https://example.com/a"}},
        {"id": "q2", "text": "No questions here.", "source": "books", "version": "v1"},
        {"id": "q3", "text": "", "source": "", "metadata": None}]

DOLMA_LINES = [
    '{"id":"q1","attributes":{"e__para_q_v1__questions":[[0,5,0.33333],[6,29,0.66667]],"e__para_q_v1__never":[],'
    '"e__para_q_v1__src_web":[[0,32,2.0]],"e__url_len_v1__url_length":[[0,32,3.0]],"e__excl_v1__count":[[0,32,1.0]]},'
    '"source":"web"}',
    '{"id":"q2","attributes":{"e__para_q_v1__questions":[],"e__para_q_v1__never":[],"e__para_q_v1__src_books":'
    '[[0,18,2.0]],"e__url_len_v1__url_length":[[0,18,0.0]],"e__excl_v1__count":[[0,18,0.0]]},"source":"books"}',
    '{"id":"q3","attributes":{"e__para_q_v1__questions":[],"e__para_q_v1__never":[],"e__para_q_v1__src_":[[0,0,2.0]],'
    '"e__url_len_v1__url_length":[[0,0,0.0]],"e__excl_v1__count":[[0,0,0.0]]},"source":""}',
]


@pytest.fixture
def dolma_style(tmp_path: Path) -> tuple[Path, list[str]]:
    """Two copies of the documents (so `--executor local` forks two workers) and the module paths."""
    docs = tmp_path / "corpus" / "documents"
    docs.mkdir(parents=True)
    for name in ("part-0.jsonl.gz", "part-1.jsonl.gz"):
        with gzip.open(docs / name, "wt") as f:
            f.writelines(json.dumps(d) + "\n" for d in DOCS)
    paths = []
    for name, source in MODULES.items():
        (tmp_path / name).write_text(source)
        paths.append(str(tmp_path / name))
    return docs, paths


def attribute_lines(docs: Path, name: str) -> list[str]:
    with gzip.open(docs.parent / "attributes" / "e" / name, "rt") as f:
        return f.read().splitlines()


def run_dolma_style(docs: Path, modules: list[str], **runtime) -> None:
    cfg = TagConfig(documents=[str(docs / "*.gz")], tagger_modules=modules, experiment="e",
                    taggers=["para_q_v1", "url_len_v1", "excl_v1"], **runtime)
    assert run_tag(cfg, progress=False).documents == 6


def test_dolma_api_modules_give_dolmas_lines_on_forked_workers(dolma_style):
    docs, modules = dolma_style
    run_dolma_style(docs, modules, executor="local", processes=2)
    assert attribute_lines(docs, "part-0.jsonl.gz") == DOLMA_LINES
    assert attribute_lines(docs, "part-1.jsonl.gz") == DOLMA_LINES


def test_dolma_api_modules_load_in_ray_workers(dolma_style, ray_session):
    docs, modules = dolma_style
    run_dolma_style(docs, modules, processes=2)
    assert attribute_lines(docs, "part-1.jsonl.gz") == DOLMA_LINES


def test_dolma_list_shows_dolma_api_taggers(dolma_style):
    _, modules = dolma_style
    result = CliRunner().invoke(cli, ["list", "--tagger_modules", *modules], catch_exceptions=False)
    assert result.exit_code == 0
    listed = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    described = " ".join(listed["excl_v1"].split()[1:])  # the module's name, its class, and where it comes from
    assert described.startswith("dolma_tools_user_dolma_api_core") and described.endswith(".Excl (Dolma API)")
    assert "url_len_v1" in listed and "para_q_v1" in listed and "char_length_v1" in listed


def test_dolma_api_classes_behave_as_dolmas(dolma_style):
    _, modules = dolma_style
    import_tagger_modules(modules)
    from dolma.core.data_types import DocResult, Span, TextSlice
    from dolma.core.utils import make_variable_name, split_paragraphs

    tags = get_tagger("para_q_v1").tag(Document(id="x", text="a?\n \nb\n", source="s"))
    assert tags == {"questions": [(0, 3, 0.33333)], "never": [], "": [(0, 7, 1.0)], "src-s": [(0, 7, 1.0)]}
    assert [(p.start, p.end, p.text) for p in split_paragraphs("a\n \nb")] == [(0, 2, "a\n"), (4, 5, "b")]
    assert len(split_paragraphs("a\n \nb", remove_empty=False)) == 3
    assert Span.from_spec("e__t__type", (1, 3, 0.5)).to_spec() == ("e__t__type", (1, 3, 0.5))
    assert TextSlice("hello", 1, 3).text == "el" and make_variable_name("dclm-oh-eli5") == "dclm_oh_eli5"
    assert DocResult(doc=None, spans=[Span(0, 1, "t")]).spans[0] == Span(0, 1, "t", 1.0)


@pytest.mark.parametrize("source, message", [
    ("import os\nimport not_a_real_module_xyz\n",
     r"bad_mod.py \(line 2\): ModuleNotFoundError: No module named 'not_a_real_module_xyz'$"),
    ("from dolma.taggers.length import CharLengthV1\n",
     r"\(line 1\): ModuleNotFoundError: No module named 'dolma.taggers' \(dolma-tools provides Dolma's tagger API"),
    ("def f(:\n    pass\n", r"bad_mod.py \(line 1\): SyntaxError: invalid syntax$"),
    ("from dolma import add_tagger\n\n\nraise ValueError('boom')\n", r"bad_mod.py \(line 4\): ValueError: boom$"),
])
def test_an_error_inside_a_module_is_one_line(tmp_path: Path, source: str, message: str):
    module = tmp_path / "bad_mod.py"
    module.write_text(source)
    with pytest.raises(UserError, match=r"^cannot import tagger module .*" + message):
        import_tagger_modules([str(module)])
    result = CliRunner().invoke(cli, ["list", "--tagger_modules", str(module)])
    assert isinstance(result.exception, UserError)  # the CLI prints it on one line and exits 2
