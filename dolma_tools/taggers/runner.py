"""`dolma tag`: run taggers over document files and write line-aligned attribute files."""

from __future__ import annotations

import contextlib
import functools
import re
from dataclasses import dataclass
from typing import Any

from dolma_tools.config import RuntimeConfig, option
from dolma_tools.errors import UserError
from dolma_tools.io.documents import BadLine, JsonlWriter, iter_documents
from dolma_tools.io.files import exists, local_path, remove_stale_temporaries
from dolma_tools.io.paths import attribute_path, expand_globs
from dolma_tools.runtime import FileResult, RunSummary, run_files
from dolma_tools.runtime.locks import check_writable, destination_lock
from dolma_tools.taggers.base import (
    Document,
    TaggerSpec,
    get_tagger,
    import_tagger_modules,
    parse_tagger_spec,
    paused_gc,
    tagger_class,
)
from dolma_tools.taggers.destinations import Destinations, route_documents

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
    destination: list[str] | None = option(
        None, help="attribute file prefixes, one per documents pattern (Dolma's CLI): a pattern's files go to "
                   "<prefix>/<path relative to the directory they share>, all taggers in one file; "
                   "unset: the mirrored attributes/<experiment>/ path")
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


KeyedTaggers = tuple[tuple[TaggerSpec, str], ...]  # the taggers of one attribute file, with their key prefixes


def output_files(plan: OutputPlan, destinations: Destinations | None, document: str) -> list[tuple[str, KeyedTaggers]]:
    """The attribute files of one document file, each with the taggers it holds."""
    keyed = [(group, tuple((spec, plan.prefix(group, spec.key_name)) for spec in specs))
             for group, specs in plan.groups]
    if destinations is None:  # one file per attribute set, mirroring the documents' path
        return [(attribute_path(document, group), taggers) for group, taggers in keyed]
    everything = tuple(tagger for _, taggers in keyed for tagger in taggers)  # Dolma: one file per destination
    return [(path, everything) for path in destinations.outputs(document)]


def format_spans(spans) -> list[list]:
    return [[int(s), int(e), round(float(score), SCORE_DECIMALS)] for s, e, score in spans]


def tag_file(cfg: TagConfig, destinations: Destinations | None, path: str) -> FileResult:
    """Tag one document file; every record yields one line in each output file."""
    import_tagger_modules(cfg.tagger_modules)
    plan = plan_outputs(cfg)
    result = FileResult(path=path)
    writers = [(taggers, JsonlWriter(out)) for out, taggers in output_files(plan, destinations, path)]
    try:
        batch: list[tuple[int, dict | BadLine]] = []
        for line, record in iter_documents(path):
            if isinstance(record, BadLine):
                result.bad_line(record, cfg.strict)
            batch.append((line, record))
            if len(batch) >= cfg.batch_size:
                _tag_batch(batch, writers, result)
                batch = []
        if batch:
            _tag_batch(batch, writers, result)
    except BaseException:
        for _, writer in writers:
            writer.discard()
        raise
    for _, writer in writers:
        writer.commit()
    return result


def _tag_batch(batch, writers, result: FileResult) -> None:
    with paused_gc():
        _tag_batch_inner(batch, writers, result)


def _tag_batch_inner(batch, writers, result: FileResult) -> None:
    good = [(i, rec) for i, (_, rec) in enumerate(batch) if not isinstance(rec, BadLine)]
    docs = [Document.from_json(rec) for _, rec in good]
    result.documents += len(docs)
    tagged: dict[TaggerSpec, list] = {}  # each tagger runs once per batch, however many files hold it
    for taggers, writer in writers:
        merged: list[dict] = [{} for _ in docs]
        for spec, key_prefix in taggers:
            if spec not in tagged:
                tagged[spec] = _run_tagger(spec, docs, result.path)
            for attrs, tags in zip(merged, tagged[spec]):
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


def _run_tagger(spec: TaggerSpec, docs: list[Document], path: str) -> list:
    try:
        return get_tagger(spec.name, **spec.option_dict()).tag_batch(docs)
    except UserError as exc:  # a tagger refusing a document (e.g. cc_re without metadata.html): say which file
        raise UserError(f"{path}: {exc}") from None


def run_tag(cfg: TagConfig, progress: bool = True) -> RunSummary:
    import_tagger_modules(cfg.tagger_modules)
    check_taggers(cfg)  # unknown names or options fail before any work starts
    if cfg.destination is None:
        inputs, destinations = expand_globs(cfg.documents), None
    else:
        inputs, destinations = route_documents(cfg.documents, cfg.destination)
    plan = plan_outputs(cfg)
    outputs = lambda doc: [path for path, _ in output_files(plan, destinations, doc)]  # noqa: E731
    summary_path = _attribute_root(outputs(inputs[0])[0], plan.groups[0][0], destinations) + "/.summary-tag.json"
    with _guard_other_destinations(destinations):
        return run_files("tag", inputs, functools.partial(tag_file, cfg, destinations), cfg,
                         is_done=lambda doc: all(exists(p) for p in outputs(doc)),
                         summary_path=summary_path, progress=progress,
                         output_root=summary_path.rsplit("/", 1)[0], settings=_output_settings(plan, cfg))


def _output_settings(plan: OutputPlan, cfg: TagConfig) -> dict:
    """What decides the attribute files' content: the taggers of each attribute set (names,
    options, key names) and the modules that define them. A rerun with other settings redoes
    files instead of keeping outputs the new settings would not write."""
    return {"taggers": {group: [[spec.name, [list(kv) for kv in spec.options], spec.key_name] for spec in specs]
                        for group, specs in plan.groups},
            "tagger_modules": list(cfg.tagger_modules)}


def _attribute_root(example_output: str, group: str, destinations: Destinations | None) -> str:
    """The directory that holds this run's outputs and its summary: `attributes/<group>`, or the
    first destination prefix (relative paths too)."""
    if destinations is not None:
        return destinations.roots()[0]
    marker = f"attributes/{group}/"
    if example_output.startswith(marker):
        return marker.rstrip("/")
    head, found, _ = example_output.partition("/" + marker)
    if not found:  # pragma: no cover - attribute_path always inserts the marker
        raise UserError(f"cannot find the attributes directory of {example_output}")
    return head + "/" + marker.rstrip("/")


@contextlib.contextmanager
def _guard_other_destinations(destinations: Destinations | None):
    """`run_files` checks and locks the first destination; the others get the same guard: writable,
    one run at a time, and no temporaries left by a killed run."""
    with contextlib.ExitStack() as stack:
        others = destinations.roots()[1:] if destinations is not None else []
        for root in others:
            check_writable(root)
            stack.enter_context(destination_lock(root))
            remove_stale_temporaries(local_path(root))
        try:
            yield
        finally:
            for root in others:
                remove_stale_temporaries(local_path(root))
