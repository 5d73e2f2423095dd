"""What a stage reports per file (`FileResult`) and for the whole run (`RunSummary`)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from dolma_tools.io.documents import BadLine

MAX_REPORTED_ERRORS = 20


@dataclass
class FileResult:
    """Counts for one input file. Stages add their own numbers under `counters`."""

    path: str
    documents: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    counters: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    skipped_existing: bool = False

    def bad_line(self, bad: BadLine, strict: bool) -> None:
        """Count a bad record; under --strict it fails the run with file and line."""
        if strict:
            raise bad.as_error()
        self.skipped += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(str(bad))

    def add(self, name: str, value: float = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + value


@dataclass
class RunSummary:
    stage: str
    files: int = 0
    files_skipped_existing: int = 0
    files_failed: int = 0
    documents: int = 0
    documents_resumed: int = 0  # of `documents`: in files an earlier run did
    skipped_lines: int = 0
    errors: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    counters: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def add(self, result: FileResult) -> None:
        """Fold in one file's counts. A file done by an earlier run brings the counts that run
        recorded (if any), so a resumed run's summary still covers every file."""
        self.files += 1
        if result.skipped_existing:
            self.files_skipped_existing += 1
            self.documents_resumed += result.documents
        self.documents += result.documents
        self.skipped_lines += result.skipped
        for err in result.errors:
            if len(self.errors) < MAX_REPORTED_ERRORS:
                self.errors.append(err)
        totals = Counter(self.counters)
        totals.update(result.counters)
        self.counters = dict(totals)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("started")
        data["documents_per_second"] = round(self.documents_this_run / self.seconds, 1) if self.seconds else None
        return data

    @property
    def documents_this_run(self) -> int:
        return self.documents - self.documents_resumed

    def lines(self) -> list[str]:
        rate = f" ({self.documents_this_run / self.seconds:,.0f} docs/s)" if self.seconds else ""
        resumed = f" ({self.documents_resumed:,} in files already done)" if self.documents_resumed else ""
        out = [f"{self.stage}: {self.files} files ({self.files_skipped_existing} already done, "
               f"{self.files_failed} failed), {self.documents:,} documents{resumed}, "
               f"{self.skipped_lines:,} skipped lines, {self.seconds:.1f}s{rate}"]
        for name, value in sorted(self.counters.items()):
            out.append(f"  {name}: {value:,.0f}" if float(value).is_integer() else f"  {name}: {value:,.4f}")
        for err in self.errors[:5]:
            out.append(f"  skipped: {err}")
        if len(self.errors) > 5 or self.skipped_lines > len(self.errors[:5]):
            out.append(f"  ... {self.skipped_lines:,} skipped lines in all (see the summary JSON)")
        for fail in self.failures:
            out.append(f"  FAILED: {fail}")
        return out
