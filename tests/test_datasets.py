"""Unpacking and verifying the Open Bandit Dataset archive, on a small archive built here."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from loyalty_bandit.datasets import DatasetError, find_obd_dir, unpack_obd, verify


def build_archive(path, members):
    with tarfile.open(path, "w:gz") as bundle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))


def test_unpack_keeps_dataset_prior_and_license(tmp_path):
    archive = tmp_path / "obp-0.5.7.tar.gz"
    build_archive(
        archive,
        {
            "obp-0.5.7/obp/dataset/obd/random/all/all.csv": b"a,b\n1,2\n",
            "obp-0.5.7/obp/dataset/obd/bts/all/item_context.csv": b"item_id\n0\n",
            "obp-0.5.7/obp/policy/conf/prior_bts.yaml": b"all:\n  alpha: [1.0]\n",
            "obp-0.5.7/LICENSE": b"Apache License",
            "obp-0.5.7/obp/ope/estimators.py": b"print('not data')",
        },
    )
    target = tmp_path / "obd"

    written = unpack_obd(archive, target)

    assert sorted(path.relative_to(target).as_posix() for path in written) == [
        "LICENSE-obp", "bts/all/item_context.csv", "prior_bts.yaml", "random/all/all.csv",
    ]
    assert (target / "random/all/all.csv").read_bytes() == b"a,b\n1,2\n"
    assert "arXiv:2008.07146" in (target / "ATTRIBUTION.txt").read_text()
    assert find_obd_dir(target) == target


def test_verify_rejects_other_archive(tmp_path):
    archive = tmp_path / "obp-0.5.7.tar.gz"
    archive.write_bytes(b"not the archive")

    with pytest.raises(DatasetError) as caught:
        verify(archive)

    assert hashlib.sha256(b"not the archive").hexdigest() in str(caught.value)
    assert "not trusted" in str(caught.value)


def test_unpack_rejects_unsafe_path(tmp_path):
    archive = tmp_path / "obp-0.5.7.tar.gz"
    build_archive(archive, {"obp-0.5.7/obp/dataset/obd/../../../escape.csv": b"x"})

    with pytest.raises(DatasetError) as caught:
        unpack_obd(archive, tmp_path / "obd")

    assert "unsafe path" in str(caught.value)
    assert not (tmp_path / "escape.csv").exists()
