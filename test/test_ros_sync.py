"""Newest-pair stamp synchronisation."""

from __future__ import annotations

import threading

from grasp_semantics.ros.sync import NewestPairSync

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
