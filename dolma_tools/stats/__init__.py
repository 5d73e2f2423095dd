"""`dolma stats`: a one-pass corpus report (map: collectors, reduce: merge, output: report)."""
