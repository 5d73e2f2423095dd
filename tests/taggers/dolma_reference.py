"""Helpers for the tests that compare our taggers' attribute lines with those Dolma 1.2.1 wrote."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from dolma_tools.taggers.runner import TagConfig, run_tag


def read_lines(path: Path) -> list[str]:
    # only "\n" ends a JSON line: texts may hold a raw \x1c or \u2028, which splitlines() splits on
    with gzip.open(path, "rt", encoding="utf-8", newline="\n") as f:
        return [line.removesuffix("\n") for line in f]


def write_documents(path: Path, docs: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(doc) + "\n" for doc in docs)


def text_documents(texts: list[str]) -> list[dict]:
    """Documents `t0`, `t1`, ... of source `s`, as the hand-written cases were given to Dolma."""
    return [{"id": f"t{i}", "text": text, "source": "s"} for i, text in enumerate(texts)]


def tag_documents(tmp_path: Path, docs: list[dict], taggers: list[str]) -> list[str]:
    """Our attribute lines for `docs` (experiment `e`, in-process)."""
    write_documents(tmp_path / "documents" / "t.jsonl.gz", docs)
    run_tag(TagConfig(documents=[str(tmp_path / "documents" / "*.gz")], taggers=taggers, experiment="e",
                      debug=True), progress=False)
    return read_lines(tmp_path / "attributes" / "e" / "t.jsonl.gz")


def lines_from_fragments(fragments: dict[str, list[str]], taggers: list[str], count: int) -> list[str]:
    """Dolma's lines for `text_documents` of `count` texts, from its attributes per tagger and text
    (keys written `e__T__<type>`)."""
    lines = []
    for i in range(count):
        parts = [fragments[t][i].replace("e__T__", f"e__{t}__") for t in taggers]
        lines.append(f'{{"id":"t{i}","attributes":{{{",".join(p for p in parts if p)}}},"source":"s"}}')
    return lines


def records_for_taggers(path: Path, taggers: list[str]) -> list[dict]:
    """Dolma's records in `path` with only the attributes of `taggers` (its file holds more)."""
    records = [json.loads(line) for line in read_lines(path)]
    for record in records:
        record["attributes"] = {k: v for k, v in record["attributes"].items() if k.split("__")[1] in taggers}
    return records
