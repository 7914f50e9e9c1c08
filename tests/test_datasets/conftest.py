"""Small generated scenes shared by the dataset tests (a few cameras, frames, low resolution)."""

import pytest

from mmsparse4d.datasets.synthetic import write_synthetic_scene

SMALL = dict(num_cameras=4, num_objects=6, num_frames=12, width=320, height=180, workers=1)


@pytest.fixture(scope='session')
def h5_scene(tmp_path_factory):
    path = tmp_path_factory.mktemp('scenes') / 'Warehouse_h5'
    model = write_synthetic_scene(path, seed=7, rgb_format='h5', **SMALL)
    return path, model


@pytest.fixture(scope='session')
def mp4_scene(tmp_path_factory):
    path = tmp_path_factory.mktemp('scenes') / 'Warehouse_mp4'
    model = write_synthetic_scene(path, seed=7, rgb_format='mp4', **SMALL)
    return path, model


@pytest.fixture(scope='session')
def converted(h5_scene, tmp_path_factory):
    """The h5 scene converted with two camera groups of 2 and 3 cameras, and 40 anchors."""
    from mmsparse4d.datasets.converters.create_data import GroupingOptions, create_data

    out = tmp_path_factory.mktemp('ovpkl')
    grouping = GroupingOptions(n_groups=2, cameras_per_group=(2, 3), min_overlap_threshold=0.0)
    result = create_data([h5_scene[0]], out, grouping=grouping, num_anchors=40, progress=False)
    return result, h5_scene[0].parent
