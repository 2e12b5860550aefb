"""What ``grasp-semantics describe --image`` reads: image files, http(s) URLs, PDFs and video.

Each ``--image`` source becomes one or more :class:`Visual` items (uint8 RGB frames):

- a local image file, or an http(s) URL whose body is an image (:func:`fetch_url`: a timeout
  on connecting and on the whole download, a size cap, the content type checked);
- a PDF (local or fetched): each page rendered with pypdfium2 at ``dpi`` (default
  :data:`PDF_DPI`), one item per page, all pages in order or the one ``page`` names;
- a video file (PyAV) or a folder of frame images: one item, sampled at ``fps`` frames per
  second with at most ``max_frames`` frames, as qwen-vl-utils samples a clip for the Qwen-VL
  checkpoints (an even count, for their two-frame temporal patches; at least two).

Nothing is cached and nothing but the URLs given is fetched. Every failure is a ValueError
that says what was wrong with which source.
"""

from __future__ import annotations

import io
import math
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from grasp_semantics.models.visual_prompts import Visual

PDF_DPI = 144.0  # PDF pages are rendered at this many dots per inch (2x PDF's 72-point unit)
URL_TIMEOUT_S = 10.0
URL_MAX_BYTES = 50 * 2**20
VIDEO_FPS = 2.0  # qwen-vl-utils' default sampling rate
VIDEO_MAX_FRAMES = 32
VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg"})
FRAME_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
URL_PREFIXES = ("http://", "https://")


class _Refused(ValueError):
    """A download stopped on purpose (its message says why)."""


def is_url(source: str) -> bool:
    return source.lower().startswith(URL_PREFIXES)


def fetch_url(
    url: str, timeout_s: float = URL_TIMEOUT_S, max_bytes: int = URL_MAX_BYTES
) -> tuple[bytes, str]:
    """The body and content type of an http(s) URL whose body is an image, a PDF or a video.

    ``timeout_s`` bounds connecting and each read, and the whole download; a body over
    ``max_bytes`` is refused (by its Content-Length before reading, else as it arrives).
    ValueError, naming the URL, for an unreachable host, an HTTP error status, a timeout, another
    content type or a body too large."""
    if not is_url(url):
        raise ValueError(f"{url}: only http:// and https:// URLs are fetched")
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(url, headers={"User-Agent": "grasp-semantics"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            kind = response.headers.get_content_type()
            if not kind.startswith(("image/", "video/")) and kind != "application/pdf":
                raise _Refused(f"{url}: content type {kind!r} is not an image, a PDF or a video")
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise _Refused(f"{url}: {int(length)} bytes, more than the {max_bytes} allowed")
            body = bytearray()
            while chunk := response.read(64 * 1024):
                body += chunk
                if len(body) > max_bytes:
                    raise _Refused(f"{url}: more than the {max_bytes} bytes allowed")
                if time.monotonic() > deadline:
                    raise TimeoutError
            if time.monotonic() > deadline:
                raise TimeoutError
            return bytes(body), kind
    except _Refused:
        raise
    except urllib.error.HTTPError as error:
        raise ValueError(f"{url}: HTTP {error.code} {error.reason}") from error
    except TimeoutError as error:
        raise ValueError(f"{url}: no complete answer within {timeout_s:g} s") from error
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise ValueError(f"{url}: no answer within {timeout_s:g} s") from error
        raise ValueError(
            f"{url}: cannot reach the host ({error.reason}); without a network, download it "
            "elsewhere and pass the local file"
        ) from error
    except (OSError, ValueError) as error:  # a connection reset, a malformed answer...
        raise ValueError(f"{url}: download failed ({error})") from error


def decode_image(data: bytes | Path, source: str) -> np.ndarray:
    """uint8 RGB [H, W, 3] of an image file's bytes or path; ValueError if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"cannot read image {source}: {error}") from error


def render_pdf(
    data: bytes | Path, source: str, page: int | None = None, dpi: float = PDF_DPI
) -> list[Visual]:
    """The pages of a PDF as images rendered at ``dpi``: all in order, or only the 1-based
    ``page``. ValueError for an unreadable PDF or a page it does not have."""
    import pypdfium2

    if dpi <= 0:
        raise ValueError(f"PDF resolution must be positive, got {dpi} dpi")
    try:
        pdf = pypdfium2.PdfDocument(data if isinstance(data, bytes) else str(data))
    except pypdfium2.PdfiumError as error:
        raise ValueError(f"cannot read PDF {source}: {error}") from error
    try:
        count = len(pdf)
        if page is not None and not 1 <= page <= count:
            raise ValueError(f"PDF {source} has {count} page(s); --page {page} is not one")
        numbers = [page] if page is not None else list(range(1, count + 1))
        out = []
        for number in numbers:
            bitmap = pdf[number - 1].render(scale=dpi / 72.0)
            rgb = np.asarray(bitmap.to_pil().convert("RGB"))
            out.append(Visual(rgb[None], source, page=number))
        return out
    finally:
        pdf.close()


def sample_indices(total: int, source_fps: float, fps: float, max_frames: int) -> list[int]:
    """Frame indices of a ``total``-frame clip recorded at ``source_fps`` sampled at ``fps``:
    qwen-vl-utils' rule (``smart_nframes``): ``total / source_fps * fps`` frames, at most
    ``max_frames``, rounded down to an even count (at least two), spread evenly over the
    clip."""
    if fps <= 0 or source_fps <= 0:
        raise ValueError(f"frame rates must be positive (fps {fps}, clip {source_fps})")
    if max_frames < 2:
        raise ValueError(f"max_frames must be at least 2, got {max_frames}")
    wanted = min(total / source_fps * fps, max_frames, total)
    count = max(2, int(wanted) // 2 * 2)
    return np.linspace(0, total - 1, count).round().astype(int).tolist()


def read_video(
    data: bytes | Path,
    source: str,
    fps: float = VIDEO_FPS,
    max_frames: int = VIDEO_MAX_FRAMES,
) -> Visual:
    """A video file's frames sampled at ``fps`` (at most ``max_frames``), decoded by PyAV."""
    import av

    def open_container():
        return av.open(io.BytesIO(data) if isinstance(data, bytes) else str(data))

    try:
        with open_container() as container:  # first pass: count frames without decoding
            stream = container.streams.video[0]
            rate = float(stream.average_rate or stream.guessed_rate or 0) or None
            total = sum(1 for packet in container.demux(stream) if packet.size)
        if not total or rate is None:
            raise ValueError(f"video {source} has no frames or no frame rate")
        keep = sample_indices(total, rate, fps, max_frames)
        wanted = set(keep)
        frames: dict[int, np.ndarray] = {}
        with open_container() as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    frames[i] = frame.to_ndarray(format="rgb24")
                if i >= keep[-1]:
                    break
    except (av.FFmpegError, IndexError) as error:
        raise ValueError(f"cannot read video {source}: {error}") from error
    if not frames:
        raise ValueError(f"cannot read video {source}: no frame could be decoded")
    keep = [i if i in frames else max(frames) for i in keep]  # fewer decoded: the last one
    return Visual(
        np.stack([frames[i] for i in keep]),
        source,
        video=True,
        timestamps=tuple(i / rate for i in keep),
    )


def read_frame_folder(
    folder: Path,
    fps: float = VIDEO_FPS,
    max_frames: int = VIDEO_MAX_FRAMES,
    folder_fps: float | None = None,
) -> Visual:
    """A folder of frame images (in name order) as a clip recorded at ``folder_fps`` (default
    ``fps``: every frame is a sample), sampled as :func:`read_video` samples a file."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
    if not files:
        raise ValueError(
            f"folder {folder} holds no frame images ({', '.join(sorted(FRAME_SUFFIXES))})"
        )
    rate = fps if folder_fps is None else folder_fps
    keep = sample_indices(len(files), rate, fps, max_frames)
    frames = [decode_image(files[i], str(files[i])) for i in keep]
    if len({f.shape for f in frames}) != 1:
        raise ValueError(f"the frames in {folder} are not all the same size")
    return Visual(
        np.stack(frames), str(folder), video=True, timestamps=tuple(i / rate for i in keep)
    )


def load_visuals(
    source: str,
    page: int | None = None,
    dpi: float = PDF_DPI,
    fps: float = VIDEO_FPS,
    max_frames: int = VIDEO_MAX_FRAMES,
    folder_fps: float | None = None,
    timeout_s: float = URL_TIMEOUT_S,
    max_bytes: int = URL_MAX_BYTES,
) -> list[Visual]:
    """The items one ``--image`` source gives: one image, a PDF's pages, or one video."""
    if is_url(source):
        data, kind = fetch_url(source, timeout_s, max_bytes)
        if kind == "application/pdf":
            return render_pdf(data, source, page, dpi)
        if kind.startswith("video/"):
            return [read_video(data, source, fps, max_frames)]
        return [Visual(decode_image(data, source)[None], source)]
    if "://" in source or source.startswith("data:"):
        raise ValueError(f"{source}: only http:// and https:// URLs are fetched")
    path = Path(source).expanduser()
    if path.is_dir():
        return [read_frame_folder(path, fps, max_frames, folder_fps)]
    if not path.is_file():
        raise ValueError(f"image file {source} does not exist")
    with path.open("rb") as f:
        head = f.read(5)
    if head == b"%PDF-" or path.suffix.lower() == ".pdf":
        return render_pdf(path, source, page, dpi)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return [read_video(path, source, fps, max_frames)]
    return [Visual(decode_image(path, source)[None], source)]


def check_sampling(fps: float, max_frames: int, dpi: float) -> None:
    """ValueError for sampling options no input could use."""
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"--fps must be positive, got {fps}")
    if max_frames < 2:
        raise ValueError(f"--max-frames must be at least 2, got {max_frames}")
    if not (math.isfinite(dpi) and dpi > 0):
        raise ValueError(f"--dpi must be positive, got {dpi}")
