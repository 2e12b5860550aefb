"""sensor_msgs <-> numpy conversion against hand-built messages."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

from grasp_semantics.inference.predictor import GraspPredictor
from grasp_semantics.ros import conversions
from grasp_semantics.ros.conversions import (
    ConversionError,
    camera_info_to_intrinsics,
    cloud_fields,
    cloud_to_xyz,
    depth_to_meters,
    image_to_rgb,
    rgb_to_image,
    xyz_to_cloud,
)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)


def make_image(pixels: np.ndarray, encoding: str, pad: int = 0, big_endian: bool = False):
    """An Image whose rows are ``pad`` bytes longer than the pixels need."""
    pixels = pixels.astype(pixels.dtype.newbyteorder(">" if big_endian else "<"))
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1).view(np.uint8)
    padded = np.concatenate([rows, np.full((height, pad), 0xAB, np.uint8)], axis=1)
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=big_endian)
    msg.step = padded.shape[1]
    msg.data = padded.tobytes()
    return msg


@pytest.mark.parametrize(
    "encoding, pixels",
    [
        ("rgb8", RGB),
        ("bgr8", RGB[..., ::-1]),
        ("rgba8", np.concatenate([RGB, np.full((4, 5, 1), 7, np.uint8)], axis=2)),
        ("bgra8", np.concatenate([RGB[..., ::-1], np.full((4, 5, 1), 7, np.uint8)], axis=2)),
    ],
)
@pytest.mark.parametrize("pad", [0, 3])
def test_colour_encodings_give_rgb(encoding: str, pixels: np.ndarray, pad: int) -> None:
    rgb = image_to_rgb(make_image(np.ascontiguousarray(pixels), encoding, pad=pad))
    assert rgb.dtype == np.uint8 and rgb.shape == (4, 5, 3)
    np.testing.assert_array_equal(rgb, RGB)


def test_mono8_is_replicated_to_three_channels() -> None:
    gray = RGB[..., 0].copy()
    rgb = image_to_rgb(make_image(gray, "mono8", pad=1))
    np.testing.assert_array_equal(rgb, np.repeat(gray[..., None], 3, axis=2))


def test_rgb8_without_padding_is_a_zero_copy_view() -> None:
    msg = make_image(RGB, "rgb8")
    rgb = image_to_rgb(msg)
    assert not rgb.flags.owndata
    assert not rgb.flags.writeable


@pytest.mark.parametrize("big_endian", [False, True])
def test_16uc1_depth_is_millimetres_with_zero_as_missing(big_endian: bool) -> None:
    depth_mm = np.array([[0, 1000], [1500, 65535]], dtype=np.uint16)
    depth = depth_to_meters(make_image(depth_mm, "16UC1", pad=2, big_endian=big_endian))
    assert np.isnan(depth[0, 0])
    np.testing.assert_allclose(depth[[0, 1, 1], [1, 0, 1]], [1.0, 1.5, 65.535], rtol=1e-6)


@pytest.mark.parametrize("big_endian", [False, True])
def test_32fc1_depth_is_metres(big_endian: bool) -> None:
    values = np.array([[0.5, np.nan, 2.25]], dtype=np.float32)
    depth = depth_to_meters(make_image(values, "32FC1", pad=4, big_endian=big_endian))
    np.testing.assert_array_equal(depth, values)


def test_rgb_round_trip_through_image_message() -> None:
    np.testing.assert_array_equal(image_to_rgb(rgb_to_image(RGB)), RGB)


@pytest.mark.parametrize("bridge", [True, False], ids=["with_cv_bridge", "without_cv_bridge"])
def test_unknown_encoding_is_named(bridge: bool, monkeypatch) -> None:
    if bridge:
        pytest.importorskip("cv_bridge")
    else:
        monkeypatch.setattr(conversions, "cv_bridge", lambda: None)
    msg = make_image(RGB, "rgb8")
    msg.encoding = "rgb7"
    with pytest.raises(ConversionError, match="unsupported image encoding 'rgb7'"):
        image_to_rgb(msg)


def test_without_cv_bridge_camera_encodings_beyond_the_common_ones_are_refused(
    monkeypatch,
) -> None:
    monkeypatch.setattr(conversions, "cv_bridge", lambda: None)
    msg = make_image(RGB[..., 0], "bayer_rggb8")
    with pytest.raises(ConversionError, match="cv_bridge, where installed, converts other"):
        image_to_rgb(msg)


def test_bayer_images_are_demosaiced_by_cv_bridge() -> None:
    """A uniform scene seen through an RGGB Bayer filter comes back as that colour."""
    pytest.importorskip("cv_bridge")
    mosaic = np.empty((8, 10), np.uint8)
    mosaic[0::2, 0::2], mosaic[1::2, 1::2] = 200, 50  # R and B sites
    mosaic[0::2, 1::2] = mosaic[1::2, 0::2] = 120  # G sites
    rgb = image_to_rgb(make_image(mosaic, "bayer_rggb8", pad=2))
    assert rgb.shape == (8, 10, 3) and rgb.dtype == np.uint8
    np.testing.assert_allclose(rgb[2:-2, 2:-2].reshape(-1, 3).mean(0), [200, 120, 50], atol=2)


def test_common_encodings_never_go_through_cv_bridge(monkeypatch) -> None:
    """With or without a ROS install the same code reads rgb8/bgr8/...: identical results."""

    def no_bridge():
        raise AssertionError("cv_bridge was used for a common encoding")

    monkeypatch.setattr(conversions, "cv_bridge", no_bridge)
    np.testing.assert_array_equal(image_to_rgb(make_image(RGB[..., ::-1], "bgr8")), RGB)


def test_step_smaller_than_row_is_rejected() -> None:
    msg = make_image(RGB, "rgb8")
    msg.step = 14  # 5 pixels x 3 bytes need 15
    with pytest.raises(ConversionError, match="step 14 is smaller than width 5"):
        image_to_rgb(msg)


def test_truncated_image_is_rejected() -> None:
    msg = make_image(RGB, "rgb8")
    msg.data = bytes(msg.data)[:-1]
    with pytest.raises(ConversionError, match="truncated"):
        image_to_rgb(msg)


def test_depth_passed_as_colour_is_rejected() -> None:
    with pytest.raises(ConversionError, match="expected a colour image"):
        image_to_rgb(make_image(np.zeros((2, 2), np.float32), "32FC1"))


def make_cloud(
    table: np.ndarray, height: int = 1, big_endian: bool = False, row_pad: int = 0
) -> PointCloud2:
    """A PointCloud2 from a structured array, keeping its field order, offsets and padding."""
    if big_endian:
        table = table.astype(table.dtype.newbyteorder(">"))
    types = {"f4": PointField.FLOAT32, "f8": PointField.FLOAT64, "u1": PointField.UINT8}
    fields = [
        PointField(
            name=name,
            offset=table.dtype.fields[name][1],
            datatype=types[table.dtype.fields[name][0].str[1:]],
            count=1,
        )
        for name in table.dtype.names
    ]
    width = table.size // height
    rows = table.view(np.uint8).reshape(height, -1)
    rows = np.concatenate([rows, np.zeros((height, row_pad), np.uint8)], axis=1)
    return PointCloud2(
        height=height,
        width=width,
        fields=fields,
        is_bigendian=big_endian,
        point_step=table.dtype.itemsize,
        row_step=rows.shape[1],
        data=rows.tobytes(),
        is_dense=False,
    )


XYZ = np.array(
    [
        [0.1, 0.2, 0.3],
        [np.nan, 0.0, 1.0],
        [1.0, 2.0, 3.0],
        [4.0, 5.0, 6.0],
        [7, 8, np.inf],
        [0, 0, 0],
    ],
    dtype=np.float32,
)


def structured(xyz: np.ndarray, order: tuple[str, ...], kind: str = "<f4", pad: int = 0):
    """Fields in ``order`` plus an rgb byte and ``pad`` trailing bytes."""
    item = np.dtype(kind).itemsize
    names = [*order, "rgb"]
    offsets = [i * item for i in range(len(order))] + [len(order) * item]
    dtype = np.dtype(
        {
            "names": names,
            "formats": [kind] * len(order) + ["u1"],
            "offsets": offsets,
            "itemsize": len(order) * item + 1 + pad,
        }
    )
    table = np.zeros(xyz.shape[0], dtype=dtype)
    for axis, name in enumerate("xyz"):
        table[name] = xyz[:, axis]
    table["rgb"] = 9
    return table


@pytest.mark.parametrize("order", [("x", "y", "z"), ("z", "x", "y")])
@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("kind", ["f4", "f8"])
def test_cloud_fields_in_any_order_endianness_and_padding(order, big_endian, kind) -> None:
    msg = make_cloud(structured(XYZ, order, kind, pad=3), big_endian=big_endian)
    cloud = cloud_to_xyz(msg)
    finite = np.isfinite(XYZ).all(axis=1)
    np.testing.assert_array_equal(cloud.index, np.flatnonzero(finite))
    np.testing.assert_allclose(cloud.points, XYZ[finite])
    assert cloud.points.dtype == np.float32 and not cloud.organized


@pytest.mark.parametrize("pad", [0, 3])
def test_dense_float32_xyz_is_a_read_only_view_of_the_message(pad) -> None:
    """The usual layout (x, y, z consecutive float32, other fields after) is not copied; the
    predictor then makes the one contiguous copy it needs."""
    dense = np.tile(XYZ[np.isfinite(XYZ).all(axis=1)], (10, 1))  # 40 points: enough to predict
    msg = make_cloud(structured(dense, ("x", "y", "z"), pad=pad))
    cloud = cloud_to_xyz(msg)
    data = np.frombuffer(memoryview(msg.data).cast("B"), dtype=np.uint8)
    assert np.shares_memory(cloud.points, data) and not cloud.points.flags.writeable
    np.testing.assert_array_equal(cloud.points, dense)
    np.testing.assert_array_equal(cloud.index, np.arange(len(dense)))
    compact = GraspPredictor._check_points(cloud.points)
    assert compact.flags.c_contiguous and compact.flags.writeable
    assert not np.shares_memory(compact, data)
    table = np.ascontiguousarray(dense).view([("x", "<f4"), ("y", "<f4"), ("z", "<f4")])[:, 0]
    packed = cloud_to_xyz(make_cloud(table))  # x, y, z only: a contiguous read-only view
    assert packed.points.flags.c_contiguous and not packed.points.flags.writeable
    assert GraspPredictor._check_points(packed.points).flags.writeable
    # x, y, z out of order, or not float32: copied as before, same values
    shuffled = cloud_to_xyz(make_cloud(structured(dense, ("z", "x", "y"))))
    assert not np.shares_memory(shuffled.points, data)
    np.testing.assert_array_equal(shuffled.points, dense)


def test_organized_cloud_keeps_pixel_index_and_skips_row_padding() -> None:
    msg = make_cloud(structured(XYZ, ("x", "y", "z")), height=2, row_pad=5)
    cloud = cloud_to_xyz(msg)
    assert cloud.organized and (cloud.width, cloud.height) == (3, 2)
    np.testing.assert_array_equal(cloud.index, [0, 2, 3, 5])
    np.testing.assert_allclose(cloud.points, XYZ[[0, 2, 3, 5]])


def test_cloud_without_xyz_is_rejected() -> None:
    table = np.zeros(3, dtype=[("a", "<f4"), ("b", "<f4")])
    msg = make_cloud(table.view(np.dtype({"names": ["a", "b"], "formats": ["<f4", "<f4"]})))
    with pytest.raises(ConversionError, match="no field x, y, z"):
        cloud_to_xyz(msg)


def test_empty_and_truncated_clouds_are_rejected() -> None:
    msg = make_cloud(structured(XYZ, ("x", "y", "z")))
    msg.data = bytes(msg.data)[:-1]
    with pytest.raises(ConversionError, match="truncated"):
        cloud_to_xyz(msg)
    empty = make_cloud(structured(XYZ[:0], ("x", "y", "z")))
    with pytest.raises(ConversionError, match="empty"):
        cloud_to_xyz(empty)


def test_field_beyond_point_step_is_rejected() -> None:
    msg = make_cloud(structured(XYZ, ("x", "y", "z")))
    msg.fields[2].offset = msg.point_step - 2
    with pytest.raises(ConversionError, match="does not fit in point_step"):
        cloud_to_xyz(msg)


def test_contacts_cloud_round_trip_with_extra_field() -> None:
    points = RNG.normal(size=(7, 3)).astype(np.float32)
    contact = RNG.uniform(size=7).astype(np.float32)
    msg = xyz_to_cloud(points, extra={"contact": contact})
    assert [f.name for f in msg.fields] == ["x", "y", "z", "contact"]
    assert (msg.height, msg.width, msg.point_step) == (1, 7, 16)
    np.testing.assert_array_equal(cloud_to_xyz(msg).points, points)
    np.testing.assert_array_equal(cloud_fields(msg, ("contact",))["contact"], contact)
    with pytest.raises(ConversionError, match="'contact' has 6 values for 7 points"):
        xyz_to_cloud(points, extra={"contact": contact[:6]})


def test_camera_info_intrinsics() -> None:
    info = CameraInfo(k=[600.0, 0.0, 320.0, 0.0, 601.0, 240.0, 0.0, 0.0, 1.0])
    k = camera_info_to_intrinsics(info)
    assert k.shape == (3, 3) and k[0, 0] == 600.0 and k[1, 2] == 240.0
    with pytest.raises(ConversionError, match=r"camera_info K rejected: .*last row"):
        camera_info_to_intrinsics(CameraInfo())


@pytest.mark.parametrize(
    ("k", "match"),
    [
        ([1e30, 0, 320, 0, 600, 240, 0, 0, 1], "fx = 1e"),
        ([1e-30, 0, 320, 0, 600, 240, 0, 0, 1], "fx = 1e-30"),
        ([600, 1e20, 320, 0, 600, 240, 0, 0, 1], "skew"),
        ([600, 0, 320, 0, float("nan"), 240, 0, 0, 1], "non-finite"),
        ([600, 0, 1e6, 0, 600, 240, 0, 0, 1], "principal point"),
    ],
)
def test_camera_info_with_an_absurd_k_is_rejected_with_the_reason(k, match) -> None:
    info = CameraInfo(width=640, height=480, k=[float(v) for v in k])
    with pytest.raises(ConversionError, match=match):
        camera_info_to_intrinsics(info)
