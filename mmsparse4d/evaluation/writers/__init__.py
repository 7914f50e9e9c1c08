"""Result writers and readers: AI City submission text, NVSchema JSON lines, frame JSON."""

from .aicity_submission import (
    CLASS_IDS,
    FIELDS,
    NUM_FIELDS,
    SubmissionError,
    SubmissionWarning,
    check_rows,
    ground_truth_rows,
    one_class_per_track,
    read_submission,
    write_submission,
)
from .frame_results import read_frame_results, write_frame_results
from .nvschema import nvschema_frame, read_nvschema, write_nvschema

__all__ = [
    'CLASS_IDS',
    'FIELDS',
    'NUM_FIELDS',
    'SubmissionError',
    'SubmissionWarning',
    'check_rows',
    'ground_truth_rows',
    'nvschema_frame',
    'one_class_per_track',
    'read_frame_results',
    'read_nvschema',
    'read_submission',
    'write_frame_results',
    'write_nvschema',
    'write_submission',
]
