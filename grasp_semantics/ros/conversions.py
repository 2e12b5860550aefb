"""sensor_msgs <-> numpy, with cv_bridge for the image encodings it alone knows.

The functions read the message attributes only (``height``, ``width``, ``encoding``, ``step``,
``data``, ...), so they accept rclpy messages and the ``rosbags`` library's message objects
alike. Reading returns zero-copy views of the message buffer where the layout allows it.
Every malformed message raises :class:`ConversionError` naming the problem.

The common encodings (rgb8, bgr8, rgba8, bgra8, mono8, 16UC1, 32FC1, ...) are read here, the
same with or without a full ROS install. Colour images in any other encoding a camera driver
may publish (Bayer patterns, yuv422, ...) go through ``cv_bridge`` when it is importable (a
full ROS 2 install; ``package.xml`` declares it) and are refused with a clear error otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from sensor_msgs.msg import Image, PointCloud2, PointField

from grasp_semantics.inference.camera import check_intrinsics


class ConversionError(ValueError):
    """A message cannot be converted; the text says which field is wrong and how."""


@dataclass(frozen=True)
class _Encoding:
    dtype: str  # numpy dtype, little-endian form
    channels: int
    order: tuple[int, ...] | None  # channel order that gives RGB; None = not a colour image


_ENCODINGS: dict[str, _Encoding] = {
    "rgb8": _Encoding("u1", 3, (0, 1, 2)),
    "bgr8": _Encoding("u1", 3, (2, 1, 0)),
    "rgba8": _Encoding("u1", 4, (0, 1, 2)),
    "bgra8": _Encoding("u1", 4, (2, 1, 0)),
    "mono8": _Encoding("u1", 1, (0, 0, 0)),
    "16UC1": _Encoding("<u2", 1, None),
    "mono16": _Encoding("<u2", 1, None),
    "32FC1": _Encoding("<f4", 1, None),
}
COLOR_ENCODINGS = tuple(name for name, enc in _ENCODINGS.items() if enc.order is not None)
DEPTH_ENCODINGS = ("16UC1", "32FC1")

# sensor_msgs/PointField datatype -> numpy type
_FIELD_TYPES = {
    PointField.INT8: "i1",
    PointField.UINT8: "u1",
    PointField.INT16: "i2",
    PointField.UINT16: "u2",
    PointField.INT32: "i4",
    PointField.UINT32: "u4",
    PointField.FLOAT32: "f4",
    PointField.FLOAT64: "f8",
}


def _buffer(data: Any) -> np.ndarray:
    """The message's ``data`` as a flat uint8 array, without a copy when possible."""
    if isinstance(data, np.ndarray):
        return data.view(np.uint8).reshape(-1)
    return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)


def _image_rows(msg: Any, channels: int, itemsize: int) -> np.ndarray:
    """The pixel bytes of each row, ``uint8 [H, width * channels * itemsize]``: a zero-copy
    strided view that skips row padding; empty, short-stepped or truncated images refused."""
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ConversionError(f"empty image: {width}x{height}")
    row_bytes = width * channels * itemsize
    if step < row_bytes:
        raise ConversionError(
            f"image step {step} is smaller than width {width} x {channels} channels x "
            f"{itemsize} bytes = {row_bytes} for encoding '{msg.encoding}'"
        )
    buffer = _buffer(msg.data)
    if buffer.size < step * (height - 1) + row_bytes:
        raise ConversionError(
            f"image data has {buffer.size} bytes, expected {step * height} "
            f"(step {step} x height {height}): truncated"
        )
    return np.lib.stride_tricks.as_strided(
        buffer, shape=(height, row_bytes), strides=(step, 1), writeable=False
    )


def image_to_numpy(msg: Any) -> np.ndarray:
    """Image pixels as ``[H, W]`` or ``[H, W, C]`` in the message's own encoding.

    Row padding (``step`` larger than ``width * pixel size``) is skipped with a strided view.
    """
    encoding = _ENCODINGS.get(msg.encoding)
    if encoding is None:
        raise ConversionError(
            f"unsupported image encoding '{msg.encoding}' (supported: {', '.join(_ENCODINGS)}; "
            f"cv_bridge, where installed, converts other colour encodings)"
        )
    dtype = np.dtype(encoding.dtype)
    if msg.is_bigendian and dtype.itemsize > 1:
        dtype = dtype.newbyteorder(">")
    rows = _image_rows(msg, encoding.channels, dtype.itemsize)
    height, width, step = rows.shape[0], int(msg.width), int(msg.step)
    pixels = rows.view(dtype) if step % dtype.itemsize == 0 else rows.copy().view(dtype)
    pixels = pixels.reshape(height, width, encoding.channels)
    return pixels[..., 0] if encoding.channels == 1 else pixels


@cache
def cv_bridge() -> Any | None:
    """A ``cv_bridge.CvBridge`` where the package is installed, else None (looked up once)."""
    try:
        from cv_bridge import CvBridge
    except ImportError:
        return None
    return CvBridge()


def _bridged_rgb(msg: Any, bridge: Any) -> np.ndarray:
    """An encoding this module does not read, converted to RGB by cv_bridge."""
    try:
        dtype, channels = bridge.encoding_to_dtype_with_channels(msg.encoding)
        rows = _image_rows(msg, channels, np.dtype(dtype).itemsize)
        if int(msg.step) != rows.shape[1]:  # some cv_bridge builds ignore step: packed rows
            msg = Image(
                header=msg.header,
                height=msg.height,
                width=msg.width,
                encoding=msg.encoding,
                is_bigendian=msg.is_bigendian,
                step=rows.shape[1],
                data=rows.tobytes(),
            )
        rgb = bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8")
    except ConversionError:
        raise
    except Exception as error:  # CvBridgeError, or cv2's own errors for a bad layout
        raise ConversionError(
            f"unsupported image encoding '{msg.encoding}' (cv_bridge to rgb8: {error})"
        ) from error
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def image_to_rgb(msg: Any) -> np.ndarray:
    """A colour (or mono8) image as RGB ``uint8 [H, W, 3]``."""
    if msg.encoding in DEPTH_ENCODINGS or msg.encoding == "mono16":
        raise ConversionError(
            f"expected a colour image ({', '.join(COLOR_ENCODINGS)}), got '{msg.encoding}'"
        )
    bridge = cv_bridge() if msg.encoding not in _ENCODINGS else None
    if bridge is not None:
        return _bridged_rgb(msg, bridge)
    pixels = image_to_numpy(msg)
    order = _ENCODINGS[msg.encoding].order
    if pixels.ndim == 2:
        return np.repeat(pixels[..., None], 3, axis=2)
    if order == (0, 1, 2) and pixels.shape[2] == 3:
        return pixels
    return np.ascontiguousarray(pixels[..., list(order)])


def depth_to_meters(msg: Any) -> np.ndarray:
    """A depth image as float32 metres ``[H, W]``; 16UC1 is millimetres, 0 means no return."""
    if msg.encoding not in DEPTH_ENCODINGS:
        raise ConversionError(
            f"expected a depth image ({', '.join(DEPTH_ENCODINGS)}), got '{msg.encoding}'"
        )
    pixels = image_to_numpy(msg)
    if msg.encoding == "16UC1":
        depth = pixels.astype(np.float32) * 1e-3
        depth[pixels == 0] = np.nan
        return depth
    return pixels.astype(np.float32, copy=False)


def rgb_to_image(rgb: np.ndarray, header: Any = None) -> Any:
    """An RGB ``uint8 [H, W, 3]`` array as a sensor_msgs/Image (rgb8)."""

    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ConversionError(f"expected uint8 [H, W, 3], got {rgb.dtype} {list(rgb.shape)}")
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = 3 * msg.width
    msg.data = np.ascontiguousarray(rgb).tobytes()
    return msg


@dataclass(frozen=True)
class Cloud:
    """The finite points of a PointCloud2.

    ``points`` is float32 ``[N, 3]``; ``index`` ``[N]`` is each point's position in the message
    (row-major, ``row * width + col`` for organised clouds), so per-point results can be mapped
    back to pixels; ``organized`` tells whether ``height > 1``.
    """

    points: np.ndarray
    index: np.ndarray
    width: int
    height: int

    @property
    def organized(self) -> bool:
        return self.height > 1


def _cloud_dtype(msg: Any, names: tuple[str, ...]) -> np.dtype:
    fields = {field.name: field for field in msg.fields}
    missing = [name for name in names if name not in fields]
    if missing:
        present = ", ".join(fields) or "none"
        raise ConversionError(f"point cloud has no field {', '.join(missing)} (has: {present})")
    byte_order = ">" if msg.is_bigendian else "<"
    formats, offsets = [], []
    for name in names:
        field = fields[name]
        if field.datatype not in _FIELD_TYPES:
            raise ConversionError(f"field '{name}' has unknown datatype {field.datatype}")
        if field.count != 1:
            raise ConversionError(f"field '{name}' has count {field.count}, expected 1")
        item = np.dtype(byte_order + _FIELD_TYPES[field.datatype])
        if field.offset + item.itemsize > msg.point_step:
            raise ConversionError(
                f"field '{name}' at offset {field.offset} does not fit in point_step "
                f"{msg.point_step}"
            )
        formats.append(item)
        offsets.append(field.offset)
    return np.dtype(
        {"names": list(names), "formats": formats, "offsets": offsets, "itemsize": msg.point_step}
    )


def cloud_fields(msg: Any, names: tuple[str, ...]) -> np.ndarray:
    """Structured array ``[H * W]`` of the named fields, a view of the message data."""
    height, width = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    if height * width == 0:
        raise ConversionError(f"point cloud is empty ({width}x{height})")
    if row_step < width * point_step:
        raise ConversionError(
            f"row_step {row_step} is smaller than width {width} x point_step {point_step}"
        )
    dtype = _cloud_dtype(msg, names)
    buffer = _buffer(msg.data)
    if buffer.size < row_step * (height - 1) + width * point_step:
        raise ConversionError(
            f"point cloud data has {buffer.size} bytes, expected {row_step * height} "
            f"(row_step {row_step} x height {height}): truncated"
        )
    if row_step == width * point_step:
        return buffer[: height * row_step].view(dtype)
    rows = [buffer[r * row_step : r * row_step + width * point_step] for r in range(height)]
    return np.concatenate(rows).view(dtype)


def _xyz_view(fields: np.ndarray) -> np.ndarray | None:
    """x, y, z as a float32 ``[N, 3]`` view of :func:`cloud_fields`' array ``[N]`` when they are
    consecutive little-endian float32 fields (the layout drivers and PCL publish), else None.

    Row ``i`` starts at point ``i``'s x and steps 4 bytes to its y and z: ``cloud_fields`` has
    checked that every field lies inside ``point_step``, so the view stays inside the data.
    """
    dtype = fields.dtype
    offset = dtype.fields["x"][1]
    consecutive = all(
        dtype.fields[name][0] == np.dtype("<f4") and dtype.fields[name][1] == offset + 4 * i
        for i, name in enumerate(("x", "y", "z"))
    )
    if not consecutive or fields.strides != (dtype.itemsize,):
        return None
    return np.lib.stride_tricks.as_strided(
        fields["x"], shape=(len(fields), 3), strides=(dtype.itemsize, 4), writeable=False
    )


def cloud_to_xyz(msg: Any) -> Cloud:
    """Finite x, y, z points of a PointCloud2 (any field order, padding, endianness).

    In the usual layout (x, y, z consecutive little-endian float32) ``points`` is a read-only
    strided view of the message data when every point is finite: no copy is made here (the
    predictor makes the one contiguous copy it needs). Otherwise the finite rows are copied.
    """
    fields = cloud_fields(msg, ("x", "y", "z"))
    xyz = _xyz_view(fields)
    if xyz is None:
        xyz = np.stack([fields["x"], fields["y"], fields["z"]], axis=1).astype(np.float32)
    finite = np.isfinite(xyz).all(axis=1)
    index = np.flatnonzero(finite)
    points = xyz if len(index) == len(xyz) else xyz[index]
    return Cloud(points=points, index=index, width=int(msg.width), height=int(msg.height))


def xyz_to_cloud(
    points: np.ndarray, header: Any = None, extra: dict[str, np.ndarray] | None = None
) -> PointCloud2:
    """An unorganised PointCloud2 with float32 x, y, z and one float32 field per ``extra``."""
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ConversionError(f"expected points [N, 3], got {list(points.shape)}")
    names = ["x", "y", "z", *(extra or {})]
    dtype = np.dtype([(name, "<f4") for name in names])
    table = np.empty(points.shape[0], dtype=dtype)
    table["x"], table["y"], table["z"] = points.T
    for name, values in (extra or {}).items():
        values = np.asarray(values, dtype=np.float32).reshape(-1)
        if values.shape[0] != points.shape[0]:
            raise ConversionError(
                f"field '{name}' has {values.shape[0]} values for {points.shape[0]} points"
            )
        table[name] = values
    msg = PointCloud2()
    if header is not None:
        msg.header = header
    msg.height, msg.width = 1, int(points.shape[0])
    msg.fields = [
        PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
        for i, name in enumerate(names)
    ]
    msg.is_bigendian = False
    msg.point_step = dtype.itemsize
    msg.row_step = dtype.itemsize * msg.width
    msg.is_dense = True
    msg.data = table.tobytes()
    return msg


def camera_info_to_intrinsics(msg: Any) -> np.ndarray:
    """The 3x3 intrinsic matrix K (float32) of a CameraInfo, checked to be a plausible pinhole
    camera for the info's own image size (``inference/camera.py``: ``check_intrinsics``)."""
    size = (int(msg.height), int(msg.width)) if msg.height and msg.width else None
    try:
        return check_intrinsics(np.asarray(msg.k, dtype=np.float64).reshape(3, 3), size)
    except ValueError as error:
        raise ConversionError(f"camera_info K rejected: {error}") from error
