"""Test-only toy components for the engine tests (not part of fdseg).

Imported through ``custom_imports=dict(imports=['tests.toy_modules'])`` in
configs the tests write, so the same module object is used in-process and in
``tools/train.py`` subprocesses. Registered with ``force=True`` because a
re-import under another name must not fail the tests.
"""

import json
import os
import os.path as osp

import torch
import torch.nn as nn
from mmengine.dist import get_rank
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel, is_model_wrapper
from torch.utils.data import Dataset

from fdseg.registry import DATASETS, HOOKS, METRICS, MODELS


@MODELS.register_module(force=True)
class ToyRegressor(BaseModel):
    """A linear regressor with an MSE loss: tiny, deterministic on CPU."""

    def __init__(self, in_dim: int = 8, init_cfg=None, data_preprocessor=None):
        super().__init__(init_cfg=init_cfg, data_preprocessor=data_preprocessor)
        self.linear = nn.Linear(in_dim, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        pred = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((pred - data_samples) ** 2).mean())
        if mode == 'predict':
            return [dict(pred=p, target=t) for p, t in zip(pred, data_samples)]
        return pred


@MODELS.register_module(force=True)
class ToyLearnedRegressor(ToyRegressor):
    """The toy regressor marked as learned by training only."""

    requires_training = True


@DATASETS.register_module(force=True)
class ToyRegressionDataset(Dataset):
    """Fixed random linear-regression samples (seeded, identical per rank)."""

    metainfo = dict(classes=('toy',))

    def __init__(self, num_samples: int = 64, in_dim: int = 8, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(num_samples, in_dim, generator=g)
        w = torch.randn(in_dim, 1, generator=g)
        self.y = self.x @ w + 0.1 * torch.randn(num_samples, 1, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, idx):
        return dict(inputs=self.x[idx], data_samples=self.y[idx])


class ToyPayload:
    """An arbitrary picklable object: weights-only loading must refuse it."""

    def __init__(self, note: str = 'not a tensor'):
        self.note = note


@METRICS.register_module(force=True)
class ToyMSEMetric(BaseMetric):
    """Mean squared error of :class:`ToyRegressor` predictions.

    Args:
        output_dir (str, optional): Write ``metrics.json`` there (as
            ``tools/test.py --out`` asks of fdseg metrics).
    """

    def __init__(self, output_dir=None, **kwargs):
        super().__init__(**kwargs)
        self.output_dir = output_dir

    def process(self, data_batch, data_samples):
        for s in data_samples:
            self.results.append(float(((s['pred'] - s['target']) ** 2).sum()))

    def compute_metrics(self, results):
        metrics = dict(mse=sum(results) / max(len(results), 1))
        if self.output_dir:
            os.makedirs(self.output_dir, exist_ok=True)
            with open(osp.join(self.output_dir, 'metrics.json'), 'w') as f:
                json.dump(metrics, f)
        return metrics


@HOOKS.register_module(force=True)
class ToyDumpStateHook(Hook):
    """Save every rank's weights: ``rank{r}_init.pt`` and ``rank{r}.pt``.

    Checkpoints come from rank 0 only, so comparing ranks needs this.
    """

    priority = 'VERY_LOW'

    def _dump(self, runner, name):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        torch.save(state, osp.join(runner.work_dir, name))

    def before_train(self, runner):
        self._dump(runner, f'rank{get_rank()}_init.pt')

    def after_train(self, runner):
        self._dump(runner, f'rank{get_rank()}.pt')


# ----------------------------------------------------------------------
# Episodic training (tests/test_engine/test_episodic_training.py)
# ----------------------------------------------------------------------
from fdseg.models.heads.base_few_shot_head import BaseFewShotHead  # noqa: E402


@MODELS.register_module(force=True)
class ToyCrossEntropy(nn.CrossEntropyLoss):
    """Pixel cross entropy, label 255 ignored."""

    def __init__(self):
        super().__init__(ignore_index=255)


@MODELS.register_module(force=True)
class ToyConvBackbone(nn.Module):
    """Two strided 3x3 convs: ``[B, 3, H, W]`` -> ``[B, C, H/4, W/4]``."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(3, channels, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(x)))


@MODELS.register_module(force=True)
class ToyEpisodeHead(BaseFewShotHead):
    """Masked-average prototype, concatenated to the query, 1x1 conv.

    Trainable, without dropout or batch norm, so that 2-process DDP equals
    one process with the same global batch and a resumed run equals an
    uninterrupted one bit for bit. Support masks go through the shared
    :meth:`downsample_support_masks` (``mask_downsample``).
    """

    def __init__(self, channels: int = 8, **kwargs):
        kwargs.setdefault('mask_downsample', 'bilinear_nearest')
        kwargs.setdefault('loss_decode', dict(type='ToyCrossEntropy'))
        super().__init__(**kwargs)
        self.cls = nn.Conv2d(2 * channels, 2, 1)

    def encode_support(self, support_feats, support_masks, support_labels=None):
        m = self.downsample_support_masks(support_masks, support_feats.shape[-2:])
        proto = (support_feats * m[:, None]).sum((0, 2, 3)) / (m.sum() + 1e-5)
        return dict(proto=proto)

    def forward(self, query_feats, supports):
        protos = torch.stack([s['proto'] for s in supports])[:, :, None, None]
        x = torch.cat([query_feats, protos.expand_as(query_feats)], 1)
        return self.cls(x)
