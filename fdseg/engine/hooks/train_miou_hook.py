"""mIoU on a fixed sample of training episodes (the orange curve of Fig. 7).

Fig. 7 of the paper plots, per epoch, the training loss, the mIoU on the
training set and the mIoU on the test set. The test-set mIoU is the
validation loop (``val_interval``); the loss is logged by ``LoggerHook``;
this hook adds the training-set mIoU.
"""

import copy
import logging
from typing import Optional, Sequence

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmengine.dist import get_rank, get_world_size
from mmengine.evaluator import Evaluator
from mmengine.hooks import Hook
from mmengine.logging import print_log
from torch.utils.data import DataLoader, Subset

from fdseg.registry import DATASETS, HOOKS

#: Transforms left out of the evaluation pipeline (training augmentation).
RANDOM_TRANSFORMS = ('RandomFlipEpisode', 'RandomRotate90Episode')


def _type_name(t) -> str:
    name = t.get('type', '') if isinstance(t, dict) else type(t).__name__
    return str(name).split('.')[-1]


@HOOKS.register_module()
class EpisodicTrainMIoUHook(Hook):
    """Evaluate mIoU on a fixed sample of training episodes every few epochs.

    The sample is taken once, before training: ``num_episodes`` episodes of
    the training subset (``train_dataloader.dataset``, or ``dataset``),
    chosen by ``seed``, with their supports fixed (``support_draw='fixed'``)
    and without the random transforms, so every evaluation sees the same
    episodes and only the model changes. Evaluation runs the model's
    ``val_step`` in eval mode with the metric of the test set
    (:class:`~fdseg.evaluation.FewShotIoUMetric`), shared over the ranks of a
    distributed run and gathered before the metric is computed.

    The result is logged (``Epoch(train-mIoU) [e] train/mIoU: ...``), put in
    the message hub's runtime info and written to the visualizer's scalars
    (``vis_data/scalars.json``) as ``train/mIoU`` and ``train/FB-IoU`` with
    ``step`` = the number of finished epochs, the step the validation loop
    logs ``mIoU`` with; ``tools/analysis_tools/plot_training_curves.py``
    draws them.

    Args:
        interval (int): Evaluate after every ``interval`` training epochs
            (and after the last one); 0 switches the hook off (mmengine
            accepts ``default_hooks.<name>=None`` only for its own hooks).
        num_episodes (int): Training episodes in the sample (all of them if
            the subset is smaller).
        seed (int): Seed of the sample.
        batch_size (int, optional): Episodes per forward; the training batch
            size when None.
        dataset (dict, optional): Dataset config of the sample; defaults to
            ``train_dataloader.dataset`` of the config.
        pipeline (list, optional): Its pipeline; defaults to the training
            pipeline without :data:`RANDOM_TRANSFORMS`.
        before_train (bool): Also evaluate before the first epoch (step 0,
            the "epoch 0" of the paper's SSP discussion).
        prefix (str): Prefix of the logged keys.
    """

    priority = 'LOW'

    def __init__(
        self,
        interval: int = 1,
        num_episodes: int = 64,
        seed: int = 0,
        batch_size: Optional[int] = None,
        dataset: Optional[dict] = None,
        pipeline: Optional[Sequence] = None,
        before_train: bool = False,
        prefix: str = 'train',
    ):
        if interval < 0:
            raise ValueError(f'interval must be >= 0 (0: off), got {interval}')
        if num_episodes < 1:
            raise ValueError(f'num_episodes must be >= 1, got {num_episodes}')
        self.interval = int(interval)
        self.num_episodes = int(num_episodes)
        self.seed = int(seed)
        self.batch_size = batch_size
        self.dataset_cfg = dataset
        self.pipeline = pipeline
        self.eval_before_train = before_train
        self.prefix = prefix
        self._loader = None
        self._size = 0

    # ------------------------------------------------------------------
    def _build(self, runner) -> None:
        train_loader_cfg = runner.cfg.get('train_dataloader') or {}
        cfg = self.dataset_cfg or train_loader_cfg.get('dataset')
        if cfg is None:
            raise KeyError(
                'EpisodicTrainMIoUHook: no dataset given and the config has no '
                'train_dataloader.dataset'
            )
        cfg = copy.deepcopy(dict(cfg))
        if self.pipeline is not None:
            cfg['pipeline'] = list(self.pipeline)
        else:
            cfg['pipeline'] = [
                t
                for t in cfg.get('pipeline', [])
                if _type_name(t) not in RANDOM_TRANSFORMS
            ]
        cfg['support_draw'] = 'fixed'
        dataset = DATASETS.build(cfg)
        n = len(dataset)
        k = min(self.num_episodes, n)
        chosen = np.sort(
            np.random.default_rng(self.seed).choice(n, size=k, replace=False)
        )
        # Pad to a multiple of the world size (as DefaultSampler does) so
        # that collect_results, which interleaves the ranks' parts, gets
        # equal parts; evaluate(k) drops the padding again.
        world, rank = get_world_size(), get_rank()
        padded = list(chosen) + list(chosen[: (-k) % world])
        shard = [int(i) for i in padded[rank::world]]
        batch_size = self.batch_size or train_loader_cfg.get('batch_size', 1)
        self._loader = DataLoader(
            Subset(dataset, shard),
            batch_size=int(batch_size),
            shuffle=False,
            num_workers=0,
            collate_fn=pseudo_collate,
        )
        self._size = k
        self._evaluator = Evaluator(
            dict(type='FewShotIoUMetric', prefix=self.prefix, save_predictions=False)
        )
        self._evaluator.dataset_meta = dataset.metainfo

    def _evaluate(self, runner, step: int) -> dict:
        if self._loader is None:
            self._build(runner)
        model = runner.model
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for batch in self._loader:
                    outputs = model.val_step(batch)
                    self._evaluator.process(data_samples=outputs, data_batch=batch)
            metrics = self._evaluator.evaluate(self._size)
        finally:
            model.train(was_training)
        keys = [f'{self.prefix}/mIoU', f'{self.prefix}/FB-IoU']
        scalars = {k: float(metrics[k]) for k in keys if k in metrics}
        # Runtime info, not update_scalar: LoggerHook would print scalars
        # named 'train/...' in every training line as if they were losses.
        for k, v in scalars.items():
            runner.message_hub.update_info(k, v)
        runner.visualizer.add_scalars(scalars, step=step)
        print_log(
            f'Epoch(train-mIoU) [{step}] '
            + '  '.join(f'{k}: {v:.2f}' for k, v in scalars.items())
            + f'  ({self._size} training episodes)',
            logger='current',
            level=logging.INFO,
        )
        return metrics

    # ------------------------------------------------------------------
    def before_train(self, runner) -> None:
        """Evaluate the untrained model if ``before_train`` (step 0)."""
        if self.interval and self.eval_before_train and runner.epoch == 0:
            self._evaluate(runner, step=0)

    def after_train_epoch(self, runner) -> None:
        """Evaluate every ``interval`` epochs and after the last one."""
        if not self.interval:
            return
        if self.every_n_epochs(runner, self.interval) or self.is_last_train_epoch(
            runner
        ):
            self._evaluate(runner, step=runner.epoch + 1)
