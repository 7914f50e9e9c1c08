"""The one track-id convention of every output a user sees.

The model numbers its instances from 0 inside (instance bank, track stitcher); the decoder
(``SparseBox3DDecoder``) turns them into ``track_ids`` numbered from ``FIRST_TRACK_ID``, and
everything that leaves it (``Sparse4DTracker`` on every back end, the predictions the HOTA
metric of ``tools/test.py`` scores) carries those. Every writer (AI City submission,
NVSchema, ``*_tracks.npz``, pictures) writes that number unchanged: the same object has the
same id in every file. 1 because the AI City submission format requires positive object
ids. Ground-truth ids are never renumbered: they are written and reported as
``ground_truth.json`` has them.
"""

FIRST_TRACK_ID = 1
