"""report.json (stable keys, documented in docs/stats.md) and report.html (one offline file).

The HTML page embeds its plots as base64 PNGs drawn with matplotlib's Agg backend and has no
external references, so it opens anywhere, offline.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

from dolma_tools.stats.attributes import AttributeHistograms
from dolma_tools.stats.collectors import PII_TYPES, StatsPartial
from dolma_tools.stats.merge import DuplicateClusters, find_duplicates
from dolma_tools.stats.sketches import LogHistogram

REPORT_VERSION = 1


def _histogram_json(hist: LogHistogram) -> dict:
    return {"bins": hist.nonempty()}


def _clusters_json(dups: DuplicateClusters, files: list[str], lookup: dict) -> dict:
    largest = []
    for size, rows in dups.largest:
        examples = []
        for f, line in rows:
            info = lookup.get((f, line), {})
            examples.append({"file": files[f], "line": line, **info})
        largest.append({"size": size, "examples": examples})
    return {"documents": dups.documents, "clusters": dups.clusters,
            "documents_in_clusters": dups.in_clusters, "largest": largest}


def _attributes_json(attrs: AttributeHistograms | None, bins: int = 20) -> dict | None:
    if attrs is None:
        return None
    out = {}
    for name in sorted(attrs.histograms):
        h = attrs.histograms[name]
        values = h.sorted_buckets()[0].tolist()
        counts, edges = h.equal_width(bins)
        out[name] = {"count": h.count, "sum": h.total, "mean": h.total / h.count if h.count else None,
                     "min": h.low if h.count else None, "max": h.high if h.count else None,
                     "median": h.quantile(0.5) if values else None,
                     "histogram": {"counts": counts, "bins": edges}}
    return out


def build_report(p: StatsPartial, *, top_k: int = 25, ngram_top: int = 25, ngram_bottom: int = 25,
                 contamination_sets: list | None = None, contamination_n: int | None = None,
                 toxicity_threshold: float = 0.5, lookup=None, run: dict | None = None) -> dict[str, Any]:
    """The report as a JSON-ready dict. `lookup(rows)` maps (file index, line) to {id, ...}."""
    exact = find_duplicates(p.text_hashes, p.text_files, p.text_lines, top=top_k)
    by_url = find_duplicates(p.url_hashes, p.url_files, p.url_lines, top=top_k)
    wanted = {r for _, rows in exact.largest + by_url.largest for r in rows}
    found = lookup(wanted) if lookup is not None and wanted else {}

    def doc_row(r: tuple) -> dict:
        return {"id": r[3], "source": r[4], "characters": r[0], "file": r[1], "line": r[2]}

    tokens = p.tokens if p.tokenizer else None
    summary = {
        "documents": p.documents, "characters": p.characters, "bytes": p.bytes, "words": p.words,
        "tokens": tokens, "tokenizer": p.tokenizer, "files": len(p.files), "skipped_lines": p.skipped,
        "mean_characters": p.characters / p.documents if p.documents else None,
        "mean_words": p.words / p.documents if p.documents else None,
        "shortest": [doc_row(r) for r in p.shortest], "longest": [doc_row(r) for r in p.longest],
    }
    sources = {}
    for name, row in sorted(p.sources.counts.items()):
        sources[name] = {"documents": row[0], "characters": row[1], "bytes": row[2], "words": row[3],
                         "tokens": row[4] if p.tokenizer else None}
    languages = None
    if p.languages is not None:
        languages = {lang: {"documents": d, "characters": c}
                     for lang, (d, c) in sorted(p.languages.items(), key=lambda kv: (-kv[1][0], kv[0]))}
    distributions = {name: _histogram_json(hist) for name, hist in p.histograms.items()
                     if name != "tokens" or p.tokenizer}
    urls = {
        "documents": p.url_documents,
        "domains": {"distinct": len(p.domains.counts) if not p.domains.max_dropped else None,
                    "approximate": bool(p.domains.max_dropped),
                    "top": [{"domain": d, "documents": r[0], "words": r[1], "characters": r[2]}
                            for d, r in p.domains.top(top_k)]},
        "tlds": [{"tld": t, "documents": r[0], "words": r[1]} for t, r in p.tlds.top(top_k)],
        "schemes": dict(sorted(p.schemes.items(), key=lambda kv: (-kv[1], kv[0]))),
    }
    ngrams = {}
    for n, sketch in sorted(p.ngrams.items()):
        ngrams[str(n)] = {
            "total": sketch.total, "distinct": sketch.distinct(), "exact": sketch.is_exact,
            "top": [{"ngram": g, "count": c} for g, c in sketch.top(ngram_top)],
            "bottom": [{"ngram": g, "count": c} for g, c in sketch.bottom(ngram_bottom)],
        }
    pii = None
    if p.pii is not None:
        pii = {t: p.pii.get(t, 0) for t in PII_TYPES}
        pii.update({t: v for t, v in p.pii.items() if t not in pii and t != "documents"})
        pii["documents"] = p.pii.get("documents", 0)
    toxicity = None
    if p.toxicity is not None:
        scored = p.toxicity["scored"]
        toxicity = {"documents": scored, "flagged": p.toxicity["flagged"], "threshold": toxicity_threshold,
                    "fraction": p.toxicity["flagged"] / scored if scored else None,
                    "histogram": p.toxicity["histogram"]}
    contamination = {}
    for es in contamination_sets or []:
        hits = p.contamination.get(es.name, np.zeros(0, np.uint64))
        hit_mask = np.isin(es.hashes, hits)
        per_instance = np.add.reduceat(hit_mask.astype(np.int64), es.offsets[:-1]) if len(es.hashes) else None
        sizes = np.diff(es.offsets)
        if per_instance is not None:
            per_instance = np.where(sizes > 0, per_instance, 0)
            contaminated = int(np.count_nonzero(per_instance > 0))
            overlap = float(np.mean(per_instance[sizes > 0] / sizes[sizes > 0])) if np.any(sizes > 0) else 0.0
        else:
            contaminated, overlap = 0, 0.0
        contamination[es.name] = {"instances": es.instances, "contaminated": contaminated,
                                  "fraction": contaminated / es.instances if es.instances else 0.0,
                                  "mean_ngram_overlap": overlap, "ngram": contamination_n}
    return {
        "version": REPORT_VERSION,
        "summary": summary,
        "sources": sources,
        "distributions": distributions,
        "dates": dict(sorted(p.dates.items())),
        "languages": languages,
        "urls": urls,
        "ngrams": ngrams,
        "duplicates": {"exact": _clusters_json(exact, p.files, found),
                       "url": _clusters_json(by_url, p.files, found)},
        "pii": pii,
        "toxicity": toxicity,
        "attributes": _attributes_json(p.attributes),
        "contamination": contamination,
        "files": p.files,
        "run": run or {},
    }


# ----------------------------------------------------------------------------------------------
# HTML


def _png(fig, fit: bool = False) -> str:
    """The figure as base64 PNG. Margins are fixed (a tight bounding box costs a second full
    draw); `fit` lays out once around long tick labels (horizontal bar charts)."""
    if fit:
        fig.tight_layout()
    else:
        fig.subplots_adjust(left=0.1, right=0.97, top=0.88, bottom=0.2)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _bar(labels: list[str], values: list[float], title: str, xlabel: str = "", horizontal: bool = True) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, max(2.0, 0.28 * len(labels) + 1)) if horizontal else (8, 3.2))
    if horizontal:
        ax.barh(range(len(labels)), values, color="#4C72B0")
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
    else:
        ax.bar(range(len(labels)), values, color="#4C72B0")
        step = max(1, len(labels) // 24)
        ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=60, fontsize=7)
        ax.set_ylabel(xlabel)
    ax.set_title(title)
    return _png(fig, fit=horizontal)


def _log_histogram_png(bins: list[dict], title: str, unit: str) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    lows = [max(b["low"], 0.5) for b in bins]
    highs = [b["high"] if b["high"] else b["low"] * 1.26 for b in bins]
    ax.bar(lows, [b["count"] for b in bins], width=[h - lo for lo, h in zip(lows, highs)], align="edge",
           color="#55A868", edgecolor="white")
    ax.set_xscale("log")
    ax.set_xlabel(unit)
    ax.set_ylabel("documents")
    ax.set_title(title)
    return _png(fig)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape("" if value is None else str(value))


def _img(data: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:24px} h2{font-size:19px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:13px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f4f4f4} td{max-width:560px;overflow-wrap:anywhere} img{display:block;margin:8px 0;max-width:100%}
.grid{display:flex;flex-wrap:wrap;gap:12px} .note{color:#666;font-size:12px}
"""

# Marks, once the page has loaded, whether every image decoded (used by the headless-browser test).
_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.querySelectorAll('img'), ok = 0;
  imgs.forEach(function (img) { var good = img.complete && img.naturalWidth > 0;
    img.setAttribute('data-loaded', good ? '1' : '0'); if (good) { ok++; } });
  document.body.setAttribute('data-images-loaded', ok + '/' + imgs.length);
});
"""


def render_html(report: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    s = report["summary"]
    parts = [f"<h1>Corpus report</h1><p class='note'>{s['files']:,} files; report format v{report['version']}</p>"]
    parts.append("<h2>Summary</h2>")
    parts.append(_table(["documents", "characters", "UTF-8 bytes", "words", "tokens", "skipped lines"],
                        [[s["documents"], s["characters"], s["bytes"], s["words"],
                          s["tokens"] if s["tokens"] is not None else "(no tokenizer)", s["skipped_lines"]]]))
    parts.append(_table(["source", "documents", "characters", "bytes", "words", "tokens"],
                        [[k, v["documents"], v["characters"], v["bytes"], v["words"], v["tokens"]]
                         for k, v in report["sources"].items()]))
    for key, title in (("shortest", "Shortest documents"), ("longest", "Longest documents")):
        parts.append(f"<h3>{title}</h3>")
        parts.append(_table(["id", "source", "characters", "file", "line"],
                            [[r["id"], r["source"], r["characters"], r["file"], r["line"]] for r in s[key]]))

    parts.append("<h2>Distributions</h2><div class='grid'>")
    for name, hist in report["distributions"].items():
        if hist["bins"]:
            parts.append(_img(_log_histogram_png(hist["bins"], f"Document length ({name})", name),
                              f"{name} histogram"))
    parts.append("</div>")
    dates = report["dates"]
    if dates:
        parts.append(_img(_bar(list(dates), list(dates.values()), "Documents by creation month", "documents",
                               horizontal=False), "dates"))
    if report["languages"]:
        langs = list(report["languages"].items())[:25]
        parts.append("<h2>Languages</h2>")
        parts.append(_img(_bar([k for k, _ in langs], [v["documents"] for _, v in langs],
                               "Documents per language (fastText top-1)", "documents"), "languages"))
        parts.append(_table(["language", "documents", "characters"],
                            [[k, v["documents"], v["characters"]] for k, v in langs]))

    urls = report["urls"]
    parts.append(f"<h2>URLs</h2><p>{urls['documents']:,} documents with a URL.</p>")
    if urls["domains"]["top"]:
        top = urls["domains"]["top"][:25]
        parts.append(_img(_bar([d["domain"] for d in top], [d["documents"] for d in top],
                               "Top domains", "documents"), "domains"))
        parts.append(_table(["domain", "documents", "words"], [[d["domain"], d["documents"], d["words"]] for d in top]))
        parts.append(_table(["TLD", "documents", "words"], [[t["tld"], t["documents"], t["words"]] for t in urls["tlds"]]))
        parts.append(_table(["scheme", "documents"], [[k, v] for k, v in urls["schemes"].items()]))

    parts.append("<h2>N-grams</h2>")
    for n, g in report["ngrams"].items():
        mode = "exact" if g["exact"] else "approximate (count-min sketch)"
        parts.append(f"<h3>{n}-grams</h3><p class='note'>{g['total']:,} n-grams, about {g['distinct']:,} "
                     f"distinct; counts {mode}</p><div class='grid'>")
        parts.append(_table(["top n-gram", "count"], [[r["ngram"], r["count"]] for r in g["top"]]))
        parts.append(_table(["bottom n-gram", "count"], [[r["ngram"], r["count"]] for r in g["bottom"]]))
        parts.append("</div>")

    parts.append("<h2>Duplicates</h2>")
    for kind in ("exact", "url"):
        d = report["duplicates"][kind]
        parts.append(f"<h3>{'Identical text' if kind == 'exact' else 'Identical URL'}</h3>"
                     f"<p>{d['documents']:,} documents repeat an earlier one; {d['clusters']:,} clusters "
                     f"hold {d['documents_in_clusters']:,} documents.</p>")
        rows = []
        for c in d["largest"]:
            ex = c["examples"][0] if c["examples"] else {}
            rows.append([c["size"], ", ".join(str(e.get("id")) for e in c["examples"]),
                         ex.get("url") if kind == "url" else ex.get("text")])
        if rows:
            parts.append(_table(["size", "example ids", "url" if kind == "url" else "text"], rows))

    parts.append("<h2>Quality and safety</h2>")
    if report["pii"] is not None:
        parts.append(_table(["PII type", "matches"], [[k, v] for k, v in report["pii"].items()]))
    else:
        parts.append("<p class='note'>PII counting was off or unavailable.</p>")
    tox = report["toxicity"]
    if tox is not None:
        parts.append(f"<p>Toxicity: {tox['flagged']:,} of {tox['documents']:,} documents flagged "
                     f"(profanity probability &ge; {tox['threshold']}).</p>")
        parts.append(_img(_bar([f"{i / 10:.1f}" for i in range(len(tox["histogram"]))], tox["histogram"],
                               "Profanity probability", "documents", horizontal=False), "toxicity"))
    if report["attributes"]:
        parts.append("<h3>Attributes</h3>")
        parts.append(_table(["attribute", "count", "mean", "min", "median", "max"],
                            [[k, v["count"], v["mean"], v["min"], v["median"], v["max"]]
                             for k, v in report["attributes"].items()]))
        parts.append("<div class='grid'>")
        for name, v in list((k, v) for k, v in report["attributes"].items() if k.endswith("/score"))[:12]:
            counts, edges = v["histogram"]["counts"], v["histogram"]["bins"]
            if counts:
                parts.append(_img(_bar([f"{e:.3g}" for e in edges[:-1]], counts, name, "spans",
                                       horizontal=False), name))
        parts.append("</div>")

    if report["contamination"]:
        parts.append("<h2>Contamination</h2>")
        parts.append(_table(["evaluation set", "instances", "contaminated", "fraction", "mean n-gram overlap"],
                            [[k, v["instances"], v["contaminated"], v["fraction"], v["mean_ngram_overlap"]]
                             for k, v in report["contamination"].items()]))
    body = "\n".join(parts)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Corpus report</title>"
            f"<style>{_STYLE}</style><script>{_SCRIPT}</script></head><body>{body}</body></html>")
