"""Raw scenes to a training set: OVPKL pickles, asset ids, camera groups, anchors."""

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mmengine.logging import print_log

from ...utils.input_error import InputError
from ...utils.output_paths import check_output_dir
from ..aicity import CLASSES, RawScene
from ..aicity.class_names import canonical_class_names, ignore_keys
from ..ovpkl_dataset import read_ovpkl
from .anchors import ANCHOR_SIZES, kmeans_anchors
from .camera_groups import create_camera_groups, draw_camera_groups, floor_coverage
from .ovpkl import AssetIds, check_scene_classes, convert_scene, write_ovpkl


@dataclass
class GroupingOptions:
    """NVIDIA's create_camera_groups options: ``n_groups`` 0 disables grouping."""

    n_groups: int = 0
    cameras_per_group: Sequence[int] = (5, 8, 10)
    min_overlap_threshold: float = 0.1
    max_distance: float = 40.0
    dilation: int = 2
    cell: float = 0.25
    seed: int = 0


@dataclass
class CreateDataResult:
    pickles: list[Path] = field(default_factory=list)
    pictures: list[Path] = field(default_factory=list)
    anchors: Path | None = None


def _floor_bounds(scene: RawScene, margin: float = 2.0) -> tuple[float, float, float, float]:
    points = [c.center[:2] for c in scene.calibration.values()]
    points += [o.location[:2] for objects in scene.ground_truth.values() for o in objects]
    points = np.array(points)
    low, high = points.min(axis=0) - margin, points.max(axis=0) + margin
    return float(low[0]), float(low[1]), float(high[0]), float(high[1])


def _all_objects(scenes):
    return (objects for scene in scenes for objects in scene.ground_truth.values())


def _first_missing(ground_truth: dict, frames: int) -> int:
    return next(frame for frame in range(frames) if frame not in ground_truth)


ANCHOR_NAME = 'anchor_init_kmeans{}.npy'


def _check_appendable(metadata: dict, path: Path, root: str, classes) -> None:
    """An earlier pickle that these scenes may join: the same data root (the pickles'
    paths are relative to it) and classes (pickles of older runs record neither)."""
    if metadata.get('data_root') not in (None, root):
        raise InputError(
            f"--append: its paths are relative to {metadata['data_root']}, these scenes' to "
            f'{root}; one config reads one data root: give --data-root {metadata["data_root"]} '
            'or convert into another --out',
            path,
        )
    if metadata.get('classes') not in (None, list(classes)):
        raise InputError(
            f'--append: converted with --classes {" ".join(metadata["classes"])}, this run '
            f'with {" ".join(classes)}; give the same --classes',
            path,
        )


# create_data's ``existing`` (the tool's --append / --overwrite).
EXISTING_OUTPUTS = ('refuse', 'append', 'overwrite')


def _check_unique_names(scenes: Sequence[RawScene]) -> None:
    """Scenes are named after their folders: two of one name would write one pickle."""
    seen = {}
    for scene in scenes:
        if scene.name in seen:
            raise InputError(
                f'two scenes named {scene.name!r} ({seen[scene.name]} and {scene.root}): their '
                'pickles and asset ids would collide; rename one folder'
            )
        seen[scene.name] = scene.root


def _earlier_outputs(out: Path, existing: str) -> list[Path]:
    """The files of an earlier run in ``out`` (pickles, asset ids, anchors, camera-group
    pictures); refused unless ``existing`` says what to do with them."""
    if not out.is_dir():
        return []
    pickles = sorted(out.glob('*_infos.pkl'))
    if pickles and existing == 'refuse':
        names = ', '.join(path.name for path in pickles[:3]) + (', ...' if len(pickles) > 3 else '')
        raise InputError(
            f'holds {len(pickles)} pickles of an earlier run ({names}): --append adds these '
            'scenes to them (the anchors then over all), --overwrite replaces them',
            out,
        )
    others = [out / 'asset_ids.json', *out.glob(ANCHOR_NAME.format('*'))]
    others += out.glob('*_camera_groups.png')
    return pickles + [path for path in others if path.is_file()]


def create_data(
    scene_dirs: Sequence[str | Path],
    out_dir: str | Path,
    data_root: str | Path | None = None,
    classes: Sequence[str] = CLASSES,
    grouping: GroupingOptions | None = None,
    num_anchors: int = 900,
    progress: bool = True,
    ignore_classes: Sequence[str] = (),
    anchor_sizes: str = 'mean',
    existing: str = 'refuse',
) -> CreateDataResult:
    """Convert every scene; all input is opened and checked before anything is written.

    Args:
        data_root: the folder the pickles' paths are relative to (default: the scenes'
            common parent).
        num_anchors: 0 skips the anchors; else k-means over every written box.
        classes: the classes converted, any spelling of ``KNOWN_CLASSES``; a ground-truth
            object of another class is an error unless its class is in ``ignore_classes``.
        ignore_classes: classes whose objects are dropped (counts logged per scene).
        anchor_sizes: ``kmeans_anchors``' ``sizes``: ``'mean'`` (upstream) or ``'class'``.
        existing: what to do with the pickles of an earlier run in ``out_dir``:
            ``'refuse'``, ``'append'`` (these scenes join them: the asset ids continue, a
            pickle of the same name is replaced, the anchors are placed over every pickle's
            boxes) or ``'overwrite'`` (the earlier run's outputs are removed first).
    """
    scene_dirs = [Path(d) for d in scene_dirs]
    if existing not in EXISTING_OUTPUTS:
        raise InputError(f'existing must be one of {EXISTING_OUTPUTS}, got {existing!r}')
    if anchor_sizes not in ANCHOR_SIZES:
        raise InputError(
            f'--anchor-sizes must be one of {list(ANCHOR_SIZES)}, got {anchor_sizes!r}'
        )
    if not scene_dirs:
        raise InputError('no scene folders given')
    classes = canonical_class_names(classes, '--classes')
    both = [name for name in ignore_keys(ignore_classes).values() if name in classes]
    if both:
        raise InputError(f'{both} given both in --classes and in --ignore-classes')
    # Fails here, before any output, on bad input.
    scenes = [RawScene(d, ignore_classes=ignore_classes) for d in scene_dirs]
    _check_unique_names(scenes)
    for scene in scenes:
        if scene.ground_truth is None:
            raise InputError('no ground_truth.json to convert', scene.root)
        check_scene_classes(scene, classes)
        frames = scene.check(depth=True)
        unlabelled = frames - len(scene.ground_truth)
        if unlabelled:
            print_log(
                f'{scene.root / "ground_truth.json"}: no entry for {unlabelled} of the '
                f'{frames} video frames (first: {_first_missing(scene.ground_truth, frames)}); '
                'those frames are left out of the pickles',
                logger='current',
                level=logging.WARNING,
            )
    if data_root is None:
        data_root = Path(os.path.commonpath([d.resolve().parent for d in scene_dirs]))
    for scene in scenes:
        if not scene.root.resolve().is_relative_to(Path(data_root).resolve()):
            raise InputError(f'is not inside --data-root {data_root}', scene.root)
    if num_anchors > 0 and not any(
        o.class_name in classes for objects in _all_objects(scenes) for o in objects
    ):
        raise InputError(
            f'no ground-truth objects of the classes {list(classes)} to place {num_anchors} '
            'anchors on (--anchors 0 skips them)',
            scenes[0].root / 'ground_truth.json' if len(scenes) == 1 else None,
        )
    out = Path(out_dir)
    check_output_dir(out, '--out')
    earlier = _earlier_outputs(out, existing)
    # Read before anything is written: an unreadable earlier pickle stops the run here.
    earlier_boxes = {}
    root = str(Path(data_root).resolve())
    if existing == 'append':
        for path in earlier:
            if path.name.endswith('_infos.pkl'):
                content = read_ovpkl(path)
                _check_appendable(content.get('metadata') or {}, path, root, classes)
                infos = content['infos']
                earlier_boxes[path] = [(i['gt_boxes'], i['gt_names']) for i in infos]
    print_log(f'pickle paths are relative to {root} (data_root)', 'current')
    if existing == 'overwrite' and earlier:
        for path in earlier:
            path.unlink()
        print_log(f'{out}: {len(earlier)} files of an earlier run removed (--overwrite)', 'current')
    out.mkdir(parents=True, exist_ok=True)
    grouping = grouping or GroupingOptions()
    asset_ids = AssetIds(out / 'asset_ids.json')
    result = CreateDataResult()
    all_boxes, all_names = [], []
    for scene in scenes:
        groups = None
        if grouping.n_groups > 0:
            coverage = floor_coverage(
                list(scene.calibration.values()),
                _floor_bounds(scene),
                grouping.cell,
                grouping.max_distance,
                grouping.dilation,
            )
            groups = create_camera_groups(
                coverage,
                list(scene.calibration.values()),
                grouping.n_groups,
                grouping.cameras_per_group,
                grouping.min_overlap_threshold,
                grouping.seed,
            )
            picture = out / f'{scene.name}_camera_groups.png'
            draw_camera_groups(coverage, groups, scene.calibration.values(), picture)
            result.pictures.append(picture)
        for name, content in convert_scene(scene, data_root, groups, classes, asset_ids, progress):
            path = out / f'{name}_infos.pkl'
            # What --append checks a later run against.
            content['metadata'].update(data_root=root, classes=list(classes))
            origin = ', '.join(f'{v:.2f}' for v in content['metadata']['origin'])
            print_log(f'{path.name}: origin ({origin}) m', 'current')
            write_ovpkl(content, path)
            result.pickles.append(path)
            all_boxes += [info['gt_boxes'] for info in content['infos']]
            all_names += [info['gt_names'] for info in content['infos']]
        scene.close()
    asset_ids.save()
    if existing == 'append' and num_anchors == 0:
        for path in sorted(out.glob(ANCHOR_NAME.format('*'))):
            print_log(
                f'{path}: its anchors do not cover the appended scenes (--anchors 0); place '
                'new ones with --anchors N',
                'current',
                level=logging.WARNING,
            )
    if num_anchors > 0:
        if existing == 'append':
            kept = [path for path in earlier_boxes if path not in result.pickles]
            for path in kept:
                all_boxes += [boxes for boxes, _ in earlier_boxes[path]]
                all_names += [names for _, names in earlier_boxes[path]]
            print_log(
                f'anchors over the boxes of {len(result.pickles)} pickles written now and '
                f'{len(kept)} of an earlier run (--append)',
                'current',
            )
            stale = sorted(
                set(out.glob(ANCHOR_NAME.format('*'))) - {out / ANCHOR_NAME.format(num_anchors)}
            )
            for path in stale:  # placed over fewer pickles than the folder now holds
                path.unlink()
                print_log(
                    f'{path}: removed; its anchors do not cover the appended scenes', 'current'
                )
        boxes = np.concatenate(all_boxes) if all_boxes else np.zeros((0, 7))
        if len(boxes) == 0:
            raise ValueError('create_data: no ground-truth boxes of the chosen classes for anchors')
        result.anchors = out / ANCHOR_NAME.format(num_anchors)
        names = np.concatenate(all_names)
        np.save(
            result.anchors, kmeans_anchors(boxes, num_anchors, labels=names, sizes=anchor_sizes)
        )
    return result
