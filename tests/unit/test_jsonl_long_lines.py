"""Appends to the registry's JSON-lines files keep a valid last line of any length (issue 13:
the append used to look for the last line in the final 1 MiB only, took a longer one for a torn
line and cut it in the middle)."""

from __future__ import annotations

import json
from pathlib import Path

from models.jsonl import append_jsonl, read_jsonl
from models.registry import ModelRegistry


def _writer(folder: Path, version: int) -> dict:
    (folder / "model_card.md").write_text(f"# card v{version}\n")
    return {"model": "m"}


def test_a_2_mib_history_line_and_a_1_3_mb_monitoring_record_survive_later_appends(tmp_path):
    reg = ModelRegistry(tmp_path, "m")
    assert reg.publish(_writer, promote=True, history_event={"event": "promoted"}) == 1
    long_reason = "r" * (2 << 20)  # a rejected run with a 2 MiB reason
    reg.append_history({"event": "rejected", "version": None, "reason": long_reason})
    features = {f"feature_{i:03d}": {"psi": 0.01 * i, "status": "stable", "note": "n" * 4000} for i in range(320)}
    reg.append_monitoring({"verdict": "stable", "drift": {"features": features}})  # about 1.3 MB
    assert reg.monitoring_path.stat().st_size > 1_300_000
    reg.append_monitoring({"verdict": "drift"})
    assert reg.publish(_writer, promote=True, history_event={"event": "promoted"}) == 2  # appends after it
    events = reg.history()
    assert [e["event"] for e in events] == ["promoted", "rejected", "promoted"]
    assert events[1]["reason"] == long_reason
    assert [r["verdict"] for r in reg.monitoring_history()] == ["stable", "drift"]
    assert reg.monitoring_history()[0]["drift"]["features"] == features
    assert not reg.history_path.with_name("history.jsonl.torn").exists()
    assert not reg.monitoring_path.with_name("monitoring.jsonl.torn").exists()
    assert reg.champion() == 2 and reg.verify(2)["version"] == 2  # the promotion after them is loadable
    assert [e.event for e in reg.history_events()] == ["promoted", "rejected", "promoted"]


def test_a_long_last_line_without_its_newline_gets_it_back_and_is_never_cut(tmp_path):
    path = tmp_path / "h.jsonl"
    big = {"reason": "x" * (3 << 20)}
    path.write_bytes(json.dumps({"a": 1}).encode() + b"\n" + json.dumps(big).encode())  # no final newline
    append_jsonl(path, {"b": 2})
    assert read_jsonl(path) == [{"a": 1}, big, {"b": 2}]
    assert not path.with_name("h.jsonl.torn").exists()


def test_a_long_torn_last_line_is_moved_aside_whole(tmp_path):
    path = tmp_path / "h.jsonl"
    torn = b'{"reason": "' + b"y" * (3 << 20)  # a crash in the middle of a 3 MiB append
    path.write_bytes(b'{"a": 1}\n' + torn)
    append_jsonl(path, {"b": 2})
    assert read_jsonl(path) == [{"a": 1}, {"b": 2}]
    assert path.with_name("h.jsonl.torn").read_bytes() == torn + b"\n"


def test_a_single_torn_line_longer_than_a_block_is_the_whole_file(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_bytes(b'{"reason": "' + b"z" * (2 << 20))
    append_jsonl(path, {"b": 2})
    assert read_jsonl(path) == [{"b": 2}]


def test_the_backward_scan_finds_the_last_line_across_block_boundaries(tmp_path):
    from models.jsonl import last_line_start

    path = tmp_path / "f"
    content = b'{"a": 1}\n{"bb": 22}\n'
    path.write_bytes(content)
    with open(path, "rb") as fh:
        for block in (1, 2, 3, 4, 7, 64):  # the newline falls inside, at the edge of, or before a block
            assert last_line_start(fh, len(content), block) == 9
            assert last_line_start(fh, len(content) - 1, block) == 9  # without the final newline
            assert last_line_start(fh, 9, block) == 0  # the first line alone
