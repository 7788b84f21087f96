"""`GET /v1/artifacts/{sha256}`: evidence (EML, attachments) streamed from the artifact store to readers.

The content is named by its SHA-256, so the ETag is that hash and a client holding it gets 304. A malformed or
unknown hash and an artifact the key may not read (`Principal.may_read_profile` on the profiles of its
records) all answer the same 404 that echoes nothing, so a caller cannot probe what exists. The file name and
type come from the first readable record; they come from attackers, so the download is always an attachment
with a cleaned file name, never sniffed or rendered by a browser.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Response
from fastapi.responses import StreamingResponse

from producer import auth
from producer.errors import ErrorBody
from producer.keys import Principal
from worker.artifacts.names import ascii_file_name, safe_file_name
from worker.artifacts.store import ArtifactStore, StoreUnavailable, store_from_settings

NOT_FOUND = "no such artifact"
RESPONSES: dict[int | str, dict] = {
    200: {
        "description": "the stored bytes (Content-Disposition names the file; ETag is the quoted sha256)",
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    },
    304: {"description": "If-None-Match named this artifact's ETag"},
    401: {"model": ErrorBody, "description": "missing or invalid API key"},
    403: {"model": ErrorBody, "description": "the key's role is not allowed to do this"},
    404: {"model": ErrorBody, "description": "no such artifact (or not readable with this key)"},
    429: {"model": ErrorBody, "description": "too many failed authentications from this client address"},
    503: {"model": ErrorBody, "description": "the artifact store is unavailable"},
}


def artifact_store() -> ArtifactStore:
    """The store the settings name (EWS_IR_ARTIFACT_URL, as on the workers); tests override it."""
    return store_from_settings()


def content_disposition(name: str) -> str:
    """`attachment` with an ASCII `filename` and, for other names, RFC 6266's UTF-8 `filename*`."""
    safe = safe_file_name(name)
    fallback = ascii_file_name(name)
    header = f'attachment; filename="{fallback}"'
    return header if safe == fallback else f"{header}; filename*=UTF-8''{quote(safe, safe='')}"


def _none_match(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag in tags


def get_artifact(
    sha256: Annotated[str, Path(description="the artifact's full SHA-256 in lower-case hex")],
    principal: Annotated[Principal, Depends(auth.reader)],
    store: Annotated[ArtifactStore, Depends(artifact_store)],
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    """Download an artifact named in a result envelope's `artifact.url` (reader role)."""
    etag = f'"{sha256}"'
    try:
        record = store.readable_record(sha256, principal.may_read_profile)
        if record and _none_match(if_none_match, etag):
            return Response(status_code=304, headers={"ETag": etag})
        content = store.open(sha256) if record else None
    except StoreUnavailable:
        raise HTTPException(503, "the artifact store is unavailable; retry shortly") from None
    if content is None:
        raise HTTPException(404, NOT_FOUND)
    headers = {
        "ETag": etag,
        "Content-Length": str(content.size),
        "Content-Disposition": content_disposition(record["name"]),
        "Cache-Control": "private, no-cache",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    return StreamingResponse(content.chunks, media_type=record["content_type"], headers=headers)


def add_route(app: FastAPI) -> None:
    app.add_api_route(
        "/v1/artifacts/{sha256}",
        get_artifact,
        methods=["GET"],
        tags=["artifacts"],
        response_class=StreamingResponse,
        responses=RESPONSES,
    )
