"""Synthetic scenes as a rosbag2 (mcap storage) and back, with the pure-Python ``rosbags``.

Per scene ``i`` (stamp ``t_i = start + i * period``; every header carries ``t_i``):

==================================  ==========================  ============================
topic                               type                        content
==================================  ==========================  ============================
/grasp_semantics/instruction        std_msgs/String             the instruction (bag time
                                                                ``t_i - lead``, transient local)
/camera/color/camera_info           sensor_msgs/CameraInfo      pinhole intrinsics, no distortion
/camera/color/image_raw             sensor_msgs/Image           rgb8
/camera/depth/points                sensor_msgs/PointCloud2     x y z float32 (unorganised)
/grasp_semantics/ground_truth       sensor_msgs/PointCloud2     x y z float32, object int16,
                                                                part int16, contact uint8
/grasp_semantics/ground_truth_info  std_msgs/String             JSON: seed, split, task, target,
                                                                functional part, objects, grasps
==================================  ==========================  ============================

Image and clouds share the frame ``camera_color_optical_frame`` (one RGB-D camera, so no
extrinsic is needed). The ground-truth cloud is point-for-point aligned with the input cloud.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from grasp_semantics.data.scene import Scene

FRAME_ID = "camera_color_optical_frame"
TOPIC_IMAGE = "/camera/color/image_raw"
TOPIC_INFO = "/camera/color/camera_info"
TOPIC_CLOUD = "/camera/depth/points"
TOPIC_INSTRUCTION = "/grasp_semantics/instruction"
TOPIC_GT = "/grasp_semantics/ground_truth"
TOPIC_GT_INFO = "/grasp_semantics/ground_truth_info"
TYPES = {
    TOPIC_INSTRUCTION: "std_msgs/msg/String",
    TOPIC_INFO: "sensor_msgs/msg/CameraInfo",
    TOPIC_IMAGE: "sensor_msgs/msg/Image",
    TOPIC_CLOUD: "sensor_msgs/msg/PointCloud2",
    TOPIC_GT: "sensor_msgs/msg/PointCloud2",
    TOPIC_GT_INFO: "std_msgs/msg/String",
}
STORE = Stores.ROS2_KILTED

# sensor_msgs/PointField datatypes
INT16, UINT8, FLOAT32 = 3, 2, 7
GT_DTYPE = np.dtype(
    {
        "names": ["x", "y", "z", "object", "part", "contact"],
        "formats": ["<f4", "<f4", "<f4", "<i2", "<i2", "u1"],
        "offsets": [0, 4, 8, 12, 14, 16],
        "itemsize": 20,
    }
)
XYZ_DTYPE = np.dtype({"names": ["x", "y", "z"], "formats": ["<f4"] * 3, "itemsize": 12})


def _qos(reliable: bool, transient: bool) -> Qos:
    zero = QosTime(0, 0)
    return Qos(
        QosHistory.KEEP_LAST,
        1,
        QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
        QosDurability.TRANSIENT_LOCAL if transient else QosDurability.VOLATILE,
        zero,
        zero,
        QosLiveliness.AUTOMATIC,
        zero,
        False,
    )


def _stamp(ts, ns: int):
    return ts.types["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)


def _header(ts, ns: int):
    return ts.types["std_msgs/msg/Header"](stamp=_stamp(ts, ns), frame_id=FRAME_ID)


def _cloud(ts, ns: int, records: np.ndarray):
    pf = ts.types["sensor_msgs/msg/PointField"]
    kinds = {"<f4": FLOAT32, "<i2": INT16, "|u1": UINT8}
    fields = [
        pf(
            name=n,
            offset=records.dtype.fields[n][1],
            datatype=kinds[records.dtype.fields[n][0].str],
            count=1,
        )
        for n in records.dtype.names
    ]
    return ts.types["sensor_msgs/msg/PointCloud2"](
        header=_header(ts, ns),
        height=1,
        width=len(records),
        fields=fields,
        is_bigendian=False,
        point_step=records.dtype.itemsize,
        row_step=records.dtype.itemsize * len(records),
        data=np.frombuffer(records.tobytes(), np.uint8),
        is_dense=True,
    )


def _info_json(scene: Scene) -> str:
    return json.dumps(
        {
            "seed": scene.seed,
            "split": scene.split,
            "task": scene.task,
            "paraphrase_id": scene.paraphrase_id,
            "instruction": scene.instruction,
            "target": scene.target,
            "functional_part": scene.functional_part,
            "objects": [o.__dict__ for o in scene.objects],
            "grasps": np.round(scene.grasps.astype(float), 6).tolist(),
            "grasp_widths": np.round(scene.grasp_widths.astype(float), 6).tolist(),
        }
    )


def write_bag(
    path: str | Path,
    scenes: Iterable[Scene],
    start_ns: int = 1_700_000_000 * 10**9,
    period_s: float = 0.5,
    instruction_lead_s: float = 0.05,
) -> Path:
    """Write ``scenes`` as a rosbag2 directory ``path`` (must not exist), mcap storage."""
    ts = get_typestore(STORE)
    path = Path(path)
    sensor, latched = _qos(False, False), _qos(True, True)
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {
            topic: writer.add_connection(
                topic,
                msgtype,
                typestore=ts,
                offered_qos_profiles=[latched if "grasp_semantics" in topic else sensor],
            )
            for topic, msgtype in TYPES.items()
        }
        string = ts.types["std_msgs/msg/String"]
        for i, scene in enumerate(scenes):
            ns = start_ns + round(i * period_s * 1e9)
            h, w = scene.rgb.shape[:2]
            k = scene.intrinsics.astype(np.float64)
            msgs = {
                TOPIC_INSTRUCTION: string(data=scene.instruction),
                TOPIC_INFO: ts.types["sensor_msgs/msg/CameraInfo"](
                    header=_header(ts, ns),
                    height=h,
                    width=w,
                    distortion_model="plumb_bob",
                    d=np.zeros(5),
                    k=k.ravel(),
                    r=np.eye(3).ravel(),
                    p=np.c_[k, np.zeros(3)].ravel(),
                    binning_x=0,
                    binning_y=0,
                    roi=ts.types["sensor_msgs/msg/RegionOfInterest"](
                        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
                    ),
                ),
                TOPIC_IMAGE: ts.types["sensor_msgs/msg/Image"](
                    header=_header(ts, ns),
                    height=h,
                    width=w,
                    encoding="rgb8",
                    is_bigendian=0,
                    step=w * 3,
                    data=np.ascontiguousarray(scene.rgb).reshape(-1),
                ),
            }
            xyz = np.zeros(len(scene.points), XYZ_DTYPE)
            gt = np.zeros(len(scene.points), GT_DTYPE)
            for j, c in enumerate("xyz"):
                xyz[c] = gt[c] = scene.points[:, j]
            gt["object"], gt["part"] = scene.point_object, scene.point_part
            gt["contact"] = scene.point_contact
            msgs[TOPIC_CLOUD] = _cloud(ts, ns, xyz)
            msgs[TOPIC_GT] = _cloud(ts, ns, gt)
            msgs[TOPIC_GT_INFO] = string(data=_info_json(scene))
            lead = round(instruction_lead_s * 1e9)
            for topic, msg in msgs.items():
                t = ns - lead if topic == TOPIC_INSTRUCTION else ns
                writer.write(conns[topic], t, ts.serialize_cdr(msg, TYPES[topic]))
    return path


def _records(msg, dtype: np.dtype) -> np.ndarray:
    raw = np.asarray(msg.data, np.uint8).reshape(msg.height * msg.width, msg.point_step)
    return raw[:, : dtype.itemsize].copy().view(dtype).reshape(-1)


def read_bag(path: str | Path) -> Iterator[dict[str, Any]]:
    """Scenes back from a ``write_bag`` bag, in order: dicts with ``stamp_ns``, ``frame_id``,
    ``instruction``, ``rgb`` [H,W,3] uint8, ``intrinsics`` [3,3] float32, ``points`` [N,3]
    float32, ``point_object``/``point_part`` [N] int16, ``point_contact`` [N] uint8 and ``info``
    (the ground-truth JSON, decoded), ``topics`` {topic: bag time ns}."""
    ts = get_typestore(STORE)
    current: dict[str, Any] = {}
    instruction = None
    with Reader(path) as reader:
        for conn, t, raw in reader.messages():
            msg = ts.deserialize_cdr(raw, conn.msgtype)
            if conn.topic == TOPIC_INSTRUCTION:
                instruction = msg.data
                continue
            stamp = (
                msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
                if hasattr(msg, "header")
                else t
            )
            if current and current["stamp_ns"] != stamp:
                yield current
                current = {}
            if not current:
                current = {"stamp_ns": stamp, "instruction": instruction, "topics": {}}
            current["topics"][conn.topic] = t
            if conn.topic == TOPIC_IMAGE:
                current["frame_id"] = msg.header.frame_id
                current["rgb"] = np.asarray(msg.data, np.uint8).reshape(msg.height, msg.width, 3)
            elif conn.topic == TOPIC_INFO:
                current["intrinsics"] = (
                    np.asarray(msg.k, np.float64).reshape(3, 3).astype(np.float32)
                )
            elif conn.topic == TOPIC_CLOUD:
                r = _records(msg, XYZ_DTYPE)
                current["points"] = np.stack([r["x"], r["y"], r["z"]], 1)
                current["cloud_frame_id"] = msg.header.frame_id
            elif conn.topic == TOPIC_GT:
                r = _records(msg, GT_DTYPE)
                current["point_object"] = r["object"].astype(np.int16)
                current["point_part"] = r["part"].astype(np.int16)
                current["point_contact"] = r["contact"].astype(np.uint8)
            elif conn.topic == TOPIC_GT_INFO:
                current["info"] = json.loads(msg.data)
    if current:
        yield current
