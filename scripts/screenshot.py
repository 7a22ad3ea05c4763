"""Screenshot of AdaMotion Studio after one generation, taken in a real headless Chromium.

Usage::

    python scripts/screenshot.py                              # checkpoints/default -> assets/screenshot.png
    python scripts/screenshot.py --checkpoint /tmp/tiny --steps 5 --out /tmp/shot.png
    python scripts/screenshot.py --url http://127.0.0.1:7860  # an app that is already running

Starts the app in-process on a free local port (unless ``--url``), opens it in headless Chromium
driven by Selenium (chromedriver from Debian's ``chromium-driver``), types a prompt, lowers the
sampling steps, clicks Generate, waits until both result videos can play (``readyState >= 3``)
and saves a PNG of the whole page. The browser runs with a fresh profile and every host name except
127.0.0.1 unresolvable, so the page cannot reach the internet.

``tests/test_browser.py`` drives the browser through the functions below.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "assets" / "screenshot.png"
DEFAULT_PROMPT = "a person walks forward, then turns left and waves"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# shared/docs/environment.md, "Gradio and browsers": offline, no background traffic, fresh profile.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--autoplay-policy=no-user-gesture-required", "--mute-audio", "--hide-scrollbars",
)
VIDEO_IDS = ("video-adapted", "video-vanilla")

log = logging.getLogger("screenshot")


def offline_gradio_env(temp_dir: str | os.PathLike | None = None) -> None:
    """The environment the app needs to start without looking anything up on the internet."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    if temp_dir is not None:
        os.environ["GRADIO_TEMP_DIR"] = str(temp_dir)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def browser_missing() -> str | None:
    """Why the browser cannot run here (None when Chromium, chromedriver and selenium are all present)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (Path(p).is_file() and os.access(p, os.X_OK))]
    if missing:
        return f"missing {', '.join(missing)} (apt-get install -y chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install -r requirements-test.txt)"
    return None


def make_driver(profile_dir: str | os.PathLike, width: int = 1280, height: int = 1000):
    """Headless Chromium with the project's flags and a fresh profile in ``profile_dir``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager would otherwise try to download one.
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def _set_number(driver, container_id: str, value) -> bool:
    """Type ``value`` into the number box of the Gradio slider/number with ``elem_id=container_id``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    boxes = driver.find_elements(By.CSS_SELECTOR, f"#{container_id} input[type=number]")
    if not boxes:
        return False
    box = boxes[0]
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value))
    box.send_keys(Keys.TAB)  # Gradio commits the number on blur
    return True


def videos_state(driver) -> dict:
    """readyState, source and error of each result video (missing element = readyState -1)."""
    return driver.execute_script(
        "const out = {};"
        "for (const id of arguments[0]) {"
        "  const v = document.querySelector('#' + id + ' video');"
        "  out[id] = v ? {readyState: v.readyState, src: v.currentSrc, error: v.error ? v.error.code : null,"
        "                 width: v.videoWidth, height: v.videoHeight} : {readyState: -1};"
        "}"
        "return out;", list(VIDEO_IDS))


def page_errors(driver) -> list[str]:
    """Error messages shown by Gradio on the page (toasts)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.toast-body, [data-testid=\"toast-body\"]'))"
        ".map(e => e.innerText.trim()).filter(t => t);")


def generate_in_browser(driver, url: str, *, prompt: str = DEFAULT_PROMPT, steps: int | None = None,
                        length: str | None = None, timeout_s: float = 240.0) -> dict:
    """Open the app, type ``prompt``, click Generate, wait until both videos can play.

    Returns the videos' state. Raises TimeoutError (with the page's error messages) when they do not
    become playable within ``timeout_s``.
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, 60)
    box = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#prompt textarea")))
    box.clear()
    box.send_keys(prompt)
    if steps is not None and not _set_number(driver, "steps", steps):
        log.warning("no sampling-steps number box found; generating with the default steps")
    if length is not None:
        field = driver.find_element(By.CSS_SELECTOR, "#length textarea, #length input")
        field.clear()
        field.send_keys(length)
    wait.until(EC.element_to_be_clickable((By.ID, "generate"))).click()

    deadline = time.monotonic() + timeout_s
    state = {}
    while time.monotonic() < deadline:
        state = videos_state(driver)
        if all(s["readyState"] >= 3 for s in state.values()):
            return state
        errors = page_errors(driver)
        if errors:
            raise RuntimeError(f"the app showed an error: {errors}")
        time.sleep(0.5)
    raise TimeoutError(f"videos not playable after {timeout_s:.0f} s: {state}; page errors: {page_errors(driver)}")


def save_page_screenshot(driver, path: str | os.PathLike, width: int = 1280) -> Path:
    """A PNG of the whole page (the window is resized to the document's height first)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    measure = ("return [Math.max(document.body.scrollHeight, document.documentElement.scrollHeight), "
               "window.outerHeight - window.innerHeight];")
    for _ in range(4):  # resizing can change the layout; repeat until the viewport holds the whole page
        content, chrome = driver.execute_script(measure)
        inner = driver.execute_script("return window.innerHeight;")
        if inner >= content:
            break
        driver.set_window_size(width, min(int(content) + int(chrome) + 20, 8000))
        time.sleep(1.0)  # let the layout settle and the videos draw a frame at the new size
    tmp = path.with_name(f".{path.name}.tmp.png")
    if not driver.save_screenshot(str(tmp)):
        raise RuntimeError(f"Chromium could not save a screenshot to {tmp}")
    tmp.replace(path)
    return path


def serve(checkpoint: Path, workdir: Path):
    """Start the app in-process on a free port; returns the launched Blocks (``demo.local_url``)."""
    from app.config import AppConfig
    from app.server import create_app

    port = free_port()
    demo = create_app(AppConfig(checkpoint=checkpoint, workdir=workdir, port=port))
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True,
                **demo.launch_options)
    return demo


def default_checkpoint() -> Path | None:
    folder = REPO_ROOT / "checkpoints" / "default"
    return folder if (folder / "adaqf").is_dir() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="checkpoint folder (default: checkpoints/default when it holds adaqf/)")
    parser.add_argument("--url", default=None, help="screenshot an app that is already running instead")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"PNG to write (default {DEFAULT_OUT})")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT)
    parser.add_argument("--steps", type=int, default=None, help="sampling steps typed into the page (default: the app's)")
    parser.add_argument("--width", type=int, default=1280, help="browser window width in pixels")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the videos")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    reason = browser_missing()
    if reason:
        parser.error(f"cannot drive a browser: {reason}")
    work = Path(tempfile.mkdtemp(prefix="adamotion-screenshot-"))
    offline_gradio_env(work / "gradio")
    demo = None
    try:
        url = args.url
        if url is None:
            checkpoint = args.checkpoint or default_checkpoint()
            if checkpoint is None:
                parser.error("checkpoints/default has no adaqf/ yet; pass --checkpoint DIR (e.g. a tiny one)")
            demo = serve(checkpoint, work / "requests")
            url = demo.local_url
        driver = make_driver(work / "profile", width=args.width)
        try:
            started = time.perf_counter()
            state = generate_in_browser(driver, url, prompt=args.prompt, steps=args.steps, timeout_s=args.timeout)
            log.info("videos playable after %.1f s: %s", time.perf_counter() - started, state)
            out = save_page_screenshot(driver, args.out, width=args.width)
        finally:
            driver.quit()
        log.info("wrote %s", out)
        print(out)
        return 0
    finally:
        if demo is not None:
            demo.close()
            demo.studio.workspaces.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    sys.exit(main())
