"""The OVPKL dataset over converted scenes."""

import pickle

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmsparse4d.datasets import OVPKLDataset
from mmsparse4d.registry import DATASETS
from mmsparse4d.utils.input_error import InputError
from tests.conftest import REPO_ROOT

TAO_CONFIG = REPO_ROOT / 'configs/sparse4d/sparse4d_tao_r50_1408x512.py'


def build(**kwargs):
    with DefaultScope.overwrite_default_scope('mmsparse4d'):
        return DATASETS.build(dict(type='OVPKLDataset', **kwargs))


def test_folder_of_pickles_in_scene_and_frame_order(converted):
    result, data_root = converted
    dataset = build(ann_file=str(result.pickles[0].parent), data_root=str(data_root))
    assert len(dataset) == 24
    keys = [(dataset[i]['scene_name'], dataset[i]['frame_idx']) for i in range(len(dataset))]
    assert keys == sorted(keys)
    # A dynamic number of cameras: the two groups have 2 and 3.
    assert {len(dataset[i]['cams']) for i in range(len(dataset))} == {2, 3}
    sample = dataset[20]
    cams = sample['cams']
    assert all(c['img_path'].startswith(str(data_root)) for c in cams.values())
    camera = next(iter(cams.values()))
    np.testing.assert_allclose(
        camera['projection'][:3, :3], camera['intrinsic'] @ camera['world_to_camera'][:3, :3]
    )
    assert sample['gt_bboxes_3d'].shape[1] == 7 and sample['gt_visibility'].shape[1] == len(cams)
    assert dataset.metainfo['classes'][0] == 'Person' and len(dataset.metainfo['palette']) >= 6


def test_class_and_range_filters(converted):
    result, data_root = converted
    full = build(ann_file=str(result.pickles[1]), data_root=str(data_root))
    people = build(
        ann_file=str(result.pickles[1]),
        data_root=str(data_root),
        metainfo=dict(classes=('Person',)),
    )
    near = build(ann_file=str(result.pickles[1]), data_root=str(data_root), class_range=6.0)
    total = sum(len(full[i]['gt_labels_3d']) for i in range(len(full)))
    assert 0 < sum(len(people[i]['gt_labels_3d']) for i in range(len(people))) < total
    assert all((people[i]['gt_labels_3d'] == 0).all() for i in range(len(people)))
    kept = [near[i]['gt_bboxes_3d'] for i in range(len(near))]
    assert sum(len(k) for k in kept) < total
    assert all(np.linalg.norm(k[:, :2], axis=1).max(initial=0) <= 6.0 for k in kept)


def test_reads_tao_misnamed_transform(converted, tmp_path):
    result, data_root = converted
    with open(result.pickles[0], 'rb') as file:
        content = pickle.load(file)
    for info in content['infos']:
        for cam in info['cams'].values():
            cam['sensor2world_transform'] = cam.pop('world_to_camera')
    with open(tmp_path / 'tao.pkl', 'wb') as file:
        pickle.dump(content, file)
    ours = build(ann_file=str(result.pickles[0]), data_root=str(data_root))
    tao = build(ann_file=str(tmp_path / 'tao.pkl'), data_root=str(data_root))
    for camera in ours[3]['cams']:
        np.testing.assert_array_equal(
            ours[3]['cams'][camera]['projection'], tao[3]['cams'][camera]['projection']
        )


def test_lazy_init_and_errors(converted, tmp_path):
    result, data_root = converted
    lazy = build(ann_file=str(result.pickles[0]), data_root=str(data_root), lazy_init=True)
    assert not lazy._fully_initialized
    assert len(lazy) == 12 and lazy._fully_initialized
    # Bad annotations are InputErrors naming the file: the tools print them as one line.
    with pytest.raises(InputError, match='none.pkl: annotation file not found'):
        OVPKLDataset(ann_file=str(tmp_path / 'none.pkl'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(InputError, match='empty: folder holds no .pkl'):
        OVPKLDataset(ann_file=str(tmp_path / 'empty'))
    (tmp_path / 'bad.pkl').write_bytes(b'not a pickle')
    with pytest.raises(InputError, match='bad.pkl: not a readable pickle'):
        OVPKLDataset(ann_file=str(tmp_path / 'bad.pkl'))
    with pytest.raises(ValueError, match="unknown classes \\['Cat'\\]"):
        OVPKLDataset(ann_file=str(result.pickles[0]), metainfo=dict(classes=('Cat',)))


def test_taos_seven_classes_and_spellings(converted, tmp_path):
    # NVIDIA TAO's converter writes lower-case names (gr1_t2, nova_carter); its 7-class
    # models list them in their own order with PalletTruck.
    result, data_root = converted
    with open(result.pickles[1], 'rb') as file:
        content = pickle.load(file)
    tao_spelling = {'FourierGR1T2': 'gr1_t2', 'AgilityDigit': 'agility_digit'}
    for info in content['infos']:
        info['gt_names'] = [tao_spelling.get(n, n.lower()) for n in info['gt_names']]
    info = content['infos'][0]
    info['gt_names'][0] = 'pallet_truck'
    with open(tmp_path / 'tao.pkl', 'wb') as file:
        pickle.dump(content, file)
    tao_order = Config.fromfile(str(TAO_CONFIG)).class_names
    ours = build(ann_file=str(result.pickles[1]), data_root=str(data_root))
    tao = build(
        ann_file=str(tmp_path / 'tao.pkl'),
        data_root=str(data_root),
        metainfo=dict(classes=tao_order),
    )
    for index in range(1, len(ours)):
        names = [ours.metainfo['classes'][i] for i in ours[index]['gt_labels_3d']]
        assert names == [tao_order[i] for i in tao[index]['gt_labels_3d']]
    assert tao_order[tao[0]['gt_labels_3d'][0]] == 'PalletTruck'
    # The six default classes leave the pallet truck out, and say so.
    six = build(ann_file=str(tmp_path / 'tao.pkl'), data_root=str(data_root))
    assert len(six[0]['gt_labels_3d']) == len(tao[0]['gt_labels_3d']) - 1
    info['gt_names'][1] = 'cat'
    with open(tmp_path / 'bad.pkl', 'wb') as file:
        pickle.dump(content, file)
    with pytest.raises(ValueError, match=r"bad.pkl: infos\[0\]: gt_names: unknown class 'cat'"):
        build(ann_file=str(tmp_path / 'bad.pkl'), data_root=str(data_root))
