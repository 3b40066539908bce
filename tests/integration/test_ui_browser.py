"""``finml ui`` in a real browser: headless Chromium (tests/integration/browser.py) clicks from the
model list to the model, to a version and its model card with its plots, to an Evidently report,
and to the comparison of two versions, on a registry built by the flows (tests/ui_registry.py).
Screenshots go to ``FINML_SCREENSHOT_DIR`` when it is set (``docs/ui-*.png``)."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from flows.server import free_port
from tests.integration.browser import Browser, find_chromium
from tests.integration.conftest import IN_CI
from tests.ui_registry import DROPPED, ui_registry  # noqa: F401 (the fixture)


@pytest.fixture()
def ui_server(ui_registry, tmp_path):  # noqa: F811
    """``finml ui`` as ``finml server start`` runs it: a background process on a free port."""
    from flows.ui import launch

    env = {**os.environ, "FINML_REGISTRY_DIR": str(ui_registry["registry"]),
           "FINML_REPORTS_DIR": str(ui_registry["reports"])}
    pid, url = launch("127.0.0.1", free_port(), env, tmp_path, Path.cwd(), 120, {})
    try:
        yield url
    finally:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if os.waitpid(pid, os.WNOHANG)[0]:
                break
            time.sleep(0.2)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _shot(browser: Browser, tmp_path: Path, name: str) -> None:
    time.sleep(0.5)  # let images and the Evidently widgets paint
    path = browser.screenshot(tmp_path / name)
    assert path.stat().st_size > 10_000
    target = os.environ.get("FINML_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)


def test_clicking_from_the_model_list_to_a_version_and_its_evidently_report(ui_server, ui_registry, tmp_path):  # noqa: F811
    chromium = find_chromium()
    if chromium is None:
        if IN_CI:
            pytest.fail("CI must run the browser check: chromium is missing (.ci/run installs Debian's chromium)")
        pytest.skip("headless Chromium is not installed (apt-get install chromium); CI runs this check")
    with Browser(chromium, width=1400, height=1000, timeout=90) as browser:
        browser.goto(ui_server + "/")
        text = browser.wait_for_text("credit_risk")
        assert "v1" in text and "roc_auc" in text and "stable" in text
        _shot(browser, tmp_path, "ui-models.png")

        browser.click("a.model-link")
        text = browser.wait_for_text("rolled_back")
        assert "champion_retired" in text and "rejected" in text and "PSI against the version's reference sample" in text
        assert browser.evaluate("document.querySelectorAll('#psi-chart circle.point').length") >= 2
        _shot(browser, tmp_path, "ui-model.png")

        browser.click("a.version-link")  # the first row: v1
        text = browser.wait_for_text("verified when this page loaded")
        assert "Model card: credit_risk v1" in text and "data fingerprint" in text
        _shot(browser, tmp_path, "ui-version.png")
        browser.evaluate("document.querySelector('#card img').scrollIntoView()")
        time.sleep(0.5)
        loaded = browser.evaluate("Array.from(document.querySelectorAll('#card img')).map(i => i.complete && i.naturalWidth)")
        assert len(loaded) >= 4 and all(w > 100 for w in loaded), loaded  # every plot of the card served and decoded
        _shot(browser, tmp_path, "ui-card.png")

        browser.goto(ui_server + "/models/credit_risk")
        browser.wait_for_text("rolled_back")
        browser.click("button#compare")  # a = v1, b = v2 by default
        text = browser.wait_for_text("Spec diff")
        assert f"removed in v2: {DROPPED}" in text
        _shot(browser, tmp_path, "ui-compare.png")

        browser.goto(ui_server + "/models/credit_risk")
        browser.wait_for_text("rolled_back")
        browser.click("a.evidently-link")
        text = browser.wait_for_text("credit_risk: drift against the reference sample")
        text = browser.wait_for_text("Drifted Columns")  # drawn by Evidently's own script, offline
        assert "/reports/credit_risk/monitoring/" in browser.evaluate("location.pathname")
        _shot(browser, tmp_path, "ui-evidently.png")
