"""The one track-id convention of every output a user sees.

The model numbers its instances from 0 inside (instance bank, track stitcher). Everything
that leaves a tracker (``Sparse4DTracker``, ``DeployTracker``, and the rows the HOTA
metric of ``tools/test.py`` scores) carries ``track_ids`` numbered from ``FIRST_TRACK_ID``,
and every writer (AI City submission, NVSchema, ``*_tracks.npz``, pictures) writes that
number unchanged: the same object has the same id in every file. 1 because the AI City
submission format requires positive object ids. Ground-truth ids are never renumbered:
they are written and reported as ``ground_truth.json`` has them.
"""

import numpy as np

FIRST_TRACK_ID = 1


def track_ids_from_instances(instance_ids) -> np.ndarray:
    """[M] int64 track ids of the model's 0-based instance ids [M]."""
    return np.asarray(instance_ids, dtype=np.int64) + FIRST_TRACK_ID
