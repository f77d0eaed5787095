"""FastSAM refiner: the paper's proposed fusion (Sec. 5.1.3, Table 7)."""

import contextlib
import os
import tempfile
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from fdseg.models.utils.size import to_hw
from fdseg.registry import MODELS

from .base_refiner import BaseRefiner
from .fusion import MaskFusion


@contextlib.contextmanager
def _yolo_offline():
    """Set ``YOLO_OFFLINE=1`` (unless the user set it) inside the block.

    ultralytics checks for a network connection when it is first imported
    (and before downloads); the offline flag skips those checks. Only the
    refiner's ``load()`` needs it, so the process environment is restored on
    exit instead of being changed when fdseg is imported.
    """
    previous = os.environ.get('YOLO_OFFLINE')
    os.environ.setdefault('YOLO_OFFLINE', '1')
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop('YOLO_OFFLINE', None)
        else:
            os.environ['YOLO_OFFLINE'] = previous


#: FastSAM sizes -> (registered checkpoint name, architecture for random
#: weights). FastSAM is YOLOv8-seg with one class ("object").
FASTSAM_MODELS = {
    'x': ('fastsam_x', 'yolov8x-seg.yaml'),
    's': ('fastsam_s', 'yolov8s-seg.yaml'),
}


@MODELS.register_module()
class FastSAMRefiner(BaseRefiner):
    """Refine R0 with FastSAM's "everything" masks and :class:`MaskFusion`.

    Call flow::

        query [B,3,H,W] 0..255 ─ FastSAM (ultralytics, conf 0.1, iou 0.5,
            retina masks, imgsz = H x W) ─ masks [N_b,H,W] per image
        R0 [B,H,W] ──────────────────────┬─ MaskFusion (eqs. 9-14) ─ R
        masks ───────────────────────────┘

    FastSAM runs through ultralytics' public ``FastSAM(...).predict`` with
    its default hyper-parameters except ``iou=0.5`` and ``conf=0.1``
    (paper Sec. 6.1.2, official ``main.py``). The ultralytics model lives
    outside this module's ``state_dict`` (its weights come from the offline
    resolver, not from fdseg checkpoints, so an FM checkpoint stays FM-only)
    and is built lazily on the first :meth:`refine` (nothing is loaded at
    construction; :meth:`load` does it eagerly).

    Args:
        model (str): ``'x'`` (FastSAM, the paper's default) or ``'s'``
            (FastSAM-s).
        checkpoint (str, optional): Registered name (``'fastsam_x'``,
            ``'fastsam_s'``) or path of an ultralytics FastSAM checkpoint,
            resolved offline by :func:`fdseg.utils.checkpoints.
            resolve_checkpoint`; ``'default'`` is the registered one of
            ``model``. ``None`` builds ``arch`` with random weights (smoke
            tests / cost measurements without weights).
        arch (str, optional): ultralytics model yaml used when
            ``checkpoint`` is None; defaults to ``model``'s architecture
            (``yolov8x-seg.yaml`` / ``yolov8s-seg.yaml``, one class).
        imgsz (int | tuple, optional): FastSAM input size, ``s`` or
            ``(h, w)`` (fdseg's size order, :func:`~fdseg.models.utils.to_hw`;
            also ultralytics'); ``None`` = the query size (256 in GFDS, as
            officially).
        conf (float): Confidence threshold (0.1).
        iou (float): NMS IoU threshold (0.5).
        retina_masks (bool): Masks at the input resolution (True).
        max_det (int): ultralytics default (300).
        half (bool): FP16 inference (CUDA only). The official code runs
            under bf16 autocast on CUDA; fdseg defaults to FP32.
        weights_only (bool): Open the checkpoint with ultralytics'
            restricted ``weights_only=True`` loader (default). Set False
            only for a file you trust that the restricted loader refuses.
        fusion (dict, optional): :class:`MaskFusion` options, e.g.
            ``dict(variant='paper')`` or ``dict(strategy='union')``.
        skip_empty (bool): Skip FastSAM for images whose R0 is empty (the
            fused result is R0 either way, eq. 11 selects nothing).
        init_cfg (dict, optional): Unused (kept for mmengine).
    """

    def __init__(
        self,
        model: str = 'x',
        checkpoint: Optional[str] = 'default',
        arch: Optional[str] = None,
        imgsz: Union[int, Tuple[int, int], None] = None,
        conf: float = 0.1,
        iou: float = 0.5,
        retina_masks: bool = True,
        max_det: int = 300,
        half: bool = False,
        weights_only: bool = True,
        fusion: Optional[dict] = None,
        skip_empty: bool = True,
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(init_cfg=init_cfg)
        if model not in FASTSAM_MODELS:
            raise ValueError(f'model must be one of {list(FASTSAM_MODELS)}')
        name, default_arch = FASTSAM_MODELS[model]
        if checkpoint == 'default':
            checkpoint = name
        other = [
            k for k, (n, _) in FASTSAM_MODELS.items() if n == checkpoint and k != model
        ]
        if other:
            raise ValueError(
                f'checkpoint {checkpoint!r} is FastSAM-{other[0]}, but model={model!r}'
            )
        self.model_size = model
        self.checkpoint = checkpoint
        self.arch = arch or default_arch
        self.imgsz = to_hw(imgsz)
        self.predict_args = dict(
            conf=conf,
            iou=iou,
            retina_masks=retina_masks,
            max_det=max_det,
            verbose=False,
        )
        if half:
            # Passed only when asked: ultralytics 8.4 warns that it is
            # deprecated (in favour of ``quantize``) whenever it is given.
            self.predict_args['half'] = True
        self.weights_only = weights_only
        self.fusion = MaskFusion(**(fusion or {}))
        self.skip_empty = skip_empty
        # A list hides the ultralytics model from nn.Module bookkeeping
        # (state_dict, .to(), parameters()).
        self._model: List = []

    # ------------------------------------------------------------------
    def load(self):
        """Build the ultralytics FastSAM model (once) and return it."""
        if self._model:
            return self._model[0]
        with _yolo_offline():
            from ultralytics import FastSAM

            if self.checkpoint is None:
                model = self._random_fastsam(FastSAM)
            else:
                from fdseg.utils.checkpoints import resolve_checkpoint

                path = resolve_checkpoint(self.checkpoint)
                model = self._open(FastSAM, path)
        self._model.append(model)
        return model

    def _open(self, factory, path: str):
        if not self.weights_only:
            return factory(path)
        from fdseg.models.adapters.ultralytics import safe_load

        try:
            with safe_load():
                return factory(path)
        except (TypeError, RuntimeError) as e:
            raise RuntimeError(
                f"Could not open {path} with ultralytics' restricted "
                f'(weights_only=True) loader: {e}\nIf you trust this file, '
                'set weights_only=False in the FastSAMRefiner config.'
            ) from e

    def _random_fastsam(self, factory):
        """FastSAM with random weights: a one-class YOLOv8-seg of ``arch``.

        ``FastSAM()`` refuses yaml files, so the random model takes a short
        round trip through a temporary checkpoint in ultralytics' format.
        """
        from ultralytics.nn.tasks import SegmentationModel

        net = SegmentationModel(self.arch, nc=1, verbose=False)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, 'fastsam_random.pt')
            # Without a task, ultralytics guesses 'detect' from its default
            # args and FastSAM refuses the model.
            net.task = 'segment'
            torch.save(dict(model=net, train_args=dict(task='segment')), path)
            return self._open(factory, path)

    # ------------------------------------------------------------------
    @torch.no_grad()
    def segment_everything(self, imgs: Tensor) -> List[Tensor]:
        """FastSAM "everything" masks.

        Args:
            imgs (Tensor): ``[B, 3, H, W]`` float RGB, 0..255.

        Returns:
            list[Tensor]: ``B`` bool tensors ``[N_b, H, W]`` (``N_b`` may be
            0), on ``imgs.device``, in FastSAM's confidence order.
        """
        model = self.load()
        b, _, h, w = imgs.shape
        imgsz = self.imgsz or (h, w)
        if h % 32 == 0 and w % 32 == 0:
            # As officially: the RGB tensor in 0..1 goes in unchanged (no
            # letterbox, no uint8 rounding).
            source = (imgs.float() / 255.0).clamp_(0, 1)
        else:
            # ultralytics takes only stride-divisible tensors; numpy BGR
            # images are letterboxed instead.
            arr = imgs.round().clamp(0, 255).byte().permute(0, 2, 3, 1)
            source = [a[..., ::-1].copy() for a in arr.cpu().numpy()]
        device = imgs.device
        dev = 'cpu' if device.type == 'cpu' else f'{device.type}:{device.index or 0}'
        # ultralytics' select_device() sets torch's CPU thread count to
        # cpu_count - 1 for the whole process; restore it for the FM head.
        threads = torch.get_num_threads()
        try:
            results = model.predict(
                source, imgsz=imgsz, device=dev, **self.predict_args
            )
        finally:
            torch.set_num_threads(threads)
        out = []
        for r in results:
            if r.masks is None or len(r.masks) == 0:
                out.append(torch.zeros(0, h, w, dtype=torch.bool, device=device))
                continue
            m = r.masks.data.to(device)
            if tuple(m.shape[-2:]) != (h, w):
                m = F.interpolate(m[None].float(), (h, w), mode='nearest')[0]
            out.append(m > 0.5)
        return out

    @torch.no_grad()
    def refine(
        self, imgs: Tensor, coarse: Tensor, data_samples: Optional[Sequence] = None
    ) -> Tensor:
        """Refine coarse label maps with FastSAM (eqs. 9-14).

        Args:
            imgs (Tensor): ``[B, 3, H, W]`` float RGB query images, 0..255.
            coarse (Tensor): ``[B, H, W]`` long R0.
            data_samples (Sequence, optional): Unused.

        Returns:
            Tensor: ``[B, H, W]`` long R.
        """
        out = coarse.clone()
        todo = [
            i
            for i in range(coarse.shape[0])
            if not self.skip_empty or bool((coarse[i] > 0).any())
        ]
        if not todo:
            return out
        masks = self.segment_everything(imgs[todo])
        for i, m in zip(todo, masks):
            out[i] = self.fusion(coarse[i], m)
        return out
