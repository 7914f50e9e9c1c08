"""A tiny registered model, dataset and metric: enough to drive the real tools end to end.

The tool tests copy this file into a temporary package and load it with
``custom_imports``, exactly as a third party would.
"""

import torch
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from torch import nn
from torch.utils.data import Dataset

from mmsparse4d.registry import DATASETS, METRICS, MODELS


@MODELS.register_module()
class ToyRegressor(BaseModel):
    """y = backbone(x) + head(x): a backbone so that the schedule's lr_mult applies."""

    def __init__(self):
        super().__init__()
        self.img_backbone = nn.Linear(4, 1)
        self.head = nn.Linear(4, 1)

    def forward(self, inputs, targets, mode='tensor', worker=None):
        prediction = (self.img_backbone(inputs) + self.head(inputs)).squeeze(-1)
        if worker is not None and mode == 'loss':
            # Batch slot b from data worker b mod 2 (SlotDataLoader), as a logged value.
            assert worker.tolist() == [0, 1, 0, 1], worker
        if mode == 'loss':
            return dict(loss=((prediction - targets) ** 2).mean())
        if mode == 'predict':
            return [dict(prediction=p, target=t) for p, t in zip(prediction, targets, strict=True)]
        return prediction


@MODELS.register_module()
class ToyAnchoredRegressor(ToyRegressor):
    """``ToyRegressor`` plus the real ``InstanceBank`` at ``head.instance_bank`` (config key
    ``model.head.instance_bank``, anchors from a k-means .npy file as in Sparse4D); the
    prediction adds the mean anchor x, so a test's result shows which anchors were used."""

    def __init__(self, head: dict):
        super().__init__()
        from mmsparse4d.models.layers.instance_bank import InstanceBank

        self.head = nn.Module()
        self.head.linear = nn.Linear(4, 1)
        self.head.instance_bank = InstanceBank(**head['instance_bank'])

    def forward(self, inputs, targets, mode='tensor'):
        offset = self.head.instance_bank.anchor[:, 0].mean()
        prediction = (self.img_backbone(inputs) + self.head.linear(inputs)).squeeze(-1) + offset
        if mode == 'loss':
            return dict(loss=((prediction - targets) ** 2).mean())
        if mode == 'predict':
            return [dict(prediction=p, target=t) for p, t in zip(prediction, targets, strict=True)]
        return prediction


@DATASETS.register_module()
class ToyLinearDataset(Dataset):
    """targets = inputs @ [1, -2, 3, 0.5], fixed by a seed."""

    def __init__(self, size=16, seed=0):
        generator = torch.Generator().manual_seed(seed)
        self.inputs = torch.randn(size, 4, generator=generator)
        self.targets = self.inputs @ torch.tensor([1.0, -2.0, 3.0, 0.5])
        self.metainfo = dict(classes=('toy',))

    def __len__(self):
        return len(self.inputs)

    def __getitem__(self, index):
        return dict(inputs=self.inputs[index], targets=self.targets[index])


@DATASETS.register_module()
class ToyVideoSequenceDataset(ToyLinearDataset):
    """``ToyLinearDataset`` as two scenes of frames read from videos (integer frame keys),
    for a sequence sampler; each sample also says which data worker loaded it."""

    def get_data_info(self, index):
        half = len(self) // 2
        return dict(
            scene_name=f'scene_{index // half}',
            frame_idx=index % half,
            cams={'Camera_0': dict(img_path='Camera_0.mp4', img_key=index % half)},
        )

    def __getitem__(self, index):
        worker = torch.utils.data.get_worker_info()
        return super().__getitem__(index) | dict(worker=-1 if worker is None else worker.id)


@METRICS.register_module()
class ToyMeanAbsoluteError(BaseMetric):
    default_prefix = 'toy'

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            self.results.append(float((sample['prediction'] - sample['target']).abs()))

    def compute_metrics(self, results):
        return dict(mae=sum(results) / len(results))
