"""Histograms of attribute values: Dolma's `stat` behaviour and the attribute section of `stats`.

Every attribute key gets two histograms, `<key>/score` and `<key>/length` (end - start), fed by
every span of every record. As in Dolma, an empty span list counts as one `(0, 0, 0)` and scores
of keys containing `__label__` are clipped to 1.0 (fastText can exceed 1 by rounding).

Values are kept in Dolma's buckets (five decimal digits of the binary mantissa, and the exponent)
with exact counts, so the structure is small and merges across workers by adding counts. Unlike
Dolma, which re-bins each file's already-binned summary when it aggregates (so its bins depend on
how the input is split into files), the final bins here come from the exact buckets of all files.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from dolma_tools.io.documents import BadLine, iter_json_records

MANTISSA_STEPS = 10 ** 5  # Dolma's fixed buckets: five decimal digits of the binary mantissa


def bucket_key(value: float) -> tuple[int, int]:
    """(floor(mantissa * 1e5), binary exponent) of `value`, as Dolma's `stat` buckets values."""
    mantissa, exponent = math.frexp(value)
    return math.floor(mantissa * MANTISSA_STEPS), exponent


def bucket_value(key: tuple[int, int]) -> float:
    return key[0] / MANTISSA_STEPS * 2 ** key[1]


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
        """Buckets as Dolma reports them: it buckets each file's values, then buckets those bucket
        values again when it aggregates files, which moves some down one step (floating-point floor).
        Doing the same here keeps summaries identical to Dolma 1.2.1's."""
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
        """Dolma's summary: the buckets themselves when there are at most `bins` of them (edges end with
        the last bucket's upper bound), else `bins` equal-width bins over the bucket values."""
        values, counts = self.sorted_buckets()
        if len(values) == 0:
            return [], []
        if len(values) <= bins:
            last = max(self.summary_buckets(), key=bucket_value)
            upper = (last[0] + 1) / MANTISSA_STEPS * 2 ** last[1]
            return [int(c) for c in counts], [float(v) for v in values] + [float(upper)]
        hist, edges = np.histogram(values, bins=bins, weights=counts)
        return [int(c) for c in hist], [float(e) for e in edges]

    def equal_count(self, bins: int = 10) -> tuple[list[int], list[float]]:
        """About `bins` bins holding equal numbers of values (fewer when values repeat)."""
        values, counts = self.sorted_buckets()
        if len(values) == 0:
            return [], []
        total = int(counts.sum())
        cumulative = np.cumsum(counts)
        out_counts: list[int] = []
        edges = [float(values[0])]
        start = 0
        for b in range(1, bins + 1):
            target = total * b / bins
            end = int(np.searchsorted(cumulative, target, side="left")) + 1  # values[start:end] in this bin
            end = min(max(end, start + 1), len(values)) if start < len(values) else start
            if end <= start:
                continue
            out_counts.append(int(counts[start:end].sum()))
            edges.append(float(values[end]) if end < len(values) else float(values[-1]))
            start = end
        return out_counts, edges

    def quantile(self, q: float) -> float:
        values, counts = self.sorted_buckets()
        if len(values) == 0:
            return float("nan")
        cumulative = np.cumsum(counts)
        return float(values[min(int(np.searchsorted(cumulative, q * cumulative[-1], side="left")), len(values) - 1)])


@dataclass
class AttributeHistograms:
    histograms: dict[str, ValueHistogram] = field(default_factory=dict)
    records: int = 0
    skipped: int = 0
    total_count: int = 0
    total_sum: float = 0.0

    def add_record(self, attributes: dict, regex: re.Pattern | None = None) -> None:
        self.records += 1
        for key, spans in attributes.items():
            if regex is not None and not regex.search(key):
                continue
            for span in spans or [(0, 0, 0.0)]:
                start, end, score = span[0], span[1], span[2] if len(span) > 2 else 1.0
                if "__label__" in key:
                    score = min(score, 1.0)
                self.total_count += 1
                self.total_sum += float(score)
                self._get(f"{key}/score").add(score)
                self._get(f"{key}/length").add(end - start)

    def _get(self, name: str) -> ValueHistogram:
        hist = self.histograms.get(name)
        if hist is None:
            hist = self.histograms[name] = ValueHistogram()
        return hist

    def add_file(self, path: str, regex: str | None = None) -> None:
        pattern = re.compile(regex) if regex else None
        for _, record in iter_json_records(path):
            if isinstance(record, BadLine) or not isinstance(record.get("attributes"), dict):
                self.skipped += 1
                continue
            self.add_record(record["attributes"], pattern)

    def merge(self, other: "AttributeHistograms") -> None:
        for name, hist in other.histograms.items():
            self._get(name).merge(hist)
        self.records += other.records
        self.skipped += other.skipped
        self.total_count += other.total_count
        self.total_sum += other.total_sum


def histograms_of_file(path: str, regex: str | None = None) -> AttributeHistograms:
    out = AttributeHistograms()
    out.add_file(path, regex)
    return out


def format_value(values: list[float], max_decimal: int = 4) -> list[str]:
    """Round as little as needed for the values to stay distinct (at most `max_decimal` places)."""
    for decimal in range(max_decimal + 1):
        rounded = [f"{v:.{decimal}f}" for v in values]
        if len(set(rounded)) == len(rounded):
            return rounded
    return [f"{v:.{max_decimal}f}" for v in values]


def console_tables(hists: AttributeHistograms, bins: int = 10, total: bool = False) -> str:
    """Dolma's console view: per histogram, ~10 equal-count bins with range, share and count."""
    out = []
    for name in sorted(hists.histograms):
        counts, edges = hists.histograms[name].equal_count(bins)
        out.append(name)
        labels = format_value(edges)
        n = sum(counts) or 1
        shares = format_value([c / n for c in counts])
        width = max([len(f"[{a}, {b})") for a, b in zip(labels, labels[1:])] + [5])
        out.append(f"  {'value':<{width}}  {'dist':<8}  count")
        for i, (count, share) in enumerate(zip(counts, shares)):
            closing = "]" if i == len(counts) - 1 else ")"
            label = f"[{labels[i]}, {labels[i + 1]}{closing}"
            out.append(f"  {label:<{width}}  {share:<8}  {count:,}")
        if total:
            out.append(f"  {'sum ← sum/total → total':<{width}}  {hists.total_sum:.4f} ← "
                       f"{hists.total_sum / max(hists.total_count, 1):.4f} → {hists.total_count:,}")
        out.append("")
    return "\n".join(out)


def summaries(hists: AttributeHistograms, bins: int) -> list[dict]:
    """Dolma's `summaries.jsonl.gz` records: {name, counts, bins, total, sum}, len(bins) == len(counts) + 1."""
    out = []
    for name in sorted(hists.histograms):
        hist = hists.histograms[name]
        counts, edges = hist.equal_width(bins)
        out.append({"name": name, "counts": counts, "bins": edges, "total": hist.count, "sum": hist.total})
    return out
