"""nuScenes-style centre-distance detection AP as an mmengine metric."""

import json

from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from ...datasets.aicity import CLASSES
from ...registry import METRICS
from ..functional.detection_ap import DIST_THRESHOLDS, TP_METRICS, detection_ap
from ..tables import format_table
from .samples import instances, output_prefix, to_world


@METRICS.register_module()
class DetectionAPMetric(BaseMetric):
    """AP at centre distances 0.5, 1, 2, 4 m per class, mAP, and TP errors at 2 m.

    Each data sample needs ``pred_instances_3d`` (``bboxes_3d``, ``scores_3d``,
    ``labels_3d``, world frame as the model outputs them), ``gt_instances_3d`` (``bboxes_3d``,
    ``labels_3d``, group frame) with the group ``origin``, and ``token``. The
    per-class table is logged and written to ``<prefix>_ap.json``.
    """

    default_prefix = 'det'

    def __init__(
        self,
        class_names=CLASSES,
        thresholds=DIST_THRESHOLDS,
        outfile_prefix=None,
        collect_device='cpu',
        prefix=None,
    ):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.class_names = tuple(class_names)
        self.thresholds = tuple(thresholds)
        self.outfile_prefix = outfile_prefix

    def process(self, data_batch, data_samples) -> None:
        for sample in data_samples:
            pred = instances(sample, 'pred_instances_3d')
            gt = instances(sample, 'gt_instances_3d')
            self.results.append(
                (
                    sample['token'],
                    (to_world(gt['bboxes_3d'], sample), gt['labels_3d']),
                    (pred['bboxes_3d'], pred['scores_3d'], pred['labels_3d']),
                )
            )

    def compute_metrics(self, results: list) -> dict:
        gt = {token: g for token, g, _ in results}
        pred = {token: p for token, _, p in results}
        summary = detection_ap(gt, pred, self.class_names, self.thresholds)
        columns = [f'AP@{t:g}' for t in self.thresholds] + ['AP', *TP_METRICS]
        table = dict(summary['per_class'])
        table['mean'] = {'AP': summary['mAP'], **{m: summary[m] for m in TP_METRICS}}
        MMLogger.get_current_instance().info('\n' + format_table('class', table, columns))
        with open(output_prefix(self.outfile_prefix, 'detection') + '_ap.json', 'w') as file:
            json.dump(summary, file, indent=1)
        metrics = {'mAP': summary['mAP']}
        metrics.update({f'{name}_AP': v['AP'] for name, v in summary['per_class'].items()})
        return metrics
