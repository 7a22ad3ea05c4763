"""``adamotion study build``: render every prompt × method once, with fixed seeds, into a study folder."""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from pathlib import Path

from tqdm.auto import tqdm

from adamotion.utils.files import atomic_folder

log = logging.getLogger(__name__)

DEFAULT_CONSENT = (
    "You are invited to take part in a short study on computer-generated human motion. You will watch short "
    "silent animations and rank them. No personal data is collected: you get an anonymous id, which you can keep "
    "to resume later. Your answers are stored for research and may be published in aggregate. You may stop at any "
    "time. By ticking the box you agree to take part."
)


def parse_method(spec: str) -> tuple[str, Path, str]:
    """``[name=]checkpoint_dir[:ada|:vanilla]`` → (name, folder, encoder)."""
    name, _, rest = spec.rpartition("=") if "=" in spec else ("", "", spec)
    encoder = "ada"
    if rest.endswith((":ada", ":vanilla")):
        rest, _, encoder = rest.rpartition(":")
    folder = Path(rest)
    return (name or folder.name + ("" if encoder == "ada" else "-vanilla")), folder, encoder


def read_prompts(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: prompts file not found (one prompt per line)")
    prompts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    prompts = [p for p in prompts if p and not p.startswith("#")]
    if not prompts:
        raise ValueError(f"{path}: no prompts (write one prompt per line)")
    return prompts


def build_study(prompts: list[str], methods: list[str], out: str | Path, *, seed: int = 0, seconds: float | None = None,
                steps: int = 50, sampler: str = "ddpm", guidance_scale: float = 2.5, consent: str = DEFAULT_CONSENT, title: str = "Motion study",
                device: str = "cpu") -> Path:
    """Render the study videos and write ``manifest.json``; atomic (built in a temporary folder, then renamed)."""
    from adamotion.pipeline import MotionPipeline
    from renderers.skeleton import render_video

    if len(methods) < 2:
        raise ValueError("a study compares at least two methods: pass --methods ckptA,ckptB")
    out = Path(out)
    parsed = [parse_method(m) for m in methods]
    names = [p[0] for p in parsed]
    if len(set(names)) != len(names):
        raise ValueError(f"method names must be unique, got {names}; use name=folder to rename")
    with atomic_folder(out) as tmp:
        (tmp / "videos").mkdir()
        method_entries, pipelines = [], {}
        for index, (name, folder, encoder) in enumerate(parsed):
            pipelines[name] = (MotionPipeline.from_pretrained(folder, device=device), encoder)
            method_entries.append({"key": f"m{index}", "name": name, "checkpoint": str(folder), "encoder": encoder})
        trials = []
        with tqdm(total=len(prompts) * len(parsed), desc="rendering study videos", unit="video") as bar:
            for t, prompt in enumerate(prompts):
                trial_id = f"t{t:03d}-" + hashlib.sha1(prompt.encode()).hexdigest()[:6]
                videos = {}
                for entry in method_entries:
                    pipe, encoder = pipelines[entry["name"]]
                    frames = None if seconds is None else int(round(seconds * pipe.skeleton.fps))
                    output = pipe([prompt], lengths=frames, seed=seed + t, steps=steps, sampler=sampler,
                                  guidance_scale=guidance_scale, encoder=encoder)
                    # Opaque random name: nothing in a file name or URL tells the methods apart (blinding);
                    # which method made which file is known only from the manifest, on the server.
                    rel = f"videos/{secrets.token_hex(8)}.mp4"
                    render_video(output.joints[0], tmp / rel, fps=pipe.skeleton.fps, title=prompt, skeleton=pipe.skeleton)
                    videos[entry["key"]] = rel
                    bar.update()
                trials.append({"trial_id": trial_id, "prompt": prompt, "videos": videos, "seed": seed + t})
        manifest = {
            "study_id": secrets.token_hex(4), "title": title, "consent": consent, "created": time.time(),
            "methods": method_entries, "trials": trials,
            "settings": {"seed": seed, "seconds": seconds, "steps": steps, "sampler": sampler, "guidance_scale": guidance_scale},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        (tmp / "secret.key").write_bytes(secrets.token_bytes(32))
        if out.exists() and (out / "responses.sqlite").exists():
            raise FileExistsError(f"{out}: already holds responses; choose another --out (never overwritten)")
    log.info("study with %d trials x %d methods written to %s", len(prompts), len(parsed), out)
    return out
