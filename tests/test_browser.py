"""The app in a real headless Chromium: type a prompt, click Generate, both videos become playable; what a
newcomer sees is checked on the rendered page (coverage line, colour legend, Retrieve tab order, table headers).

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
HOSTILE_PROMPT = ('a person walks <img src=x onerror="window.__adamotion_pwned=1">'
                  '<script>window.__adamotion_pwned=2</script>')


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
            first_use = _first_use_checks(driver)
            # script in a prompt never runs: the prompt is echoed in the coverage line, tables and videos
            shot.generate_in_browser(driver, demo.local_url, prompt=HOSTILE_PROMPT, steps=5, timeout_s=240)
            hostile = driver.execute_script(
                "return {ran: window.__adamotion_pwned === undefined ? null : window.__adamotion_pwned,"
                "        injected: document.querySelectorAll('img[src=\"x\"]').length + Array.from("
                "          document.scripts).filter(e => e.text.includes('__adamotion_pwned')).length,"
                "        coverage: (document.querySelector('#coverage') || {}).innerText || ''};")
            severe = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        finally:
            driver.quit()
    finally:
        demo.close()
        demo.studio.workspaces.close()
    assert png.stat().st_size > 10_000
    assert "Nearest known actions" in first_use["coverage"], first_use
    assert "figure's left" in first_use["legend"] and first_use["legend_visible"], first_use
    assert first_use["dice"] == "Random", first_use
    assert first_use["video_label_chips"] == 0, first_use  # nothing drawn over the burned-in prompt
    # Retrieve tab: adapted on the left, as in the header and the Generate tab; "score" on one line
    assert first_use["adapted_x"] < first_use["vanilla_x"], first_use
    assert "AdaQF" in first_use["adapted_text"] and "vanilla" in first_use["vanilla_text"], first_use
    assert first_use["score_header_lines"] == 1, first_use
    assert hostile["ran"] is None and hostile["injected"] == 0, hostile
    assert "Nearest known actions" in hostile["coverage"], hostile  # the hostile prompt was generated, not refused
    assert not [m for m in severe if "favicon" not in m and "/x" not in m], severe
    if os.environ.get("ADAMOTION_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(png, REPO / "assets" / "screenshot.png")


def _first_use_checks(driver) -> dict:
    """Read what a first-time user sees: Generate tab texts, then the Retrieve tab after one search."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    seen = driver.execute_script(
        "const legend = document.querySelector('#skeleton-legend');"
        "return {coverage: (document.querySelector('#coverage') || {}).innerText || '',"
        "        legend: legend ? legend.innerText : '', legend_visible: !!(legend && legend.offsetHeight > 0),"
        "        dice: document.querySelector('#random-seed').innerText.trim(),"
        "        video_label_chips: Array.from(document.querySelectorAll("
        "          '#video-adapted [data-testid=block-label], #video-vanilla [data-testid=block-label],"
        "           #side-by-side [data-testid=block-label]'))"
        "          .filter(e => e.getBoundingClientRect().height > 0 && getComputedStyle(e).visibility !== 'hidden')"
        "          .length};")
    (tab,) = [b for b in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if b.text.strip() == "Retrieve"]
    tab.click()
    search = WebDriverWait(driver, 30).until(EC.element_to_be_clickable(
        (By.XPATH, "//button[normalize-space()='Search motions']")))
    search.click()
    WebDriverWait(driver, 120).until(lambda d: d.execute_script(
        "return !!document.querySelector('#ranking-adapted table') && !!document.querySelector('#ranking-vanilla table');"))
    seen.update(driver.execute_script(
        "const a = document.querySelector('#ranking-adapted'), v = document.querySelector('#ranking-vanilla');"
        "const th = Array.from(a.querySelectorAll('th')).find(h => h.innerText.trim() === 'score');"
        "const style = getComputedStyle(th);"
        "const line = parseFloat(style.lineHeight) || 1.2 * parseFloat(style.fontSize);"
        "const content = th.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);"
        "return {adapted_x: a.getBoundingClientRect().left, vanilla_x: v.getBoundingClientRect().left,"
        "        adapted_text: a.innerText, vanilla_text: v.innerText,"
        "        score_header_lines: Math.round(content / line)};"))
    return seen
