"""Feature distillation of a frozen teacher into the GFDS student.

GFDS Sec. 5.1.1 / 6.1.2: the feature extractor ``E(.)`` of the feature
matching method is a shallow CNN (:class:`~fdseg.models.backbones.PDNStudent`)
trained on ImageNet to reproduce the last-block patch features of DINO
ViT-S/8: teacher input 512, student input 256, both maps 64x64x384, l2 loss,
Adam (lr 1e-4, weight decay 1e-5), batch 12, 160k iterations. Sec. 7.1.2 /
Fig. 9 swap the teacher for DINOv2 ViT-S/14 (input 896) or the layer2 of
ImageNet WideResNet-50/101 (student output 512 channels).

Facts and choices (the GFDS distillation code is not released; GFDS builds
on EfficientAD, whose ``pretraining.py`` is the closest official recipe):

* **Two resolutions from one image.** The teacher input is resized from the
  original image by the data pipeline (:class:`~fdseg.datasets.transforms.
  ResizeDistill`), as EfficientAD does; upsampling the 256 student input to
  512 would feed the teacher blurred images. If a batch carries no teacher
  image, the student input is resized to ``teacher_input_size`` as a
  fallback (with a warning).
* **Loss on raw maps by default.** The paper states a plain l2 loss on the
  feature maps (``teacher_norm=None``). EfficientAD normalises the teacher
  output per channel with a mean / std estimated on 10000 training images
  before the loss; ``teacher_norm='channel'`` does that (statistics from
  :class:`TeacherFeatureStatsHook`, stored as buffers, so checkpoints and
  resumed runs keep them). The distilled student then predicts normalised
  features.
* **Map alignment.** The configs pick sizes so both maps are 64x64; if the
  teacher's map has another size it is resized (bilinear) to the student's,
  never the student's to the teacher's. Channel counts must match.
* **Checkpoints hold the student only** (``save_teacher=False``): the
  teacher is rebuilt from its ``init_cfg`` at every start (mmengine calls
  ``init_weights`` before resuming), which keeps WideResNet-101 (~0.5 GB)
  out of every checkpoint.
"""

import logging
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import Tensor

from fdseg.models.utils.size import SizeType, to_hw
from fdseg.registry import MODELS

InputsType = Union[Tensor, Dict[str, Tensor]]


def _one_level(feats: Tuple[Tensor, ...], who: str) -> Tensor:
    """The single level of a backbone output (backbones return tuples)."""
    if len(feats) != 1:
        raise TypeError(f'the {who} must return one feature level, got {len(feats)}')
    return feats[0]


@MODELS.register_module()
class FeatureDistiller(BaseModel):
    """Distil a frozen teacher's dense features into a trainable student.

    Call flow::

        inputs['teacher'] [B,3,512,512] ──> teacher (frozen, eval, no grad)
                                              │ [B,C,64,64]  (align, norm)
                                              ▼
        inputs['student'] [B,3,256,256] ──> student ──> [B,C,64,64]
                                              │
                                   loss_decode (l2) ──> dict(loss_distill)

    Args:
        teacher (dict): Teacher backbone config (``DINOViT``, ``DINOv2ViT``,
            ``ResNetLayer``, ...) returning one level ``([B, C, h, w],)``; its
            weights come from its ``init_cfg``. It is frozen here whatever
            its own ``frozen`` flag says.
        student (dict): Student backbone config (``PDNStudent``).
        loss_decode (dict): Loss config. Defaults to ``DistillL2Loss``
            (mean squared error, key ``loss_distill``).
        teacher_input_size (int | tuple[int, int], optional): Size the
            teacher input must have; batches whose teacher image has another
            size (or that carry none: the student image is used) are resized
            to it (bilinear). None: use the teacher image as given.
        teacher_norm (str, optional): None (paper: l2 on the raw maps) or
            ``'channel'`` (EfficientAD: ``(t - mean_c) / std_c`` with
            statistics from :class:`TeacherFeatureStatsHook`).
        align_mode (str): ``F.interpolate`` mode used when the teacher map
            size differs from the student's. Defaults to ``'bilinear'``.
        save_teacher (bool): Keep the teacher in ``state_dict`` (and so in
            checkpoints). Defaults to False.
        data_preprocessor (dict, optional): Defaults to
            :class:`DistillDataPreprocessor`.
        init_cfg (dict, optional): mmengine init config of the whole model.
    """

    def __init__(
        self,
        teacher: dict,
        student: dict,
        loss_decode: dict = dict(type='DistillL2Loss'),
        teacher_input_size: SizeType = None,
        teacher_norm: Optional[str] = None,
        align_mode: str = 'bilinear',
        save_teacher: bool = False,
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='DistillDataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if teacher_norm not in (None, 'channel'):
            raise ValueError(
                f"teacher_norm must be None or 'channel', got {teacher_norm!r}"
            )
        self.teacher = MODELS.build(teacher)
        self.student = MODELS.build(student)
        # The student is trained from scratch here: random initial weights
        # are the recipe, not a missing file (see the runner's weights report).
        self.student.expects_pretrained = False
        self.loss_decode = MODELS.build(loss_decode)
        self.teacher_input_size = to_hw(teacher_input_size)
        self.teacher_norm = teacher_norm
        self.align_mode = align_mode
        self.save_teacher = save_teacher
        self._warned = set()

        # Frozen teacher: no gradients, never in train mode (BN / dropout).
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.teacher.eval()

        t_ch = getattr(self.teacher, 'out_channels', None)
        s_ch = getattr(self.student, 'out_channels', None)
        if isinstance(t_ch, int) and isinstance(s_ch, int) and t_ch != s_ch:
            raise ValueError(
                f'teacher outputs {t_ch} channels but the student {s_ch}; '
                f'set the student out_channels={t_ch}'
            )
        if teacher_norm == 'channel':
            if not isinstance(t_ch, int):
                raise ValueError(
                    "teacher_norm='channel' needs a teacher "
                    'with an int `out_channels` attribute'
                )
            self.register_buffer('teacher_mean', torch.zeros(1, t_ch, 1, 1))
            self.register_buffer('teacher_std', torch.ones(1, t_ch, 1, 1))
            # Images the statistics were computed on; 0 = not computed yet.
            self.register_buffer(
                'teacher_stats_count', torch.zeros((), dtype=torch.long)
            )

        if not save_teacher:
            self.register_state_dict_post_hook(_drop_teacher_keys)
            self.register_load_state_dict_post_hook(_ignore_missing_teacher)

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> 'FeatureDistiller':
        """Set train mode on the student only; the teacher stays in eval."""
        super().train(mode)
        self.teacher.eval()
        return self

    def _warn_once(self, key: str, msg: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            print_log(msg, logger='current', level=logging.WARNING)

    def _split_inputs(self, inputs: InputsType) -> Tuple[Tensor, Optional[Tensor]]:
        if isinstance(inputs, dict):
            return inputs['student'], inputs.get('teacher')
        return inputs, None

    def teacher_inputs(
        self, student_in: Tensor, teacher_in: Optional[Tensor]
    ) -> Tensor:
        """The teacher's input batch, resized to ``teacher_input_size``.

        Args:
            student_in (Tensor): Normalised student images ``[B, 3, Hs, Ws]``.
            teacher_in (Tensor, optional): Normalised teacher images
                ``[B, 3, Ht, Wt]`` from the pipeline.

        Returns:
            Tensor: ``[B, 3, Ht, Wt]``.
        """
        if teacher_in is None:
            if self.teacher_input_size is None:
                return student_in  # same input for both (e.g. toy setups)
            self._warn_once(
                'upsample',
                'FeatureDistiller: no teacher image in the batch; '
                'resizing the student input to the teacher size. Produce it '
                'in the pipeline (ResizeDistill teacher_size) to give the '
                'teacher full-resolution detail.',
            )
            teacher_in = student_in
        size = self.teacher_input_size
        if size is not None and tuple(teacher_in.shape[-2:]) != size:
            if teacher_in is not student_in:
                self._warn_once(
                    'resize',
                    f'FeatureDistiller: teacher images of size '
                    f'{tuple(teacher_in.shape[-2:])} resized to '
                    f'teacher_input_size={size}; make the pipeline '
                    '(ResizeDistill teacher_size) produce that size.',
                )
            teacher_in = F.interpolate(
                teacher_in, size=size, mode='bilinear', align_corners=False
            )
        return teacher_in

    def extract_student(self, student_in: Tensor) -> Tensor:
        """``[B, 3, Hs, Ws]`` normalised images -> ``[B, C, h, w]``."""
        return _one_level(self.student(student_in), 'student')

    @torch.no_grad()
    def extract_teacher(self, teacher_in: Tensor, normalize: bool = True) -> Tensor:
        """Teacher features (no gradient).

        Args:
            teacher_in (Tensor): ``[B, 3, Ht, Wt]`` normalised images.
            normalize (bool): Apply ``teacher_norm`` when configured.

        Returns:
            Tensor: ``[B, C, h, w]``.
        """
        feats = _one_level(self.teacher(teacher_in), 'teacher')
        if normalize and self.teacher_norm == 'channel':
            if int(self.teacher_stats_count) == 0:
                raise RuntimeError(
                    "teacher_norm='channel' but no teacher statistics: add "
                    "custom_hooks=[dict(type='TeacherFeatureStatsHook')] or "
                    'call set_teacher_stats()'
                )
            feats = (feats - self.teacher_mean) / self.teacher_std
        return feats

    def set_teacher_stats(self, mean: Tensor, std: Tensor, count: int) -> None:
        """Store the per-channel teacher statistics (``teacher_norm``).

        Args:
            mean (Tensor): ``[C]`` channel means.
            std (Tensor): ``[C]`` channel standard deviations.
            count (int): Number of images they were computed on (> 0).
        """
        if self.teacher_norm != 'channel':
            raise RuntimeError("set_teacher_stats needs teacher_norm='channel'")
        self.teacher_mean.copy_(mean.reshape(self.teacher_mean.shape))
        self.teacher_std.copy_(std.reshape(self.teacher_std.shape))
        self.teacher_stats_count.fill_(int(count))

    def _targets(self, feats_s: Tensor, feats_t: Tensor) -> Tensor:
        """Bring the teacher map to the student map's size."""
        if feats_t.shape[1] != feats_s.shape[1]:
            raise ValueError(
                f'teacher map has {feats_t.shape[1]} channels, '
                f'student map {feats_s.shape[1]}'
            )
        if feats_t.shape[-2:] != feats_s.shape[-2:]:
            self._warn_once(
                'align',
                f'FeatureDistiller: teacher map '
                f'{tuple(feats_t.shape[-2:])} resized to the student map '
                f'{tuple(feats_s.shape[-2:])} ({self.align_mode}).',
            )
            align = False if self.align_mode in ('bilinear', 'bicubic') else None
            feats_t = F.interpolate(
                feats_t.float(),
                size=feats_s.shape[-2:],
                mode=self.align_mode,
                align_corners=align,
            )
        return feats_t

    def _pair(self, inputs: InputsType) -> Tuple[Tensor, Tensor]:
        student_in, teacher_in = self._split_inputs(inputs)
        feats_s = self.extract_student(student_in)
        feats_t = self.extract_teacher(self.teacher_inputs(student_in, teacher_in))
        return feats_s, self._targets(feats_s, feats_t)

    # ---------------------------------------------------------------- forward
    def forward(
        self,
        inputs: InputsType,
        data_samples: Optional[List[BaseDataElement]] = None,
        mode: str = 'tensor',
    ):
        """Run in one of mmengine's three modes.

        Args:
            inputs (Tensor | dict): ``dict(student=[B, 3, Hs, Ws],
                teacher=[B, 3, Ht, Wt])`` from
                :class:`DistillDataPreprocessor` (``teacher`` optional), or
                a student batch ``[B, 3, Hs, Ws]``.
            data_samples (list[BaseDataElement], optional): Per-image meta.
            mode (str): ``'loss'``, ``'predict'`` or ``'tensor'``.

        Returns:
            ``'loss'``: ``dict(loss_distill=Tensor[])``;
            ``'predict'``: list of ``BaseDataElement`` with ``distill_error``
            (per-sample mean squared error, a 0-d tensor);
            ``'tensor'``: student features ``[B, C, Hs/4, Ws/4]``.
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.extract_student(self._split_inputs(inputs)[0])
        raise RuntimeError(
            f'Invalid mode "{mode}"; only "loss", "predict" and "tensor" are supported'
        )

    def loss(
        self, inputs: InputsType, data_samples: Optional[List[BaseDataElement]] = None
    ) -> Dict[str, Tensor]:
        """Distillation loss.

        Returns:
            dict[str, Tensor]: ``{loss_decode.loss_name: scalar}``.
        """
        feats_s, feats_t = self._pair(inputs)
        return {self.loss_decode.loss_name: self.loss_decode(feats_s, feats_t)}

    @torch.no_grad()
    def predict(
        self, inputs: InputsType, data_samples: Optional[List[BaseDataElement]] = None
    ) -> List[BaseDataElement]:
        """Per-sample distillation error (validation).

        Returns:
            list[BaseDataElement]: One per image, ``distill_error`` = mean
            over ``C, h, w`` of the squared difference (unweighted).
        """
        feats_s, feats_t = self._pair(inputs)
        err = (feats_s.float() - feats_t.float()).pow(2).flatten(1).mean(1)
        if data_samples is None:
            data_samples = [BaseDataElement() for _ in range(len(err))]
        for sample, e in zip(data_samples, err):
            sample.distill_error = e
        return data_samples


def _drop_teacher_keys(
    module: FeatureDistiller, state_dict: dict, prefix: str, local_metadata: dict
) -> None:
    # state_dict post hook: the teacher is rebuilt from its init_cfg.
    for key in [k for k in state_dict if k.startswith(prefix + 'teacher.')]:
        del state_dict[key]


def _ignore_missing_teacher(module: FeatureDistiller, incompatible_keys) -> None:
    # Checkpoints saved without the teacher must still load strictly.
    missing = incompatible_keys.missing_keys
    missing[:] = [k for k in missing if not k.startswith('teacher.')]


__all__ = ['FeatureDistiller']
