"""Small, atomic video writer and prober over the ffmpeg binary that ships with ``imageio-ffmpeg``.

* ``.mp4``  -> H.264 (libx264), ``yuv420p``, even dimensions, ``+faststart`` (plays in every browser).
* ``.webm`` -> VP9 (libvpx-vp9), ``yuv420p``, realtime speed settings.
* ``.gif``  -> palette-optimised GIF (``palettegen``/``paletteuse``), looping forever.

Files are written to a temporary name in the destination folder and moved into place with
:func:`os.replace` only once ffmpeg has finished successfully, so a reader never sees a half-written
video and a failed render leaves nothing behind.

No torch, no matplotlib: only numpy and the ffmpeg executable.
"""
from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import imageio_ffmpeg
import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "SUPPORTED_FORMATS",
    "VideoInfo",
    "VideoWriter",
    "format_from_path",
    "probe_video",
    "read_video_frames",
    "write_video",
]


@dataclass(frozen=True)
class _FormatSpec:
    codec: str  # ffmpeg encoder name
    pix_fmt: str  # pixel format stored in the file
    even_size: bool  # the pixel format needs even width and height (4:2:0 chroma subsampling)
    output_params: tuple[str, ...]  # extra encoder/muxer flags


SUPPORTED_FORMATS: dict[str, _FormatSpec] = {
    "mp4": _FormatSpec(
        codec="libx264",
        pix_fmt="yuv420p",
        even_size=True,
        # ultrafast (+ tune animation for flat-colour drawings) costs ~2 ms per 640x480 frame, so encoding
        # keeps up with the rasteriser on a second core; veryfast would make files ~3x smaller but cost
        # ~6 ms per frame. crf 23 is x264's default quality. +faststart moves the index (moov atom) to
        # the front so browsers start playing before the download ends.
        output_params=("-preset", "ultrafast", "-tune", "animation", "-crf", "23", "-movflags", "+faststart"),
    ),
    "webm": _FormatSpec(
        codec="libvpx-vp9",
        pix_fmt="yuv420p",
        even_size=True,
        output_params=("-b:v", "0", "-crf", "34", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1"),
    ),
    "gif": _FormatSpec(
        codec="gif",
        pix_fmt="pal8",
        even_size=False,
        # One palette for the whole clip (stats_mode=diff favours moving pixels), ordered dithering,
        # loop forever.
        output_params=(
            "-vf", "split[frames][copy];[copy]palettegen=stats_mode=diff[palette];[frames][palette]paletteuse=dither=bayer",
            "-loop", "0",
        ),
    ),
}


def format_from_path(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The container format to write: ``fmt`` if given, else the file suffix (``mp4``, ``webm``, ``gif``)."""
    name = (fmt or Path(path).suffix.lstrip(".")).lower()
    if name not in SUPPORTED_FORMATS:
        raise ValueError(
            f"unsupported video format {name!r} for {os.fspath(path)!r}; "
            f"use one of {sorted(SUPPORTED_FORMATS)} (chosen from the file suffix unless fmt= is given)"
        )
    return name


class VideoWriter:
    """Write RGB frames to a video file atomically.

    Usage::

        with VideoWriter("out.mp4", fps=20) as writer:
            for frame in frames:          # (H, W, 3) uint8
                writer.append(frame)

    The frame size is taken from the first frame (or ``size=(width, height)``). For 4:2:0 formats an odd
    width or height is padded by one pixel (edge colour) so the file stays browser-playable. If the
    ``with`` block raises, the temporary file is deleted and ``path`` is left untouched.
    """

    def __init__(self, path: str | os.PathLike, *, fps: float = 20.0, fmt: str | None = None,
                 size: tuple[int, int] | None = None):
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.fmt = format_from_path(self.path, fmt)
        self.spec = SUPPORTED_FORMATS[self.fmt]
        self.fps = float(fps)
        self.frames_written = 0
        self._size = size  # (width, height) of incoming frames, fixed by the first frame if None
        self._pad = (0, 0)  # (right, bottom) pixels added to make the stored size even
        self._process: subprocess.Popen | None = None  # the ffmpeg encoder, reading raw RGB on stdin
        self._stderr = None
        self._cmd: list[str] = []
        self._tmp_path: Path | None = None
        self._closed = False

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # ------------------------------------------------------------------ writing
    def _open(self, width: int, height: int) -> None:
        self._size = (width, height)
        if self.spec.even_size:
            self._pad = (width % 2, height % 2)
            if any(self._pad):
                logger.info("padding %dx%d frames to even size for %s", width, height, self.fmt)
        out_w, out_h = width + self._pad[0], height + self._pad[1]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Temp file in the destination folder (same filesystem -> os.replace is atomic) with the real
        # suffix, because ffmpeg picks the muxer from it.
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=f".partial.{self.fmt}", dir=self.path.parent)
        os.close(fd)
        self._tmp_path = Path(tmp)
        cmd = [
            imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            # input: raw RGB frames on stdin
            "-f", "rawvideo", "-vcodec", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{out_w}x{out_h}",
            "-r", f"{self.fps:g}", "-i", "-", "-an",
            # output
            "-vcodec", self.spec.codec, "-pix_fmt", self.spec.pix_fmt, *self.spec.output_params,
            str(self._tmp_path),
        ]
        self._stderr = tempfile.TemporaryFile()  # a file, not a pipe: a chatty ffmpeg can never block on it
        self._process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr)
        self._cmd = cmd

    def _ffmpeg_error(self, what: str) -> RuntimeError:
        self._stderr.seek(0)
        log = self._stderr.read().decode(errors="replace").strip()
        return RuntimeError(f"ffmpeg failed while {what} {self.path} ({self.fmt}, {self.spec.codec}): {log[-2000:] or 'no message'}\n"
                            f"command: {' '.join(self._cmd)}")

    def append(self, frame: np.ndarray) -> None:
        """Add one (H, W, 3) uint8 RGB frame."""
        if self._closed:
            raise RuntimeError(f"VideoWriter for {self.path} is already closed")
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frames must be (H, W, 3) uint8 RGB arrays, got shape {frame.shape} dtype {frame.dtype}")
        height, width = frame.shape[:2]
        if self._process is None:
            if self._size is not None and tuple(self._size) != (width, height):
                raise ValueError(f"first frame is {width}x{height}, writer was opened for {self._size[0]}x{self._size[1]}")
            self._open(width, height)
        elif (width, height) != tuple(self._size):
            raise ValueError(f"frame {self.frames_written} is {width}x{height}, earlier frames were {self._size[0]}x{self._size[1]}")
        if any(self._pad):
            frame = np.pad(frame, ((0, self._pad[1]), (0, self._pad[0]), (0, 0)), mode="edge")
        try:
            self._process.stdin.write(np.ascontiguousarray(frame).data)
        except (BrokenPipeError, OSError) as err:
            error = self._ffmpeg_error("writing")
            self.abort()
            raise error from err
        self.frames_written += 1

    def extend(self, frames: Iterable[np.ndarray]) -> None:
        for frame in frames:
            self.append(frame)

    def close(self) -> Path:
        """Finish encoding and move the file into place. Returns the final path."""
        if self._closed:
            return self.path
        if self._process is None:
            self._closed = True
            raise ValueError(f"no frames were written to {self.path}; refusing to create an empty video")
        try:
            self._process.stdin.close()
        except OSError:
            pass  # reported through the exit status below
        return_code = self._process.wait()
        if return_code != 0:
            error = self._ffmpeg_error("finishing")
            self.abort()
            raise error
        self._stderr.close()
        self._closed = True
        os.chmod(self._tmp_path, 0o644)  # mkstemp creates 0600; the result is an ordinary readable file
        os.replace(self._tmp_path, self.path)
        logger.debug("wrote %s (%d frames, %s)", self.path, self.frames_written, self.fmt)
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg and delete the temporary file; the destination is left as it was."""
        self._closed = True
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            try:
                self._process.stdin.close()
            except OSError:
                pass
            self._process.wait()
            self._stderr.close()
        if self._tmp_path is not None and self._tmp_path.exists():
            self._tmp_path.unlink()


def write_video(frames: Iterable[np.ndarray], path: str | os.PathLike, *, fps: float = 20.0,
                fmt: str | None = None) -> Path:
    """Write an iterable of (H, W, 3) uint8 frames to ``path`` (format from the suffix unless ``fmt``)."""
    with VideoWriter(path, fps=fps, fmt=fmt) as writer:
        writer.extend(frames)
    return writer.path


# ---------------------------------------------------------------------------------------------- probing
@dataclass(frozen=True)
class VideoInfo:
    frames: int  # number of decoded video frames
    fps: float  # nominal frame rate of the video stream
    width: int
    height: int
    codec: str  # ffmpeg codec name: "h264", "vp9", "gif", ...
    pix_fmt: str  # stored pixel format: "yuv420p", "bgra", ...
    duration_s: float | None  # container duration, if ffmpeg reports one

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)


_STREAM_RE = re.compile(r"Stream #\d+:\d+.*?: Video: (?P<codec>[\w-]+)(?P<rest>.*)")
_SIZE_RE = re.compile(r"\b(?P<w>\d{2,5})x(?P<h>\d{2,5})\b")
_FPS_RE = re.compile(r"(?P<fps>[\d.]+(?:k)?) (?:fps|tbr)")
_DURATION_RE = re.compile(r"Duration: (?P<h>\d+):(?P<m>\d+):(?P<s>[\d.]+)")
_FRAME_RE = re.compile(r"frame=\s*(?P<n>\d+)")


def _split_stream_fields(rest: str) -> list[str]:
    """Split ffmpeg's comma-separated stream description, ignoring commas inside parentheses."""
    fields, depth, current = [], 0, ""
    for char in rest:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            fields.append(current.strip())
            current = ""
        else:
            current += char
    fields.append(current.strip())
    return fields


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Decode ``path`` with ffmpeg and report frame count, fps, size, codec and pixel format.

    Runs ``ffmpeg -i path -map 0:v:0 -f null -`` (a full decode, so the frame count is exact and a
    corrupt file raises) and parses its log.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no video file at {path!r}")
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path, "-map", "0:v:0", "-f", "null", "-"]
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    log = result.stdout.decode(errors="replace")
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg could not decode {path!r} (exit {result.returncode}):\n{log[-2000:]}")

    stream = _STREAM_RE.search(log)
    if stream is None:
        raise RuntimeError(f"no video stream found in {path!r}:\n{log[-2000:]}")
    # "h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 640x480, ..." -> field 0 is the codec's
    # profile, field 1 the pixel format (absent for some decoders, then it is already the size).
    fields = _split_stream_fields(stream.group("rest"))
    codec = stream.group("codec")
    pix_fmt = fields[1].split("(")[0].strip() if len(fields) > 1 else ""
    if _SIZE_RE.search(pix_fmt):
        pix_fmt = ""
    size = _SIZE_RE.search(stream.group("rest"))
    fps_match = _FPS_RE.search(stream.group("rest"))
    fps_text = fps_match.group("fps") if fps_match else "0"
    fps = float(fps_text[:-1]) * 1000 if fps_text.endswith("k") else float(fps_text)
    frame_counts = _FRAME_RE.findall(log.replace("\r", "\n"))
    duration = _DURATION_RE.search(log)
    duration_s = None
    if duration:
        duration_s = int(duration.group("h")) * 3600 + int(duration.group("m")) * 60 + float(duration.group("s"))
    if size is None or not frame_counts:
        raise RuntimeError(f"could not parse size/frame count of {path!r} from ffmpeg's log:\n{log[-2000:]}")
    return VideoInfo(
        frames=int(frame_counts[-1]),
        fps=fps,
        width=int(size.group("w")),
        height=int(size.group("h")),
        codec=codec,
        pix_fmt=pix_fmt,
        duration_s=duration_s,
    )


def iter_video_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Yield the decoded (H, W, 3) uint8 RGB frames of a video file."""
    reader = imageio_ffmpeg.read_frames(os.fspath(path), pix_fmt="rgb24")
    meta = next(reader)
    width, height = meta["size"]
    try:
        for buffer in reader:
            yield np.frombuffer(buffer, np.uint8).reshape(height, width, 3)
    finally:
        reader.close()


def read_video_frames(path: str | os.PathLike) -> np.ndarray:
    """All decoded frames of a video as one (T, H, W, 3) uint8 array (for tests and previews)."""
    frames = list(iter_video_frames(path))
    if not frames:
        raise RuntimeError(f"{os.fspath(path)!r} decoded to zero frames")
    return np.stack(frames)
