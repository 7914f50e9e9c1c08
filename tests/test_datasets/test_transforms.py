"""The data pipeline keeps pixels, depth and projection matrices in agreement."""

import numpy as np
import pytest
import torch
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope

from mmsparse4d.datasets import OVPKLDataset
from mmsparse4d.datasets.aicity import box_corners
from mmsparse4d.datasets.converters.create_data import create_data

FINAL = (256, 128)
# A training draw of the image augmentation: scale, crop, flip and rotation.
TRAINING_AUGMENTATION = dict(
    type='MultiViewImageAugmentation',
    final_size=FINAL,
    resize_range=(1.0, 1.3),
    flip_prob=0.5,
    rotate_range=(-5.4, 5.4),
)


def pipeline(*steps):
    with DefaultScope.overwrite_default_scope('mmsparse4d'):
        return Compose(list(steps))


def dataset(converted):
    result, data_root = converted
    return OVPKLDataset(ann_file=str(result.pickles[1]), data_root=str(data_root))


def project(projection, points):
    homogeneous = np.c_[points, np.ones(len(points))] @ projection.T
    return homogeneous[:, :2] / homogeneous[:, 2:3], homogeneous[:, 2]


def test_test_mode_pipeline_packs_consistent_inputs(converted):
    data = dataset(converted)
    steps = pipeline(
        dict(type='LoadMultiViewImages'),
        dict(type='LoadMultiViewDepth'),
        dict(type='MultiViewImageAugmentation', final_size=FINAL, test_mode=True),
        dict(type='MultiScaleDepthTargets', strides=(4, 8, 16)),
        dict(type='PackSparse4DInputs'),
    )
    info = data[6]
    packed = steps(dict(info))
    inputs, sample = packed['inputs'], packed['data_samples']
    cams = len(info['cams'])
    assert (
        inputs['img'].shape == (cams, 3, FINAL[1], FINAL[0]) and inputs['img'].dtype == torch.uint8
    )
    assert inputs['projection_mat'].shape == (cams, 4, 4)
    assert inputs['image_wh'].tolist() == [list(FINAL)] * cams
    assert [t.shape for t in inputs['depth_targets']] == [
        (cams, FINAL[1] // s, FINAL[0] // s) for s in (4, 8, 16)
    ]
    gt = sample.gt_instances_3d
    assert gt.bboxes_3d.shape[1] == 7 and gt.visibility.shape[1] == cams
    np.testing.assert_allclose(sample.metainfo['origin'], info['origin'])
    # Projected corners bound the visible boxes moved by the augmentation.
    for k, name in enumerate(sample.metainfo['cam_names']):
        sample.metainfo['img_aug_matrix'][k]
        for box, visibility in zip(gt.bboxes_3d.numpy(), gt.visibility.numpy(), strict=True):
            if visibility[k] < 1:
                continue  # only unoccluded boxes: their visible box is their full box
            uv, depth = project(
                inputs['projection_mat'][k].double().numpy(), box_corners(box[:3], box[3:6], box[6])
            )
            assert (depth > 0).all()
            inside = (uv >= 0).all(axis=1) & (uv[:, 0] < FINAL[0]) & (uv[:, 1] < FINAL[1])
            assert inside.any() or not (uv.max(axis=0) > 0).all(), name


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_training_augmentation_moves_pixels_depth_and_projection_together(converted, seed):
    np.random.seed(seed)
    data = dataset(converted)
    load = pipeline(dict(type='LoadMultiViewImages'), dict(type='LoadMultiViewDepth'))
    augment = pipeline(
        TRAINING_AUGMENTATION,
        dict(type='GlobalRotation3D'),
    )
    before = load(dict(data[4]))
    original = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in before.items()}
    original['img'] = [i.copy() for i in before['img']]
    original['depth'] = [d.copy() for d in before['depth']]
    after = augment(before)
    rotation = after['rotation_3d']
    rng = np.random.default_rng(seed)
    agree_depth, agree_colour, checked = 0, 0, 0
    for k in range(len(after['img'])):
        depth = original['depth'][k]
        vs, us = np.nonzero(depth > 0.5)
        pick = rng.choice(len(vs), 300, replace=False)
        u, v, d = us[pick], vs[pick], depth[vs[pick], us[pick]]
        # Back-project with the original projection, rotate, project with the new one.
        inverse = np.linalg.inv(original['projection'][k])
        world = (np.c_[u * d, v * d, d, np.ones_like(d)] @ inverse.T)[:, :3]
        uv, new_depth = project(after['projection'][k], world @ rotation.T)
        np.testing.assert_allclose(new_depth, d, rtol=1e-6)  # depth is invariant
        pixel = np.round(uv).astype(int)
        ok = (
            (pixel[:, 0] > 1)
            & (pixel[:, 0] < FINAL[0] - 2)
            & (pixel[:, 1] > 1)
            & (pixel[:, 1] < FINAL[1] - 2)
        )
        px, py = pixel[ok, 0], pixel[ok, 1]
        checked += ok.sum()
        agree_depth += (np.abs(after['depth'][k][py, px] - d[ok]) < 0.05 * d[ok] + 0.05).sum()
        colour_old = original['img'][k][v[ok], u[ok]].astype(int)
        agree_colour += (
            np.abs(after['img'][k][py, px].astype(int) - colour_old).max(axis=1) < 40
        ).sum()
    assert checked > 200
    assert agree_depth / checked > 0.85 and agree_colour / checked > 0.8


def test_global_rotation_rotates_boxes_and_velocities(converted):
    np.random.seed(3)
    data = dataset(converted)
    results = pipeline(dict(type='LoadMultiViewImages'))(dict(data[5]))
    boxes, velocity = results['gt_bboxes_3d'].copy(), results['gt_velocity'].copy()
    rotated = pipeline(dict(type='GlobalRotation3D', rotation_range=(0.3, 0.3)))(results)
    rotation = rotated['rotation_3d']
    np.testing.assert_allclose(rotated['gt_bboxes_3d'][:, :3], boxes[:, :3] @ rotation.T, atol=1e-5)
    np.testing.assert_allclose(rotated['gt_velocity'], velocity @ rotation.T, atol=1e-5)
    np.testing.assert_allclose(
        np.cos(rotated['gt_bboxes_3d'][:, 6] - boxes[:, 6]), np.cos(0.3), atol=1e-5
    )


def test_depth_targets_sample_cell_centres(converted):
    data = dataset(converted)
    results = pipeline(
        dict(type='LoadMultiViewImages'),
        dict(type='LoadMultiViewDepth'),
        dict(type='MultiScaleDepthTargets', strides=(8,), min_depth=0.5, max_depth=20),
    )(dict(data[2]))
    (target,) = results['depth_targets']
    depth = results['depth'][1]
    assert target.shape[1:] == (depth.shape[0] // 8, depth.shape[1] // 8)
    expected = depth[4::8, 4::8][: target.shape[1], : target.shape[2]]
    valid = (expected >= 0.5) & (expected <= 20)
    np.testing.assert_array_equal(target[1][valid], expected[valid])
    assert (target[1][~valid] == -1).all() and valid.any() and (~valid).any()


def test_photometric_distortion_changes_colours_only(converted):
    np.random.seed(0)
    data = dataset(converted)
    results = pipeline(dict(type='LoadMultiViewImages'))(dict(data[0]))
    before = [i.copy() for i in results['img']]
    after = pipeline(dict(type='MultiViewPhotometricDistortion'))(results)['img']
    assert all(
        a.shape == b.shape and a.dtype == np.uint8 for a, b in zip(after, before, strict=True)
    )
    assert any(not np.array_equal(a, b) for a, b in zip(after, before, strict=True))


def test_mp4_scene_loads_through_the_same_pipeline(mp4_scene, tmp_path):
    result = create_data([mp4_scene[0]], tmp_path / 'o', num_anchors=0, progress=False)
    data = OVPKLDataset(ann_file=str(result.pickles[0]), data_root=str(mp4_scene[0].parent))
    info = data[3]
    assert isinstance(next(iter(info['cams'].values()))['img_key'], int)
    results = pipeline(dict(type='LoadMultiViewImages', max_cameras=3))(dict(info))
    assert len(results['img']) == 3 and results['img'][0].shape == (180, 320, 3)
    assert results['gt_visibility'].shape[1] == 3


def test_image_size_mismatch_is_named(converted):
    data = dataset(converted)
    info = data[0]
    camera = next(iter(info['cams']))
    info['cams'][camera] = dict(info['cams'][camera], image_wh=(640, 360))
    with pytest.raises(
        ValueError, match=f"camera '{camera}' frame is 320x180 but its calibration says 640x360"
    ):
        pipeline(dict(type='LoadMultiViewImages'))(info)


def test_normalisation_and_packing_of_floats(converted):
    data = dataset(converted)
    steps = pipeline(
        dict(type='LoadMultiViewImages'),
        dict(type='NormalizeMultiViewImages', mean=(100, 100, 100), std=(50, 50, 50)),
        dict(type='PackSparse4DInputs'),
    )
    raw = pipeline(dict(type='LoadMultiViewImages'))(dict(data[1]))['img'][0]
    packed = steps(dict(data[1]))['inputs']['img']
    assert packed.dtype == torch.float32
    np.testing.assert_allclose(packed[0].permute(1, 2, 0).numpy(), (raw - 100.0) / 50.0, rtol=1e-6)
    with pytest.raises(ValueError, match='std > 0'):
        pipeline(dict(type='NormalizeMultiViewImages', std=(1, 0, 1)))


def test_frame_cache_reads_plain_image_and_depth_files(tmp_path):
    import cv2

    from mmsparse4d.datasets.transforms.frame_cache import FrameCache

    rgb = np.random.default_rng(0).integers(0, 255, (6, 9, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'frame.png'), rgb[..., ::-1])
    cv2.imwrite(str(tmp_path / 'depth.png'), np.full((6, 9), 2500, np.uint16))
    cache = FrameCache()
    np.testing.assert_array_equal(cache.rgb(str(tmp_path / 'frame.png'), None), rgb)
    np.testing.assert_allclose(cache.depth(str(tmp_path / 'depth.png'), None), 2.5)
    with pytest.raises(Exception, match='not a uint16 depth PNG'):
        cache.depth(str(tmp_path / 'frame.png'), None)


@pytest.mark.parametrize(
    'saturation, hue', [(0.71, -11.6), (1.4, None), (None, 23.2)], ids=['both', 'sat', 'hue']
)
def test_colour_lookup_tables_equal_the_float_arithmetic(saturation, hue):
    import cv2

    from mmsparse4d.datasets.transforms.photometric_distortion import distort_colours

    image = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    reference = np.clip((image.astype(np.float32) + 17.3) * 1.37, 0, 255).astype(np.uint8)
    hsv = cv2.cvtColor(reference, cv2.COLOR_RGB2HSV).astype(np.float32)
    if saturation is not None:
        hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0, 255)
    if hue is not None:
        hsv[..., 0] = (hsv[..., 0] + hue) % 180
    reference = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    distorted = distort_colours(image, 17.3, 1.37, saturation, hue)
    np.testing.assert_array_equal(distorted, reference)
    np.testing.assert_array_equal(distort_colours(image), image)


def test_channel_planes_equal_the_transposed_stack():
    from mmsparse4d.datasets.transforms.pack_sparse4d_inputs import channel_planes

    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (17, 29, 3), dtype=np.uint8) for _ in range(4)]
    planar = channel_planes(images)
    np.testing.assert_array_equal(planar, np.stack(images).transpose(0, 3, 1, 2))
    assert planar.flags.c_contiguous and planar.dtype == np.uint8


def both_ways(sample: dict, seed: int, depth=True, colours=False, pack=True) -> dict:
    """``sample`` through the augmentation with the images' warp (and with ``colours`` their
    colour distortion) on the host and on the device, the same random draws both ways; with
    ``depth`` the depth maps and targets too; with ``pack`` packed."""

    def steps(where):
        yield dict(type='LoadMultiViewImages')
        if depth:
            yield dict(type='LoadMultiViewDepth')
        yield dict(TRAINING_AUGMENTATION, warp_images=where)
        if colours:
            yield dict(type='MultiViewPhotometricDistortion', apply=where)
        if depth:
            yield dict(type='MultiScaleDepthTargets', strides=(4, 8, 16))
        if pack:
            yield dict(type='PackSparse4DInputs')

    out = {}
    for where in ('host', 'device'):
        np.random.seed(seed)
        out[where] = pipeline(*steps(where))(dict(sample))
    return out


def preprocessed_images(packed: dict) -> dict:
    """Each way's packed inputs through the data preprocessor, stacked in a batch as in
    training (without normalisation): the images the network would see."""
    from mmsparse4d.models.data_preprocessors import Sparse4DDataPreprocessor
    from mmsparse4d.structures import stack_multiview_inputs

    preprocessor = Sparse4DDataPreprocessor(mean=(0, 0, 0), std=(1, 1, 1))
    images = {}
    for where, inputs in packed.items():
        batch = {key: [value] for key, value in inputs.items() if key != 'depth_targets'}
        images[where] = preprocessor({'inputs': stack_multiview_inputs(batch)})['inputs']['img']
    assert images['device'].shape == images['host'].shape
    return images


def test_images_warped_on_the_device_match_the_host_warp(converted):
    packed = {k: v['inputs'] for k, v in both_ways(dataset(converted)[3], 5).items()}
    host, device = packed['host'], packed['device']
    assert 'image_warp' not in host and device['image_warp'].shape == (len(host['img']), 2, 3)
    assert device['img'].shape[2:] != host['img'].shape[2:]  # still the loaded size
    torch.testing.assert_close(device['projection_mat'], host['projection_mat'])
    for ours, theirs in zip(device['depth_targets'], host['depth_targets'], strict=True):
        torch.testing.assert_close(ours, theirs)
    images = preprocessed_images(packed)
    # cv2 rounds its coordinates to 1/32 pixel: at the rendered scene's sharp edges a few
    # pixels differ by several levels, the rest by at most about one.
    difference = (images['device'] - images['host']).abs()
    assert difference.mean() < 0.5
    assert torch.quantile(difference.flatten()[::7], 0.99) <= 2.0


def test_colours_distorted_on_the_device_match_the_host(converted):
    ways = both_ways(dataset(converted)[2], 11, depth=False, colours=True)
    packed = {where: out['inputs'] for where, out in ways.items()}
    host, device = packed['host'], packed['device']
    cameras = len(host['img'])
    assert 'colour_distortion' not in host and device['colour_distortion'].shape == (cameras, 4)
    # Each of the four changes is drawn with probability 1/2: neutral values where not.
    assert not torch.equal(device['colour_distortion'][0], device['colour_distortion'][1])
    images = preprocessed_images(packed)
    # The device warps, then distorts, without the host's uint8 rounding between and within
    # the steps (its HSV round trip moves a level by up to about 5, see test_colour_distortion).
    difference = (images['device'] - images['host']).abs()
    assert difference.mean() < 1.0
    assert torch.quantile(difference.flatten()[::7], 0.99) <= 4.0


def test_depth_targets_through_the_warp_equal_those_of_the_warped_maps(converted):
    # With the images' warp left to the device, the cells are sampled through the warp from
    # the map as loaded, not from a warped map: the same nearest pixels, but for a cell
    # centre that lands within float rounding of a pixel border (the warp is stored in
    # float32), where the two may take neighbouring pixels.
    data = dataset(converted)
    equal = total = 0
    for seed in range(8):
        results = both_ways(data[seed % 4], seed, pack=False)
        device, host = (results[where]['depth_targets'] for where in ('device', 'host'))
        for ours, theirs in zip(device, host, strict=True):
            assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
            equal += int((ours == theirs).sum())
            total += ours.size
    assert equal >= 0.999 * total, (equal, total)
