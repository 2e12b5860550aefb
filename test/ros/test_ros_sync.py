"""Newest-pair stamp synchronisation."""

from __future__ import annotations

import threading
import time

import pytest
from ros_helpers import wait_until
from sensor_msgs.msg import CameraInfo, Image

from grasp_semantics.ros.node_inputs import CameraInfos
from grasp_semantics.ros.sync import Busy, ModelThread, NewestPairSync, StampOrder

MS = 1_000_000


def test_pairs_within_slop_in_either_arrival_order() -> None:
    sync = NewestPairSync(slop_ns=10 * MS)
    assert not sync.add_image(100 * MS, "image-a")
    assert sync.add_cloud(105 * MS, "cloud-a")
    pair = sync.take()
    assert (pair.image, pair.cloud, pair.image_stamp_ns, pair.cloud_stamp_ns) == (
        "image-a",
        "cloud-a",
        100 * MS,
        105 * MS,
    )
    assert not sync.add_cloud(200 * MS, "cloud-b")
    assert sync.add_image(195 * MS, "image-b")
    assert sync.take().cloud == "cloud-b"
    assert sync.take() is None


def test_stamps_beyond_slop_do_not_pair_and_report_the_gap() -> None:
    sync = NewestPairSync(slop_ns=10 * MS)
    sync.add_image(100 * MS, "image")
    assert not sync.add_cloud(300 * MS, "cloud")
    assert sync.last_gap_ns == -200 * MS
    assert sync.take() is None
    assert sync.add_image(299 * MS, "image-2")  # the stored cloud pairs with a newer image
    assert sync.last_gap_ns == 0


def test_only_the_newest_pair_is_kept_and_older_ones_are_counted_dropped() -> None:
    sync = NewestPairSync(slop_ns=0)
    for i in range(100):
        sync.add_image(i * MS, f"image-{i}")
        sync.add_cloud(i * MS, f"cloud-{i}")
    assert (sync.pairs_formed, sync.pairs_dropped) == (100, 99)
    assert sync.take().cloud == "cloud-99"
    assert sync.take() is None


def test_take_waits_for_a_pair_from_another_thread() -> None:
    sync = NewestPairSync(slop_ns=0)
    timer = threading.Timer(0.05, lambda: (sync.add_image(1, "i"), sync.add_cloud(1, "c")))
    timer.start()
    pair = sync.take(timeout=5.0)
    timer.join()
    assert pair is not None and pair.cloud == "c"


def test_clear_forgets_pending_messages() -> None:
    sync = NewestPairSync(slop_ns=0)
    sync.add_image(1, "i")
    sync.clear()
    assert not sync.add_cloud(1, "c")


def test_model_thread_runs_calls_in_arrival_order_on_one_thread() -> None:
    model, order, threads, callers = ModelThread(), [], set(), []
    gate = threading.Event()

    def work(name: str) -> str:
        threads.add(threading.get_ident())
        order.append(name)
        return name

    blocker = threading.Thread(target=model.call, args=(gate.wait,))
    blocker.start()
    wait_until(lambda: model.busy_since is not None, what="the first call to start")
    results = {}
    for name in "abc":
        callers.append(
            threading.Thread(target=lambda n=name: results.update({n: model.call(work, n)}))
        )
        callers[-1].start()
        queued = len(callers)
        wait_until(lambda n=queued: model.waiting == n, what=f"{name} to queue")
    gate.set()
    for thread in [blocker, *callers]:
        thread.join(timeout=5)
    assert order == ["a", "b", "c"] and results == {"a": "a", "b": "b", "c": "c"}
    assert len(threads) == 1 and threading.get_ident() not in threads
    model.shutdown()


def test_a_call_that_cannot_start_in_time_is_busy_and_never_runs() -> None:
    model, gate, ran = ModelThread(), threading.Event(), []
    blocker = threading.Thread(target=model.call, args=(gate.wait,))
    blocker.start()
    wait_until(lambda: model.busy_since is not None, what="the first call to start")
    with pytest.raises(Busy, match=r"busy with other requests for 0\.05 s"):
        model.call(ran.append, 1, timeout=0.05)
    gate.set()
    blocker.join(timeout=5)
    assert model.call(ran.append, 2) is None and ran == [2]  # the busy call was dropped
    with pytest.raises(ZeroDivisionError):
        model.call(lambda: 1 / 0)  # the caller gets the call's own exception
    model.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        model.call(ran.append, 3)


def test_stamp_order_skips_out_of_order_pairs_and_recovers_from_jumps() -> None:
    second = 1_000_000_000
    order = StampOrder(max_rewind_ns=second, max_ahead_ns=60 * second)
    now = 1_000 * second
    assert order.check(now, now) == (True, "")
    order.predicted(now, now)
    stale, note = order.check(now - second // 2, now)
    assert not stale and "stale input skipped" in note
    go, note = order.check(now - 100 * second, now)  # a bag looping
    assert go and "jumped back 100.000 s" in note
    order.predicted(now - 100 * second, now)
    assert order.check(now - 99 * second, now) == (True, "")


def test_a_far_future_stamp_never_becomes_the_reference() -> None:
    second = 1_000_000_000
    order = StampOrder(max_rewind_ns=second, max_ahead_ns=60 * second)
    now = 1_000 * second
    order.predicted(now, now)
    future = 2**31 * second
    go, note = order.check(future, now)
    assert go and "ahead of the node's clock" in note
    order.predicted(future, now)
    assert order.check(now + second, now + second) == (True, "")
    assert order.check(now + 10 * second, 0) == (True, "")  # no clock yet: no 'ahead' check


def _info(width: int, height: int, sec: int) -> CameraInfo:
    info = CameraInfo(width=width, height=height)
    info.header.stamp.sec = sec
    return info


def _image(width: int, height: int, sec: int) -> Image:
    image = Image(width=width, height=height)
    image.header.stamp.sec = sec
    return image


def test_camera_info_of_the_image_size_arriving_after_the_image_is_used() -> None:
    """A camera switching resolution: the image of the new size comes before its camera_info
    (another topic). The pair waits for it rather than failing on the old size's."""
    infos = CameraInfos()
    infos.add(_info(160, 120, sec=1))
    waiting = threading.Event()
    found: list[CameraInfo | None] = []

    def look() -> None:
        waiting.set()
        found.append(infos.for_image(_image(640, 480, sec=2), wait_s=30.0, required=False))

    thread = threading.Thread(target=look)
    thread.start()
    waiting.wait(5.0)
    infos.add(_info(640, 480, sec=2))
    thread.join(30.0)
    assert (found[0].width, found[0].height) == (640, 480)


def test_camera_info_lookup_waits_only_when_waiting_can_help() -> None:
    infos = CameraInfos()
    started = time.monotonic()
    # none has come and the model needs none
    assert infos.for_image(_image(640, 480, sec=2), wait_s=30.0, required=False) is None
    # the camera's own camera_info for this frame is of another size: final, to be reported
    infos.add(_info(160, 120, sec=2))
    assert infos.for_image(_image(640, 480, sec=2), wait_s=30.0, required=True).width == 160
    assert time.monotonic() - started < 15.0  # neither waited out its 30 s
    assert (640, 480) not in infos and (160, 120) in infos
