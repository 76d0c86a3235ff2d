"""clipfind.errors.one_line: every exception a user is shown, as one short line of text."""

from __future__ import annotations

import errno
import os

import pytest

from clipfind.errors import ModelLoadError, one_line


def test_an_os_error_reads_as_its_reason_and_its_file() -> None:
    exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/photos/a.jpg")
    assert one_line(exc) == "No space left on device: /photos/a.jpg"
    assert one_line(exc, names=False) == "No space left on device"


def test_a_bytes_file_name_is_shown_as_text() -> None:
    """send2trash raises OSError with the file name as bytes: no b'...' in a message."""
    name = os.fsencode("/photos/été/a.jpg")
    exc = PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
    assert one_line(exc) == "Permission denied: /photos/été/a.jpg"
    undecodable = OSError(errno.EIO, os.strerror(errno.EIO), b"/photos/\xff.jpg")
    assert "b'" not in one_line(undecodable) and one_line(undecodable).startswith("Input/output error: /photos/")


def test_both_files_of_a_rename_are_named() -> None:
    exc = OSError(errno.EXDEV, os.strerror(errno.EXDEV), "/a", None, b"/b")  # (errno, text, file, winerror, file2)
    assert one_line(exc) == f"{os.strerror(errno.EXDEV)}: /a -> /b"


def test_an_os_error_without_errno_reads_as_its_text() -> None:
    assert one_line(OSError("cannot identify image file")) == "cannot identify image file"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ValueError("first line\nsecond line"), "first line"),
        (RuntimeError("\n\n  Error(s) in loading   state_dict\n\tfor CLIP"), "Error(s) in loading state_dict"),
        (KeyError(), "KeyError"),
        (ModelLoadError(""), "ModelLoadError"),
        (ValueError("   "), "ValueError"),
    ],
)
def test_other_errors_read_as_their_first_line(exc: BaseException, expected: str) -> None:
    assert one_line(exc) == expected


def test_a_long_reason_is_cut_but_a_file_name_never() -> None:
    long = "x" * 500
    assert one_line(ValueError(long)) == "x" * 197 + "..."
    assert len(one_line(ValueError(long), limit=50)) == 50
    path = "/" + "d" * 300 + "/a.jpg"
    assert one_line(OSError(errno.ENOENT, os.strerror(errno.ENOENT), path)).endswith(path)


def test_a_real_os_error_is_one_line(tmp_path: object) -> None:
    with pytest.raises(OSError) as info:
        open(os.fsencode(os.path.join(str(tmp_path), "missing-é.jpg")), "rb")
    text = one_line(info.value)
    assert "\n" not in text and text.endswith("missing-é.jpg") and "b'" not in text
