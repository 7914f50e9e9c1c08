"""The Sparse4D detector on the tiny config: training, inference, tracking state, cameras."""

import math

import numpy as np
import pytest
import torch

from mmsparse4d.models.utils import pack_feature_maps
from mmsparse4d.ops import deformable_aggregation
from mmsparse4d.structures.track_ids import FIRST_TRACK_ID
from mmsparse4d.testing import (
    build_untrained_model,
    network_reductions,
    random_batch,
    rounding_tolerance,
)
from mmsparse4d.testing.op_counts import computing_operations
from tests.conftest import REPO_ROOT

OAE_TINY = REPO_ROOT / 'projects/sparse4d/configs/sparse4d_oae_tiny_synthetic.py'

# Parameters that legitimately get no gradient: the first decoder's learned key points read
# the initial instance features, which are fixed zeros (feat_grad=False) in Sparse4D v3.
NO_GRADIENT = ('head.layers.0.kps_generator.learnable_fc.weight',)


def _loss(model, data):
    losses = model(**model.data_preprocessor(data, training=True), mode='loss')
    return sum(losses.values()), losses


def test_loss_and_gradients_reach_every_learning_parameter():
    torch.manual_seed(0)
    # Box losses also for low-scoring matches, so the quality branch learns from step 1.
    model = build_untrained_model(cls_threshold_to_reg=0.0)
    model.train()
    data = random_batch(cams=(3, 2))
    data['inputs']['depth_targets'] = [
        [torch.rand(3, 144 // s, 256 // s) * 20, torch.rand(2, 144 // s, 256 // s) * 20]
        for s in (4, 8, 16)
    ]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    # The aggregation weights start at zero (uniform attention), which hides the camera
    # and feature paths behind them; one step opens them.
    total, losses = _loss(model, data)
    total.backward()
    optimizer.step()
    optimizer.zero_grad()
    total, losses = _loss(model, data)
    expected = {
        f'loss_{name}_{stage}'
        for name in ('cls', 'box', 'cns', 'yns', 'cls_dn', 'box_dn')
        for stage in range(2)
    } | {'loss_dense_depth'}
    assert set(losses) == expected
    assert all(torch.isfinite(value) and value > 0 for value in losses.values())
    total.backward()
    silent = [
        name
        for name, parameter in model.named_parameters()
        if parameter.requires_grad
        and name not in NO_GRADIENT
        and (parameter.grad is None or not parameter.grad.abs().sum() > 0)
    ]
    assert silent == []
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_background_only_batch_is_trained_towards_zero_scores():
    """No ground truth: every query is background; the loss is positive and a step lowers
    the scores (NVIDIA TAO's criterion gave such a batch a zero classification loss)."""
    torch.manual_seed(0)
    model = build_untrained_model()
    model.train()
    # Confident queries, as a model that learned false positives would have.
    for op, layer in zip(model.head.operation_order, model.head.layers, strict=True):
        if op == 'refine':
            torch.nn.init.constant_(layer.cls_layers[-1].bias, 1.0)
    data = random_batch(boxes=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)

    def mean_score():
        model.head.reset_temporal_state()
        with torch.no_grad():
            out = model(**model.data_preprocessor(data), mode='tensor')
        return out['classification'][-1].sigmoid().mean()

    before = mean_score()
    model.head.reset_temporal_state()
    total, losses = _loss(model, data)
    assert losses['loss_cls_0'] > 0 and losses['loss_cls_1'] > 0
    assert 'loss_cls_dn_0' not in losses  # no ground truth, no denoising
    total.backward()
    optimizer.step()
    assert mean_score() < before - 0.01


def _predict(model, data):
    with torch.no_grad():
        return model(**model.data_preprocessor(data), mode='predict')


def test_predictions_are_world_frame_and_aligned():
    torch.manual_seed(0)
    model = build_untrained_model(decoder=dict(num_output=30, score_threshold=None))
    model.eval()
    data = random_batch()
    raw = model(**model.data_preprocessor(data), mode='tensor')
    model.head.reset_temporal_state()
    samples = _predict(model, data)
    for b, sample in enumerate(samples):
        pred = sample.pred_instances_3d
        assert pred.bboxes_3d.shape == (30, 10)
        assert pred.instance_feats.shape == (30, 64)
        for key in ('scores_3d', 'labels_3d', 'cls_scores', 'track_ids'):
            assert len(pred[key]) == 30
        # The box of each output is the query whose class score it reports.
        scores = raw['classification'][-1][b].sigmoid().max(-1).values
        boxes = raw['prediction'][-1][b]
        for box, cls_score in zip(pred.bboxes_3d, pred.cls_scores, strict=True):
            query = torch.argmin((scores - cls_score).abs())
            local = box[:3] - torch.tensor(sample.metainfo['origin'], dtype=torch.float32)
            torch.testing.assert_close(local, boxes[query, :3], atol=1e-4, rtol=0)
        assert (pred.scores_3d[:-1] >= pred.scores_3d[1:]).all()


def test_two_frames_carry_600_instances_and_their_ids_and_a_gap_resets():
    torch.manual_seed(0)
    model = build_untrained_model(
        instance_bank=dict(
            type='InstanceBank',
            num_anchor=900,
            embed_dims=64,
            num_temp_instances=600,
            anchor=np.c_[
                np.random.default_rng(0).uniform(-4, 4, (900, 2)),
                np.full(900, 0.9),
                np.zeros((900, 3)),
                np.zeros(900),
                np.ones(900),
                np.zeros((900, 3)),
            ],
            max_time_interval=2.0,
        ),
        decoder=dict(num_output=900, score_threshold=None),
    )
    model.eval()
    bank = model.head.instance_bank
    first = _predict(model, random_batch(frame=0))
    assert bank.cached_feature.shape == (2, 600, 64)
    carried_ids = bank.instance_id.clone()
    out = None
    with torch.no_grad():
        data = model.data_preprocessor(random_batch(frame=1))
        out = model(**data, mode='tensor')
    assert bank.valid.all()
    # The first 600 slots hold the carried instances, with their ids.
    torch.testing.assert_close(out['instance_id'][:, :600], carried_ids)
    new_ids = out['instance_id'][:, 600:]
    assert (new_ids > carried_ids.max()).all()
    ids_before_gap = int(out['instance_id'].max())
    # 3 s later (> max_time_interval): nothing carried, every track starts anew.
    late = _predict(model, random_batch(frame=1, timestamp=1 / 30 + 3.0))
    assert not bank.valid.any()
    assert (late[0].pred_instances_3d.track_ids - FIRST_TRACK_ID > ids_before_gap).all()
    assert len(first[0].pred_instances_3d.track_ids) == 900


def test_scene_change_attends_to_nothing_stale():
    """After a scene cut the temporal attention must not see the previous scene: the
    output equals that of a model that never saw the first scene."""
    torch.manual_seed(0)
    model = build_untrained_model()
    model.eval()
    _predict(model, random_batch(frame=0, scene='Warehouse_000', seed=1))
    cut = random_batch(frame=1, scene='Hospital_007', seed=2)
    after_cut = _predict(model, cut)
    assert not model.head.instance_bank.valid.any()
    model.head.reset_temporal_state()
    fresh = _predict(model, cut)
    for a, b in zip(after_cut, fresh, strict=True):
        torch.testing.assert_close(a.pred_instances_3d.bboxes_3d, b.pred_instances_3d.bboxes_3d)
        torch.testing.assert_close(a.pred_instances_3d.scores_3d, b.pred_instances_3d.scores_3d)


def test_propagated_anchors_keep_sin_and_cos_in_their_slots():
    torch.manual_seed(0)
    model = build_untrained_model()
    model.eval()
    _predict(model, random_batch(frame=0))
    bank = model.head.instance_bank
    cached = bank.cached_anchor.clone()
    bank.get(
        2, torch.tensor([1 / 30] * 2, dtype=torch.float64), [f'Warehouse_000_{b}' for b in range(2)]
    )
    moved = bank.cached_anchor
    # Moving forward in a fixed world frame changes the centre only: yaw stays put.
    torch.testing.assert_close(moved[..., 6:8], cached[..., 6:8])
    torch.testing.assert_close(moved[..., :3], cached[..., :3] + cached[..., 8:] / 30)


@pytest.mark.parametrize('cams', [1, 4, 20])
def test_one_model_serves_1_4_and_20_cameras(cams):
    torch.manual_seed(0)
    model = build_untrained_model()
    model.eval()
    samples = _predict(model, random_batch(batch=1, cams=cams, size=(128, 72)))
    assert torch.isfinite(samples[0].pred_instances_3d.bboxes_3d).all()


def test_a_padded_camera_changes_nothing():
    """Samples with fewer cameras are padded in a batch; their results equal running
    them alone."""
    torch.manual_seed(0)
    model = build_untrained_model(decoder=dict(num_output=20, score_threshold=None))
    model.eval()
    mixed = random_batch(batch=2, cams=(3, 2), seed=5)
    together = _predict(model, mixed)
    model.head.reset_temporal_state()
    alone = random_batch(batch=2, cams=(3, 2), seed=5)
    alone = {
        'inputs': {k: v[1:] for k, v in alone['inputs'].items()},
        'data_samples': alone['data_samples'][1:],
    }
    single = _predict(model, alone)
    # Equal up to rounding: the batch of two runs other GEMM shapes and softmax rows with the
    # padded camera's zero weights, so its sums take another order (and another one on each
    # CPU's kernels). Each box quantity is compared relative to its magnitude here (metres,
    # m/s; at least 1): a velocity near 0 keeps the error of the ~20 m/s terms it came from.
    # Measured: <= 3e-6 of that magnitude (AVX-512, AVX2, default kernels); the bound from
    # the network's reductions is ~3e-4, while a padded camera that leaks (camera_mask
    # ignored) moves centres by 3.4 m and velocities by 18 m/s: ~1 of their magnitude.
    expected = single[0].pred_instances_3d.bboxes_3d
    scale = expected.abs().amax(dim=0).clamp(min=1.0)
    terms, depth = network_reductions(model)
    torch.testing.assert_close(
        together[1].pred_instances_3d.bboxes_3d / scale,
        expected / scale,
        **rounding_tolerance(expected.dtype, terms, depth=depth),
    )


def test_padded_images_never_reach_the_backbone_in_training():
    """The batch norms' statistics and the losses of a padded batch are those of its real
    images: what a padding image holds changes nothing."""
    torch.manual_seed(0)
    model = build_untrained_model()
    model.train()
    inputs = model.data_preprocessor(random_batch(cams=(3, 2)), training=True)
    assert inputs['inputs']['real_cameras'].tolist() == [0, 1, 2, 3, 4]
    noisy = {**inputs, 'inputs': dict(inputs['inputs'])}
    noisy['inputs']['img'] = inputs['inputs']['img'].clone()
    noisy['inputs']['img'][1, 2] = torch.randn(noisy['inputs']['img'].shape[2:]) * 5
    start = {name: value.clone() for name, value in model.state_dict().items()}
    results = []
    for data in (inputs, noisy):
        model.load_state_dict(start)  # the same weights and running statistics
        model.head.reset_temporal_state()
        torch.manual_seed(1)  # the same denoising boxes and dropout
        losses = model(**data, mode='loss')
        stem = model.img_backbone.bn1
        results.append((losses, stem.running_mean.clone(), stem.running_var.clone()))
    (losses, mean, var), (noisy_losses, noisy_mean, noisy_var) = results
    assert torch.equal(mean, noisy_mean) and torch.equal(var, noisy_var)
    for name, value in losses.items():
        assert torch.equal(value, noisy_losses[name]), name


def test_no_32_bit_overflow_at_20_cameras():
    """Ten 20-camera samples at 960x544 pack to more than 2^31 feature values; the packing
    metadata is 64-bit and the op accepts the shapes (checked on the meta device, nothing
    allocated)."""
    batch, cams, channels = 10, 20, 256
    levels = [
        torch.empty(batch, cams, channels, math.ceil(544 / s), math.ceil(960 / s), device='meta')
        for s in (4, 8, 16, 32)
    ]
    features, spatial_shape, scale_start_index = pack_feature_maps(levels)
    assert features.numel() > 2**31
    assert spatial_shape.dtype == scale_start_index.dtype == torch.int64
    per_camera = sum(level.shape[-1] * level.shape[-2] for level in levels)
    assert features.shape == (batch, cams * per_camera, channels)
    locations = torch.empty(batch, 900, 13, cams, 2, device='meta')
    weights = torch.empty(batch, 900, 13, cams, 4, 8, device='meta')
    out = deformable_aggregation(features, spatial_shape, scale_start_index, locations, weights)
    assert out.shape == (batch, 900, channels)


def test_packing_is_camera_major_then_level():
    levels = [torch.randn(2, 3, 4, 6, 8), torch.randn(2, 3, 4, 3, 4)]
    features, spatial_shape, start = pack_feature_maps(levels)
    assert spatial_shape.tolist() == [[[6, 8], [3, 4]]] * 3
    assert start.tolist() == [[0, 48], [60, 108], [120, 168]]
    # Camera 2, level 1, pixel (row 1, col 2).
    torch.testing.assert_close(features[1, 168 + 1 * 4 + 2], levels[1][1, 2, :, 1, 2])


def test_ground_truth_of_a_batch_moves_in_one_copy_per_field():
    # Each device copy from the host is a transfer of its own: the batch's ground truth is
    # joined per field on the host and split into per-sample views after one copy. Samples
    # differ in boxes (one has none) and cameras (visibility [M, N]).
    from mmsparse4d.models.detectors.sparse4d import Sparse4D
    from mmsparse4d.structures import encode_box

    data = random_batch(batch=3, cams=(3, 2, 4), boxes=5)
    samples = data['data_samples']
    samples[0].gt_instances_3d = samples[0].gt_instances_3d[:2]
    samples[1].gt_instances_3d = samples[1].gt_instances_3d[:0]
    rotation = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=np.float32)
    samples[1].set_metainfo({'rotation_3d': rotation})
    moved = []
    real = torch.Tensor.to
    try:
        torch.Tensor.to = lambda self, *a, **k: moved.append(self) or real(self, *a, **k)
        gt = Sparse4D.targets(samples, torch.device('cpu'))
        frames = Sparse4D._world_to_frame(samples, torch.device('cpu'))
    finally:
        torch.Tensor.to = real
    assert len(moved) <= 6  # anchors, labels, ids, asset ids, visibility, rotations
    for b, sample in enumerate(samples):
        instances = sample.gt_instances_3d
        box = torch.cat([instances.bboxes_3d[:, :7], instances.velocities.reshape(-1, 3)], 1)
        torch.testing.assert_close(gt['anchors'][b], encode_box(box.float()))
        assert torch.equal(gt['labels'][b], instances.labels_3d.long())
        assert torch.equal(gt['ids'][b], instances.instance_ids.long())
        assert torch.equal(gt['visibility'][b], instances.visibility)
    assert [len(ids) for ids in gt['ids']] == [2, 0, 5]
    # The host copies the denoising groups are built from, and the largest asset id the
    # identity loss checks, read without a device round trip.
    for key in ('anchors', 'labels', 'ids'):
        for host, moved_part in zip(gt['host'][key], gt[key], strict=True):
            assert host.device.type == 'cpu' and torch.equal(host, moved_part)
    largest = max(int(s.gt_instances_3d.asset_ids.max()) for s in samples if len(s.gt_instances_3d))
    assert gt['largest_asset_id'] == largest
    assert torch.equal(frames[1, :3, :3], torch.from_numpy(rotation))
    assert torch.equal(frames[0], torch.eye(4)) and torch.equal(frames[2], torch.eye(4))


def test_cameras_padded_to_a_fixed_count_give_the_same_losses():
    # pad_cameras_to: every batch as wide as the widest scene, for one shape every step;
    # padded cameras get no features, no attention weight and no depth loss.
    from mmsparse4d.testing.distributed_equivalence import (
        deterministic_config,
        deterministic_losses,
        global_batch,
        losses_beyond_rounding,
    )

    cfg = deterministic_config(OAE_TINY)
    losses, shapes = {}, {}
    for pad in (None, 5):
        cfg.model.data_preprocessor = dict(type='Sparse4DDataPreprocessor', pad_cameras_to=pad)
        losses[pad], model = deterministic_losses(cfg)
        data = model.data_preprocessor(global_batch(0, tuple(cfg.image_size)), True)['inputs']
        shapes[pad] = (tuple(data['img'].shape[:2]), data['real_cameras'])
    assert shapes[None][0] == (4, 3) and shapes[5][0] == (4, 5)
    assert shapes[5][1].tolist() == [0, 1, 2, 5, 6, 10, 11, 15, 16]  # the same 9 images
    assert 'loss_dense_depth' in losses[None][-1]
    assert losses_beyond_rounding(losses[None], losses[5], model) == []
    with pytest.raises(ValueError, match='more than the 2 to pad to'):
        model.data_preprocessor.pad_cameras_to = 2
        model.data_preprocessor(global_batch(0, tuple(cfg.image_size)), True)


def _step_casts(model, data, autocast: bool) -> tuple[dict, int, set]:
    """Losses, the casts one training step launches (forward and backward) and the losses'
    dtypes, under CPU bf16 autocast or without it."""
    model.head.reset_temporal_state()
    inputs = model.data_preprocessor(data, training=True)
    with computing_operations() as operations:
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
            losses = model(**inputs, mode='loss')
        sum(losses.values()).backward()
    dtypes = {value.dtype for value in losses.values()}
    return losses, operations['_to_copy.default'], dtypes


def test_a_float32_head_under_autocast_launches_few_casts_and_changes_nothing_without_it():
    """``float32_under_autocast``: under bf16 autocast the head runs in float32 (its feature
    maps cast once), so a training step launches a fraction of the casts; without autocast
    the losses are the same numbers as without the setting."""
    data = random_batch(cams=(3, 2))
    results = {}
    for flag in (False, True):
        torch.manual_seed(0)
        model = build_untrained_model(float32_under_autocast=flag)
        model.train()
        for autocast in (False, True):
            torch.manual_seed(1)
            results[flag, autocast] = _step_casts(model, data, autocast)
    plain, float32 = results[False, False][0], results[True, False][0]
    assert plain.keys() == float32.keys()
    assert all(torch.equal(plain[name], float32[name]) for name in plain)
    casts_bf16_head, casts_float32_head = results[False, True][1], results[True, True][1]
    assert casts_float32_head < casts_bf16_head / 3
    assert results[True, True][2] == {torch.float32}
    assert all(torch.isfinite(value) for value in results[True, True][0].values())
