"""OVPKL conversion, camera groups and k-means anchors on a generated scene."""

import json
import pickle
import shutil

import numpy as np
import pytest

from mmsparse4d.datasets.aicity import CLASSES, GroundTruthError, RawScene, box_corners
from mmsparse4d.datasets.converters import (
    create_camera_groups,
    floor_coverage,
    kmeans_anchors,
)
from mmsparse4d.datasets.converters.create_data import create_data
from mmsparse4d.structures import COS_YAW, SIN_YAW
from mmsparse4d.utils.input_error import InputError
from tests.conftest import run_repo_tool


def load(path):
    with open(path, 'rb') as file:
        return pickle.load(file)


def test_pickles_per_group_with_recentred_cameras_and_boxes(converted, h5_scene):
    result, data_root = converted
    assert [p.name for p in result.pickles] == [
        'Warehouse_h5+bev-sensor-1_infos.pkl',
        'Warehouse_h5+bev-sensor-2_infos.pkl',
    ]
    scene = RawScene(h5_scene[0])
    for path, size in zip(result.pickles, (2, 3), strict=True):
        content = load(path)
        origin = np.array(content['metadata']['origin'])
        assert len(content['metadata']['cameras']) == size and np.abs(origin).max() > 0
        info = content['infos'][5]
        assert (
            info['token'] == f'{content["metadata"]["scene_name"]}+bev-sensor-{size - 1}__000000005'
        )
        for camera, cam in info['cams'].items():
            assert cam['data_path'] == ('Warehouse_h5/' + camera + '.h5', 'rgb/rgb_00005.jpg')
            assert cam['depth_map_path'][1] == 'distance_to_image_plane_00005.png'
            projection = np.eye(4)
            projection[:3, :3] = cam['cam_intrinsic']
            projection = projection @ cam['world_to_camera']
            for box, instance in zip(info['gt_boxes'], info['instance_inds'], strict=True):
                obj = next(o for o in scene.objects(5) if o.object_id == instance)
                corners = box_corners(box[:3], box[3:6], box[6])
                homogeneous = np.c_[corners, np.ones(8)] @ projection.T
                uv = homogeneous[:, :2] / homogeneous[:, 2:3]
                expected, _ = scene.calibration[camera].project(obj.corners())
                np.testing.assert_allclose(uv, expected, atol=1e-6)
                assert box[6] == pytest.approx(obj.yaw)  # the ground truth's sign, not negated


def test_velocities_and_visibility(converted, h5_scene):
    result, _ = converted
    model = h5_scene[1]
    content = load(result.pickles[1])
    speeds = {obj.object_id: obj.speed for obj in model.objects}
    for info in content['infos']:
        for velocity, instance, visibility in zip(
            info['gt_velocity'], info['instance_inds'], info['gt_visibility'], strict=True
        ):
            assert np.linalg.norm(velocity) == pytest.approx(speeds[instance], rel=0.05)
            assert all(0 < ratio <= 1 for ratio in visibility.values())
            assert set(visibility) <= set(content['metadata']['cameras'])


def test_asset_ids_are_shared_and_stable(converted, mp4_scene, tmp_path):
    result, _ = converted
    ids_file = result.pickles[0].parent / 'asset_ids.json'
    ids = json.loads(ids_file.read_text())
    assert ids['no_of_objects'] == 6
    # Converting into a folder that has the map keeps its ids (a copy: the fixture is shared).
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'asset_ids.json').write_text(ids_file.read_text())
    create_data([mp4_scene[0]], out, num_anchors=0, progress=False)
    again = json.loads((out / 'asset_ids.json').read_text())['objects']
    assert all(again[name] == value for name, value in ids['objects'].items())
    assert len(again) == 6  # the mp4 scene has the same seed, hence the same asset names


def test_camera_groups_respect_sizes_and_overlap(h5_scene):
    scene = RawScene(h5_scene[0])
    coverage = floor_coverage(list(scene.calibration.values()), (-20, -15, 20, 15), cell=0.5)
    assert coverage.masks.shape[0] == 4 and coverage.masks.any(axis=(1, 2)).all()
    cameras = list(scene.calibration.values())
    groups = create_camera_groups(coverage, cameras, 3, (2, 3), min_overlap_threshold=0.2, seed=1)
    assert [len(g.cameras) for g in groups] <= [2, 3, 2]
    masks = {name: m for name, m in zip(coverage.cameras, coverage.masks, strict=True)}
    for group in groups:
        union = np.any([masks[c] for c in group.cameras], axis=0)
        assert union.any()
        for camera in group.cameras[1:]:
            shared = (masks[camera] & union).sum() / masks[camera].sum()
            assert shared >= 0.2
    with pytest.raises(ValueError, match='at least 1'):
        create_camera_groups(coverage, cameras, 0, (2,))


def test_group_picture_is_written(converted):
    result, _ = converted
    (picture,) = result.pictures
    assert picture.read_bytes()[:4] == b'\x89PNG' and picture.stat().st_size > 10_000


def test_few_boxes_for_the_anchors_and_a_larger_anchor_file_are_logged(caplog_mm, tmp_path):
    from mmsparse4d.models.layers.instance_bank import load_anchors

    boxes = np.c_[np.arange(10.0), np.zeros(10), np.full(10, 0.9), np.ones((10, 3)), np.zeros(10)]
    anchors = kmeans_anchors(boxes, num_anchors=32)
    assert any('10 boxes for 32 anchors' in message for message in caplog_mm)
    path = tmp_path / 'anchors.npy'
    np.save(path, anchors)
    assert load_anchors(path, 20).shape == (20, 11)
    assert any(f'{path} holds 32 anchors; the first 20 are used' in m for m in caplog_mm)


def test_kmeans_anchors():
    rng = np.random.default_rng(0)
    boxes = np.c_[
        rng.uniform(-10, 10, (500, 2)),
        np.full(500, 0.9),
        np.tile([0.5, 0.6, 1.8], (500, 1)),
        np.zeros(500),
    ]
    anchors = kmeans_anchors(boxes, num_anchors=64)
    assert anchors.shape == (64, 11) and anchors.dtype == np.float32
    assert np.all(anchors[:, SIN_YAW] == 0) and np.all(anchors[:, COS_YAW] == 1)
    np.testing.assert_allclose(anchors[:, 3:6], np.log([[0.5, 0.6, 1.8]] * 64), rtol=1e-6)
    assert np.abs(anchors[:, :2]).max() <= 10
    assert len(np.unique(anchors[:, :2].round(3), axis=0)) == 64
    few = kmeans_anchors(boxes[:10], num_anchors=32)  # fewer boxes than anchors
    assert few.shape == (32, 11) and np.isfinite(few).all()
    with pytest.raises(ValueError, match='needs boxes'):
        kmeans_anchors(np.zeros((0, 7)))


def _two_class_boxes(rng, people: int, forklifts: int) -> tuple[np.ndarray, np.ndarray]:
    sizes = np.r_[np.tile([0.45, 0.6, 1.75], (people, 1)), np.tile([2.6, 1.2, 2.2], (forklifts, 1))]
    count = people + forklifts
    boxes = np.c_[rng.uniform(-10, 10, (count, 2)), sizes[:, 2] / 2, sizes, np.zeros(count)]
    return boxes, np.array(['Person'] * people + ['Forklift'] * forklifts, dtype=object)


def test_class_sized_anchors_take_each_class_median_size_in_proportion():
    boxes, names = _two_class_boxes(np.random.default_rng(0), 450, 50)
    anchors = kmeans_anchors(boxes, num_anchors=60, labels=names, sizes='class')
    sizes, counts = np.unique(anchors[:, 3:6], axis=0, return_counts=True)
    by_size = {
        tuple(np.exp(s.astype(float)).round(2)): c for s, c in zip(sizes, counts, strict=True)
    }
    assert by_size == {(0.45, 0.6, 1.75): 54, (2.6, 1.2, 2.2): 6}  # 90% and 10% of 60
    forklift = np.isclose(np.exp(anchors[:, 5]), 2.2)
    np.testing.assert_allclose(anchors[forklift, 2], 1.1, rtol=1e-6)  # the class's centre height
    np.testing.assert_allclose(anchors[~forklift, 2], 0.875, rtol=1e-6)
    # the forklift anchors are spread over the floor, not bunched in one cluster
    assert np.ptp(anchors[forklift, 0]) > 5 and np.ptp(anchors[forklift, 1]) > 5
    assert len(np.unique(anchors[:, :2].round(3), axis=0)) == 60


def test_a_rare_class_still_gets_an_anchor():
    boxes, names = _two_class_boxes(np.random.default_rng(1), 999, 1)
    anchors = kmeans_anchors(boxes, num_anchors=20, labels=names, sizes='class')
    assert np.isclose(np.exp(anchors[:, 5]), 2.2).sum() == 1


def test_class_sized_anchors_need_labels_and_a_known_mode():
    boxes, names = _two_class_boxes(np.random.default_rng(2), 10, 10)
    with pytest.raises(ValueError, match='one label per box'):
        kmeans_anchors(boxes, num_anchors=8, sizes='class')
    with pytest.raises(ValueError, match='one label per box'):
        kmeans_anchors(boxes, num_anchors=8, labels=names[:5], sizes='class')
    with pytest.raises(ValueError, match='sizes must be one of'):
        kmeans_anchors(boxes, num_anchors=8, labels=names, sizes='median')


def test_kmeans_over_a_large_set_clusters_a_subset(monkeypatch):
    from mmsparse4d.datasets.converters import anchors as anchors_module

    boxes, _ = _two_class_boxes(np.random.default_rng(3), 3000, 0)
    monkeypatch.setattr(anchors_module, 'MAX_KMEANS_BOXES', 500)
    subset = kmeans_anchors(boxes, num_anchors=50, seed=4)
    assert subset.shape == (50, 11) and np.isfinite(subset).all()
    # the clusters still spread over the whole floor the boxes cover
    assert np.ptp(subset[:, 0]) > 15 and np.ptp(subset[:, 1]) > 15
    np.testing.assert_array_equal(subset, kmeans_anchors(boxes, num_anchors=50, seed=4))


def test_create_data_writes_class_sized_anchors(h5_scene, tmp_path):
    result = create_data(
        [h5_scene[0]], tmp_path, num_anchors=24, progress=False, anchor_sizes='class'
    )
    anchors = np.load(result.anchors)
    infos = load(result.pickles[0])['infos']
    boxes = np.concatenate([info['gt_boxes'] for info in infos])
    names = np.concatenate([info['gt_names'] for info in infos])
    medians = np.array([np.median(boxes[names == n, 3:6], axis=0) for n in sorted(set(names))])
    # each anchor's size is one class's median (float32 logs: relative error ~1e-7)
    error = np.abs(np.exp(anchors[:, None, 3:6]) / medians[None] - 1).max(axis=2)
    assert (error.min(axis=1) < 1e-5).all()
    assert len(np.unique(error.argmin(axis=1))) == len(medians)  # every class has anchors
    with pytest.raises(InputError, match='--anchor-sizes must be one of'):
        create_data([h5_scene[0]], tmp_path / 'x', num_anchors=8, anchor_sizes='median')
    assert not (tmp_path / 'x').exists()


def test_written_anchors_cover_the_boxes(converted):
    result, _ = converted
    anchors = np.load(result.anchors)
    assert anchors.shape == (40, 11)
    boxes = np.concatenate([info['gt_boxes'] for p in result.pickles for info in load(p)['infos']])
    assert (
        anchors[:, 0].min() >= boxes[:, 0].min() - 1
        and anchors[:, 0].max() <= boxes[:, 0].max() + 1
    )


def test_bad_input_fails_before_any_output(h5_scene, tmp_path):
    out = tmp_path / 'out'
    with pytest.raises(InputError, match='scene folder not found'):
        create_data([h5_scene[0], tmp_path / 'missing'], out)
    assert not out.exists()
    with pytest.raises(ValueError, match="unknown classes \\['Cat'\\]"):
        create_data([h5_scene[0]], out, classes=['Person', 'Cat'])
    assert not out.exists()


def test_create_data_tool(h5_scene, tmp_path, capsys):
    from tools.create_data import main

    others = ['Forklift', 'NovaCarter', 'Transporter', 'FourierGR1T2', 'AgilityDigit']
    arguments = ['--anchors', '8', '--classes', 'Person', '--ignore-classes', *others]
    main([str(h5_scene[0]), '--out', str(tmp_path / 'o'), *arguments])
    printed = capsys.readouterr().out
    assert 'Warehouse_h5_infos.pkl' in printed and 'anchor_init_kmeans8.npy' in printed
    content = load(tmp_path / 'o' / 'Warehouse_h5_infos.pkl')
    assert {n for info in content['infos'] for n in info['gt_names']} <= {'Person'}


def scene_with_classes(source, tmp_path, renames):
    """A copy of a generated scene whose ground truth gives object ids new class names,
    as a user's file may have them."""
    target = tmp_path / source.name
    shutil.copytree(source, target)
    content = json.loads((target / 'ground_truth.json').read_text())
    for objects in content.values():
        for obj in objects:
            obj['object type'] = renames.get(obj['object id'], obj['object type'])
    (target / 'ground_truth.json').write_text(json.dumps(content))
    return target


def test_a_class_outside_classes_is_an_error_unless_ignored(h5_scene, tmp_path):
    # Objects 1 and 2 become pallet trucks (the seventh class), spelled as NVIDIA's tools do.
    scene = scene_with_classes(h5_scene[0], tmp_path, {1: 'pallet_truck', 2: 'PalletTruck'})
    out = tmp_path / 'out'
    with pytest.raises(GroundTruthError) as error:
        create_data([scene], out, num_anchors=0, progress=False)
    message = str(error.value)
    assert message.startswith(f'{scene / "ground_truth.json"}: objects of classes that are not ')
    assert "'PalletTruck': 24 objects, the first in frame 0, object id 1" in message
    assert '--ignore-classes' in message
    assert not out.exists()
    seven = [*CLASSES, 'PalletTruck']
    with pytest.raises(InputError, match=r"\['PalletTruck'\] given both in --classes and in"):
        create_data([scene], out, classes=seven, ignore_classes=['pallet truck'])
    assert not out.exists()

    result = create_data([scene], out, num_anchors=0, progress=False, ignore_classes=seven[-1:])
    names = {n for p in result.pickles for info in load(p)['infos'] for n in info['gt_names']}
    assert 'PalletTruck' not in names and len(names) > 1
    # Any spelling of the seventh class can be converted.
    spelled = [*CLASSES, 'pallet_truck']
    result = create_data([scene], tmp_path / '7', classes=spelled, num_anchors=0, progress=False)
    content = load(result.pickles[0])
    assert content['metadata']['classes'][-1] == 'PalletTruck'
    assert sum((info['gt_names'] == 'PalletTruck').sum() for info in content['infos']) == 24


def test_create_data_tool_refuses_an_unknown_class_in_one_line(h5_scene, tmp_path):
    scene = scene_with_classes(h5_scene[0], tmp_path, {3: 'Cat'})
    out = tmp_path / 'out'
    done = run_repo_tool('create_data.py', scene, '--out', out, '--anchors', '0')
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f'create_data: {scene / "ground_truth.json"}: frame 0, object 3 ')
    assert "(object id 3), key 'object type': unknown class 'Cat'; known classes: " in line
    assert not out.exists()
    done = run_repo_tool(
        'create_data.py', scene, '--out', out, '--anchors', '0', '--ignore-classes', 'cat'
    )
    assert done.returncode == 0, done.stderr
    assert 'dropped 12 objects of ignored classes (cat 12)' in done.stdout + done.stderr
    assert (out / 'Warehouse_h5_infos.pkl').is_file()
