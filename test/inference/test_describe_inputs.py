"""What ``describe --image`` reads: URLs from a local server, PDFs, video files, frame folders."""

from __future__ import annotations

import contextlib
import http.server
import io
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from grasp_semantics.inference import visual_inputs as inputs


def png_bytes(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()


GOOD = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)


class Server:
    """An HTTP server on 127.0.0.1 (a thread) answering the paths the tests ask for."""

    def __init__(self) -> None:
        self.release = threading.Event()  # the slow path answers once this is set
        self.routes: dict[str, tuple[int, str, bytes, bool]] = {
            "/good.png": (200, "image/png", png_bytes(GOOD), True),
            "/page.html": (200, "text/html", b"<html>not an image</html>", True),
            "/big.png": (200, "image/png", b"\x89PNG" + bytes(5000), True),
            "/big-unsized.png": (200, "image/png", b"\x89PNG" + bytes(5000), False),
            "/broken.png": (200, "image/png", b"not really a png", True),
        }
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/slow.png":
                    server.release.wait(30)  # past the client's timeout
                if self.path not in server.routes and self.path != "/slow.png":
                    self.send_error(404, "Not Found")
                    return
                status, kind, body, sized = server.routes.get(
                    self.path, server.routes["/good.png"]
                )
                self.send_response(status)
                self.send_header("Content-Type", kind)
                if sized:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client may have given up
                    self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    served = Server()
    yield served
    served.close()


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_url_image_is_fetched_and_decoded(server):
    [visual] = inputs.load_visuals(server.url("/good.png"))
    assert not visual.video and visual.page is None
    np.testing.assert_array_equal(visual.frames[0], GOOD)
    data, kind = inputs.fetch_url(server.url("/good.png"))
    assert kind == "image/png" and data == png_bytes(GOOD)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/missing.png", "HTTP 404"),
        ("/page.html", "content type 'text/html' is not an image"),
        ("/big.png", "5004 bytes, more than the 1000 allowed"),
        ("/big-unsized.png", "more than the 1000 bytes allowed"),
        ("/broken.png", "cannot read image"),
    ],
)
def test_bad_urls_fail_with_a_clear_message(server, path, message):
    with pytest.raises(ValueError, match=message) as error:
        inputs.load_visuals(server.url(path), max_bytes=1000)
    assert server.url(path) in str(error.value)


def test_a_slow_server_times_out_instead_of_hanging(server):
    import time

    started = time.monotonic()
    with pytest.raises(ValueError, match=r"within 0\.5 s"):
        inputs.load_visuals(server.url("/slow.png"), timeout_s=0.5)
    assert time.monotonic() - started < 5


def test_an_unreachable_host_is_a_clear_error():
    url = f"http://127.0.0.1:{closed_port()}/scene.png"
    with pytest.raises(ValueError, match="cannot reach the host") as error:
        inputs.load_visuals(url, timeout_s=2)
    assert "local file" in str(error.value)
    for other in ("ftp://example.com/a.png", "data:image/png;base64,AAAA"):
        with pytest.raises(ValueError, match="only http:// and https://"):
            inputs.load_visuals(other)


def write_pdf(path: Path, colours: list[tuple[int, int, int]]) -> None:
    """A PDF with one 200 x 100 pt page per colour (PIL writes images at 72 dpi)."""
    pages = [Image.new("RGB", (200, 100), colour) for colour in colours]
    pages[0].save(path, save_all=True, append_images=pages[1:], resolution=72.0)


def test_pdf_pages_render_in_order_at_the_resolution_asked(tmp_path):
    pdf = tmp_path / "two.pdf"
    write_pdf(pdf, [(255, 0, 0), (0, 0, 255)])
    pages = inputs.load_visuals(str(pdf))
    assert [p.page for p in pages] == [1, 2]
    assert pages[0].frames.shape == (1, 200, 400, 3)  # 144 dpi: 2 px a point
    np.testing.assert_allclose(pages[0].frames[0].reshape(-1, 3).mean(0), [255, 0, 0], atol=3)
    np.testing.assert_allclose(pages[1].frames[0].reshape(-1, 3).mean(0), [0, 0, 255], atol=3)
    [second] = inputs.load_visuals(str(pdf), page=2, dpi=72)
    assert second.page == 2 and second.frames.shape == (1, 100, 200, 3)
    with pytest.raises(ValueError, match="has 2 page"):
        inputs.load_visuals(str(pdf), page=3)
    not_pdf = tmp_path / "fake.pdf"
    not_pdf.write_bytes(b"%PDF-1.4 garbage")
    with pytest.raises(ValueError, match="cannot read PDF"):
        inputs.load_visuals(str(not_pdf))


def write_clip(path: Path, frames: int = 30, rate: int = 10) -> None:
    """An mpeg4 clip whose frame i is a flat grey of level 8 * i."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            image = np.full((48, 64, 3), 8 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_a_video_is_sampled_at_the_rate_asked_with_a_frame_cap(tmp_path):
    clip = tmp_path / "clip.mp4"
    write_clip(clip)  # 3 s at 10 fps
    [video] = inputs.load_visuals(str(clip), fps=2.0)
    assert video.video and video.frames.shape == (6, 48, 64, 3)
    expected = np.linspace(0, 29, 6).round()  # spread over the clip, as qwen-vl-utils does
    np.testing.assert_allclose(video.timestamps, expected / 10)
    np.testing.assert_allclose(video.frames.reshape(6, -1).mean(1), 8 * expected, atol=4)
    [capped] = inputs.load_visuals(str(clip), fps=10.0, max_frames=5)
    assert capped.frames.shape[0] == 4  # at most 5, an even count
    with pytest.raises(ValueError, match="cannot read video"):
        broken = tmp_path / "broken.mp4"
        broken.write_bytes(b"\x00" * 100)
        inputs.load_visuals(str(broken))


def test_a_folder_of_frames_is_a_clip(tmp_path):
    for i in range(8):
        Image.fromarray(np.full((32, 40, 3), 20 * i, np.uint8)).save(tmp_path / f"{i:03d}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    [every] = inputs.load_visuals(str(tmp_path))  # taken at --fps: every frame
    assert every.video and every.frames.shape == (8, 32, 40, 3)
    assert every.frames[3].max() == 60
    [half] = inputs.load_visuals(str(tmp_path), fps=2.0, folder_fps=4.0)
    assert half.frames.shape[0] == 4 and half.timestamps[-1] == pytest.approx(7 / 4)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no frame images"):
        inputs.load_visuals(str(empty))


def test_sample_indices_follow_qwen_vl_utils_rule():
    assert inputs.sample_indices(300, 30.0, 2.0, 768) == np.linspace(0, 299, 20).round().tolist()
    assert len(inputs.sample_indices(300, 30.0, 2.0, 7)) == 6  # the cap, rounded down to even
    assert inputs.sample_indices(1, 30.0, 2.0, 32) == [0, 0]  # one frame: a two-frame patch
    with pytest.raises(ValueError, match="positive"):
        inputs.sample_indices(10, 30.0, 0.0, 32)
