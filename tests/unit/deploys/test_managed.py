"""The grouped file/directory operations: their one-command facts and desired state."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from deploys import managed  # noqa: E402


def test_file_states_parse_one_line_per_existing_file() -> None:
    out = ["/etc/gept/gept.env 3a1f 600 gept gept", "/etc/x with space 1 644 root root"]
    assert managed.FileStates().process(out) == {"/etc/gept/gept.env": "3a1f 600 gept gept"}


def test_dir_states_parse() -> None:
    assert managed.DirStates().process(["/etc/gept 700 gept gept"]) == {
        "/etc/gept": "700 gept gept"}


def test_secret_content_stays_out_of_repr() -> None:
    f = managed.literal("s3cret-value\n", "/etc/gept/db_password", "0600", "gept")
    assert "s3cret" not in repr(f)
    assert f.group == "gept"
    assert managed._mode(f.mode) == "600"


def test_copied_file_keeps_bytes(tmp_path: Path) -> None:
    src = tmp_path / "board.json"
    src.write_bytes(b'{"a": 1}')
    assert managed.copied(src, "/x/board.json").content == b'{"a": 1}'
