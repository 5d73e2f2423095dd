"""Histograms of attribute values: Dolma's `stat` behaviour and the attribute section of `stats`.

Every attribute key gets two histograms, `<key>/score` and `<key>/length` (end - start), fed by
every span of every record. As in Dolma, an empty span list counts as one `(0, 0, 0)` and scores
of keys containing `__label__` are clipped to 1.0 (fastText can exceed 1 by rounding).

Values are kept in Dolma's buckets (five decimal digits of the binary mantissa, and the exponent)
with exact counts. `stat`'s summaries follow Dolma 1.2.1 step by step so that they are the same
numbers: each file is summarised into at most `bins` bins, the files' summaries are read back into
buckets (each bin's count goes to the bucket of its lower edge) and added up, and that sum is
summarised again. When a file has more than `bins` buckets its own summary is already coarse, so
the result depends on how the data is split into files; the report section of `stats` instead
bins the exact buckets of all files.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from dolma_tools.errors import DataError
from dolma_tools.io.documents import BadLine, iter_json_records

MANTISSA_STEPS = 10 ** 5  # Dolma's fixed buckets: five decimal digits of the binary mantissa


def bucket_key(value: float) -> tuple[int, int]:
    """(floor(mantissa * 1e5), binary exponent) of `value`, as Dolma's `stat` buckets values."""
    mantissa, exponent = math.frexp(value)
    return math.floor(mantissa * MANTISSA_STEPS), exponent


def bucket_value(key: tuple[int, int]) -> float:
    return key[0] / MANTISSA_STEPS * 2 ** key[1]


def bucket_upper(value: float) -> float:
    """The upper bound of the bucket `value` falls in (the edge Dolma writes after the last bucket)."""
    mantissa, exponent = math.frexp(value)
    return (math.floor(mantissa * MANTISSA_STEPS) + 1) / MANTISSA_STEPS * 2 ** exponent


def summarize_buckets(buckets: dict[tuple[int, int], int], bins: int) -> tuple[list[int], list[float]]:
    """Dolma's summary of some buckets: `(counts, edges)`, `len(edges) == len(counts) + 1`.

    At most `bins` buckets: the buckets themselves in order of value (empty ones too), the edges
    being their values and then the upper bound of the last one. More: `bins` equal-width bins from
    the lowest to the highest bucket value, each bucket counted at its value.
    """
    pairs = sorted((bucket_value(key), n) for key, n in buckets.items())  # ties (-2^e twice) by count, as Dolma
    if not pairs:
        return [], []
    values = [v for v, _ in pairs]
    counts = [n for _, n in pairs]
    if len(pairs) <= bins:
        return [int(n) for n in counts], values + [bucket_upper(values[-1])]
    hist, edges = np.histogram(values, bins=bins, weights=counts)
    return [int(n) for n in hist], [float(e) for e in edges]


def rebucket(counts: list[int], edges: list[float]) -> dict[tuple[int, int], int]:
    """A summary read back into buckets, as Dolma aggregates summaries: each bin's count goes to
    the bucket of its lower edge (the last edge is dropped; bins that hold nothing stay, empty).
    Bucketing a bucket's value again can land one step lower (floating-point floor)."""
    out: dict[tuple[int, int], int] = {}
    for edge, n in zip(edges, counts):
        key = bucket_key(edge)
        out[key] = out.get(key, 0) + n
    return out


@dataclass
class ValueHistogram:
    buckets: dict[tuple[int, int], int] = field(default_factory=dict)
    count: int = 0
    total: float = 0  # sum of the values (an int while every value is an int)
    low: float = math.inf  # exact extremes (buckets only keep five digits)
    high: float = -math.inf

    def add(self, value: float) -> None:
        key = bucket_key(value)
        self.buckets[key] = self.buckets.get(key, 0) + 1
        self.count += 1
        self.total += value
        if value < self.low:
            self.low = value
        if value > self.high:
            self.high = value

    def merge(self, other: "ValueHistogram") -> None:
        for key, n in other.buckets.items():
            self.buckets[key] = self.buckets.get(key, 0) + n
        self.count += other.count
        self.total += other.total
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)

    def summary_buckets(self) -> dict[tuple[int, int], int]:
        """The buckets as Dolma's aggregation reads them back from a file's summary that kept every
        bucket (`rebucket`): some move down one step (floating-point floor)."""
        out: dict[tuple[int, int], int] = {}
        for key, n in self.buckets.items():
            again = bucket_key(bucket_value(key))
            out[again] = out.get(again, 0) + n
        return out

    def sorted_buckets(self) -> tuple[np.ndarray, np.ndarray]:
        buckets = self.summary_buckets()
        pairs = sorted((bucket_value(k), c) for k, c in buckets.items() if not math.isnan(bucket_value(k)))
        values = np.array([v for v, _ in pairs], dtype=np.float64)
        counts = np.array([c for _, c in pairs], dtype=np.int64)
        return values, counts

    def equal_width(self, bins: int) -> tuple[list[int], list[float]]:
        """Dolma's summary of these values as if they all came from one file."""
        return summarize_buckets(self.summary_buckets(), bins)

    def quantile(self, q: float) -> float:
        values, counts = self.sorted_buckets()
        if len(values) == 0:
            return float("nan")
        cumulative = np.cumsum(counts)
        return float(values[min(int(np.searchsorted(cumulative, q * cumulative[-1], side="left")), len(values) - 1)])


@dataclass
class AttributeHistograms:
    histograms: dict[str, ValueHistogram] = field(default_factory=dict)  # in order of first appearance
    records: int = 0
    skipped: int = 0

    def add_record(self, attributes: dict, regex: re.Pattern | None = None) -> None:
        self.records += 1
        for key, spans in attributes.items():
            if regex is not None and not regex.search(key):
                continue
            for span in spans or [(0, 0, 0.0)]:
                start, end = span[0], span[1]
                score = float(span[2]) if len(span) > 2 else 1.0  # Dolma reads scores as floats (`1` is 1.0)
                if "__label__" in key:
                    score = min(score, 1.0)
                self._get(f"{key}/score").add(score)
                self._get(f"{key}/length").add(end - start)

    def _get(self, name: str) -> ValueHistogram:
        hist = self.histograms.get(name)
        if hist is None:
            hist = self.histograms[name] = ValueHistogram()
        return hist

    def add_file(self, path: str, regex: str | None = None, strict: bool = False) -> None:
        pattern = re.compile(regex) if regex else None
        for line, record in iter_json_records(path):
            if isinstance(record, BadLine) or not isinstance(record.get("attributes"), dict):
                if strict:
                    raise _not_a_record(path, line, record).as_error()
                self.skipped += 1
                continue
            self.add_record(record["attributes"], pattern)

    def add_aligned_file(self, path: str, document_ids: list[str | None], documents_path: str,
                         regex: str | None = None, on_bad_line: Callable[[BadLine], None] | None = None) -> None:
        """The attribute file of a document file: record i belongs to document record i and must
        carry its id (None: a document line that was bad, whose placeholder may carry any id).
        A misaligned file is an error naming the line, as in `dolma mix`, since every histogram
        of it would be attributed to the wrong documents; a malformed record is a bad line."""
        pattern = re.compile(regex) if regex else None
        index = -1
        for index, (line, record) in enumerate(iter_json_records(path)):
            if index >= len(document_ids):
                raise DataError(path, line, f"more attribute records than the {len(document_ids)} documents of "
                                            f"{documents_path}")
            if isinstance(record, BadLine) or not isinstance(record.get("attributes"), dict):
                self.skipped += 1
                if on_bad_line is not None:
                    on_bad_line(_not_a_record(path, line, record))
                continue
            expected, found = document_ids[index], record.get("id")
            if isinstance(found, (int, float)) and not isinstance(found, bool):
                found = str(found)  # as documents' numeric ids are read
            if expected is not None and found != expected:
                raise DataError(path, line, f"id {record.get('id')!r} does not match document {index + 1} of "
                                            f"{documents_path} ({expected!r}); the attribute file is misaligned")
            self.add_record(record["attributes"], pattern)
        if index + 1 < len(document_ids):
            raise DataError(path, index + 2, f"the attribute file ends after {index + 1} records, but "
                                             f"{documents_path} has {len(document_ids)} documents")

    def merge(self, other: "AttributeHistograms") -> None:
        for name, hist in other.histograms.items():
            self._get(name).merge(hist)
        self.records += other.records
        self.skipped += other.skipped


def _not_a_record(path: str, line: int, record: dict | BadLine) -> BadLine:
    return record if isinstance(record, BadLine) else BadLine(path, line, "not an attribute record (no `attributes` object)")


def histograms_of_file(path: str, regex: str | None = None, strict: bool = False) -> AttributeHistograms:
    out = AttributeHistograms()
    out.add_file(path, regex, strict)
    return out


def file_summaries(path: str, regex: str | None, bins: int, strict: bool = False) -> tuple[list[dict], int]:
    """One attribute file's summaries, as Dolma writes them before aggregating: at most `bins` bins
    per histogram (see `summarize_buckets`), histograms in order of first appearance; and the
    number of lines skipped (not JSON, or no `attributes` object)."""
    hists = histograms_of_file(path, regex, strict)
    out = []
    for name, hist in hists.histograms.items():
        counts, edges = summarize_buckets(hist.buckets, bins)
        out.append({"name": name, "counts": counts, "bins": edges, "total": hist.count, "sum": hist.total})
    return out, hists.skipped


def aggregate_summaries(per_file: Iterable[list[dict]], bins: int) -> list[dict]:
    """Dolma's `summaries.jsonl.gz` records, `{name, counts, bins, total, sum}`, from the files'
    summaries (their order sets the order of the records and of the additions in `sum`): each
    file's summary is read back into buckets (`rebucket`), the buckets are added up and summarised
    again into at most `bins` bins; `total` and `sum` add up the files' own."""
    buckets: dict[str, dict[tuple[int, int], int]] = {}
    totals: dict[str, list] = {}
    for summaries in per_file:
        for record in summaries:
            name = record["name"]
            merged = buckets.setdefault(name, {})
            for key, n in rebucket(record["counts"], record["bins"]).items():
                merged[key] = merged.get(key, 0) + n
            total = totals.setdefault(name, [0, 0])
            total[0] += record["total"]
            total[1] += record["sum"]
    out = []
    for name, merged in buckets.items():
        counts, edges = summarize_buckets(merged, bins)
        out.append({"name": name, "counts": counts, "bins": edges, "total": totals[name][0], "sum": totals[name][1]})
    return out


def equal_count_bins(values: np.ndarray, counts: np.ndarray, bins: int) -> tuple[list[int], list[float]]:
    """About `bins` bins holding equal numbers of values (fewer when values repeat): `(counts, edges)`
    over sorted bucket values; edges halfway between neighbouring bins' values, the last one the last value."""
    if len(values) == 0:
        return [], []
    total = int(counts.sum())
    cumulative = np.cumsum(counts)
    out_counts: list[int] = []
    edges = [float(values[0])]
    start = 0
    for b in range(1, bins + 1):
        if start >= len(values):
            break
        end = int(np.searchsorted(cumulative, total * b / bins, side="left")) + 1  # values[start:end] in this bin
        end = min(max(end, start + 1), len(values))
        out_counts.append(int(counts[start:end].sum()))
        edges.append(float((values[end - 1] + values[end]) / 2) if end < len(values) else float(values[-1]))
        start = end
    return out_counts, edges


def format_value(values: list[float], max_decimal: int = 4) -> list[str]:
    """Round as little as needed for the values to stay distinct (at most `max_decimal` places)."""
    for decimal in range(max_decimal + 1):
        rounded = [f"{v:.{decimal}f}" for v in values]
        if len(set(rounded)) == len(rounded):
            return rounded
    return [f"{v:.{max_decimal}f}" for v in values]


def format_sum(value: float) -> str:
    """A histogram's sum as Dolma prints it: scientific past ten digits, else grouped digits when
    it is a whole number, else two decimals."""
    if len(str(round(value))) > 10:
        return f"{value:.2e}"
    if value == round(value):
        return f"{int(value):,}"
    return f"{value:.2f}"


def console_view(record: dict, bins: int = 10) -> tuple[list[int], list[float]]:
    """The console's bins for one summary record, from the record itself as Dolma does: read back
    into buckets, shown as they are when there are at most `bins`, else about `bins` equal-count bins."""
    buckets = rebucket(record["counts"], record["bins"])
    if len(buckets) <= bins:
        return summarize_buckets(buckets, bins)
    pairs = sorted((bucket_value(key), n) for key, n in buckets.items())
    values = np.array([v for v, _ in pairs], dtype=np.float64)
    counts = np.array([n for _, n in pairs], dtype=np.int64)
    return equal_count_bins(values, counts, bins)


def console_tables(records: list[dict], bins: int = 10, total: bool = False) -> str:
    """Dolma's console view of summary records: per histogram, about `bins` bins with range, share
    and count; `total` adds the histogram's own sum and number of values (`sum ← sum/total → total`)."""
    out = []
    for record in records:
        counts, edges = console_view(record, bins)
        out.append(record["name"])
        labels = format_value(edges)
        n = sum(counts) or 1
        shares = format_value([c / n for c in counts])
        rows = []
        for i, (count, share) in enumerate(zip(counts, shares)):
            closing = "]" if i == len(counts) - 1 else ")"
            rows.append((f"[{labels[i]}, {labels[i + 1]}{closing}", share, f"{count:,}"))
        if total:
            rows.append((format_sum(record["sum"]), "← sum/total →", f"{record['total']:,}"))
        width = max([len(r[0]) for r in rows] + [5])
        dist = max([len(r[1]) for r in rows] + [4])
        out.append(f"  {'value':<{width}}  {'dist':<{dist}}  count")
        out.extend(f"  {value:<{width}}  {share:<{dist}}  {count}" for value, share, count in rows)
        out.append("")
    return "\n".join(out)
