from dolma_tools.cli.stage import stage_command
from dolma_tools.stats.config import StatsConfig
from dolma_tools.stats.runner import run_stats

command = stage_command(
    "stats", StatsConfig, run_stats,
    help="Corpus report: `--documents GLOB --output DIR` writes DIR/report.json and DIR/report.html "
         "(sizes, lengths, dates, languages, URLs, n-grams, duplicates, PII, toxicity, attributes, "
         "contamination). `dolma stat --attributes GLOB [--report DIR] [--bins N]` prints Dolma's "
         "attribute histograms.")
