"""The outside-in project's modules, loaded as a third party would load them."""

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmsparse4d.registry import MODELS


@pytest.fixture(scope='module')
def project(tmp_path_factory):
    config = tmp_path_factory.mktemp('cfg') / 'project.py'
    imports = "imports=['projects.sparse4d.sparse4d'], allow_failed_imports=False"
    config.write_text(f'custom_imports = dict({imports})\n')
    Config.fromfile(str(config))

    def build(cfg):
        with DefaultScope.overwrite_default_scope('mmsparse4d'):
            return MODELS.build(cfg)

    return build


def test_names_do_not_clash_with_the_core(project):
    import mmsparse4d.models  # noqa: F401

    for name in (
        'VisibilityNet',
        'OcclusionAwareEmbedding',
        'BNNeck',
        'LabelSmoothIDLoss',
        'VisibilityLoss',
    ):
        assert MODELS.get(name).__module__.startswith('projects.sparse4d')


def test_visibility_weighted_fusion(project):
    net = project(dict(type='VisibilityNet', embed_dims=16))
    features = torch.randn(2, 5, 3, 16)
    visibility = net(features)
    assert visibility.shape == (2, 5, 3) and ((visibility > 0) & (visibility < 1)).all()
    fusion = project(dict(type='OcclusionAwareEmbedding'))
    mask = torch.ones(2, 5, 3, dtype=torch.bool)
    mask[0, 0, 1:] = False  # seen by the first camera only
    mask[0, 1] = False  # seen by none
    fused = fusion(features, visibility, mask)
    torch.testing.assert_close(fused[0, 0], features[0, 0, 0])
    assert (fused[0, 1] == 0).all()
    weights = torch.softmax(visibility[1, 2], dim=-1)
    torch.testing.assert_close(fused[1, 2], (weights[:, None] * features[1, 2]).sum(0))


def test_bnneck_and_losses(project):
    neck = project(dict(type='BNNeck', embed_dims=16, num_ids=7))
    neck.init_weights()
    logits, normalised = neck(torch.randn(10, 16))
    assert logits.shape == (10, 7) and normalised.shape == (10, 16)
    assert not neck.bn.bias.requires_grad
    id_loss = project(dict(type='LabelSmoothIDLoss'))
    targets = torch.tensor([0, 1, 2, 3, 4, 5, 6, -1, -1, 2])
    # The mean over the rows with a target, as cross-entropy on those rows alone gives it
    # (without boolean indexing: no wait for the device).
    valid = targets >= 0
    torch.testing.assert_close(
        id_loss(logits, targets),
        torch.nn.functional.cross_entropy(logits[valid], targets[valid], label_smoothing=0.1),
    )
    assert id_loss(logits, torch.full((10,), -1)).item() == 0
    with pytest.raises(ValueError, match='asset id 9 but the classifier has num_ids=7'):
        id_loss(logits, torch.full((10,), 9))
    with pytest.raises(ValueError, match='asset id 7 but'):  # the caller's host value
        id_loss(logits, targets, largest_target=7)
    vis_loss = project(dict(type='VisibilityLoss'))
    target = torch.tensor([[1.0, 0.0]])
    assert vis_loss(torch.tensor([[0.999999, 0.000001]]), target).item() < 1e-4
    assert vis_loss(
        torch.tensor([[0.2, 0.9]]), target, torch.tensor([[1.0, 0.0]])
    ).item() == pytest.approx(-torch.log(torch.tensor(0.2)).item(), rel=1e-5)


def test_oae_model_trains_and_predicts_reid_features():
    from mmsparse4d.testing import build_untrained_model, random_batch
    from tests.conftest import REPO_ROOT

    torch.manual_seed(0)
    config = REPO_ROOT / 'projects/sparse4d/configs/sparse4d_oae_tiny_synthetic.py'
    model = build_untrained_model(config, decoder=dict(num_output=10, score_threshold=None))
    model.train()
    losses = model(**model.data_preprocessor(random_batch(), training=True), mode='loss')
    assert {'loss_id', 'loss_visibility'} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    branch = model.head.reid_branch
    assert branch.visibility_net.layers[0].weight.grad.abs().sum() > 0
    assert branch.bnneck.classifier.weight.grad.abs().sum() > 0
    model.eval()
    model.head.reset_temporal_state()
    with torch.no_grad():
        samples = model(**model.data_preprocessor(random_batch()), mode='predict')
    pred = samples[0].pred_instances_3d
    assert pred.reid_feats.shape == (10, 64) and pred.visibility.shape == (10, 3)


def test_per_camera_features_sum_to_the_aggregation(project):
    """Summed over cameras, the per-camera features equal the op's output."""
    from mmsparse4d.models.utils import pack_feature_maps
    from mmsparse4d.ops import deformable_aggregation_reference
    from mmsparse4d.testing import rounding_tolerance
    from projects.sparse4d.sparse4d import sample_per_camera

    torch.manual_seed(0)
    levels = [torch.randn(2, 3, 8, 6, 10), torch.randn(2, 3, 8, 3, 5)]
    locations = torch.rand(2, 5, 4, 3, 2) * 1.4 - 0.2  # some outside the images
    weights = torch.rand(2, 5, 4, 3, 2, 2)
    per_camera = sample_per_camera(levels, locations, weights)
    assert per_camera.shape == (2, 5, 3, 8)
    expected = deformable_aggregation_reference(*pack_feature_maps(levels), locations, weights)
    # Summed per camera first, then over cameras: the same terms (4 corners of each camera,
    # level and point) in another order. Their magnitude, sum|x_i|, is the aggregation of
    # |features| (all weights are >= 0), up to 11 here. Measured: 5e-7 (AVX-512, AVX2,
    # default kernels); the bound 1e-4, where a camera left out changes values of ~1 by ~1/3.
    magnitude = deformable_aggregation_reference(
        *pack_feature_maps([level.abs() for level in levels]), locations, weights
    )
    terms = 4 * len(levels) * locations.shape[2] * locations.shape[3]
    tolerance = rounding_tolerance(expected.dtype, terms, scale=float(magnitude.max()))
    torch.testing.assert_close(per_camera.sum(2), expected, **tolerance)


def test_camera_geometry_is_resolution_free(project):
    from mmsparse4d.testing import ring_cameras
    from projects.sparse4d.sparse4d import camera_geometry

    full = torch.from_numpy(ring_cameras(4, 960, 544))[None]
    half = torch.from_numpy(ring_cameras(4, 480, 272))[None]
    wh_full, wh_half = (
        torch.tensor([[960.0, 544.0]] * 4)[None],
        torch.tensor([[480.0, 272.0]] * 4)[None],
    )
    torch.testing.assert_close(camera_geometry(full, wh_full), camera_geometry(half, wh_half))
    torch.testing.assert_close(camera_geometry(3 * full, wh_full), camera_geometry(full, wh_full))
    padded = camera_geometry(torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 2))
    assert (padded == 0).all()
    geometry = camera_geometry(full, wh_full)[0]
    torch.testing.assert_close(geometry[0, :3] * 10, torch.tensor([12.0, 0.0, 3.0]))


def test_a_config_swaps_the_visibility_net(tmp_path):
    from mmsparse4d.testing import build_untrained_model, random_batch
    from tests.conftest import REPO_ROOT

    config = tmp_path / 'swap.py'
    base = REPO_ROOT / 'projects/sparse4d/configs/sparse4d_oae_tiny_synthetic.py'
    config.write_text(
        f"_base_ = ['{base}']\n"
        "custom_imports = dict(imports=['projects.sparse4d.sparse4d', "
        "'tests.test_projects.uniform_visibility'], allow_failed_imports=False)\n"
        'model = dict(head=dict(reid_branch=dict(visibility_net=dict(_delete_=True, '
        "type='UniformVisibility'))))\n"
    )
    model = build_untrained_model(config)
    assert type(model.head.reid_branch.visibility_net).__name__ == 'UniformVisibility'
    model.train()
    losses = model(**model.data_preprocessor(random_batch(), training=True), mode='loss')
    assert torch.isfinite(losses['loss_visibility'])
