"""`dolma train-fasttext`: train a fastText classifier (quality, topic, toxicity...) from labelled JSONL.

Users bring their own labels: each record has a text field and a label field (a string, a number,
or a list of them, for multi-label data). Records go to a training or a validation split by a
seeded hash of their position, so the split is reproducible. The trained model is applied with
`dolma tag --taggers fasttext_classifier:model=PATH`.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import tempfile
from collections import Counter
from dataclasses import dataclass
from typing import Any

import xxhash

from dolma_tools.config import option
from dolma_tools.errors import ConfigError, UserError
from dolma_tools.io.documents import BadLine, iter_json_records
from dolma_tools.io.paths import expand_globs

LABEL_PREFIX = "__label__"
_LABEL_UNSAFE = re.compile(r"\s+")


@dataclass
class TrainFastTextConfig:
    documents: list[str] = option(default_factory=list, required=True,
                                  help="labelled JSONL files or globs (.jsonl, .jsonl.gz, .jsonl.zst)")
    model_path: str = option("", required=True, help="where to write the model (.bin; .ftz when quantize)")
    text_field: str = option("text", help="field holding the text (dotted path for nested fields)")
    label_field: str = option("label", help="field holding the label: string, number or list (dotted path)")
    validation_fraction: float = option(0.1, help="fraction of records held out to report precision/recall")
    seed: int = option(0, help="seed for the train/validation split")
    epoch: int = option(5, help="fastText epochs")
    lr: float = option(0.1, help="fastText learning rate")
    word_ngrams: int = option(2, help="fastText word n-gram length")
    dim: int = option(100, help="fastText vector size")
    min_count: int = option(1, help="minimal word count")
    bucket: int = option(2_000_000, help="hash buckets for word n-grams (memory: bucket x dim floats)")
    loss: str = option("softmax", help="softmax, ova (multi-label), hs or ns")
    threads: int = option(1, help="training threads (1 gives the same model on every run)")
    max_text_chars: int = option(100_000, help="truncate texts to this many characters")
    quantize: bool = option(False, help="quantize the model (much smaller .ftz, slightly less accurate)")
    strict: bool = option(False, help="fail on a record without text or label instead of skipping it")
    dryrun: bool = option(False, help="print the resolved config and stop")


def _get(record: dict, dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def fasttext_line(text: str, labels: list[str], max_chars: int) -> str:
    clean = " ".join(text[:max_chars].split())
    return " ".join(LABEL_PREFIX + _LABEL_UNSAFE.sub("_", lab) for lab in labels) + " " + clean + "\n"


def _labels(value: Any) -> list[str] | None:
    if isinstance(value, bool) or value is None:
        return [str(value).lower()] if isinstance(value, bool) else None
    if isinstance(value, (str, int, float)):
        return [str(value)] if str(value).strip() else None
    if isinstance(value, list) and value and all(isinstance(v, (str, int, float)) for v in value):
        return [str(v) for v in value]
    return None


def _split(cfg: TrainFastTextConfig, train_path: str, valid_path: str) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    skipped = 0
    n_train = n_valid = 0
    threshold = int(cfg.validation_fraction * (1 << 64))
    with open(train_path, "w", encoding="utf-8") as train, open(valid_path, "w", encoding="utf-8") as valid:
        for path in expand_globs(cfg.documents):
            for line, record in iter_json_records(path):
                if isinstance(record, BadLine):
                    if cfg.strict:
                        raise record.as_error()
                    skipped += 1
                    continue
                text, labels = _get(record, cfg.text_field), _labels(_get(record, cfg.label_field))
                if not isinstance(text, str) or labels is None:
                    if cfg.strict:
                        raise BadLine(path, line, f"needs a string `{cfg.text_field}` and a label in "
                                                  f"`{cfg.label_field}`").as_error()
                    skipped += 1
                    continue
                counts.update(labels)
                key = f"{os.path.basename(path)}:{line}".encode()  # same split wherever the files live
                if xxhash.xxh3_64_intdigest(key, seed=cfg.seed) < threshold:
                    valid.write(fasttext_line(text, labels, cfg.max_text_chars))
                    n_valid += 1
                else:
                    train.write(fasttext_line(text, labels, cfg.max_text_chars))
                    n_train += 1
    return {"train_records": n_train, "validation_records": n_valid, "skipped_records": skipped,
            "labels": dict(sorted(counts.items()))}


def _train_with_backoff(cfg, train_path: str):
    """fastText aborts with "Encountered NaN" when the learning rate is too high for the data;
    halve it and retry (twice) rather than failing the user's run."""
    import fasttext

    lr = cfg.lr
    for attempt in range(3):
        try:
            return fasttext.train_supervised(input=train_path, epoch=cfg.epoch, lr=lr, wordNgrams=cfg.word_ngrams,
                                             dim=cfg.dim, minCount=cfg.min_count, bucket=cfg.bucket, loss=cfg.loss,
                                             thread=max(1, cfg.threads), seed=cfg.seed, verbose=0)
        except RuntimeError as exc:
            if "NaN" not in str(exc) or attempt == 2:
                raise UserError(f"fastText training diverged ({exc}); try a lower --lr") from None
            lr /= 2
            logging.getLogger("dolma_tools.train_fasttext").warning("fastText training diverged at lr=%g; retrying with lr=%g", lr * 2, lr)
    raise AssertionError("unreachable")


def train_fasttext(cfg: TrainFastTextConfig) -> dict[str, Any]:
    """Train, save `cfg.model_path`, and write `<model_path>.metrics.json`; returns the metrics."""
    if not cfg.model_path:
        raise ConfigError("config key `model_path`: where to write the model, e.g. --model_path quality.bin")
    if not 0 <= cfg.validation_fraction < 1:
        raise ConfigError("config key `validation_fraction`: expected a number in [0, 1)")
    if cfg.loss not in ("softmax", "ova", "hs", "ns"):
        raise ConfigError(f"config key `loss`: expected softmax, ova, hs or ns, got {cfg.loss!r}")
    with tempfile.TemporaryDirectory(prefix="dolma-train-fasttext-") as tmp:
        train_path, valid_path = os.path.join(tmp, "train.txt"), os.path.join(tmp, "valid.txt")
        metrics = _split(cfg, train_path, valid_path)
        if len(metrics["labels"]) < 2:
            raise UserError(f"a classifier needs at least 2 labels; found {list(metrics['labels'])}")
        if metrics["train_records"] == 0:
            raise UserError(f"no usable training records in {cfg.documents} (fields `{cfg.text_field}`, "
                            f"`{cfg.label_field}`)")
        random.seed(cfg.seed)
        model = _train_with_backoff(cfg, train_path)
        if cfg.quantize:
            model.quantize(input=train_path, retrain=False)
        if metrics["validation_records"]:
            n, precision, recall = model.test(valid_path)
            metrics.update(validation_precision_at_1=precision, validation_recall_at_1=recall)
        directory = os.path.dirname(os.path.abspath(cfg.model_path))
        os.makedirs(directory, exist_ok=True)
        partial = cfg.model_path + ".tmp"
        model.save_model(partial)
        os.replace(partial, cfg.model_path)
    metrics["model_path"] = cfg.model_path
    with open(cfg.model_path + ".metrics.json", "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2)
    return metrics


def run_train_fasttext(cfg: TrainFastTextConfig) -> dict[str, Any]:
    metrics = train_fasttext(cfg)
    print(json.dumps(metrics, indent=2))
    print(f"apply it with: dolma tag --documents ... --taggers fasttext_classifier:model={cfg.model_path}")
    return metrics
