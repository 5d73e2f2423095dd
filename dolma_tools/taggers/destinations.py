"""Where `dolma tag` writes attribute files when `destination` is given.

Without `destination`, attribute files mirror their documents (`<base>/documents/<rel>` ->
`<base>/attributes/<set>/<rel>`, reference-dolma.md §4); `io.paths.attribute_path` does that.

`destination` follows Dolma's CLI: a list of prefixes, one per `documents` pattern, in order. The
files a pattern matches go to `<prefix>/<path relative to the directory they all share>` (one
match: relative to its own directory), with no `attributes/` or experiment folder, and every
tagger of the run writes into that one file (keys stay `<experiment or tagger>__<tagger>__<type>`).
A string counts as a list of one, so `destination: out` in a file and `--destination out` on the
command line mean the same. Dolma's mismatch in counts is a one-line error here, as is two
documents landing on the same attribute file (Dolma silently overwrites the first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from dolma_tools.errors import UserError
from dolma_tools.io.paths import attribute_file_name, expand_globs


def shared_directory(paths: Sequence[str]) -> str:
    """The directory (ending in `/`, or "") that all `paths` share, component by component."""
    dirs = [path.split("/")[:-1] for path in paths]
    common: list[str] = []
    for column in zip(*dirs):
        if any(part != column[0] for part in column):
            break
        common.append(column[0])
    return "/".join(common) + "/" if common else ""


@dataclass
class Destinations:
    """Each input file's attribute files under the `destination` prefixes."""

    prefixes: tuple[tuple[str, str], ...]  # per documents pattern: (directory its matches share, prefix)
    routes: Mapping[str, tuple[int, ...]]  # input file -> the patterns that matched it

    def outputs(self, path: str) -> list[str]:
        out: list[str] = []
        for index in self.routes[path]:
            shared, prefix = self.prefixes[index]
            target = f"{prefix.rstrip('/')}/{attribute_file_name(path[len(shared):])}"
            if target not in out:
                out.append(target)
        return out

    def roots(self) -> list[str]:
        """The distinct destination prefixes, in the order given."""
        return list(dict.fromkeys(prefix.rstrip("/") or "/" for _, prefix in self.prefixes))


def route_documents(patterns: Sequence[str], destination: Sequence[str]) -> tuple[list[str], Destinations]:
    """The input files, and where under the `destination` prefixes their attributes go."""
    if len(destination) != len(patterns):
        raise UserError(f"destination: {len(destination)} given for {len(patterns)} documents pattern(s); give one "
                        f"per pattern, in order (e.g. --documents 'a/*.gz' 'b/*.gz' --destination out/a out/b), "
                        f"or leave destination unset for the mirrored attributes/ path")
    inputs: list[str] = []
    routes: dict[str, tuple[int, ...]] = {}
    prefixes: list[tuple[str, str]] = []
    for index, (pattern, prefix) in enumerate(zip(patterns, destination)):
        if not str(prefix).strip():
            raise UserError(f"destination {index + 1} (for documents pattern {pattern!r}) is empty")
        matches = expand_globs([pattern])
        prefixes.append((shared_directory(matches), str(prefix)))
        for path in matches:
            if path not in routes:
                inputs.append(path)
                routes[path] = ()
            routes[path] += (index,)
    destinations = Destinations(tuple(prefixes), routes)
    _check_targets(inputs, destinations)
    return inputs, destinations


def _check_targets(inputs: Sequence[str], destinations: Destinations) -> None:
    """Before any work: no two documents share an attribute file, and none overwrites a document."""
    writer_of: dict[str, str] = {}
    for path in inputs:
        for target in destinations.outputs(path):
            if target in destinations.routes:
                raise UserError(f"destination would overwrite the document file {target}: "
                                f"choose a destination outside the documents' directories")
            other = writer_of.setdefault(target, path)
            if other != path:
                raise UserError(f"{other} and {path} would both be tagged into {target}: "
                                f"give their documents patterns different destinations")
