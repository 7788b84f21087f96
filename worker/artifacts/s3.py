"""Artifacts in S3-compatible object storage (`s3://bucket/prefix`), for several worker hosts and the API.

Same layout as the local store under the prefix: `<prefix><2 hex>/<sha256>` and
`<prefix><2 hex>/<sha256>.meta/<id>.json`. An object is written only when a HEAD finds it absent (a PUT is
atomic; two racing writers put the same bytes). Credentials, region and endpoint come from boto3's usual
sources (AWS_* variables, profiles, instance roles); EWS_IR_S3_ENDPOINT_URL names a non-AWS server.
Checksums are sent only where S3 requires them, since several S3-compatible servers refuse boto3's default
CRC trailers.
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from worker.artifacts.location import Location
from worker.artifacts.store import CHUNK_BYTES, ArtifactStore, Content

_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3Store(ArtifactStore):
    def __init__(self, location: Location, inline_max_bytes: int, endpoint_url: str, addressing_style: str):
        super().__init__(inline_max_bytes)
        self.bucket = location.root
        self.prefix = location.prefix
        config = Config(
            s3={"addressing_style": addressing_style},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"mode": "standard"},
        )
        self.client = boto3.session.Session().client("s3", endpoint_url=endpoint_url or None, config=config)

    def _key(self, sha256: str, suffix: str = "") -> str:
        return f"{self.prefix}{sha256[:2]}/{sha256}{suffix}"

    def _put_once(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return
        except ClientError as error:
            if not _missing(error):
                raise
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def _write_content(self, sha256: str, content: bytes) -> str:
        key = self._key(sha256)
        self._put_once(key, content, "application/octet-stream")
        return f"s3://{self.bucket}/{key}"

    def _write_record(self, sha256: str, record_id: str, data: bytes) -> None:
        self._put_once(self._key(sha256, f".meta/{record_id}.json"), data, "application/json")

    def _record_ids(self, sha256: str) -> list[str]:
        prefix = self._key(sha256, ".meta/")
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        return sorted(key.removeprefix(prefix).removesuffix(".json") for key in keys)

    def _read_record(self, sha256: str, record_id: str) -> bytes:
        key = self._key(sha256, f".meta/{record_id}.json")
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def _open_content(self, sha256: str) -> Content | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(sha256))
        except ClientError as error:
            if _missing(error):
                return None
            raise
        return Content(answer["ContentLength"], _chunks(answer["Body"]))


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _MISSING


def _chunks(body) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_BYTES)
    finally:
        body.close()
