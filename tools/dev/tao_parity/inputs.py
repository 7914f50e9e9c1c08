"""What TAO's head is fed: cameras, anchors and feature maps of the scene, and random
float16-representable weights."""

from __future__ import annotations

import math

import numpy as np
import torch

from .settings import (
    BIG_NUMEL,
    CLS_BIAS,
    EMBED_DIMS,
    IMAGE_WH,
    NUM_ANCHOR,
    NUM_CAMS,
    POOL_SIZE,
    POOL_STD,
    REFINE_SCALE,
    STRIDES,
)


def _look_at(pos, target):
    """World->camera 4x4 (OpenCV camera: x right, y down, z forward; world z up)."""
    pos, target = np.asarray(pos, float), np.asarray(target, float)
    f = target - pos
    f /= np.linalg.norm(f)
    r = np.cross(f, [0.0, 0.0, 1.0])
    r /= np.linalg.norm(r)
    d = np.cross(f, r)
    rot = np.stack([r, d, f])
    t = np.eye(4)
    t[:3, :3] = rot
    t[:3, 3] = -rot @ pos
    return t


def make_cameras(rng: np.random.RandomState) -> np.ndarray:
    """[N, 4, 4] lidar2img = K4x4 @ world2cam: three ceiling cameras around a floor area."""
    w, h = IMAGE_WH
    mats = []
    for i in range(NUM_CAMS):
        ang = math.radians(180.0 + 120.0 * i + rng.uniform(-10, 10))
        radius = rng.uniform(6.5, 7.5)
        pos = [radius * math.cos(ang), radius * math.sin(ang), rng.uniform(3.2, 3.8)]
        target = [rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), rng.uniform(0.3, 0.7)]
        w2c = _look_at(pos, target)
        roll = math.radians(rng.uniform(-3, 3))
        rz = np.eye(4)
        rz[:2, :2] = [[math.cos(roll), -math.sin(roll)], [math.sin(roll), math.cos(roll)]]
        w2c = rz @ w2c
        fx = rng.uniform(66, 74)
        k = np.eye(4)
        k[0, 0], k[1, 1] = fx, fx * rng.uniform(0.98, 1.02)
        k[0, 2], k[1, 2] = w / 2 + rng.uniform(-2, 2), h / 2 + rng.uniform(-1, 1)
        mats.append(k @ w2c)
    return np.stack(mats).astype(np.float32)


def make_anchors(rng: np.random.RandomState) -> np.ndarray:
    """[A, 11] anchors (x y z, log w l h, sin cos, vx vy vz), float16-representable.

    Most lie on the floor area all cameras see; the last four lie behind camera 0 or beyond
    the area, so some key points are behind a camera or outside every image.
    """
    a = NUM_ANCHOR
    n_out = 4
    xy = rng.uniform(-3.5, 3.5, size=(a, 2))
    xy[-n_out:] = [[-8.5, 0.5], [-9.0, -1.0], [9.5, 9.5], [0.0, -11.0]]
    wl = rng.uniform(0.4, 1.2, size=(a, 2))
    hh = rng.uniform(1.0, 1.9, size=(a, 1))
    z = hh / 2 + rng.uniform(-0.05, 0.05, size=(a, 1))
    yaw = rng.uniform(-math.pi, math.pi, size=(a, 1))
    vel = np.concatenate([rng.uniform(-0.8, 0.8, size=(a, 2)), np.zeros((a, 1))], axis=1)
    anchors = np.concatenate([xy, z, np.log(wl), np.log(hh), np.sin(yaw), np.cos(yaw), vel], axis=1)
    return anchors.astype(np.float16)


def level_shapes() -> list[tuple[int, int]]:
    w, h = IMAGE_WH
    return [(h // s, w // s) for s in STRIDES]


def make_features(gen: torch.Generator, num_frames: int) -> list[list[torch.Tensor]]:
    """Per frame, per level [1, N, 256, H_l, W_l] float16.

    The frames are windows of one random pool, shifted by a different amount per frame, so
    every frame has its own values while the file stores the pool once.
    """
    sizes = [NUM_CAMS * EMBED_DIMS * hl * wl for hl, wl in level_shapes()]
    total = sum(sizes)
    shift = 7919
    pool = torch.randn(total + shift * num_frames, generator=gen).to(torch.float16)
    frames = []
    for t in range(num_frames):
        window = pool[t * shift : t * shift + total]
        levels, start = [], 0
        for (hl, wl), n in zip(level_shapes(), sizes, strict=True):
            levels.append(window[start : start + n].view(1, NUM_CAMS, EMBED_DIMS, hl, wl))
            start += n
        frames.append(levels)
    return frames


# ------------------------------------------------------------------------------------------
# Random float16-representable weights
# ------------------------------------------------------------------------------------------
def random_state_dict(head, anchors: np.ndarray, gen: torch.Generator) -> dict:
    """Random values for every entry of ``head.state_dict()``, float16.

    Matrices with at least BIG_NUMEL values are windows (at random offsets) of one shared
    N(0, POOL_STD^2) float16 pool, so torch.save stores the pool once. Everything else has
    its own values: LayerNorm weight 1 + 0.1 N, biases 0.05 N, small matrices N(0, 1/fan_in),
    the refinement Scale around REFINE_SCALE, the last classification bias CLS_BIAS + 0.3 N.
    """
    from torch import nn

    pool = (torch.randn(POOL_SIZE, generator=gen) * POOL_STD).to(torch.float16)
    owners = {}
    for mname, mod in head.named_modules():
        for pname, _ in mod.named_parameters(recurse=False):
            owners[f'{mname}.{pname}' if mname else pname] = mod
        for bname, _ in mod.named_buffers(recurse=False):
            owners[f'{mname}.{bname}' if mname else bname] = mod
    cls_last = set()
    for i, layer in enumerate(head.layers):
        if layer is not None and hasattr(layer, 'cls_layers'):
            cls_last.add(f'layers.{i}.cls_layers.{len(layer.cls_layers) - 1}.bias')

    def randn(*shape):
        return torch.randn(*shape, generator=gen)

    out = {}
    for key, ref in head.state_dict().items():
        mod = owners[key]
        shape = tuple(ref.shape)
        numel = ref.numel()
        leaf = key.rsplit('.', 1)[-1]
        if key == 'instance_bank.anchor':
            v = torch.from_numpy(anchors.astype(np.float32))
        elif key == 'instance_bank.instance_feature':
            v = randn(*shape) * 0.5
        elif type(mod).__name__ == 'Scale':
            v = torch.tensor(REFINE_SCALE) * (0.75 + 0.5 * torch.rand(shape, generator=gen))
        elif isinstance(mod, nn.LayerNorm):
            v = 1.0 + 0.1 * randn(*shape) if leaf == 'weight' else 0.1 * randn(*shape)
        elif key in cls_last:
            v = CLS_BIAS + 0.3 * randn(*shape)
        elif len(shape) >= 2 and numel >= BIG_NUMEL:
            off = int(torch.randint(0, POOL_SIZE - numel + 1, (1,), generator=gen))
            out[key] = pool[off : off + numel].view(shape)
            continue
        elif len(shape) >= 2:
            v = randn(*shape) / math.sqrt(shape[1])
        else:
            v = 0.05 * randn(*shape)
        out[key] = v.to(torch.float16)
    return out
