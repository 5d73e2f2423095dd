"""Which settings wrote each output, so that resuming skips only outputs this run would write.

Mix, tokens and stats key their own markers by a fingerprint of their settings. Tag and dedupe
write attribute files that have no room for one, and "the output exists" alone is not enough:
a second `dolma tag --experiment e` with another tagger list would keep the first run's files.
So the driver keeps a journal in the output root: the settings of each run, and for each input
the digest of the settings its outputs were written with. An input is done when its outputs
exist *and* the journal says the current settings wrote them.

The journal is one JSON object, rewritten atomically (so it works on object stores, which cannot
append): at most every few seconds while a run goes, and at its end. A killed run loses at most
the last few seconds of entries, and those files are redone. A root without a journal holds
outputs of a version that kept none: they are taken as written with the current settings, as
before, and adopted into the new journal.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from typing import Any, Mapping

import orjson

from dolma_tools.io.files import AtomicWriter, exists, is_remote, open_read
from dolma_tools.runtime.results import FileResult

JOURNAL_VERSION = 1
_MIN_INTERVAL = 5.0  # seconds between rewrites while a run goes


def journal_path(output_root: str, stage: str) -> str:
    return f"{output_root.rstrip('/')}/.dolma-tools-{stage}-settings.json"


def _key(path: str) -> str:
    """Inputs by absolute path (or URL), so a rerun from another directory finds them."""
    return path if is_remote(path) else os.path.abspath(path)


def settings_digest(settings: Mapping[str, Any]) -> str:
    return hashlib.sha1(orjson.dumps(settings, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()[:16]


def _describe_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """`key: old → new` for each setting that differs (what the user changed)."""
    changed = [f"{key}: {old.get(key)!r} → {new.get(key)!r}"
               for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    return "; ".join(changed) or "settings differ"


class SettingsJournal:
    def __init__(self, output_root: str, stage: str, settings: Mapping[str, Any]) -> None:
        self.path = journal_path(output_root, stage)
        self.stage = stage
        self.settings = dict(settings)
        self.digest = settings_digest(self.settings)
        self.legacy, self.runs, self.files = self._load()
        self._dirty = False
        self._last_write = 0.0
        self._interval = _MIN_INTERVAL
        self.stale: list[str] = []  # inputs whose outputs exist but were written with other settings

    def _load(self) -> tuple[bool, dict[str, dict], dict[str, dict]]:
        if not exists(self.path):
            return True, {}, {}
        try:
            with open_read(self.path, compression="") as fh:
                data = orjson.loads(fh.read())
            files = {key: entry for key, entry in data.get("files", {}).items() if isinstance(entry, dict)}
            return False, dict(data.get("settings", {})), files
        except (OSError, orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            # unreadable (cut short by a crash of something else): trust nothing, redo
            return False, {}, {}

    def written_with_current(self, key: str) -> bool:
        """Were the (existing) outputs of input `key` written with this run's settings?"""
        if self.legacy:
            return True
        digest = self.files.get(_key(key), {}).get("settings")
        if digest == self.digest:
            return True
        if digest is not None:
            self.stale.append(key)
        return False

    def staleness_note(self) -> str | None:
        """One line for the user when outputs are redone because the settings changed."""
        if not self.stale:
            return None
        old_digest = self.files[_key(self.stale[0])].get("settings")
        change = _describe_change(self.runs.get(old_digest, {}), self.settings)
        return (f"{self.stage}: {len(self.stale)} file(s) have outputs written with other settings "
                f"({change}); they are redone")

    def done_result(self, key: str) -> FileResult:
        """An input done by an earlier run, with the counts that run recorded. Outputs from before
        journals (none recorded) are adopted into this journal as they are."""
        counts = self.files.get(_key(key), {}).get("result") or {}
        result = FileResult(path=key, skipped_existing=True, documents=counts.get("documents", 0),
                            skipped=counts.get("skipped", 0), errors=list(counts.get("errors", [])),
                            counters=dict(counts.get("counters", {})))
        if self.legacy:
            self.record(key)
        return result

    def report_stale(self) -> None:
        """Tell the user, once, that files are redone because the settings changed."""
        note = self.staleness_note()
        if note:
            print(note, file=sys.stderr)

    def record(self, key: str, result: FileResult | None = None, *, flush: bool = False) -> None:
        """Input `key`'s outputs were written with the current settings; keep its counts."""
        entry: dict[str, Any] = {"settings": self.digest}
        if result is not None and not result.skipped_existing:
            entry["result"] = {"documents": result.documents, "skipped": result.skipped, "errors": result.errors,
                               "counters": result.counters}
        elif result is not None:  # adopted: keep whatever counts it came with
            entry["result"] = self.files.get(_key(key), {}).get("result")
        self.files[_key(key)] = entry
        self._dirty = True
        if flush or time.monotonic() - self._last_write >= self._interval:
            self.write()

    def write(self) -> None:
        if not self._dirty:
            return
        self.runs[self.digest] = self.settings
        live = {entry["settings"] for entry in self.files.values()}
        data = {"version": JOURNAL_VERSION, "stage": self.stage,
                "settings": {d: s for d, s in self.runs.items() if d in live},
                "files": dict(sorted(self.files.items()))}
        start = time.monotonic()
        with AtomicWriter(self.path, compression="") as out:
            out.write(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str))
        self._dirty = False
        self._last_write = time.monotonic()
        # a huge journal on a slow store must not slow the run: rewrite at most 5% of the time
        self._interval = max(_MIN_INTERVAL, 20 * (self._last_write - start))
