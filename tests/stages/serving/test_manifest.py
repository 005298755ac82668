"""The integrity manifest: every file of a folder by sha256; a changed, added or missing file is named."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stages.serving.manifest import (
    MANIFEST_FILE,
    ManifestError,
    dumps,
    loads,
    tree_manifest,
    under,
    verify_folder,
    write_folder_manifest,
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    f = tmp_path / "model"
    (f / "sub").mkdir(parents=True)
    (f / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    (f / "config.json").write_text('{"model_type": "ftpipe_mean_pool"}')
    (f / "sub" / "vocab.txt").write_text("a\nb\n")
    write_folder_manifest(f)
    return f


def test_an_untouched_folder_verifies_and_sha256sum_agrees(folder: Path) -> None:
    assert set(verify_folder(folder, fix="")) == {"model.safetensors", "config.json", "sub/vocab.txt"}
    check = subprocess.run(["sha256sum", "-c", MANIFEST_FILE], cwd=folder, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_one_flipped_byte_is_named_with_both_hashes(folder: Path) -> None:
    before = tree_manifest(folder)["model.safetensors"]
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[1000] ^= 1
    (folder / "model.safetensors").write_bytes(bytes(data))
    after = tree_manifest(folder)["model.safetensors"]
    with pytest.raises(ManifestError) as err:
        verify_folder(folder, fix="Rerun finetune.")
    msg = str(err.value)
    assert f"`model.safetensors`: expected sha256 {before}, found {after}" in msg
    assert str(folder) in msg and "none of its code ran" in msg and msg.endswith("Rerun finetune.")


def test_an_added_file_and_a_missing_one_are_refused(folder: Path) -> None:
    (folder / "evil.py").write_text("print('hi')")
    (folder / "sub" / "vocab.txt").unlink()
    with pytest.raises(ManifestError) as err:
        verify_folder(folder, fix="")
    msg = str(err.value)
    assert "2 file(s) differ" in msg
    assert "`evil.py`: not in the manifest (an added file)" in msg
    assert "`sub/vocab.txt`: in the manifest but missing" in msg


def test_a_symlink_never_matches(folder: Path, tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("a\nb\n")
    (folder / "sub" / "vocab.txt").unlink()
    (folder / "sub" / "vocab.txt").symlink_to(tmp_path / "outside.txt")  # same bytes, through a link
    with pytest.raises(ManifestError, match="`sub/vocab.txt`: expected sha256 .*, found not-a-regular-file"):
        verify_folder(folder, fix="")


def test_no_manifest_or_a_damaged_one_is_refused(folder: Path) -> None:
    (folder / MANIFEST_FILE).write_text("not a manifest\n")
    with pytest.raises(ManifestError, match="line 1: not a `sha256sum` line"):
        verify_folder(folder, fix="")
    (folder / MANIFEST_FILE).unlink()
    with pytest.raises(ManifestError, match="no MANIFEST.sha256, so its files cannot be checked.*Rerun it"):
        verify_folder(folder, fix="Rerun it.")


def test_registry_form_round_trips_and_subfolders_are_cut_out() -> None:
    m = {"MLmodel": "1" * 64, "code/meanpool.py": "2" * 64, "artifacts/model/config.json": "3" * 64}
    assert loads(dumps(m), "tag") == m
    assert under(m, "code") == {"meanpool.py": "2" * 64}
    assert under(m, "artifacts/model/") == {"config.json": "3" * 64}
    with pytest.raises(ManifestError, match="tag: the recorded manifest cannot be read"):
        loads('{"format": 9, "files": {}}', "tag")
