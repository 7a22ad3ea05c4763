"""Motion file input/output: BVH reading and writing (:mod:`adamotion.io.bvh`), and saving generated results as
``.npy`` files or reproducible ``.npz`` bundles (:mod:`adamotion.io.export`). Building a dataset from BVH
files is :mod:`adamotion.data.bvh_import`."""
from adamotion.io.bvh import (
    BvhFormatError,
    BvhJoints,
    BvhMotion,
    JointNameMap,
    bvh_to_global_positions,
    load_bvh_joints,
    load_bvh_motion,
    parse_bvh,
    write_bvh,
)
from adamotion.io.export import load_bundle, save_bundle, save_features_npy, save_joints_npy

__all__ = [
    "BvhFormatError",
    "BvhJoints",
    "BvhMotion",
    "JointNameMap",
    "bvh_to_global_positions",
    "load_bvh_joints",
    "load_bvh_motion",
    "parse_bvh",
    "write_bvh",
    "load_bundle",
    "save_bundle",
    "save_features_npy",
    "save_joints_npy",
]
