"""Signed mode (issue 13 §4): with an Ed25519 key, every history line is signed, and a version no
valid signature vouches for is refused before any byte of it is unpickled — also when the attacker
recomputed every unkeyed hash (metadata.json, metadata.sha256, the commit line, the chain)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from models.audit import attest_unsigned, audit_model
from models.errors import RegistryError
from models.registry import ModelRegistry, SignatureError
from models.signing import generate_keypair, load_keys
from tests.forgery import fitted_pipeline, forge_file, planted_pickle, rechain


@pytest.fixture
def keys(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "keys"
    folder.mkdir()
    private, public = folder / "signing.pem", folder / "verify.pem"
    generate_keypair(private, public)
    return {"private": private, "public": public}


@pytest.fixture
def training_role(monkeypatch, keys):
    monkeypatch.setenv("FINML_SIGNING_KEY_FILE", str(keys["private"]))
    monkeypatch.delenv("FINML_VERIFY_KEY_FILE", raising=False)
    return keys


def _write(folder: Path, version: int) -> dict:
    (folder / "model").mkdir()
    from models.estimators import save_pipeline

    save_pipeline(fitted_pipeline(), folder / "model")
    pd.DataFrame({"score": [0.25, 0.75]}).to_parquet(folder / "reference.parquet", index=False)
    return {"model": "m", "features": ["x"]}


def _publish(root: Path) -> ModelRegistry:
    reg = ModelRegistry(root, "m")
    reg.publish(_write, promote=True, history_event={"event": "promoted"})
    return reg


def _as_scoring_worker(monkeypatch, keys) -> None:
    monkeypatch.delenv("FINML_SIGNING_KEY_FILE", raising=False)
    monkeypatch.setenv("FINML_VERIFY_KEY_FILE", str(keys["public"]))


def test_every_line_is_signed_and_a_scoring_worker_loads_with_the_public_key_alone(tmp_path, training_role,
                                                                                  monkeypatch):
    reg = _publish(tmp_path / "registry")
    line = json.loads(reg.history_path.read_text())
    kid = load_keys(training_role["private"], None).key_id
    assert line["signature"].startswith(f"ed25519:{kid}:")
    _as_scoring_worker(monkeypatch, training_role)
    worker = ModelRegistry(tmp_path / "registry", "m")
    pipeline, version, _ = worker.load_model()
    assert version == 1 and pipeline.predict([[3.0]])[0] == 1
    with pytest.raises(RegistryError, match="no signing key is configured: set FINML_SIGNING_KEY_FILE"):
        worker.retire_champion(reason="a worker cannot write the history")
    assert len(worker.history()) == 1  # nothing was written


def test_a_planted_pickle_with_every_hash_recomputed_is_refused_before_unpickling(tmp_path, training_role,
                                                                                 monkeypatch):
    """The attack of the issue: replace pipeline.joblib with a pickle that writes a marker file, and
    recompute the file's hash, metadata.sha256, the commit line's digest and the chain."""
    from tasks.scoring import load_model_version

    reg = _publish(tmp_path / "registry")
    marker = tmp_path / "pwned"
    forge_file(reg, 1, "model/pipeline.joblib", planted_pickle(marker))
    _as_scoring_worker(monkeypatch, training_role)
    worker = ModelRegistry(tmp_path / "registry", "m")
    with pytest.raises(SignatureError, match="history.jsonl line 1: signature does not verify"):
        worker.load_model()
    with pytest.raises(SignatureError):
        load_model_version.fn(SimpleNamespace(name="m"), tmp_path / "registry")
    assert not marker.exists()
    forge_file(worker, 1, "model/pipeline.joblib", planted_pickle(marker), drop_signatures=True)  # look unsigned
    with pytest.raises(SignatureError, match="no signed line vouches for it"):
        ModelRegistry(tmp_path / "registry", "m").load_model()
    assert not marker.exists()
    report = audit_model(ModelRegistry(tmp_path / "registry", "m"))
    assert report.breaks == [("version 1: no signed line vouches for it (committed before signing was turned on, or "
                              "forged): loads refuse it; finml registry sign m vouches for the versions you trust")]


def test_without_a_key_the_same_forgery_is_unpickled(tmp_path, monkeypatch):
    """What unsigned mode does not protect against (docs/registry.md): the forged version loads."""
    monkeypatch.delenv("FINML_SIGNING_KEY_FILE", raising=False)
    monkeypatch.delenv("FINML_VERIFY_KEY_FILE", raising=False)
    reg = _publish(tmp_path / "registry")
    marker = tmp_path / "pwned"
    forge_file(reg, 1, "model/pipeline.joblib", planted_pickle(marker))
    with pytest.raises(Exception):  # noqa: B017 (the planted object is not a pipeline; its code already ran)
        reg.load_model()
    assert marker.exists()


def test_the_scoring_load_reads_the_checked_reference_sample(tmp_path, training_role):
    from tasks.scoring import load_model_version

    _publish(tmp_path / "registry")
    loaded = load_model_version.fn(SimpleNamespace(name="m"), tmp_path / "registry")
    assert loaded.version == 1 and loaded.reference["score"].tolist() == [0.25, 0.75]


def test_a_forged_unsigned_rollback_line_makes_every_load_refuse(tmp_path, training_role, monkeypatch):
    root = tmp_path / "registry"
    reg = _publish(root)
    reg.publish(_write, promote=True, history_event={"event": "promoted"})
    lines = [json.loads(line) for line in reg.history_path.read_text().splitlines()]
    lines.append({"event": "rolled_back", "version": 1, "champion_after": 1, "prev_sha256": ""})  # no key: unsigned
    rechain(reg.history_path, lines)
    _as_scoring_worker(monkeypatch, training_role)
    with pytest.raises(SignatureError, match="history.jsonl line 3 is not signed though a line before it is"):
        ModelRegistry(root, "m").load_model()


def test_a_version_published_before_signing_is_refused_until_it_is_attested(tmp_path, monkeypatch, keys):
    root = tmp_path / "registry"
    monkeypatch.delenv("FINML_SIGNING_KEY_FILE", raising=False)
    _publish(root)  # unsigned mode
    monkeypatch.setenv("FINML_SIGNING_KEY_FILE", str(keys["private"]))
    with pytest.raises(SignatureError, match="committed by an unsigned history line .* finml registry sign m"):
        ModelRegistry(root, "m").load_model()
    assert attest_unsigned(ModelRegistry(root, "m"), reason="checked") == [1]
    assert attest_unsigned(ModelRegistry(root, "m"), reason="again") == []
    assert ModelRegistry(root, "m").load_model()[1] == 1
    assert ModelRegistry(root, "m").history()[-1]["event"] == "attested"
    marker = tmp_path / "pwned"
    forge_file(ModelRegistry(root, "m"), 1, "model/pipeline.joblib", planted_pickle(marker))  # attestation too
    with pytest.raises(SignatureError, match="line 2: signature does not verify"):
        ModelRegistry(root, "m").load_model()
    assert not marker.exists()


def test_a_signature_by_another_key_is_named(tmp_path, training_role, monkeypatch):
    root = tmp_path / "registry"
    _publish(root)
    other_private, other_public = tmp_path / "other.pem", tmp_path / "other.pub"
    generate_keypair(other_private, other_public)
    monkeypatch.delenv("FINML_SIGNING_KEY_FILE")
    monkeypatch.setenv("FINML_VERIFY_KEY_FILE", str(other_public))
    with pytest.raises(SignatureError, match=r"line 1: signed with key [0-9a-f]{16}, not the configured key"):
        ModelRegistry(root, "m").verify(1)


def test_key_files_are_refused_inside_the_registry_writable_or_mismatched(tmp_path, keys):
    root = tmp_path / "registry"
    root.mkdir()
    inside = root / "signing.pem"
    inside.write_bytes(keys["private"].read_bytes())
    inside.chmod(0o600)
    with pytest.raises(RegistryError, match="FINML_SIGNING_KEY_FILE .* is inside the registry"):
        load_keys(inside, None, root)
    writable = tmp_path / "writable.pem"
    writable.write_bytes(keys["private"].read_bytes())
    writable.chmod(0o620)
    with pytest.raises(RegistryError, match="writable by group or others"):
        load_keys(writable, None, root)
    other_private, other_public = tmp_path / "o.pem", tmp_path / "o.pub"
    generate_keypair(other_private, other_public)
    with pytest.raises(RegistryError, match="is not the public half of FINML_SIGNING_KEY_FILE"):
        load_keys(keys["private"], other_public, root)
    with pytest.raises(RegistryError, match="FINML_VERIFY_KEY_FILE=.*: not a PEM public key"):
        load_keys(None, keys["private"], root)
    assert oct(keys["private"].stat().st_mode & 0o777) == "0o600"
    with pytest.raises(FileExistsError):
        generate_keypair(keys["private"], tmp_path / "new.pub")  # a key is never overwritten


def test_the_cli_verify_and_sign_in_signed_mode(finml_env, keys, monkeypatch):
    from typer.testing import CliRunner

    from flows.cli import app

    root = finml_env["registry"]
    _publish(root)  # unsigned mode
    monkeypatch.setenv("FINML_SIGNING_KEY_FILE", str(keys["private"]))
    run = CliRunner().invoke
    result = run(app, ["registry", "verify", "m"], env={"COLUMNS": "400"})
    assert result.exit_code == 1 and "m: BROKEN first break: version 1: no signed line vouches for it" in result.output
    result = run(app, ["registry", "sign", "m", "--reason", "checked"], env={"COLUMNS": "400"})
    assert result.exit_code == 0 and "m: attested version(s) 1" in result.output, result.output
    result = run(app, ["registry", "verify", "m"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert ("m: OK (signed mode); history.jsonl: 2 line(s), chain intact, signatures verified: 1, unsigned lines "
            "before the first signed one: 1; versions verified: 1") in result.output


def test_the_champion_loaded_is_the_one_the_checked_history_names(tmp_path, training_role, monkeypatch):
    """The champion is resolved before the check reads the history again: if the two reads disagree
    (a history swapped in between, to roll the champion back to an older signed version), the load
    is refused rather than loading a version the checked history does not make the champion."""
    reg = _publish(tmp_path / "registry")
    reg.publish(_write, promote=True, history_event={"event": "promoted"})
    assert reg.load_model()[1] == 2
    monkeypatch.setattr(reg, "resolve", lambda ref=None: 1)  # what a read of a forged history resolved
    with pytest.raises(SignatureError, match="does not name version 1 the champion \\(it names 2"):
        reg.load_model()
    assert reg.load_model(1)[1] == 1  # asked for by number, version 1 is a valid signed version


def _verify_cli():
    from typer.testing import CliRunner

    from flows.cli import app

    return CliRunner().invoke(app, ["registry", "verify", "m"], env={"COLUMNS": "400"})


def test_verify_without_a_key_does_not_call_a_signed_history_ok(finml_env, training_role, monkeypatch):
    """A new-user trial: with no key configured, verify said 'OK (unsigned mode)' with exit 0 after
    the last signed line was edited (which the chain cannot see; only its signature could)."""
    reg = _publish(finml_env["registry"])
    reg.publish(_write, promote=True, history_event={"event": "promoted", "reason": "run 2"})
    text = reg.history_path.read_text()
    reg.history_path.write_text(text.replace('"reason": "run 2"', '"reason": "run X"'))  # the last line edited
    monkeypatch.delenv("FINML_SIGNING_KEY_FILE")
    result = _verify_cli()
    assert result.exit_code == 1, result.output
    assert "OK" not in result.output
    assert ("m: NOT VERIFIED 2 history line(s) carry signatures that were NOT checked because no key is configured "
            "(set FINML_VERIFY_KEY_FILE to the public key); the hash chain and the files were checked, but the last "
            "line's content is covered only by a signature check, so an edit of it is not detected without the "
            "key\n") in result.output
    assert ("m: history.jsonl: 2 line(s), chain intact; versions verified: 1, 2; monitoring.jsonl: 0 line(s), "
            "chain intact\n") in result.output
    _as_scoring_worker(monkeypatch, training_role)  # with the key, the edit is found
    result = _verify_cli()
    assert result.exit_code == 1 and "first break: history.jsonl line 2: signature does not verify" in result.output


def test_verify_of_a_history_with_every_signature_stripped_says_no_line_is_signed(finml_env, training_role,
                                                                                  monkeypatch):
    reg = _publish(finml_env["registry"])
    lines = [json.loads(line) for line in reg.history_path.read_text().splitlines()]
    for rec in lines:
        rec.pop("signature")
    rechain(reg.history_path, lines)
    result = _verify_cli()
    assert result.exit_code == 1
    assert ("m: history.jsonl: 1 line(s), chain intact, signatures verified: 0, no line carries a signature; "
            "versions verified: none; no valid signature: 1;") in result.output, result.output
    assert "before the first signed one" not in result.output
