"""The vendored JavaScript: each library is in the tree at its pinned version with its licence,
and a refresh writes nothing from a tarball whose integrity is not the pinned one."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from kasparro.api.ui.vendor import LIBRARIES, Library, VendorError, sha512_integrity, unpack

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda lib: lib.name)
def test_each_library_is_vendored_at_its_pin_with_its_licence(library: Library) -> None:
    folder = ROOT / library.destination
    for name in library.files.values():
        assert (folder / name).is_file(), name
    assert "LICENSE" in library.files.values()
    provenance = (folder / "VENDORED.txt").read_text()
    assert f"{library.name} {library.version}" in provenance
    assert library.integrity in provenance


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_refresh_checks_the_integrity_before_writing(tmp_path: Path) -> None:
    tarball = _tarball({"package/lib.js": b"var x = 1;", "package/LICENSE": b"MIT"})
    library = Library(
        name="lib",
        version="1.0.0",
        integrity=sha512_integrity(tarball),
        files={"package/lib.js": "lib.js", "package/LICENSE": "LICENSE"},
        destination=Path("vendor/lib"),
    )
    written = unpack(library, tarball, tmp_path)
    assert (tmp_path / "vendor/lib/lib.js").read_bytes() == b"var x = 1;"
    assert len(written) == 3  # the two files and VENDORED.txt

    tampered = _tarball({"package/lib.js": b"steal();", "package/LICENSE": b"MIT"})
    with pytest.raises(VendorError, match="integrity"):
        unpack(library, tampered, tmp_path / "other")
    assert not (tmp_path / "other").exists()
