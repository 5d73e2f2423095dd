"""S3 access: one boto3 client per process with standard retries and backoff.

Credentials, region (`AWS_REGION`/`AWS_DEFAULT_REGION`, not Dolma's `REGION`) and endpoint
(`AWS_ENDPOINT_URL`, e.g. a local S3-compatible server) come from the standard environment.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
from typing import Iterator

S3_MAX_ATTEMPTS = int(os.environ.get("DOLMA_TOOLS_S3_MAX_ATTEMPTS", "5"))


@functools.lru_cache(maxsize=None)
def _client(endpoint: str | None, region: str | None):
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": S3_MAX_ATTEMPTS, "mode": "adaptive"},
                    connect_timeout=5, read_timeout=60)
    return boto3.client("s3", endpoint_url=endpoint, region_name=region, config=config)


# A forked process (the fork pools of `--executor local`) must not share the parent's client: its
# pooled connections are sockets both would read. Each process makes its own on first use.
os.register_at_fork(after_in_child=_client.cache_clear)


def s3_client():
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return _client(os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"), region)


def s3_transport_params() -> dict:
    return {"client": s3_client()}


def split_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise ValueError(f"not an s3:// URL: {url}")
    bucket, _, key = url[len("s3://"):].partition("/")
    return bucket, key


def remote_exists(url: str) -> bool:
    from botocore.exceptions import ClientError

    bucket, key = split_url(url)
    try:
        s3_client().head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def list_keys(bucket: str, prefix: str) -> Iterator[str]:
    paginator = s3_client().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


def _glob_regex(pattern: str) -> re.Pattern:
    """Real glob semantics: `*` stays within a path segment, `**/` spans any number of them."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            j = pattern.find("]", i)
            if j < 0:
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append(fnmatch.translate(pattern[i:j + 1])[4:-3])
                i = j + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def glob_s3(url: str) -> list[str]:
    bucket, key_pattern = split_url(url)
    wildcard = re.search(r"[*?\[]", key_pattern)
    if wildcard is None:
        return [url] if remote_exists(url) else []
    prefix = key_pattern[: wildcard.start()]
    regex = _glob_regex(key_pattern)
    return sorted(f"s3://{bucket}/{key}" for key in list_keys(bucket, prefix) if regex.match(key))
