"""/logos and /avatars: tenant logos and user avatars from the blob store, to signed-in operators only.

Pictures are served only when their bytes are a raster image we recognise (never SVG, which can carry
script), with the type taken from the bytes, `nosniff`, and a private cache with an ETag.
"""
from __future__ import annotations

import hashlib

from flask import Blueprint, Response, abort, current_app, request

from backoffice.blobs import BlobStore

bp = Blueprint("blobs", __name__)

SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
MAX_AGE = 3600


def image_type(data: bytes) -> str | None:
    """The image's media type from its first bytes, None for anything else."""
    for signature, media_type in SIGNATURES:
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _serve(folder: str, name: str) -> Response:
    try:
        data = BlobStore(current_app.config["BLOB_DIR"]).get(f"{folder}/{name}")
    except ValueError:
        data = None
    if data is None:
        abort(404)
    media_type = image_type(data)
    if media_type is None:
        abort(415)
    etag = hashlib.sha256(data).hexdigest()[:32]
    if request.if_none_match.contains(etag):
        response = Response(status=304)
    else:
        response = Response(data, mimetype=media_type)
    response.set_etag(etag)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = f"private, max-age={MAX_AGE}"
    return response


@bp.get("/logos/<name>")
def logo(name: str):
    """A tenant's logo."""
    return _serve("logos", name)


@bp.get("/avatars/<name>")
def avatar(name: str):
    """A user's avatar."""
    return _serve("avatars", name)
