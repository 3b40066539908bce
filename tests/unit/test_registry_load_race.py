"""Check-then-load (issue 13 §4): a file swapped between the hash check and the unpickling used to
be loaded (a racing thread won 6 of 40 loads). The registry now reads each file once, checks those
bytes and deserialises the same bytes: a load returns the verified pipeline or refuses."""

from __future__ import annotations

import io
import os
import pickle
import threading
from pathlib import Path

import pytest

import models.integrity as integrity
from models.registry import IntegrityError, ModelRegistry
from tests.forgery import fitted_pipeline, pipeline_writer, writable

LOADS = 100


def _is_genuine(pipeline) -> bool:
    return pipeline.steps[-1][1].coef_[0][0] > 0  # the swapped-in pipeline has a negative coefficient


def _registry(tmp_path: Path) -> tuple[ModelRegistry, Path, bytes]:
    reg = ModelRegistry(tmp_path / "registry", "m")
    reg.publish(pipeline_writer(fitted_pipeline(1.0)), promote=True, history_event={"event": "promoted"})
    target = reg.version_dir(1) / "model" / "pipeline.joblib"
    writable(reg.version_dir(1))
    return reg, target, pickle.dumps(fitted_pipeline(-1.0))


def test_a_file_swapped_right_after_it_was_read_for_the_check_is_not_loaded(tmp_path, monkeypatch):
    """The swap happens exactly in the window: as soon as the first reader of pipeline.joblib
    (the hash check) closes it, the file is replaced by another valid pipeline."""
    reg, target, swapped = _registry(tmp_path)
    real_open = integrity.open_for_read  # how the check reads a version's file (O_NOFOLLOW)
    state = {"swapped": False}

    class SwapOnClose(io.BufferedReader):
        def close(self):
            super().close()
            if not state["swapped"]:
                state["swapped"] = True
                target.write_bytes(swapped)

    def opening(path):
        fh = real_open(path)
        if not state["swapped"] and str(path) == str(target):
            return SwapOnClose(fh.detach())
        return fh

    # any later read of the file (a second open to deserialise it) would see the swapped bytes
    monkeypatch.setattr(integrity, "open_for_read", opening)
    pipeline, _, _ = reg.load_model(1)
    monkeypatch.undo()
    assert state["swapped"] and target.read_bytes() == swapped  # the swap did happen
    assert _is_genuine(pipeline)  # and the loaded pipeline is the one whose hash was checked
    with pytest.raises(IntegrityError, match="model/pipeline.joblib: SHA-256 differs"):
        reg.load_model(1)  # the swapped file is refused from now on


def test_a_racing_thread_swapping_the_model_file_never_gets_it_loaded(tmp_path):
    reg, target, swapped = _registry(tmp_path)
    genuine = target.read_bytes()
    stop = threading.Event()
    spare = tmp_path / "spare"

    def racer() -> None:  # swap atomically back and forth (os.replace), as fast as it can
        while not stop.is_set():
            for data in (swapped, genuine):
                spare.write_bytes(data)
                os.replace(spare, target)

    thread = threading.Thread(target=racer, daemon=True)
    thread.start()
    outcomes = {"genuine": 0, "swapped": 0, "refused": 0}
    try:
        for _ in range(LOADS):
            try:
                pipeline, _, _ = reg.load_model(1)
            except IntegrityError:
                outcomes["refused"] += 1
                continue
            outcomes["genuine" if _is_genuine(pipeline) else "swapped"] += 1
    finally:
        stop.set()
        thread.join()
    assert outcomes["swapped"] == 0, outcomes
    assert outcomes["genuine"] + outcomes["refused"] == LOADS
