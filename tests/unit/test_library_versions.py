"""A version trained under other library versions: refused before anything is unpickled, with both
versions and the remedy named; patch differences and versions that record nothing are accepted."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from models.compat import LibraryVersionError, installed_version, library_checks, major_minor
from models.estimators import save_pipeline
from models.registry import IntegrityError, ModelRegistry
from tests.forgery import fitted_pipeline, pipeline_writer, planted_pickle, rewrite_metadata

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy_registry"
SKLEARN = installed_version("scikit-learn")
NUMPY = installed_version("numpy")


def other_minor(version: str) -> str:
    """A release of another major.minor than ``version`` (the issue's case: 1.4.2)."""
    return "1.5.0" if major_minor(version) == (1, 4) else "1.4.2"


def patch_of(version: str) -> str:
    """The same major.minor as ``version``, another patch release."""
    major, minor = major_minor(version)
    return f"{major}.{minor}.999"


def lineage_writer(libraries: dict[str, str], pipeline=None, pickle_bytes: bytes | None = None, network=False):
    """A ``publish`` writer saving ``pipeline`` (or raw ``pickle_bytes`` as ``pipeline.joblib``) and
    recording ``libraries`` as the version's lineage."""

    def write(folder: Path, version: int) -> dict:
        (folder / "model").mkdir()
        if pickle_bytes is not None:
            (folder / "model" / "pipeline.joblib").write_bytes(pickle_bytes)
        else:
            save_pipeline(pipeline, folder / "model")
        if network:
            (folder / "model" / "network.keras").write_bytes(b"not read: refused first")
        return {"model": "m", "lineage": {"libraries": libraries, "git": {}}}

    return write


def publish(reg: ModelRegistry, write) -> int:
    return reg.publish(write, promote=True, history_event={"event": "promoted"})


def test_a_version_recording_another_scikit_learn_is_refused_naming_both_versions_before_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    reg = ModelRegistry(tmp_path / "registry", "m")
    other = other_minor(SKLEARN)
    publish(reg, lineage_writer({"scikit-learn": other, "numpy": NUMPY}, pickle_bytes=planted_pickle(marker)))
    with pytest.raises(LibraryVersionError) as err:
        reg.load_model()
    message = str(err.value)
    assert f"scikit-learn {other} recorded, {SKLEARN} installed" in message
    assert "finml train m" in message and f"pip install 'scikit-learn=={other}'" in message
    assert "numpy" not in message  # numpy matches: not named
    assert not marker.exists()  # refused before the pickle was read
    assert reg.verify(1)["version"] == 1  # the version itself is intact


def test_a_rewritten_metadata_recording_another_scikit_learn_is_refused(tmp_path):
    """The acceptance case: metadata (hashes recomputed as the writer would) records another release."""
    reg = ModelRegistry(tmp_path / "registry", "m")
    publish(reg, lineage_writer({"scikit-learn": SKLEARN, "numpy": NUMPY}, fitted_pipeline()))
    assert reg.load_model()[1] == 1
    other = other_minor(SKLEARN)
    rewrite_metadata(reg, 1, lambda meta: meta["lineage"]["libraries"].update({"scikit-learn": other}))
    with pytest.raises(LibraryVersionError, match=f"scikit-learn {other} recorded, {SKLEARN} installed"):
        reg.load_model(1)


def test_metadata_edited_without_its_hashes_is_an_integrity_error_first(tmp_path):
    reg = ModelRegistry(tmp_path / "registry", "m")
    publish(reg, lineage_writer({"scikit-learn": SKLEARN}, fitted_pipeline()))
    meta = reg.version_dir(1) / "metadata.json"
    meta.chmod(0o644)
    other = other_minor(SKLEARN)
    meta.write_text(meta.read_text().replace(f'"scikit-learn": "{SKLEARN}"', f'"scikit-learn": "{other}"'))
    with pytest.raises(IntegrityError, match="metadata.json: SHA-256 differs"):
        reg.load_model(1)


def test_a_patch_difference_is_accepted_and_logged(tmp_path, caplog):
    reg = ModelRegistry(tmp_path / "registry", "m")
    pipeline = fitted_pipeline()
    publish(reg, lineage_writer({"scikit-learn": patch_of(SKLEARN), "numpy": patch_of(NUMPY)}, pipeline))
    with caplog.at_level(logging.INFO, logger="models.compat"):
        loaded, _, _ = reg.load_model()
    X = np.array([[0.5], [2.5]])
    np.testing.assert_array_equal(loaded.predict_proba(X), pipeline.predict_proba(X))
    assert f"scikit-learn {patch_of(SKLEARN)} recorded, {SKLEARN} installed" in caplog.text


def test_a_version_that_records_no_library_versions_is_accepted(tmp_path):
    reg = ModelRegistry(tmp_path / "registry", "m")
    publish(reg, pipeline_writer(fitted_pipeline()))  # no lineage at all, as hand-made or very old records
    publish(reg, lineage_writer({}, fitted_pipeline()))  # a lineage without libraries
    publish(reg, lineage_writer({"python": "3.9.0"}, fitted_pipeline()))  # libraries not compared
    assert [reg.load_model(v)[1] for v in (1, 2, 3)] == [1, 2, 3]


def test_keras_and_tensorflow_are_compared_for_a_version_with_a_network_only(tmp_path):
    reg = ModelRegistry(tmp_path / "registry", "m")
    recorded = {"scikit-learn": SKLEARN, "numpy": NUMPY, "keras": "2.15.0", "tensorflow": "2.15.1"}
    publish(reg, lineage_writer(recorded, fitted_pipeline()))  # no network.keras: Keras never reads it
    assert reg.load_model(1)[1] == 1
    marker = tmp_path / "unpickled"
    publish(reg, lineage_writer(recorded, pickle_bytes=planted_pickle(marker), network=True))
    with pytest.raises(LibraryVersionError) as err:
        reg.load_model(2)
    assert "keras 2.15.0 recorded" in str(err.value) and "tensorflow 2.15.1 recorded" in str(err.value)
    assert not marker.exists()


def test_library_checks_name_what_is_not_installed_and_treat_tensorflow_cpu_as_tensorflow():
    meta = {"files": {"model/network.keras": "0" * 64},
            "lineage": {"libraries": {"scikit-learn": "1.4.2", "numpy": "2.0.1", "keras": "3.3.3",
                                      "tensorflow-cpu": "2.16.1"}}}
    installed = {"scikit-learn": "1.4.0", "numpy": "1.26.4", "tensorflow": "2.16.2"}.get
    checks = {c.name: c for c in library_checks(meta, installed)}
    assert [(n, c.matches, c.patch_only) for n, c in checks.items()] == [
        ("scikit-learn", True, True), ("numpy", False, False), ("keras", False, False),
        ("tensorflow-cpu", True, True)]
    assert checks["keras"].describe() == "keras 3.3.3 recorded, not installed"
    assert checks["numpy"].describe() == "numpy 2.0.1 recorded, 1.26.4 installed"
    assert major_minor("2.0rc1") == (2, 0) and major_minor("dev") == "dev"


def test_the_override_loads_with_a_warning_and_names_the_mismatch_if_loading_fails(tmp_path, monkeypatch, caplog):
    reg = ModelRegistry(tmp_path / "registry", "m")
    other = other_minor(SKLEARN)
    publish(reg, lineage_writer({"scikit-learn": other}, fitted_pipeline()))
    publish(reg, lineage_writer({"scikit-learn": other}, pickle_bytes=b"\x80\x04not a pickle"))
    monkeypatch.setenv("FINML_ALLOW_LIBRARY_MISMATCH", "1")
    with caplog.at_level(logging.WARNING, logger="models.compat"):
        assert reg.load_model(1)[1] == 1
    assert f"FINML_ALLOW_LIBRARY_MISMATCH set, loading despite scikit-learn {other} recorded" in caplog.text
    with pytest.raises(LibraryVersionError, match=f"failed to load under FINML_ALLOW_LIBRARY_MISMATCH "
                                                  rf"\(scikit-learn {other} recorded, {SKLEARN} installed\)"):
        reg.load_model(2)


def test_registry_show_reports_the_comparison_beside_the_hash_check(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from flows.cli import app
    from tasks.scoring import load_model_version

    root = tmp_path / "registry"
    shutil.copytree(LEGACY, root, ignore=shutil.ignore_patterns("README.md"))
    monkeypatch.setenv("FINML_REGISTRY_DIR", str(root))
    runner = CliRunner()
    env = {"COLUMNS": "300"}
    shown = runner.invoke(app, ["registry", "show", "credit_risk"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "(hashes verified); libraries: match" in shown.output  # the fixture's versions are the venv's
    reg = ModelRegistry(root, "credit_risk")
    other = other_minor(SKLEARN)
    rewrite_metadata(reg, 1, lambda meta: meta["lineage"]["libraries"].update({"scikit-learn": other}))
    shown = runner.invoke(app, ["registry", "show", "credit_risk"], env=env)
    assert shown.exit_code == 0, shown.output
    assert f"(hashes verified); libraries: scikit-learn {other} recorded, {SKLEARN} installed" in shown.output
    assert "load refused" in shown.output
    with pytest.raises(LibraryVersionError, match=f"credit_risk version 1 .*scikit-learn {other} recorded"):
        load_model_version.fn(SimpleNamespace(name="credit_risk"), root)  # what scoring and monitoring load
    scored = runner.invoke(app, ["registry", "show", "credit_risk"], env={**env, "FINML_ALLOW_LIBRARY_MISMATCH": "1"})
    assert "loaded anyway (FINML_ALLOW_LIBRARY_MISMATCH is set)" in scored.output
