"""Ray execution of per-file stage functions: retries, resume, progress and run summaries."""

from dolma_tools.runtime.executor import ensure_ray, map_in_parallel, run_files
from dolma_tools.runtime.results import FileResult, RunSummary

__all__ = ["FileResult", "RunSummary", "ensure_ray", "map_in_parallel", "run_files"]
