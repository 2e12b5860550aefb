"""What the node makes of its sensor inputs before the model sees them: the QoS it subscribes
with, which fields of a service request are given, and the newest camera_info of each image
size (a pair uses its own size's, so two streams, or a camera switching resolution, never mix,
whichever topic comes first)."""

from __future__ import annotations

import threading

from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

MAX_CAMERA_INFO_SIZES = 8  # image sizes whose newest camera_info is kept


def stamp_ns(header: Header) -> int:
    """A header's stamp in nanoseconds."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def sensor_qos(reliability: str) -> QoSProfile:
    """Sensor-data QoS (keep last 5, volatile) with ``reliability`` 'best_effort' or
    'reliable'."""
    reliable = reliability == "reliable"
    return QoSProfile(
        history=qos_profile_sensor_data.history,
        depth=qos_profile_sensor_data.depth,
        durability=qos_profile_sensor_data.durability,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
    )


def image_given(msg: Image) -> bool:
    """Whether a request carries an image: any of its fields set. An image that declares a
    size but has no data is given, and then rejected for that, not replaced by the latest."""
    return bool(msg.data) or bool(msg.width) or bool(msg.height) or bool(msg.encoding)


def cloud_given(msg: PointCloud2) -> bool:
    """Whether a request carries a cloud (any field set; see :func:`image_given`)."""
    return bool(msg.data) or bool(msg.width) or bool(msg.height) or bool(msg.fields)


def camera_info_given(msg: CameraInfo) -> bool:
    """Whether a request carries a camera_info (a size or any K entry)."""
    return bool(msg.width) or bool(msg.height) or any(msg.k)


class CameraInfos:
    """The newest camera_info of each of the last ``MAX_CAMERA_INFO_SIZES`` image sizes, and
    the newest of any size. Thread-safe: the subscription adds, the worker and services wait."""

    def __init__(self) -> None:
        self._by_size: dict[tuple[int, int], CameraInfo] = {}
        self._latest: CameraInfo | None = None
        self._arrived = threading.Condition()

    def add(self, msg: CameraInfo) -> None:
        with self._arrived:
            self._latest = msg
            self._by_size.pop((msg.width, msg.height), None)  # re-inserted as the newest size
            self._by_size[msg.width, msg.height] = msg
            while len(self._by_size) > MAX_CAMERA_INFO_SIZES:
                self._by_size.pop(next(iter(self._by_size)))
            self._arrived.notify_all()

    def for_image(
        self, image: Image, wait_s: float = 0.0, required: bool = False
    ) -> CameraInfo | None:
        """The newest camera_info of ``image``'s size; else the newest of any size (whose size
        mismatch is then reported), or None.

        A pair may come before its camera_info (another topic; a reliable message the
        transport resends can come a second late), so without one of its size this waits up to
        ``wait_s`` for it, unless the newest camera_info is already as new as the image (the
        camera's own for this frame, of another size: waiting cannot help) or none has come
        and the model has not ``required`` one."""
        size, stamp = (image.width, image.height), stamp_ns(image.header)

        def settled() -> bool:
            newest = self._latest
            return size in self._by_size or (
                newest is not None and stamp_ns(newest.header) >= stamp
            )

        with self._arrived:
            if required or self._latest is not None:
                self._arrived.wait_for(settled, wait_s)
            return self._by_size.get(size, self._latest)

    def __contains__(self, size: tuple[int, int]) -> bool:
        """Whether a camera_info of image size ``(width, height)`` is kept."""
        with self._arrived:
            return size in self._by_size

    def clear(self) -> None:
        with self._arrived:
            self._by_size.clear()
            self._latest = None
