"""`dolma tag`: run taggers over document files and write line-aligned attribute files."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from dolma_tools.config import RuntimeConfig, option
from dolma_tools.errors import UserError
from dolma_tools.io.documents import BadLine, JsonlWriter, iter_documents
from dolma_tools.io.files import exists
from dolma_tools.io.paths import attribute_path, common_prefix, destination_path, expand_globs
from dolma_tools.runtime import FileResult, RunSummary, run_files
from dolma_tools.taggers.base import (
    Document,
    TaggerSpec,
    get_tagger,
    import_tagger_modules,
    parse_tagger_spec,
    paused_gc,
    tagger_class,
)

SCORE_DECIMALS = 5


@dataclass
class ProfileConfig:
    enable: bool = option(False, help="accepted for Dolma compatibility; unused")
    output: str | None = option(None, help="accepted for Dolma compatibility; unused")
    steps: int | None = option(None, help="accepted for Dolma compatibility; unused")
    sort_key: str = option("tottime", help="accepted for Dolma compatibility; unused")
    lines: int = option(100, help="accepted for Dolma compatibility; unused")


@dataclass
class TagConfig(RuntimeConfig):
    documents: list[str] = option(default_factory=list, help="document files or globs", required=True)
    taggers: list[str] = option(default_factory=list, required=True,
                                help="tagger names (see `dolma list`), optionally with options: "
                                     "NAME:key=value,key=value (e.g. ft_lang_id_doc_v1:model=/path/lid.bin)")
    tagger_options: dict[str, dict[str, Any]] = option(
        default_factory=dict, help="options per tagger name, e.g. {fasttext_classifier: {model: q.bin}}; "
                                   "options in a NAME:key=value spec take precedence")
    experiment: str | None = option(None, help="write all taggers into attributes/<experiment>/")
    destination: str | None = option(None, help="root for attribute files instead of the mirrored path")
    tagger_modules: list[str] = option(default_factory=list, help="modules or .py files defining taggers")
    batch_size: int = option(1000, help="documents per tagging batch")
    profile: ProfileConfig = option(default_factory=ProfileConfig)


def sanitize(name: str) -> str:
    """Dolma's attribute-name rule: characters outside [A-Za-z0-9_] become `_`."""
    clean = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if clean[:1].isdigit():
        raise UserError(f"attribute names cannot start with a digit: {name!r}")
    return clean


@dataclass(frozen=True)
class OutputPlan:
    """Which taggers go into which attribute file, and the key prefix of each tagger."""

    groups: tuple[tuple[str, tuple[TaggerSpec, ...]], ...]  # (attribute set name, taggers)

    def prefix(self, group: str, tagger: str) -> str:
        return f"{sanitize(group)}__{sanitize(tagger)}__"


def tagger_specs(cfg: TagConfig) -> list[TaggerSpec]:
    specs = []
    for text in cfg.taggers:
        name = text.partition(":")[0].strip()
        specs.append(parse_tagger_spec(text, cfg.tagger_options.get(name)))
    seen: set[str] = set()
    for spec in specs:
        if spec.key_name in seen:
            raise UserError(f"tagger {spec.key_name!r} is listed twice; give one of them another key name "
                            f"with as=NAME (e.g. {spec.name}:model=other.bin,as={spec.name}_other)")
        seen.add(spec.key_name)
    return specs


def plan_outputs(cfg: TagConfig) -> OutputPlan:
    specs = tagger_specs(cfg)
    if cfg.experiment:
        return OutputPlan(groups=((cfg.experiment, tuple(specs)),))
    return OutputPlan(groups=tuple((spec.key_name, (spec,)) for spec in specs))


def check_taggers(cfg: TagConfig) -> None:
    """Fail before any work starts on an unknown tagger or option."""
    for spec in tagger_specs(cfg):
        tagger_class(spec.name).check_options(spec.option_dict())


def output_path(cfg: TagConfig, document: str, group: str, prefix: str) -> str:
    if cfg.destination:
        return destination_path(document, cfg.destination, group, prefix)
    return attribute_path(document, group)


def format_spans(spans) -> list[list]:
    return [[int(s), int(e), round(float(score), SCORE_DECIMALS)] for s, e, score in spans]


def tag_file(cfg: TagConfig, prefix: str, path: str) -> FileResult:
    """Tag one document file; every record yields one line in each output file."""
    import_tagger_modules(cfg.tagger_modules)
    plan = plan_outputs(cfg)
    result = FileResult(path=path)
    writers = [(group, names, JsonlWriter(output_path(cfg, path, group, prefix)))
               for group, names in plan.groups]
    try:
        batch: list[tuple[int, dict | BadLine]] = []
        for line, record in iter_documents(path):
            if isinstance(record, BadLine):
                result.bad_line(record, cfg.strict)
            batch.append((line, record))
            if len(batch) >= cfg.batch_size:
                _tag_batch(batch, writers, plan, result)
                batch = []
        if batch:
            _tag_batch(batch, writers, plan, result)
    except BaseException:
        for _, _, writer in writers:
            writer.discard()
        raise
    for _, _, writer in writers:
        writer.commit()
    return result


def _tag_batch(batch, writers, plan: OutputPlan, result: FileResult) -> None:
    with paused_gc():
        _tag_batch_inner(batch, writers, plan, result)


def _tag_batch_inner(batch, writers, plan: OutputPlan, result: FileResult) -> None:
    good = [(i, rec) for i, (_, rec) in enumerate(batch) if not isinstance(rec, BadLine)]
    docs = [Document.from_json(rec) for _, rec in good]
    result.documents += len(docs)
    for group, names, writer in writers:
        merged: list[dict] = [{} for _ in docs]
        for spec in names:
            key_prefix = plan.prefix(group, spec.key_name)
            for attrs, tags in zip(merged, get_tagger(spec.name, **spec.option_dict()).tag_batch(docs)):
                for span_type, spans in tags.items():
                    if span_type:
                        attrs[key_prefix + sanitize(span_type)] = format_spans(spans)
        by_index = {i: attrs for (i, _), attrs in zip(good, merged)}
        for i, (_, record) in enumerate(batch):
            if isinstance(record, BadLine):
                writer.write_record({"id": None, "attributes": {}, "source": None})
            else:
                writer.write_record({"id": record["id"], "attributes": by_index[i],
                                     "source": record.get("source")})


def run_tag(cfg: TagConfig, progress: bool = True) -> RunSummary:
    import_tagger_modules(cfg.tagger_modules)
    check_taggers(cfg)  # unknown names or options fail before any work starts
    inputs = expand_globs(cfg.documents)
    prefix = common_prefix(inputs)
    plan = plan_outputs(cfg)
    outputs = lambda doc: [output_path(cfg, doc, group, prefix) for group, _ in plan.groups]  # noqa: E731
    first_group = plan.groups[0][0]
    summary_dir = output_path(cfg, inputs[0], first_group, prefix)
    summary_path = _attribute_root(summary_dir, first_group, cfg) + "/.summary-tag.json"
    return run_files("tag", inputs, functools.partial(tag_file, cfg, prefix), cfg,
                     is_done=lambda doc: all(exists(p) for p in outputs(doc)),
                     summary_path=summary_path, progress=progress,
                     output_root=summary_path.rsplit("/", 1)[0])


def _attribute_root(example_output: str, group: str, cfg: TagConfig) -> str:
    """The `attributes/<group>` directory that holds this run's outputs (relative paths too)."""
    if cfg.destination:
        return f"{cfg.destination.rstrip('/')}/{group}"
    marker = f"attributes/{group}/"
    if example_output.startswith(marker):
        return marker.rstrip("/")
    head, found, _ = example_output.partition("/" + marker)
    if not found:  # pragma: no cover - attribute_path always inserts the marker
        raise UserError(f"cannot find the attributes directory of {example_output}")
    return head + "/" + marker.rstrip("/")
