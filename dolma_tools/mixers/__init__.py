"""`dolma mix`: filters (JSONPath, jq, Python), span replacement, sampling and sharded output."""
