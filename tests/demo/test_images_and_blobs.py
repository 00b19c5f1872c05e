"""Generated logos and avatars, and the blob store that keeps them."""
import io

import pytest
from PIL import Image

from backoffice.blobs import BlobStore
from backoffice.demo.images import avatar_png, initials, logo_png


def test_initials():
    assert initials("Fjord", "Analytics") == "FA"
    assert initials(None, "Jensen") == "J"
    assert initials(None, None) == "?"


def test_pictures_are_pngs_stable_per_name():
    logo = Image.open(io.BytesIO(logo_png("Fjord Analytics ApS")))
    assert (logo.format, logo.size) == ("PNG", (96, 96))
    assert logo_png("Fjord Analytics ApS") == logo_png("Fjord Analytics ApS")
    assert avatar_png("Søren", "Jensen", "s@x.example") != avatar_png("Ida", "Jensen", "i@x.example")
    assert Image.open(io.BytesIO(avatar_png(None, None, "x@y.example"))).format == "PNG"


def test_blob_store_round_trip_and_refuses_escaping_keys(tmp_path):
    store = BlobStore(tmp_path)
    assert store.put("logos/ten_1.png", b"png") == "logos/ten_1.png"
    assert store.get("logos/ten_1.png") == b"png"
    assert store.get("logos/none.png") is None
    for key in ("../etc/passwd", "/abs/x.png", "logos/../../x", "logos"):
        with pytest.raises(ValueError):
            store.put(key, b"x")
        assert store.get(key) is None
