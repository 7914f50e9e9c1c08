"""HOTA of tracked predictions, aggregated as the AI City 2025 protocol does it."""

import json

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from ...datasets.aicity import CLASSES, KNOWN_CLASSES
from ...models.task_modules.track_stitcher import TrackStitcher
from ...registry import METRICS
from ..functional.aicity_hota import aicity_hota
from ..functional.hota import METRICS as HOTA_METRICS
from ..functional.track_smoothing import check_track_smoothing, smooth_tracks
from ..tables import format_table
from ..writers.aicity_submission import CLASS_IDS, one_class_per_track
from .samples import instances, output_prefix, to_world

REPORTED = ('HOTA', 'DetA', 'AssA', 'LocA')


@METRICS.register_module()
class AICityHOTAMetric(BaseMetric):
    """HOTA and its sub-metrics (percent) over tracked outputs, AI City 2025 aggregation.

    Each data sample needs ``pred_instances_3d`` (``bboxes_3d``, ``labels_3d``,
    ``scores_3d``, ``track_ids``) in world coordinates, as the model outputs them, and
    ``gt_instances_3d`` (``bboxes_3d``, ``labels_3d``, ``instance_ids``) in the group frame,
    with ``scene_name``, ``frame_idx`` and the group ``origin``.
    The per scene and class table is logged and written to ``<prefix>_hota.json``.

    Args:
        class_names: the model's label order (a subset of the six AI City classes).
        score_threshold: predictions below it are not submitted (but see ``track_stitching``).
        similarity: ``'iou3d'`` (the protocol's) or ``'center'``.
        track_smoothing: ``smooth_tracks`` keywords (e.g. ``dict(centre_window=10,
            constant_size=True)``) to smooth the finished tracks before scoring, as
            ``tools/infer.py`` writes the submission of a config that sets them; ``None``:
            the boxes as tracked.
        track_stitching: the decoder's ``track_stitching`` settings (``TrackStitcher``
            keywords); with a ``continue_score`` the boxes that continue a track below
            ``min_score`` are submitted too, as ``tools/infer.py`` submits them
            (``TrackStitcher.reported``). ``None``: the threshold alone.
        outfile_prefix: path prefix of the JSON (default: the run's log folder).
    """

    default_prefix = 'aicity'

    def __init__(
        self,
        class_names=CLASSES,
        score_threshold=0.2,
        similarity='iou3d',
        track_smoothing=None,
        track_stitching=None,
        outfile_prefix=None,
        collect_device='cpu',
        prefix=None,
    ):
        super().__init__(collect_device=collect_device, prefix=prefix)
        unknown = set(class_names) - set(CLASS_IDS)
        if unknown:
            raise ValueError(f'AICityHOTAMetric: unknown classes {sorted(unknown)}')
        self.class_ids = np.array([CLASS_IDS[name] for name in class_names])
        self.score_threshold = score_threshold
        self.similarity = similarity
        self.track_smoothing = None
        if track_smoothing:
            try:
                self.track_smoothing = check_track_smoothing(track_smoothing)
            except ValueError as error:
                raise ValueError(f'AICityHOTAMetric: track_smoothing: {error}') from None
        self.stitcher = None
        if track_stitching:
            try:
                self.stitcher = TrackStitcher(**track_stitching)
            except (TypeError, ValueError) as error:
                raise ValueError(f'AICityHOTAMetric: track_stitching: {error}') from None
        self.outfile_prefix = outfile_prefix

    def process(self, data_batch, data_samples) -> None:
        for sample in data_samples:
            pred = instances(sample, 'pred_instances_3d')
            gt = instances(sample, 'gt_instances_3d')
            scores = pred.get('scores_3d', np.ones(len(pred['labels_3d'])))
            keep = (
                self.stitcher.reported(scores, pred['track_ids'], self.score_threshold)
                if self.stitcher is not None
                else scores >= self.score_threshold
            )
            self.results.append(
                {
                    'scene': sample['scene_name'],
                    'frame': int(sample['frame_idx']),
                    'gt': (to_world(gt['bboxes_3d'], sample), gt['labels_3d'], gt['instance_ids']),
                    'pred': (
                        pred['bboxes_3d'][keep],
                        pred['labels_3d'][keep],
                        pred['track_ids'][keep],
                    ),
                    'scores': scores[keep],
                }
            )

    def _rows(self, results: list, key: str, scene_ids: dict) -> np.ndarray:
        """[R, 11] submission rows of ``key`` (``'gt'`` or ``'pred'``) over all results.

        Predicted track ids are written as the model reports them (from
        ``FIRST_TRACK_ID``); ground-truth ids stay as they are.
        """
        rows = []
        for result in results:
            boxes, labels, ids = result[key]
            scene = scene_ids[result['scene']]
            for box, label, track in zip(boxes, labels, ids, strict=True):
                rows.append([scene, self.class_ids[label], int(track), result['frame'], *box])
        return np.array(rows, dtype=np.float64).reshape(-1, 11)

    def compute_metrics(self, results: list) -> dict:
        scene_names = sorted({r['scene'] for r in results})
        scene_ids = {name: index for index, name in enumerate(scene_names)}
        pred_rows, mixed = one_class_per_track(
            self._rows(results, 'pred', scene_ids), np.concatenate([r['scores'] for r in results])
        )
        if mixed:
            MMLogger.get_current_instance().info(
                f'AICityHOTAMetric: {mixed} predicted tracks changed class between frames; each '
                'is scored with its class of largest summed score (one class per id, as the '
                'submission format requires)'
            )
        if self.track_smoothing:
            pred_rows = smooth_tracks(pred_rows, **self.track_smoothing)
            MMLogger.get_current_instance().info(
                f'AICityHOTAMetric: tracks smoothed over their frames ({self.track_smoothing})'
            )
        scores = aicity_hota(
            self._rows(results, 'gt', scene_ids),
            pred_rows,
            similarity=self.similarity,
            num_frames=1 << 31,
        )
        table = {}
        for scene, per_class in scores['per_scene_per_class'].items():
            for class_id, values in per_class.items():
                table[f'{scene_names[scene]} / {KNOWN_CLASSES[class_id]}'] = values
            table[scene_names[scene]] = scores['per_scene'][scene]
        table['final (weighted by GT rows)'] = scores['final']
        MMLogger.get_current_instance().info(
            '\n' + format_table('scene / class', table, HOTA_METRICS)
        )
        content = {
            'per_scene_per_class': {
                scene_names[s]: {KNOWN_CLASSES[c]: v for c, v in per.items()}
                for s, per in scores['per_scene_per_class'].items()
            },
            'per_scene': {scene_names[s]: v for s, v in scores['per_scene'].items()},
            'final': scores['final'],
        }
        with open(output_prefix(self.outfile_prefix, 'aicity') + '_hota.json', 'w') as file:
            json.dump(content, file, indent=1)
        return {name: scores['final'][name] for name in REPORTED}
