"""Fetch the Open Bandit Dataset sample from the ``obp`` 0.5.7 source distribution.

The sample (10,000 rows per logging policy and campaign) ships inside the
``obp`` package's source distribution on PyPI, next to the BTS prior. pip
downloads the archive, its SHA-256 is checked against the value pinned below,
and only the dataset files and the prior are unpacked, into the layout the
replay harness reads: ``DIR/{random,bts}/CAMPAIGN/`` and ``DIR/prior_bts.yaml``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from bandit.errors import BanditError

OBP_VERSION = "0.5.7"
OBP_SDIST = f"obp-{OBP_VERSION}.tar.gz"
OBP_SDIST_SHA256 = "3060d67fedfcfadf1e7a6f2608987f74412b5eb74d2c567edeb147595c68f2a0"
"""SHA-256 of the obp 0.5.7 sdist, as downloaded from PyPI on 2026-12-04."""

_DATASET_PREFIX = f"obp-{OBP_VERSION}/obp/dataset/obd/"
_PRIOR_MEMBER = f"obp-{OBP_VERSION}/obp/policy/conf/prior_bts.yaml"
_LICENSE_MEMBER = f"obp-{OBP_VERSION}/LICENSE"

ATTRIBUTION = """Open Bandit Dataset, small sample (ZOZOTOWN, ZOZO Research).

Unpacked by `loyalty-bandit datasets fetch obd` from the obp {version} source
distribution on PyPI (sha256 {sha256}); the obp repository is licensed
Apache-2.0 (LICENSE-obp beside this file). The full dataset and its licence
terms are on ZOZO Research's data page.

Cite: Y. Saito, S. Aihara, M. Matsutani, Y. Narita. "Open Bandit Dataset and
Pipeline: Towards Realistic and Reproducible Off-Policy Evaluation".
NeurIPS 2021 Datasets and Benchmarks Track. arXiv:2008.07146.
"""


class DatasetError(BanditError):
    """A dataset could not be downloaded, verified or unpacked."""


def download_obp_sdist(folder: Path) -> Path:
    """Download the obp sdist into ``folder`` with pip; return the archive path."""
    command = [
        sys.executable, "-m", "pip", "download", f"obp=={OBP_VERSION}",
        "--no-deps", "--no-binary", ":all:", "--ignore-requires-python", "--quiet", "-d", str(folder),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    archive = folder / OBP_SDIST
    if result.returncode != 0 or not archive.exists():
        raise DatasetError(
            f"pip failed to download obp {OBP_VERSION} (exit code {result.returncode}): "
            f"{result.stderr.strip()[-500:]}; check access to PyPI, or pass an existing copy with --obd-dir"
        )
    return archive


def verify(archive: Path, expected_sha256: str = OBP_SDIST_SHA256) -> None:
    """Raise ``DatasetError`` unless the archive's SHA-256 is the pinned one."""
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != expected_sha256:
        raise DatasetError(f"{archive} has SHA-256 {digest}, expected {expected_sha256}; the download is not trusted")


def unpack_obd(archive: Path, target: Path) -> list[Path]:
    """Unpack the dataset files, the BTS prior and the licence into ``target``; return the files."""
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tarfile.open(archive, "r:gz") as bundle:
        for member in bundle.getmembers():
            if not member.isfile():
                continue
            if member.name.startswith(_DATASET_PREFIX):
                relative = Path(member.name[len(_DATASET_PREFIX):])
            elif member.name == _PRIOR_MEMBER:
                relative = Path("prior_bts.yaml")
            elif member.name == _LICENSE_MEMBER:
                relative = Path("LICENSE-obp")
            else:
                continue
            if relative.is_absolute() or ".." in relative.parts:
                raise DatasetError(f"{archive} contains an unsafe path {member.name!r}")
            source = bundle.extractfile(member)
            if source is None:
                continue
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(source.read())
            written.append(destination)
    (target / "ATTRIBUTION.txt").write_text(
        ATTRIBUTION.format(version=OBP_VERSION, sha256=OBP_SDIST_SHA256), encoding="utf-8"
    )
    return written


def fetch_obd(target: Path) -> list[Path]:
    """Download, verify and unpack the Open Bandit Dataset sample into ``target``."""
    with tempfile.TemporaryDirectory() as folder:
        archive = download_obp_sdist(Path(folder))
        verify(archive)
        return unpack_obd(archive, target)


def find_obd_dir(explicit: Path | None = None) -> Path | None:
    """Return the first OBD folder found: ``explicit``, $LOYALTY_BANDIT_OBD_DIR, ./data/obd, ../shared/data/obd."""
    candidates = [explicit] if explicit is not None else []
    environment = os.environ.get("LOYALTY_BANDIT_OBD_DIR")
    if environment:
        candidates.append(Path(environment))
    candidates += [Path("data/obd"), Path("../shared/data/obd")]
    for candidate in candidates:
        if candidate is not None and (candidate / "random").is_dir() and (candidate / "bts").is_dir():
            return candidate
    return None
