"""Atomic outputs and run directories."""

from __future__ import annotations

import os
import stat

import pytest

from mistd.io import atomic_path, increment_path, write_json_atomic, write_text_atomic


def test_failed_write_keeps_the_earlier_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    write_json_atomic(target, {"mAP50": 0.5})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half a fi")
        raise RuntimeError("crash while writing")
    assert target.read_text() == '{\n "mAP50": 0.5\n}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_atomic_files_get_normal_permissions(tmp_path):
    path = write_text_atomic(tmp_path / "a" / "b.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_increment_path_counts_up(tmp_path):
    assert increment_path(tmp_path, "exp") == tmp_path / "exp"
    assert increment_path(tmp_path, "exp") == tmp_path / "exp2"
    assert increment_path(tmp_path, "exp") == tmp_path / "exp3"
    assert increment_path(tmp_path, "exp", exist_ok=True) == tmp_path / "exp"
