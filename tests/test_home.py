from __future__ import annotations

from pathlib import Path

import pytest

from clipfind.errors import LockedError
from clipfind.home import WriterLock, resolve_home


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPFIND_HOME", str(tmp_path / "env"))
    assert resolve_home(tmp_path / "flag") == tmp_path / "flag"
    assert resolve_home() == tmp_path / "env"
    monkeypatch.delenv("CLIPFIND_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert resolve_home() == tmp_path / "xdg" / "clipfind"


def test_second_writer_refused_until_first_releases(tmp_path: Path) -> None:
    with WriterLock(tmp_path):
        with pytest.raises(LockedError, match="already indexing"):
            WriterLock(tmp_path).acquire()
    with WriterLock(tmp_path) as again:
        assert again.held
