"""`make vendor-js`: refresh the console's JavaScript libraries from the npm registry.

Each library is pinned here by version and by the sha512 integrity the registry published for
its tarball. `npm pack` fetches the tarball (npm is needed only for this refresh, never to run or
test the project); the tarball's own sha512 must equal the pinned integrity, and only then are
the listed files (the licence always among them) copied into the tree, with a VENDORED.txt
saying where they came from. Moving to a new version means changing its pin here.

    python -m kasparro.api.ui.vendor [--root .]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

UI_STATIC = Path("src/kasparro/api/ui/static/vendor")
# axe-core is for the browser tests only: kept beside them, never served in production.
TEST_VENDOR = Path("tests/ui/vendor")


@dataclass(frozen=True)
class Library:
    name: str
    version: str
    integrity: str  # the registry's dist.integrity of the tarball
    files: dict[str, str]  # path in the tarball -> file name in `destination`
    destination: Path


LIBRARIES = (
    Library(
        name="uplot",
        version="1.6.32",
        integrity="sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==",
        files={
            "package/dist/uPlot.iife.min.js": "uPlot.iife.min.js",
            "package/dist/uPlot.min.css": "uPlot.min.css",
            "package/LICENSE": "LICENSE",
        },
        destination=UI_STATIC / "uplot",
    ),
    Library(
        name="axe-core",
        version="4.14.1",
        integrity="sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==",
        files={
            "package/axe.min.js": "axe.min.js",
            "package/LICENSE": "LICENSE",
            "package/LICENSE-3RD-PARTY.txt": "LICENSE-3RD-PARTY.txt",
        },
        destination=TEST_VENDOR / "axe-core",
    ),
)


class VendorError(Exception):
    """A refresh that cannot be trusted: nothing of that library was written."""


def sha512_integrity(data: bytes) -> str:
    """The Subresource Integrity string npm publishes: `sha512-` and the base64 digest."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fetch_tarball(library: Library, workdir: Path) -> bytes:
    """The library's tarball, by `npm pack` (which checks the registry's integrity too)."""
    npm = shutil.which("npm")
    if npm is None:
        raise VendorError(
            "npm is needed to refresh vendored JavaScript (Debian: apt-get install npm)"
        )
    spec = f"{library.name}@{library.version}"
    done = subprocess.run(
        [npm, "pack", spec, "--json", "--pack-destination", str(workdir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise VendorError(f"npm pack {spec} failed: {done.stderr.strip()[-500:]}")
    filename = str(json.loads(done.stdout)[0]["filename"])
    return (workdir / filename).read_bytes()


def unpack(library: Library, tarball: bytes, root: Path) -> list[Path]:
    """Checks the tarball against the pin, then writes the listed files; the paths written."""
    actual = sha512_integrity(tarball)
    if actual != library.integrity:
        raise VendorError(
            f"{library.name}@{library.version}: tarball integrity {actual} is not the pinned "
            f"{library.integrity}"
        )
    contents: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "package.tgz"
        archive.write_bytes(tarball)
        with tarfile.open(archive, "r:gz") as tar:
            for member, target in library.files.items():
                extracted = tar.extractfile(member)
                if extracted is None:
                    raise VendorError(f"{library.name}: no file {member} in the tarball")
                contents[target] = extracted.read()
    destination = root / library.destination
    destination.mkdir(parents=True, exist_ok=True)
    written = []
    for target, data in contents.items():
        path = destination / target
        path.write_bytes(data)
        written.append(path)
    provenance = destination / "VENDORED.txt"
    provenance.write_text(
        f"{library.name} {library.version} from the npm registry (npm pack), "
        f"tarball integrity {library.integrity}.\n"
        "Refreshed by `make vendor-js` (src/kasparro/api/ui/vendor.py); do not edit by hand.\n"
    )
    written.append(provenance)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository root")
    args = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for library in LIBRARIES:
                written = unpack(library, fetch_tarball(library, Path(tmp)), args.root)
                names = ", ".join(str(p.relative_to(args.root)) for p in written)
                print(f"{library.name} {library.version}: {names}")
    except VendorError as exc:
        print(f"vendor-js: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
