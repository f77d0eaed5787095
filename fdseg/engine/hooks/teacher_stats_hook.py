"""Teacher feature statistics for EfficientAD-style normalised distillation."""

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from fdseg.registry import HOOKS


@HOOKS.register_module()
class TeacherFeatureStatsHook(Hook):
    """Estimate the teacher's per-channel mean / std before training.

    For ``FeatureDistiller(teacher_norm='channel')`` (EfficientAD's
    ``feature_normalization``): runs the teacher on ``num_images`` training
    images (shuffled with the run's seed, shared out across ranks and
    summed with ``all_reduce``) and stores ``mean_c`` and
    ``std_c = sqrt(E[(t - mean_c)^2])`` over batch and positions in the
    model's buffers. Skipped when they exist already (a resumed run or
    ``load_from``). EfficientAD makes two passes (means, then squared
    distances to them); one float64 pass over the same images gives the
    same numbers up to rounding.

    Args:
        num_images (int): Images to use in total. Defaults to 10000
            (EfficientAD).
    """

    priority = 'LOW'

    def __init__(self, num_images: int = 10000) -> None:
        self.num_images = num_images

    def before_train(self, runner) -> None:
        """Compute the teacher's feature statistics before the first iteration."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if getattr(model, 'teacher_norm', None) != 'channel':
            return
        if int(model.teacher_stats_count) > 0:
            print_log(
                'TeacherFeatureStatsHook: statistics present '
                f'({int(model.teacher_stats_count)} images), skipped',
                logger='current',
            )
            return
        from mmengine.dataset import DefaultSampler
        from torch.utils.data import DataLoader

        train_loader = runner.train_dataloader
        dataset = train_loader.dataset
        # A separate loader: the training iterator keeps its position.
        loader = DataLoader(
            dataset,
            batch_size=train_loader.batch_size,
            sampler=DefaultSampler(dataset, shuffle=True, seed=runner.seed),
            num_workers=train_loader.num_workers,
            collate_fn=train_loader.collate_fn,
        )
        per_rank = -(-self.num_images // get_world_size())
        device = model.teacher_mean.device
        s1 = torch.zeros(
            model.teacher_mean.shape[1], dtype=torch.float64, device=device
        )
        s2 = torch.zeros_like(s1)
        stats = torch.zeros(2, dtype=torch.float64, device=device)
        seen = 0
        for data in loader:
            data = model.data_preprocessor(data, False)
            student_in, teacher_in = model._split_inputs(data['inputs'])
            feats = model.extract_teacher(
                model.teacher_inputs(student_in, teacher_in), normalize=False
            ).double()
            feats = feats[: per_rank - seen]
            s1 += feats.sum(dim=(0, 2, 3))
            s2 += feats.pow(2).sum(dim=(0, 2, 3))
            stats[0] += feats.shape[0] * feats.shape[2] * feats.shape[3]
            stats[1] += feats.shape[0]
            seen += feats.shape[0]
            if seen >= per_rank:
                break
        for t in (s1, s2, stats):
            all_reduce(t, op='sum')
        mean = s1 / stats[0]
        std = (s2 / stats[0] - mean.pow(2)).clamp_min(0).sqrt()
        model.set_teacher_stats(
            mean.float(), std.float().clamp_min(1e-6), int(stats[1])
        )
        print_log(
            f'TeacherFeatureStatsHook: teacher statistics from '
            f'{int(stats[1])} images (mean |mu_c| '
            f'{mean.abs().mean():.4f}, mean sigma_c {std.mean():.4f})',
            logger='current',
        )
