"""Running TAO's head frame by frame as its inference does."""

from __future__ import annotations

import importlib

import torch

from .inputs import level_shapes


def _import_tao():
    mods = {}
    for name in (
        'nvidia_tao_pytorch.cv.sparse4d.model.sparse4d_head',
        'nvidia_tao_pytorch.cv.sparse4d.model.blocks',
    ):
        mods[name.rsplit('.', 1)[-1]] = importlib.import_module(name)
    return mods


def _clone(x):
    if x is None:
        return None
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, (list, tuple)):
        return [_clone(v) for v in x]
    if isinstance(x, dict):
        return {k: _clone(v) for k, v in x.items()}
    raise TypeError(type(x))


def _band_counts(points_2d: torch.Tensor) -> dict:
    """Sampling locations where grid_sample and TAO's CUDA op disagree, per level.

    points_2d: [B, N, A, P, 2] normalised (u, v). The CUDA op skips a location unless
    0 < u < 1 and 0 < v < 1; grid_sample (align_corners=False, zero padding) still gives a
    partial bilinear value for -0.5/W < u < 1 + 0.5/W (same for v).
    """
    u, v = points_2d[..., 0], points_2d[..., 1]
    inside = (u > 0) & (u < 1) & (v > 0) & (v < 1)
    band = []
    for hl, wl in level_shapes():
        near = (u > -0.5 / wl) & (u < 1 + 0.5 / wl) & (v > -0.5 / hl) & (v < 1 + 0.5 / hl)
        band.append(int((near & ~inside).sum()))
    return {'inside': int(inside.sum()), 'total': int(u.numel()), 'band_per_level': band}


def run_head(cfg, state_dict16: dict, frames_inputs: list, seed: int, dtype=torch.float32):
    """Build TAO's head, load the weights and run every frame as TAO's inference does.

    ``dtype`` float32 is TAO's own; float64 (weights, features, projection matrices and
    image_wh converted) gives a reference free of float32 rounding.
    """
    tao = _import_tao()
    head_mod, blocks = tao['sparse4d_head'], tao['blocks']
    torch.manual_seed(seed)
    head = head_mod.build_head(cfg)  # Sparse4DHead.__init__ runs TAO's init_weights
    head.load_state_dict({k: v.float() for k, v in state_dict16.items()}, strict=True)
    head.to(dtype)
    head.eval()

    # Instrumentation (records values, changes nothing).
    dfa_cls = blocks.DeformableFeatureAggregation
    orig_project = dfa_cls.__dict__['project_points']
    rec = {'points_2d': [], 'key_points': [], 'get': None}

    def project_points(key_points, projection_mat, image_wh=None):
        out = orig_project.__func__(key_points, projection_mat, image_wh)
        rec['points_2d'].append(out.detach().clone())
        return out

    dfa_cls.project_points = staticmethod(project_points)
    hooks = []
    for layer in head.layers:
        if isinstance(layer, dfa_cls):
            hooks.append(
                layer.kps_generator.register_forward_hook(
                    lambda m, i, o: rec['key_points'].append(o.detach().clone())
                )
            )
    bank = head.instance_bank
    orig_get = bank.get

    def bank_get(*args, **kwargs):
        res = orig_get(*args, **kwargs)
        rec['get'] = {
            'temp_anchor': _clone(res[3]),
            'time_interval': _clone(res[4]),
            'mask': _clone(bank.mask),
        }
        return res

    bank.get = bank_get

    outputs = []
    try:
        with torch.no_grad():
            for inp in frames_inputs:
                rec['points_2d'].clear()
                rec['key_points'].clear()
                feature_maps = [f.to(dtype) for f in inp['feature_maps']]
                metas = {
                    'projection_mat': inp['projection_mat'].to(dtype),
                    'image_wh': inp['image_wh'].to(dtype),
                    'timestamp': inp['timestamp'],
                }
                # Sparse4D.simple_test: model_outs = head(feature_maps, metas);
                # results = head.post_process(model_outs)
                model_outs = head(feature_maps, metas)
                results = head.post_process(model_outs)
                det = results[0]
                outputs.append(
                    {
                        'head': {
                            'classification': _clone(model_outs['classification']),
                            'prediction': _clone(model_outs['prediction']),
                            'quality': _clone(model_outs['quality']),
                            'instance_id': _clone(model_outs['instance_id']),
                            'instance_feature': _clone(model_outs['instance_feature']),
                        },
                        'decoded': {k: _clone(v) for k, v in det.items()},
                        'bank_get': rec['get'],
                        'bank_after': {
                            'cached_anchor': _clone(bank.cached_anchor),
                            'cached_feature': _clone(bank.cached_feature),
                            'confidence': _clone(bank.confidence),
                            'temp_confidence': _clone(bank.temp_confidence),
                            'instance_id': _clone(bank.instance_id),
                            'mask': _clone(bank.mask),
                            'time_interval': _clone(bank.time_interval),
                            'prev_id': int(bank.prev_id),
                        },
                        'key_points': list(rec['key_points']),
                        'sampling': [_band_counts(p) for p in rec['points_2d']],
                    }
                )
    finally:
        dfa_cls.project_points = orig_project
        for h in hooks:
            h.remove()
        del bank.get
    return head, outputs
