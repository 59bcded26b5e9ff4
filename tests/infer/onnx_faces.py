"""Tiny insightface-routable ONNX graphs, built in-process with onnx.helper.

Detector: 9 outputs (scores, boxes, 5-point landmarks at strides 8/16/32, 2 anchors): the SCRFD
layout insightface routes on (>= 5 outputs). Its score is the local brightness, so a bright square
on a dark photo is 'a face'. Recogniser: a square 112x112 input and one 512-d output (ArcFaceONNX):
average-pool 8x8 then a fixed random projection, so different pictures embed differently.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

STRIDES = (8, 16, 32)
# landmark offsets from the anchor centre in stride units: eyes, nose, mouth corners
KPS = np.array([[-0.7, -0.6], [0.7, -0.6], [0.0, 0.1], [-0.5, 0.8], [0.5, 0.8]], dtype=np.float32)


def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def build_detector(path: Path, size: int = 640) -> Path:
    nodes, inits, outs = [], [], {"score": [], "bbox": [], "kps": []}
    for s in STRIDES:
        w = np.full((2, 3, s, s), 1.0 / (3 * s * s), dtype=np.float32)
        inits += [numpy_helper.from_array(w, f"w_mean{s}"),
                  numpy_helper.from_array(np.zeros((8, 3, s, s), np.float32), f"w_zero8_{s}"),
                  numpy_helper.from_array(np.zeros((20, 3, s, s), np.float32), f"w_zero20_{s}"),
                  numpy_helper.from_array(np.full(8, 1.5, np.float32), f"b_box{s}"),
                  numpy_helper.from_array(np.tile(KPS.reshape(-1), 2).astype(np.float32), f"b_kps{s}")]
        conv = dict(kernel_shape=[s, s], strides=[s, s])
        nodes += [
            helper.make_node("Conv", ["input.1", f"w_mean{s}"], [f"m{s}"], **conv),
            helper.make_node("Sub", [f"m{s}", "half"], [f"c{s}"]),
            helper.make_node("Mul", [f"c{s}", "ten"], [f"z{s}"]),
            helper.make_node("Sigmoid", [f"z{s}"], [f"sg{s}"]),
            helper.make_node("Transpose", [f"sg{s}"], [f"st{s}"], perm=[0, 2, 3, 1]),
            helper.make_node("Reshape", [f"st{s}", "shape1"], [f"score_{s}"]),
            helper.make_node("Conv", ["input.1", f"w_zero8_{s}", f"b_box{s}"], [f"bb{s}"], **conv),
            helper.make_node("Transpose", [f"bb{s}"], [f"bt{s}"], perm=[0, 2, 3, 1]),
            helper.make_node("Reshape", [f"bt{s}", "shape4"], [f"bbox_{s}"]),
            helper.make_node("Conv", ["input.1", f"w_zero20_{s}", f"b_kps{s}"], [f"kk{s}"], **conv),
            helper.make_node("Transpose", [f"kk{s}"], [f"kt{s}"], perm=[0, 2, 3, 1]),
            helper.make_node("Reshape", [f"kt{s}", "shape10"], [f"kps_{s}"]),
        ]
        n = (size // s) ** 2 * 2
        outs["score"].append(helper.make_tensor_value_info(f"score_{s}", TensorProto.FLOAT, [n, 1]))
        outs["bbox"].append(helper.make_tensor_value_info(f"bbox_{s}", TensorProto.FLOAT, [n, 4]))
        outs["kps"].append(helper.make_tensor_value_info(f"kps_{s}", TensorProto.FLOAT, [n, 10]))
    inits += [numpy_helper.from_array(np.array(0.5, np.float32), "half"),
              numpy_helper.from_array(np.array(10.0, np.float32), "ten"),
              numpy_helper.from_array(np.array([-1, 1], np.int64), "shape1"),
              numpy_helper.from_array(np.array([-1, 4], np.int64), "shape4"),
              numpy_helper.from_array(np.array([-1, 10], np.int64), "shape10")]
    graph = helper.make_graph(nodes, "tiny_scrfd",
                              [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, size, size])],
                              outs["score"] + outs["bbox"] + outs["kps"], initializer=inits)
    return _save(graph, path)


def build_recognizer(path: Path, seed: int) -> Path:
    proj = np.random.default_rng(seed).standard_normal((3 * 14 * 14, 512)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("AveragePool", ["data"], ["p"], kernel_shape=[8, 8], strides=[8, 8]),
         helper.make_node("Flatten", ["p"], ["f"]),
         helper.make_node("MatMul", ["f", "proj"], ["fc1"])],
        "tiny_arcface", [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 512])],
        initializer=[numpy_helper.from_array(proj, "proj")])
    return _save(graph, path)


def build_pack(folder: Path, *, det_name: str, rec_name: str, seed: int) -> Path:
    """An insightface-style pack folder with a detector and a recogniser under the given file names."""
    folder.mkdir(parents=True, exist_ok=True)
    build_detector(folder / det_name)
    build_recognizer(folder / rec_name, seed)
    return folder
