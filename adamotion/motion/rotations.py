"""Quaternion and rotation-representation utilities for numpy arrays *and* torch tensors.

Conventions (shared by the whole project, see ``shared/docs/motion-representation.md``):

* Quaternions are ``(w, x, y, z)`` with the scalar first.
* Rotations act on column vectors: ``v' = R v``. ``qmul(a, b)`` is the rotation "first ``b``, then ``a``",
  i.e. ``quat_to_matrix(qmul(a, b)) == quat_to_matrix(a) @ quat_to_matrix(b)``.
* Every function accepts arbitrary leading batch dimensions (``(..., 4)``, ``(..., 3)``, ``(..., 3, 3)``,
  ``(..., 6)``) and broadcasts them like ordinary element-wise arithmetic.
* The library follows the inputs: numpy in, numpy out; torch in (any argument a tensor), torch out on the
  tensor's device. Floating dtypes are kept as given (the feature pipeline passes float32, matching the
  published HumanML3D pipeline's float32 quaternion arithmetic); integer inputs are promoted to float.
* torch is imported lazily and only when a tensor is passed, so this module (and the torch-free renderers
  that use it) import without torch installed.
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = [
    "qnormalize",
    "qmul",
    "qinv",
    "qrot",
    "qbetween",
    "quat_to_matrix",
    "matrix_to_quat",
    "matrix_to_rot6d",
    "rot6d_to_matrix",
    "quat_to_rot6d",
    "rot6d_to_quat",
    "axis_angle_to_quat",
    "quat_to_axis_angle",
    "quat_from_y_angle",
    "identity_quat",
    "axis_rotation",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "matrix_between",
]

Array = Any  # numpy.ndarray or torch.Tensor


# ----------------------------------------------------------------------------------------- backend helpers
def _is_torch(value: Any) -> bool:
    """True when ``value`` is a torch tensor (checked without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _prepare(*arrays: Any) -> tuple[Any, list[Any]]:
    """Convert the inputs to one library with a floating dtype.

    Returns ``(xp, arrays)`` where ``xp`` is the ``numpy`` or ``torch`` module. If any input is a tensor,
    every input becomes a tensor on that tensor's device; otherwise every input becomes a numpy array.
    """
    tensors = [a for a in arrays if _is_torch(a)]
    if tensors:
        import torch

        reference = tensors[0]
        dtype = reference.dtype if reference.is_floating_point() else torch.get_default_dtype()
        converted = []
        for value in arrays:
            if _is_torch(value):
                converted.append(value if value.is_floating_point() else value.to(dtype))
            else:
                converted.append(torch.as_tensor(np.asarray(value), dtype=dtype, device=reference.device))
        return torch, converted
    converted = []
    for value in arrays:
        value = np.asarray(value)
        if not np.issubdtype(value.dtype, np.floating):
            value = value.astype(np.float64)
        converted.append(value)
    return np, converted


def _check_last_dim(name: str, value: Array, size: int, function: str) -> None:
    if value.ndim < 1 or value.shape[-1] != size:
        raise ValueError(
            f"{function}: {name} must have shape (..., {size}); got {tuple(value.shape)}. "
            f"Put the {size} components on the last axis."
        )


def _check_matrix(name: str, value: Array, function: str) -> None:
    if value.ndim < 2 or tuple(value.shape[-2:]) != (3, 3):
        raise ValueError(f"{function}: {name} must have shape (..., 3, 3); got {tuple(value.shape)}.")


def _concat(xp: Any, parts: list[Array], axis: int) -> Array:
    return xp.cat(parts, axis) if xp is not np else np.concatenate(parts, axis)


def _cross(a: Array, b: Array, xp: Any) -> Array:
    """Cross product over the last axis, broadcasting leading dimensions (same code for numpy and torch)."""
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    return xp.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], -1)


def _dot(a: Array, b: Array) -> Array:
    return (a * b).sum(-1)


def _eps(value: Array) -> float:
    """A small tolerance suited to the dtype (float32 vs float64)."""
    if _is_torch(value):
        import torch

        return float(torch.finfo(value.dtype).eps)
    return float(np.finfo(value.dtype).eps)


# --------------------------------------------------------------------------------------------- quaternions
def identity_quat(shape: tuple[int, ...] = (), dtype: Any = np.float32) -> np.ndarray:
    """Identity quaternions ``(*shape, 4)`` as a numpy array of ``dtype``."""
    out = np.zeros(tuple(shape) + (4,), dtype=dtype)  # (*shape, 4)
    out[..., 0] = 1
    return out


def qnormalize(q: Array) -> Array:
    """Scale quaternions ``(..., 4)`` to unit length."""
    xp, (q,) = _prepare(q)
    _check_last_dim("q", q, 4, "qnormalize")
    return q / xp.sqrt(_dot(q, q))[..., None]


def qmul(q: Array, r: Array) -> Array:
    """Hamilton product ``q * r`` of ``(..., 4)`` quaternions: the rotation ``r`` followed by ``q``."""
    xp, (q, r) = _prepare(q, r)
    _check_last_dim("q", q, 4, "qmul")
    _check_last_dim("r", r, 4, "qmul")
    w1, x1, y1, z1 = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    w2, x2, y2, z2 = r[..., 0], r[..., 1], r[..., 2], r[..., 3]
    return xp.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        -1,
    )


def qinv(q: Array) -> Array:
    """Conjugate ``(w, -x, -y, -z)``: the inverse of a *unit* quaternion."""
    xp, (q,) = _prepare(q)
    _check_last_dim("q", q, 4, "qinv")
    return xp.stack([q[..., 0], -q[..., 1], -q[..., 2], -q[..., 3]], -1)


def qrot(q: Array, v: Array) -> Array:
    """Rotate vectors ``v (..., 3)`` by unit quaternions ``q (..., 4)`` (leading dims broadcast)."""
    xp, (q, v) = _prepare(q, v)
    _check_last_dim("q", q, 4, "qrot")
    _check_last_dim("v", v, 3, "qrot")
    axis_part = q[..., 1:]  # (..., 3)
    uv = _cross(axis_part, v, xp)  # (..., 3)
    uuv = _cross(axis_part, uv, xp)  # (..., 3)
    return v + 2 * (q[..., :1] * uv + uuv)


def qbetween(a: Array, b: Array) -> Array:
    """Minimal rotation taking direction ``a (..., 3)`` onto direction ``b (..., 3)``.

    ``normalize([|a||b| + a.b, a x b])`` (so ``w >= 0``), exactly the published formula. Two cases the
    formula leaves undefined get a well-defined answer instead of NaN: exactly opposite directions give
    the 180-degree rotation about an axis perpendicular to ``a`` (for ``a`` horizontal and ``b = +z`` that
    axis is the y axis, so headings stay rotations about y), and a zero-length input gives the identity.
    """
    xp, (a, b) = _prepare(a, b)
    _check_last_dim("a", a, 3, "qbetween")
    _check_last_dim("b", b, 3, "qbetween")
    a, b = a + 0 * b, b + 0 * a  # broadcast both to the common shape (..., 3)
    axis = _cross(a, b, xp)  # (..., 3)
    length_product = xp.sqrt(_dot(a, a) * _dot(b, b))  # (...,)
    w = length_product + _dot(a, b)  # (...,)
    q = _concat(xp, [w[..., None], axis], -1)  # (..., 4)
    norm = xp.sqrt(_dot(q, q))  # (...,)

    # Opposite directions: 180 degrees about a x e_x (or a x e_y when a is along x).
    ones, zeros = xp.ones_like(w), xp.zeros_like(w)
    perp_x = xp.stack([zeros, a[..., 2], -a[..., 1]], -1)  # a x e_x, (..., 3)
    perp_y = xp.stack([-a[..., 2], zeros, a[..., 0]], -1)  # a x e_y, (..., 3)
    use_x = (_dot(perp_x, perp_x) >= _dot(perp_y, perp_y))[..., None]
    perp = xp.where(use_x, perp_x, perp_y)  # (..., 3)
    perp_norm = xp.sqrt(_dot(perp, perp))
    perp = perp / xp.where(perp_norm > 0, perp_norm, ones)[..., None]
    half_turn = _concat(xp, [zeros[..., None], perp], -1)  # (..., 4)
    identity = xp.stack([ones, zeros, zeros, zeros], -1)  # (..., 4)

    tolerance = 10 * _eps(q)
    degenerate = norm <= tolerance * length_product  # opposite (or zero-length) inputs
    zero_length = length_product <= 0
    safe_norm = xp.where(degenerate, ones, norm)[..., None]
    result = xp.where(degenerate[..., None], half_turn, q / safe_norm)
    return xp.where(zero_length[..., None], identity, result)


def quat_from_y_angle(angle: Array) -> Array:
    """Rotation by ``angle`` radians about +y: ``[cos(angle/2), 0, sin(angle/2), 0]``, shape ``(..., 4)``."""
    xp, (angle,) = _prepare(angle)
    half = angle / 2
    zeros = xp.zeros_like(half)
    return xp.stack([xp.cos(half), zeros, xp.sin(half), zeros], -1)


# ------------------------------------------------------------------------------------------------ matrices
def axis_rotation(axis: str, angle: Array) -> Array:
    """Rotation matrices ``(..., 3, 3)`` by ``angle (...)`` radians about the coordinate axis ``"x"``, ``"y"``
    or ``"z"`` (case-insensitive); positive angles turn y towards z, z towards x and x towards y."""
    xp, (angle,) = _prepare(angle)
    cos, sin = xp.cos(angle), xp.sin(angle)
    one, zero = xp.ones_like(cos), xp.zeros_like(cos)
    name = axis.lower()
    if name == "x":
        rows = [[one, zero, zero], [zero, cos, -sin], [zero, sin, cos]]
    elif name == "y":
        rows = [[cos, zero, sin], [zero, one, zero], [-sin, zero, cos]]
    elif name == "z":
        rows = [[cos, -sin, zero], [sin, cos, zero], [zero, zero, one]]
    else:
        raise ValueError(f"axis_rotation: axis must be 'x', 'y' or 'z', got {axis!r}")
    return xp.stack([xp.stack(row, -1) for row in rows], -2)


def quat_to_matrix(q: Array) -> Array:
    """Rotation matrices ``(..., 3, 3)`` of quaternions ``(..., 4)`` (non-unit inputs are normalised)."""
    xp, (q,) = _prepare(q)
    _check_last_dim("q", q, 4, "quat_to_matrix")
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    two_s = 2.0 / _dot(q, q)  # (...,)
    rows = [
        [1 - two_s * (y * y + z * z), two_s * (x * y - z * w), two_s * (x * z + y * w)],
        [two_s * (x * y + z * w), 1 - two_s * (x * x + z * z), two_s * (y * z - x * w)],
        [two_s * (x * z - y * w), two_s * (y * z + x * w), 1 - two_s * (x * x + y * y)],
    ]
    return xp.stack([xp.stack(row, -1) for row in rows], -2)  # (..., 3, 3)


def matrix_to_quat(matrix: Array) -> Array:
    """Unit quaternions ``(..., 4)`` with ``w >= 0`` of rotation matrices ``(..., 3, 3)``.

    Numerically stable for every rotation: the component with the largest magnitude is recovered from the
    diagonal and the other three from off-diagonal sums/differences divided by it.
    """
    xp, (matrix,) = _prepare(matrix)
    _check_matrix("matrix", matrix, "matrix_to_quat")
    m00, m01, m02 = matrix[..., 0, 0], matrix[..., 0, 1], matrix[..., 0, 2]
    m10, m11, m12 = matrix[..., 1, 0], matrix[..., 1, 1], matrix[..., 1, 2]
    m20, m21, m22 = matrix[..., 2, 0], matrix[..., 2, 1], matrix[..., 2, 2]
    # 4 w^2, 4 x^2, 4 y^2, 4 z^2
    four_sq = xp.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1
    )  # (..., 4)
    two_abs = xp.sqrt(xp.clip(four_sq, 0, None))  # (2|w|, 2|x|, 2|y|, 2|z|), (..., 4)
    # Candidate i multiplies every component by 4 * (component i); row i is exact when |component i| is large.
    candidates = xp.stack(
        [
            xp.stack([four_sq[..., 0], m21 - m12, m02 - m20, m10 - m01], -1),
            xp.stack([m21 - m12, four_sq[..., 1], m10 + m01, m02 + m20], -1),
            xp.stack([m02 - m20, m10 + m01, four_sq[..., 2], m21 + m12], -1),
            xp.stack([m10 - m01, m02 + m20, m21 + m12, four_sq[..., 3]], -1),
        ],
        -2,
    )  # (..., 4, 4)
    # The largest of the four is >= 1 for a rotation, so the floor only guards the unused rows.
    candidates = candidates / (2 * xp.clip(two_abs, 0.1, None))[..., None]
    best = xp.argmax(two_abs, -1)  # (...,)
    if xp is np:
        quat = np.take_along_axis(candidates, best[..., None, None], axis=-2)[..., 0, :]
    else:
        index = best[..., None, None].expand(*best.shape, 1, 4)
        quat = xp.gather(candidates, -2, index)[..., 0, :]
    sign = xp.where(quat[..., :1] < 0, -xp.ones_like(quat[..., :1]), xp.ones_like(quat[..., :1]))
    return quat * sign


def matrix_to_rot6d(matrix: Array) -> Array:
    """Continuous 6D representation: the first two **columns** ``[R[:, 0], R[:, 1]]``, shape ``(..., 6)``."""
    xp, (matrix,) = _prepare(matrix)
    _check_matrix("matrix", matrix, "matrix_to_rot6d")
    return _concat(xp, [matrix[..., :, 0], matrix[..., :, 1]], -1)


def rot6d_to_matrix(rot6d: Array) -> Array:
    """Rotation matrices ``(..., 3, 3)`` from 6D vectors ``(..., 6)`` by Gram-Schmidt on the two columns."""
    xp, (rot6d,) = _prepare(rot6d)
    _check_last_dim("rot6d", rot6d, 6, "rot6d_to_matrix")
    first_raw, second_raw = rot6d[..., 0:3], rot6d[..., 3:6]
    first = first_raw / xp.sqrt(_dot(first_raw, first_raw))[..., None]  # (..., 3)
    third = _cross(first, second_raw, xp)
    third = third / xp.sqrt(_dot(third, third))[..., None]  # (..., 3)
    second = _cross(third, first, xp)  # (..., 3)
    return xp.stack([first, second, third], -1)  # columns, (..., 3, 3)


def quat_to_rot6d(q: Array) -> Array:
    """6D representation ``(..., 6)`` of quaternions ``(..., 4)``."""
    return matrix_to_rot6d(quat_to_matrix(q))


def rot6d_to_quat(rot6d: Array) -> Array:
    """Unit quaternions ``(..., 4)`` (``w >= 0``) from 6D vectors ``(..., 6)``."""
    return matrix_to_quat(rot6d_to_matrix(rot6d))


# -------------------------------------------------------------------------------------------- axis-angle
def axis_angle_to_quat(axis_angle: Array) -> Array:
    """Quaternions ``(..., 4)`` from axis-angle vectors ``(..., 3)`` (direction = axis, length = radians)."""
    xp, (axis_angle,) = _prepare(axis_angle)
    _check_last_dim("axis_angle", axis_angle, 3, "axis_angle_to_quat")
    angle = xp.sqrt(_dot(axis_angle, axis_angle))  # (...,)
    small = angle < 1e-4
    safe_angle = xp.where(small, xp.ones_like(angle), angle)
    # sin(angle / 2) / angle, with its Taylor series near zero
    scale = xp.where(small, 0.5 - angle * angle / 48, xp.sin(safe_angle / 2) / safe_angle)
    return _concat(xp, [xp.cos(angle / 2)[..., None], axis_angle * scale[..., None]], -1)


def axis_angle_to_matrix(axis_angle: Array) -> Array:
    """Rotation matrices ``(..., 3, 3)`` of axis-angle vectors ``(..., 3)``."""
    return quat_to_matrix(axis_angle_to_quat(axis_angle))


def matrix_to_axis_angle(matrix: Array) -> Array:
    """Axis-angle vectors ``(..., 3)`` (angle in ``[0, pi]``) of rotation matrices ``(..., 3, 3)``."""
    return quat_to_axis_angle(matrix_to_quat(matrix))


def matrix_between(a: Array, b: Array) -> Array:
    """Minimal rotation matrices ``(..., 3, 3)`` taking direction ``a (..., 3)`` onto ``b (..., 3)`` (see
    :func:`qbetween` for opposite and zero-length directions)."""
    return quat_to_matrix(qbetween(a, b))


def quat_to_axis_angle(q: Array) -> Array:
    """Axis-angle vectors ``(..., 3)`` (angle in ``[0, pi]``) of quaternions ``(..., 4)``."""
    xp, (q,) = _prepare(q)
    _check_last_dim("q", q, 4, "quat_to_axis_angle")
    q = q / xp.sqrt(_dot(q, q))[..., None]
    q = xp.where(q[..., :1] < 0, -q, q)  # shortest rotation: w >= 0
    vector = q[..., 1:]  # (..., 3)
    sin_half = xp.sqrt(_dot(vector, vector))  # (...,)
    angle = 2 * xp.arctan2(sin_half, q[..., 0])  # (...,)
    small = sin_half < 1e-4
    safe_sin = xp.where(small, xp.ones_like(sin_half), sin_half)
    # angle / sin(angle / 2); near zero it tends to 2 / w
    scale = xp.where(small, 2 / q[..., 0], angle / safe_sin)
    return vector * scale[..., None]
