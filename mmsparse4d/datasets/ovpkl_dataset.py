"""The OVPKL dataset: per-frame infos of raw scenes (tools/create_data.py writes them)."""

import os.path as osp
import pickle
from pathlib import Path

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from ..registry import DATASETS
from ..structures.camera_geometry import projection_matrix
from ..utils.input_error import InputError
from .aicity import CLASSES, KNOWN_CLASSES, UnknownClassError, canonical_class_name

PALETTE = [
    (220, 20, 60),
    (255, 140, 0),
    (30, 144, 255),
    (50, 205, 50),
    (148, 0, 211),
    (0, 206, 209),
    (139, 69, 19),  # PalletTruck
]
# The misnamed field of TAO's converter that holds the same world-to-camera transform.
TAO_WORLD_TO_CAMERA = 'sensor2world_transform'


def annotation_files(ann_file: str | Path) -> list[Path]:
    """The pickles ``ann_file`` names: itself, or every ``.pkl`` in it if it is a folder;
    a missing file or a folder without one is an ``InputError`` naming it."""
    path = Path(ann_file)
    if path.is_dir():
        files = sorted(path.glob('*.pkl'))
        if not files:
            raise InputError('folder holds no .pkl annotation files', path)
        return files
    if not path.is_file():
        raise InputError('annotation file not found', path)
    return [path]


def read_ovpkl(path: str | Path) -> dict:
    """A pickle of ``tools/create_data.py`` (``metadata`` and ``infos``); ``InputError``
    naming the file for anything else."""
    with open(path, 'rb') as file:
        try:
            content = pickle.load(file)
        except (pickle.UnpicklingError, EOFError) as error:
            raise InputError(f'not a readable pickle ({error})', path) from None
    if not isinstance(content, dict) or 'infos' not in content:
        raise InputError('an OVPKL pickle needs an "infos" list', path)
    return content


@DATASETS.register_module()
class OVPKLDataset(BaseDataset):
    """Frames of OVPKL pickles, ordered by (scene, frame): the instance bank needs order.

    Args:
        ann_file: one ``*_infos.pkl`` or a folder of them.
        data_root: the folder the pickles' image and depth paths are relative to.
        class_range: keep boxes whose centre lies within this distance (metres, in the
            re-centred frame) of the origin: one number for all classes or a dict per class;
            None keeps everything.
        metainfo: ``classes`` (a subset of ``KNOWN_CLASSES``, in label order: the six of
            AI City 2025 by default, any order and PalletTruck for NVIDIA's 7-class
            models) and ``palette``. Ground-truth names are read in any spelling
            ``canonical_class_name`` knows (TAO's converter writes ``gr1_t2``); boxes of
            known classes outside ``classes`` are left out and counted in the log.

    Each data info holds: ``token, scene_name, frame_idx, timestamp, origin [3]``,
    ``cams`` (camera -> ``img_path, img_key, depth_path, depth_key, intrinsic [3, 3],
    world_to_camera [4, 4], projection [4, 4], image_wh``), ``gt_bboxes_3d [M, 7]``,
    ``gt_labels_3d [M]``, ``gt_velocity [M, 3]``, ``instance_ids [M]``, ``asset_ids [M]``
    and ``gt_visibility [M, N]`` (visible fraction per camera, in ``cams`` order).
    """

    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self, ann_file: str, data_root: str = '', class_range=None, **kwargs):
        self.class_range = class_range
        super().__init__(ann_file=ann_file, data_root=data_root, **kwargs)

    def _annotation_files(self) -> list[Path]:
        return annotation_files(self.ann_file)

    def load_data_list(self) -> list[dict]:
        unknown = set(self.metainfo['classes']) - set(KNOWN_CLASSES)
        if unknown:
            raise InputError(
                f'OVPKLDataset: unknown classes {sorted(unknown)}; known: {KNOWN_CLASSES}'
            )
        self._left_out = {}
        data_list = []
        for path in self._annotation_files():
            content = read_ovpkl(path)
            origin = np.asarray(content.get('metadata', {}).get('origin', [0, 0, 0]), float)
            for index, info in enumerate(content['infos']):
                data_list.append(self._parse(info, origin, f'{path}: infos[{index}]'))
        data_list.sort(key=lambda info: (info['scene_name'], info['frame_idx']))
        if self._left_out:
            counts = ', '.join(f'{n} {c}' for n, c in sorted(self._left_out.items()))
            print_log(
                f'OVPKLDataset {self.ann_file}: boxes of classes the config does not train '
                f'left out: {counts}',
                logger='current',
            )
        return data_list

    def _range_of(self, name: str) -> float:
        if self.class_range is None:
            return np.inf
        if isinstance(self.class_range, dict):
            return float(self.class_range.get(name, np.inf))
        return float(self.class_range)

    def _parse(self, info: dict, origin: np.ndarray, where: str) -> dict:
        for key in (
            'token',
            'scene_name',
            'frame_idx',
            'timestamp',
            'cams',
            'gt_boxes',
            'gt_names',
        ):
            if key not in info:
                raise InputError(f'{where}: missing key {key!r}')
        cams = {}
        for camera, cam in info['cams'].items():
            transform = cam.get('world_to_camera', cam.get(TAO_WORLD_TO_CAMERA))
            if transform is None:
                raise InputError(f"{where}: camera {camera!r} has no 'world_to_camera'")
            depth = cam.get('depth_map_path')
            image_wh = cam.get(
                'image_wh', (2 * cam['cam_intrinsic'][0][2], 2 * cam['cam_intrinsic'][1][2])
            )
            cams[camera] = {
                'img_path': self._join(cam['data_path'][0]),
                'img_key': cam['data_path'][1],
                'depth_path': None if depth is None else self._join(depth[0]),
                'depth_key': None if depth is None else depth[1],
                'intrinsic': np.asarray(cam['cam_intrinsic'], dtype=np.float64),
                'world_to_camera': np.asarray(transform, dtype=np.float64),
                'projection': projection_matrix(cam['cam_intrinsic'], transform),
                'image_wh': tuple(int(v) for v in image_wh),
            }
        classes = list(self.metainfo['classes'])
        boxes = np.asarray(info['gt_boxes'], dtype=np.float64).reshape(-1, 7)
        try:
            names = [canonical_class_name(name) for name in info['gt_names']]
        except UnknownClassError as error:
            raise InputError(f'{where}: gt_names: {error}') from None
        for name in names:
            if name not in classes:
                self._left_out[name] = self._left_out.get(name, 0) + 1
        keep = np.array(
            [
                name in classes and np.linalg.norm(box[:2]) <= self._range_of(name)
                for name, box in zip(names, boxes, strict=True)
            ],
            dtype=bool,
        )
        if 'valid_flag' in info:
            keep &= np.asarray(info['valid_flag'], dtype=bool)
        count = len(boxes)

        def column(key, default):
            value = info.get(key)
            return (
                np.asarray(default if value is None else value)[keep]
                if count
                else np.asarray(default)
            )

        visibility_dicts = [
            v for v, k in zip(info.get('gt_visibility') or [{}] * count, keep, strict=True) if k
        ]
        return {
            'token': info['token'],
            'scene_name': info['scene_name'],
            'frame_idx': int(info['frame_idx']),
            'timestamp': float(info['timestamp']),
            'origin': origin,
            'cams': cams,
            'gt_bboxes_3d': boxes[keep].astype(np.float32),
            'gt_labels_3d': np.array(
                [classes.index(n) for n, k in zip(names, keep, strict=True) if k], dtype=np.int64
            ),
            'gt_velocity': column('gt_velocity', np.zeros((count, 3)))
            .astype(np.float32)
            .reshape(-1, 3),
            'instance_ids': column('instance_inds', -np.ones(count, dtype=np.int64)).astype(
                np.int64
            ),
            'asset_ids': column('asset_inds', -np.ones(count, dtype=np.int64)).astype(np.int64),
            'gt_visibility': np.array(
                [[v.get(camera, 0.0) for camera in cams] for v in visibility_dicts],
                dtype=np.float32,
            ).reshape(-1, len(cams)),
        }

    def _join(self, path: str) -> str:
        return path if osp.isabs(path) or not self.data_root else osp.join(self.data_root, path)
