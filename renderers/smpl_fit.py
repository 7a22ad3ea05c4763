"""SMPL support for the mesh renderer: model loading, numpy initial pose, optional torch/smplx fitting.

Importing this module is torch-free. Only :func:`fit_smpl_to_joints` (with ``iterations > 0``) and
:func:`smpl_vertices` import ``torch`` and ``smplx``, and only the mesh renderer's SMPL path (taken when
the licensed SMPL files are present) calls them.

Loading: official SMPL ``.pkl`` files are Python 2 pickles whose arrays are ``chumpy`` objects (chumpy
does not install on numpy 2). :func:`load_smpl_model` unpickles them with a stand-in class that keeps
the array each chumpy object stores (its ``x`` state) and never imports chumpy. ``.npz`` files with the
same keys load directly.

The SMPL model must extend the renderer's skeleton: its first ``skeleton.num_joints`` joints are the
HumanML3D joints, with the same parents (true for SMPL and the 22-joint HumanML3D skeleton).
"""
from __future__ import annotations

import logging
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adamotion.motion import rotations as R
from adamotion.motion.kinematics import matrix_forward_kinematics
from adamotion.motion.skeleton import Skeleton

logger = logging.getLogger(__name__)

__all__ = [
    "SmplModel",
    "SmplModelError",
    "fit_smpl_to_joints",
    "initial_pose_from_joints",
    "load_smpl_model",
    "posed_joints",
    "smpl_vertices",
]

REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")


class SmplModelError(RuntimeError):
    """An SMPL model file exists but cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class SmplModel:
    """The arrays of an SMPL-format body model (numpy only)."""

    v_template: np.ndarray  # (V, 3) rest vertices, metres
    shapedirs: np.ndarray  # (V, 3, S) shape blend shapes
    posedirs: np.ndarray  # (V, 3, 9 * (K - 1)) pose blend shapes
    J_regressor: np.ndarray  # (K, V) dense joint regressor
    weights: np.ndarray  # (V, K) skinning weights
    parents: np.ndarray  # (K,) int parent of each joint, -1 for the root
    faces: np.ndarray  # (F, 3) int triangle indices
    source: str = ""  # file it was loaded from

    @property
    def num_joints(self) -> int:
        return len(self.parents)

    @property
    def num_vertices(self) -> int:
        return len(self.v_template)

    def rest_joints(self, betas: np.ndarray | None = None) -> np.ndarray:
        """(K, 3) joint positions of the rest (T-)pose for shape ``betas`` (default: mean shape)."""
        vertices = self.v_template
        if betas is not None:
            betas = np.asarray(betas, np.float64)
            vertices = vertices + np.einsum("vcs,s->vc", self.shapedirs[..., : len(betas)], betas)
        return self.J_regressor @ vertices


# ================================================================================================ loading
class _ChumpyStandIn:
    """Replaces any ``chumpy`` class while unpickling; keeps the pickled state (the array is ``x``)."""

    chumpy_name = "chumpy object"

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state

    def to_array(self) -> np.ndarray:
        state = getattr(self, "state", None)
        if isinstance(state, dict) and "x" in state:
            return np.asarray(state["x"])
        raise SmplModelError(
            f"the pickle holds a chumpy {self.chumpy_name} without a stored array (a lazy chumpy expression); "
            "re-save the model with plain numpy arrays (e.g. load it once where chumpy is installed and "
            "np.savez the keys v_template, shapedirs, posedirs, J_regressor, weights, kintree_table, f)"
        )


class _SmplUnpickler(pickle.Unpickler):
    """Unpickler for SMPL files: chumpy -> stand-in, old numpy/scipy module paths -> current ones."""

    _stand_ins: dict[str, type] = {}

    def find_class(self, module: str, name: str):
        if module == "chumpy" or module.startswith("chumpy."):
            key = f"{module}.{name}"
            if key not in self._stand_ins:
                self._stand_ins[key] = type(f"ChumpyStandIn_{name}", (_ChumpyStandIn,), {"chumpy_name": key})
            return self._stand_ins[key]
        if module.startswith("numpy.core"):  # numpy 2 moved numpy.core to numpy._core
            module = "numpy._core" + module[len("numpy.core"):]
        if module.startswith("scipy.sparse"):  # e.g. scipy.sparse.csc -> scipy.sparse (private paths moved)
            import scipy.sparse

            if hasattr(scipy.sparse, name):
                return getattr(scipy.sparse, name)
        return super().find_class(module, name)


def _to_array(value, key: str) -> np.ndarray:
    if isinstance(value, _ChumpyStandIn):
        return value.to_array()
    if hasattr(value, "toarray") and "scipy.sparse" in type(value).__module__:
        return value.toarray()
    array = np.asarray(value)
    if array.dtype == object:
        raise SmplModelError(f"SMPL key {key!r} is not numeric (got {type(value).__name__})")
    return array


def load_smpl_model(path: str | Path) -> SmplModel:
    """Load an SMPL-format model from ``.pkl`` (chumpy-tolerant, Python 2 pickles) or ``.npz``.

    Raises :class:`SmplModelError` with an explanation when the file is not a usable SMPL model.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no SMPL model file at {path}")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                raw = {key: archive[key] for key in archive.files}
        else:
            with open(path, "rb") as handle:
                raw = _SmplUnpickler(handle, encoding="latin1").load()
    except SmplModelError:
        raise
    except Exception as err:
        raise SmplModelError(f"could not read SMPL model {path}: {type(err).__name__}: {err}") from err
    if not isinstance(raw, dict):
        raise SmplModelError(f"{path} does not hold a dict of SMPL arrays (got {type(raw).__name__})")
    missing = [key for key in REQUIRED_KEYS if key not in raw]
    if missing:
        raise SmplModelError(f"{path} is missing SMPL keys {missing}; found {sorted(raw)}")
    arrays = {key: _to_array(raw[key], key) for key in REQUIRED_KEYS}
    kintree = arrays["kintree_table"].astype(np.int64)
    parents = kintree[0].copy()
    # the root's parent is stored as -1 or as uint32 4294967295
    parents[0] = -1
    if (parents[1:] < 0).any() or (parents[1:] >= np.arange(1, len(parents))).any():
        raise SmplModelError(f"{path}: kintree_table parents must precede their children, got {parents.tolist()}")
    v_template = arrays["v_template"].astype(np.float64)
    num_vertices, num_joints = len(v_template), len(parents)
    shapes = {
        "shapedirs": (num_vertices, 3), "posedirs": (num_vertices, 3),
        "J_regressor": (num_joints, num_vertices), "weights": (num_vertices, num_joints),
    }
    for key, leading in shapes.items():
        if arrays[key].shape[: len(leading)] != leading:
            raise SmplModelError(f"{path}: {key} has shape {arrays[key].shape}, expected {leading} + ...")
    if arrays["posedirs"].shape[-1] != 9 * (num_joints - 1):
        raise SmplModelError(f"{path}: posedirs must have 9 x (K - 1) = {9 * (num_joints - 1)} columns, "
                             f"got {arrays['posedirs'].shape}")
    return SmplModel(
        v_template=v_template,
        shapedirs=arrays["shapedirs"].astype(np.float64),
        posedirs=arrays["posedirs"].astype(np.float64),
        J_regressor=arrays["J_regressor"].astype(np.float64),
        weights=arrays["weights"].astype(np.float64),
        parents=parents,
        faces=arrays["f"].astype(np.int64),
        source=str(path),
    )


# ============================================================================================= rotations
def posed_joints(local_rotations: np.ndarray, rest_joints: np.ndarray, parents: np.ndarray,
                 translation: np.ndarray) -> np.ndarray:
    """SMPL joints (T, K, 3): local rotations (T, K, 3, 3) about the rest joints (K, 3), root moved by
    ``translation`` (T, 3)."""
    parents = np.asarray(parents)
    offsets = rest_joints - np.where(parents[:, None] < 0, 0.0, rest_joints[np.maximum(parents, 0)])  # (K, 3)
    local_translations = np.repeat(offsets[None], len(local_rotations), 0)  # (T, K, 3)
    local_translations[:, parents < 0] += translation[:, None]
    return matrix_forward_kinematics(parents, local_rotations, local_translations)[1]


def _check_model_skeleton(model: SmplModel, skeleton: Skeleton) -> None:
    j = skeleton.num_joints
    if model.num_joints < j or tuple(model.parents[:j].tolist()) != (-1, *skeleton.parents[1:]):
        raise SmplModelError(
            f"SMPL model {model.source or ''} does not extend skeleton {skeleton.name!r}: its first {j} joint "
            f"parents are {model.parents[:j].tolist()}, the skeleton's are {list(skeleton.parents)}"
        )


def initial_pose_from_joints(joints: np.ndarray, model: SmplModel, *,
                             skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """Numpy initial SMPL pose for (T, J, 3) joint positions: (local rotations (T, K, 3, 3), trans (T, 3)).

    Root orientation: the rotation mapping the rest pose's (across, up) frame onto the observed one,
    with across from the skeleton's face joints (hips + shoulders) and up from the pelvis to the
    shoulders. Every other joint on a chain gets the swing (no twist) that turns its rest bone towards
    the observed bone, expressed in its parent's frame and composed down the chain. Joints beyond the
    skeleton (SMPL hands) keep the identity.
    """
    joints = np.asarray(joints, np.float64)
    _check_model_skeleton(model, skeleton)
    frames = len(joints)
    rest = model.rest_joints()  # (K, 3)
    r_hip, l_hip, r_shoulder, l_shoulder = skeleton.face_joints
    root = skeleton.parents.index(-1)

    def body_frame(points: np.ndarray) -> np.ndarray:  # (..., J, 3) -> (..., 3, 3) columns across/up/forward
        across = (points[..., l_hip, :] - points[..., r_hip, :]) + (points[..., l_shoulder, :] - points[..., r_shoulder, :])
        up = (points[..., l_shoulder, :] + points[..., r_shoulder, :]) / 2 - points[..., root, :]
        across = across / np.linalg.norm(across, axis=-1, keepdims=True)
        up = up - np.sum(up * across, -1, keepdims=True) * across
        up = up / np.linalg.norm(up, axis=-1, keepdims=True)
        return np.stack([across, up, np.cross(across, up)], -1)

    local = np.repeat(np.eye(3)[None, None], frames, 0).repeat(model.num_joints, 1)  # (T, K, 3, 3)
    global_rotations = local.copy()
    local[:, root] = body_frame(joints) @ body_frame(rest[None, : skeleton.num_joints])[0].T
    global_rotations[:, root] = local[:, root]
    done = {root}
    pending = list(skeleton.chains)
    while pending:
        ready = [chain for chain in pending if chain[0] in done]
        if not ready:
            raise SmplModelError(f"skeleton {skeleton.name!r} chains {pending} do not connect to the root")
        for chain in ready:
            pending.remove(chain)
            for joint, child in zip(chain[:-1], chain[1:]):
                if joint not in done:
                    parent_rotation = global_rotations[:, model.parents[joint]]  # (T, 3, 3)
                    observed = joints[:, child] - joints[:, joint]  # (T, 3) world bone direction
                    in_parent = np.einsum("tji,tj->ti", parent_rotation, observed)  # R^T d
                    local[:, joint] = R.matrix_between(np.broadcast_to(rest[child] - rest[joint], in_parent.shape), in_parent)
                    global_rotations[:, joint] = parent_rotation @ local[:, joint]
                    done.add(joint)
            end = chain[-1]
            if end not in done:
                global_rotations[:, end] = global_rotations[:, model.parents[end]]
                done.add(end)
    translation = joints[:, root] - rest[root]
    return local, translation


# ================================================================================================ fitting
def fit_smpl_to_joints(joints, smpl_model: SmplModel, *, skeleton: Skeleton, iterations: int = 30,
                       smooth_weight: float = 1e-3, prior_weight: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """SMPL pose for joint positions: (poses (T, K * 3) axis-angle, root first; trans (T, 3)), float32.

    Starts from :func:`initial_pose_from_joints` (numpy) and refines all frames at once (one batch)
    with L-BFGS on the squared distance between SMPL's posed joints (mean shape) and ``joints``, plus
    small terms for temporal smoothness and for staying near the initial twist; if the refinement does
    not lower that objective the initial pose is kept. ``iterations=0`` returns the numpy initial pose
    without importing torch. The refinement uses ``torch`` and ``smplx.lbs``.
    """
    joints = np.asarray(joints, np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (skeleton.num_joints, 3):
        raise ValueError(f"joints must have shape (T, {skeleton.num_joints}, 3), got {joints.shape}")
    started = time.perf_counter()
    local, translation = initial_pose_from_joints(joints, smpl_model, skeleton=skeleton)
    poses = R.matrix_to_axis_angle(local).reshape(len(joints), -1)  # (T, K * 3)
    if iterations <= 0:
        return poses.astype(np.float32), translation.astype(np.float32)

    import torch
    from smplx.lbs import batch_rigid_transform, batch_rodrigues

    frames, num_joints, j = len(joints), smpl_model.num_joints, skeleton.num_joints
    dtype = torch.float32
    rest = torch.as_tensor(smpl_model.rest_joints(), dtype=dtype)[None].expand(frames, -1, -1).contiguous()  # (T, K, 3)
    parents = torch.as_tensor(smpl_model.parents, dtype=torch.long)
    target = torch.as_tensor(joints, dtype=dtype)  # (T, J, 3)
    initial_pose = torch.as_tensor(poses.reshape(frames, num_joints, 3), dtype=dtype)
    initial_trans = torch.as_tensor(translation, dtype=dtype)
    pose = initial_pose.clone().requires_grad_(True)  # (T, K, 3)
    trans = initial_trans.clone().requires_grad_(True)  # (T, 3)

    def posed_joints() -> torch.Tensor:  # (T, J, 3)
        rotations = batch_rodrigues(pose.reshape(-1, 3)).reshape(frames, num_joints, 3, 3)
        posed, _ = batch_rigid_transform(rotations, rest, parents, dtype=dtype)  # (T, K, 3)
        return posed[:, :j] + trans[:, None]

    def objective() -> torch.Tensor:
        data = ((posed_joints() - target) ** 2).sum(-1).mean()
        smooth = ((pose[1:] - pose[:-1]) ** 2).sum(-1).mean() if frames > 1 else pose.sum() * 0
        prior = ((pose - initial_pose) ** 2).sum(-1).mean()
        return data + smooth_weight * smooth + prior_weight * prior

    optimizer = torch.optim.LBFGS([pose, trans], lr=1.0, max_iter=iterations, history_size=20,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-10, tolerance_change=1e-14)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    # The problem is small (T x 24 joints): torch's intra-op threads only add synchronisation, and on a
    # busy CPU they make the fit 10-40x slower. Use one thread for the fit, then restore the setting
    # (torch's thread count is process-wide: other torch work in this process runs on one thread
    # for these few hundred milliseconds).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.enable_grad():
            with torch.no_grad():
                before = objective().item()
            optimizer.step(closure)
            with torch.no_grad():
                after = objective().item()
                if not np.isfinite(after) or after > before:
                    pose.copy_(initial_pose)
                    trans.copy_(initial_trans)
                error = (posed_joints() - target).norm(dim=-1).mean().item()
    finally:
        torch.set_num_threads(threads)
    logger.info("fitted SMPL to %d frames in %.2f s (objective %.3g -> %.3g, mean joint error %.1f mm)", frames,
                time.perf_counter() - started, before, min(before, after), error * 1000)
    return (pose.detach().reshape(frames, -1).numpy().astype(np.float32),
            trans.detach().numpy().astype(np.float32))


def smpl_vertices(smpl_model: SmplModel, poses: np.ndarray, trans: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """(T, V, 3) float32 posed SMPL vertices (mean shape) through ``smplx.lbs.lbs``."""
    import torch
    from smplx.lbs import lbs

    dtype = torch.float32
    num_vertices = smpl_model.num_vertices
    v_template = torch.as_tensor(smpl_model.v_template, dtype=dtype)
    shapedirs = torch.as_tensor(smpl_model.shapedirs, dtype=dtype)
    posedirs = torch.as_tensor(smpl_model.posedirs.reshape(-1, smpl_model.posedirs.shape[-1]).T, dtype=dtype)  # (P, V*3)
    regressor = torch.as_tensor(smpl_model.J_regressor, dtype=dtype)
    parents = torch.as_tensor(smpl_model.parents, dtype=torch.long)
    weights = torch.as_tensor(smpl_model.weights, dtype=dtype)
    out = np.zeros((len(poses), num_vertices, 3), np.float32)
    with torch.no_grad():
        for start in range(0, len(poses), batch_size):
            pose = torch.as_tensor(np.asarray(poses[start: start + batch_size]), dtype=dtype)
            betas = torch.zeros(len(pose), shapedirs.shape[-1], dtype=dtype)
            vertices, _ = lbs(betas, pose, v_template, shapedirs, posedirs, regressor, parents, weights, pose2rot=True)
            out[start: start + len(pose)] = (vertices + torch.as_tensor(np.asarray(trans[start: start + batch_size]), dtype=dtype)[:, None]).numpy()
    return out
