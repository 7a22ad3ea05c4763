"""The app in a real headless Chromium: type a prompt, click Generate, both videos become playable.

Browser plumbing (flags, waits, screenshot) lives in scripts/screenshot.py and is shared with it.
``ADAMOTION_UPDATE_SCREENSHOT=1`` also copies the screenshot to assets/screenshot.png.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load_screenshot_module():
    spec = importlib.util.spec_from_file_location("adamotion_screenshot", REPO / "scripts" / "screenshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


shot = _load_screenshot_module()


def _ensure_browser() -> None:
    """Install Chromium + chromedriver with apt when missing (as root); skip loudly when that fails."""
    reason = shot.browser_missing()
    if reason and "selenium" not in reason and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"],
                    ["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]):
            subprocess.run(cmd, env=env, capture_output=True, timeout=600, check=False)
            reason = shot.browser_missing()
            if not reason:
                break
    if reason:
        pytest.skip(f"BROWSER TEST NOT RUN: {reason}. Run scripts/setup.sh --test to install it.")


@pytest.mark.browser
def test_generate_in_a_real_browser_plays_both_videos(tiny_checkpoint, tmp_path, monkeypatch):
    _ensure_browser()
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    demo = shot.serve(tiny_checkpoint, tmp_path / "requests")
    try:
        driver = shot.make_driver(tmp_path / "profile")
        try:
            state = shot.generate_in_browser(driver, demo.local_url, steps=5, timeout_s=240)
            for video_id, video in state.items():
                assert video["readyState"] >= 3 and video["error"] is None, (video_id, video)
                assert video["width"] > 0 and video["height"] > 0, (video_id, video)
                assert "/gradio_api/file=" in video["src"], video  # served by the app itself
            png = shot.save_page_screenshot(driver, tmp_path / "screenshot.png")
            severe = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        finally:
            driver.quit()
    finally:
        demo.close()
        demo.studio.workspaces.close()
    assert png.stat().st_size > 10_000
    assert not [m for m in severe if "favicon" not in m], severe
    if os.environ.get("ADAMOTION_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(png, REPO / "assets" / "screenshot.png")
