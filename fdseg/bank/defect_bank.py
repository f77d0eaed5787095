"""A defect bank: named defect classes, K encoded examples each.

::

    from fdseg.bank import DefectBank
    bank = DefectBank('fm_pdn-s_no-train_custom-all-1shot')
    bank.add('scratch', 's1.png', 's1_mask.png')      # encodes this example only
    bank.add('dent', 'd1.png', 'd1_mask.png')
    bank.calibrate('good/', target_far=0.01)            # image-level threshold
    bank.save('line3.bank')
    bank = DefectBank.load('line3.bank')                # model rebuilt, checked
    results = bank.predict('new_images/')               # FewShotResult list

What an example is depends on the model:

- prototype matcher (:class:`~fdseg.models.FewShotSegmentor` with a
  :class:`~fdseg.models.heads.PrototypeMatcherHead`; any backbone): its
  support prototypes (background ``groups == 0`` and defect ``groups == 1``)
  from :meth:`encode_raw_support`. The N-way state of the bank is their
  concatenation (all backgrounds, then class 1, ..., class N), which is
  exactly what the head builds from the whole support set at once (its
  'dense' / 'patch' prototypes never cross supports).
- SAM2 video segmentor: the example's conditioning-frame memory (one memory
  bank per class); a class with K examples is the video of its K frames.

The file (safetensors) holds every example's tensors plus, in its metadata,
the model identity (config, cfg options, a SHA-256 fingerprint of the model's
state dict) and the preprocessing (network size, mask threshold,
normalisation), checked on :meth:`DefectBank.load`.
"""

import hashlib
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from .file import FORMAT, FORMAT_VERSION, BankError, read_meta

RESERVED = ('background',)


class BankModelMismatchError(BankError):
    """The bank was built with another model or preprocessing."""


# ----------------------------------------------------------------------
# nested state <-> flat tensors
# ----------------------------------------------------------------------
def _flatten(obj, prefix: str, out: Dict[str, torch.Tensor]):
    """Nested dict/list/tensor/number -> (structure, flat tensors)."""
    if torch.is_tensor(obj):
        out[prefix] = obj.detach().to('cpu').contiguous()
        return dict(t=prefix)
    if isinstance(obj, dict):
        return dict(
            d={str(k): _flatten(v, f'{prefix}/{k}', out) for k, v in obj.items()},
            int_keys=all(isinstance(k, int) for k in obj),
        )
    if isinstance(obj, (list, tuple)):
        return dict(l=[_flatten(v, f'{prefix}/{i}', out) for i, v in enumerate(obj)])
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return dict(v=obj)
    raise TypeError(f'cannot store {type(obj).__name__} in a defect bank')


def _unflatten(struct, tensors: Dict[str, torch.Tensor], device):
    if 't' in struct:
        return tensors[struct['t']].to(device)
    if 'd' in struct:
        return {
            (int(k) if struct.get('int_keys') else k): _unflatten(v, tensors, device)
            for k, v in struct['d'].items()
        }
    if 'l' in struct:
        return [_unflatten(v, tensors, device) for v in struct['l']]
    return struct['v']


def state_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of a model's state dict (names, shapes, dtypes and values).

    Identifies the weights whatever their origin (a released file, a
    training checkpoint or a seeded random initialisation).
    """
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().to('cpu').contiguous()
        h.update(f'{name}|{tuple(t.shape)}|{t.dtype}|'.encode())
        if t.dtype == torch.bfloat16:
            t = t.view(torch.int16)
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _kind(model) -> str:
    from fdseg.models.heads import PrototypeMatcherHead

    if isinstance(getattr(model, 'head', None), PrototypeMatcherHead):
        head = model.head
        if 'pool' in (head.fg_strategy, head.bg_strategy):
            raise BankError(
                "the defect bank needs per-example prototypes: 'pool' "
                'strategies average over all examples at once; use '
                "'patch' or 'dense'"
            )
        return 'prototype'
    if type(model).__name__ == 'SAM2VideoSegmentor':
        return 'sam2'
    raise BankError(
        f'the defect bank supports the prototype matcher and the SAM2 video '
        f'segmentor, not {type(model).__name__}'
    )


def _norm_name(name: str) -> str:
    return ' '.join(str(name).split()).casefold()


class DefectBank:
    """Named defect classes with K encoded examples each (see module docs).

    Args:
        model (str | FewShotInferencer): Config file or name (see
            :func:`fdseg.apis.resolve_config`) or a ready inferencer (a
            bank of a model built without a config file is loaded with
            ``DefectBank.load(path, model=inferencer)``).
        device (str): ``'auto'``, ``'cpu'``, ``'cuda'``.
        scale (tuple[int, int], optional): Network input ``(w, h)``
            (default: the config's test pipeline).
        mask_threshold (int): Example-mask threshold after resizing.
        cfg_options (dict, optional): Config overrides (recorded).
        checkpoint (str, optional): fdseg training checkpoint (recorded).
        fast_cpu (bool): Run the backbone's convolutions by the fastest
            fp32 CPU algorithm (:class:`~fdseg.apis.FewShotInferencer`);
            not recorded: the bank is the same file either way.
    """

    def __init__(
        self,
        model,
        device: str = 'auto',
        scale: Optional[Tuple[int, int]] = None,
        mask_threshold: int = 30,
        cfg_options: Optional[dict] = None,
        checkpoint: Optional[str] = None,
        fast_cpu: bool = False,
    ):
        from fdseg.apis import FewShotInferencer, resolve_config

        if isinstance(model, FewShotInferencer):
            self.inferencer = model
            self.config = getattr(getattr(model.model, 'cfg', None), 'filename', None)
        else:
            self.config = resolve_config(model)
            self.inferencer = FewShotInferencer(
                self.config,
                checkpoint=checkpoint,
                device=device,
                scale=scale,
                mask_threshold=mask_threshold,
                cfg_options=cfg_options,
                fast_cpu=fast_cpu,
            )
        self.cfg_options = dict(cfg_options or {})
        self.checkpoint = checkpoint
        self.model = self.inferencer.model
        self.kind = _kind(self.model)
        self.classes: Dict[str, List[dict]] = {}
        self.thresholds: Dict[str, Optional[float]] = {}
        self.calibration: Optional[dict] = None
        self._merged = None
        self._fingerprint = None

    # ------------------------------------------------------------------
    # identity
    # ------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """SHA-256 of the model's state dict (cached)."""
        if self._fingerprint is None:
            self._fingerprint = state_fingerprint(self.model)
        return self._fingerprint

    def identity(self) -> dict:
        """What the file records about the model and the preprocessing."""
        from fdseg.models.utils.fast_conv import architecture_repr

        pre = self.model.data_preprocessor
        mean = getattr(pre, 'mean', None)
        std = getattr(pre, 'std', None)
        return dict(
            model=dict(
                config=osp.abspath(self.config) if self.config else None,
                config_name=osp.splitext(osp.basename(self.config or ''))[0],
                cfg_options=self.cfg_options,
                checkpoint=self.checkpoint,
                type=type(self.model).__name__,
                kind=self.kind,
                state_sha256=self.fingerprint,
                arch_sha256=hashlib.sha256(
                    architecture_repr(self.model).encode()
                ).hexdigest(),
            ),
            preprocessing=dict(
                scale=list(self.inferencer.scale),
                mask_threshold=int(self.inferencer.mask_threshold),
                mean=None if mean is None else [float(v) for v in mean.flatten()],
                std=None if std is None else [float(v) for v in std.flatten()],
                input='RGB uint8, resized by the config test pipeline',
            ),
        )

    # ------------------------------------------------------------------
    # examples
    # ------------------------------------------------------------------
    @property
    def class_names(self) -> tuple:
        """``('background', class_1, ..., class_N)`` in insertion order."""
        return ('background', *self.classes)

    def _check_name(self, name: str) -> str:
        if not isinstance(name, str) or not name.strip():
            raise BankError(f'a class name must be a non-empty string, got {name!r}')
        if name != name.strip() or '/' in name or '\n' in name:
            raise BankError(
                f'class name {name!r}: no leading/trailing spaces, "/" or newlines'
            )
        if _norm_name(name) in RESERVED:
            raise BankError(f'class name {name!r} is reserved (label 0)')
        for other in self.classes:
            if other != name and _norm_name(other) == _norm_name(name):
                raise BankError(
                    f'class name {name!r} clashes with the existing class '
                    f'{other!r} (names are compared ignoring case and spaces); '
                    f'use {other!r} to add to it, or another name'
                )
        return name

    def _prepare(self, image, mask, arg: str) -> Tuple[torch.Tensor, torch.Tensor]:
        """One example -> ``[1, 3, h, w]`` uint8 and ``[1, h, w]`` 0/1."""
        from fdseg.apis.sources import is_path

        inf = self.inferencer
        where = f'{arg} ({os.fspath(image)})' if is_path(image) else arg
        try:
            im = inf.load_image(image, f'{arg} image')
        except (OSError, ValueError) as e:
            raise BankError(f'{where}: cannot read the image: {e}') from None
        mwhere = f'{arg} mask' + (f' ({os.fspath(mask)})' if is_path(mask) else '')
        try:
            m = inf.load_mask(mask, mwhere)
        except (OSError, ValueError) as e:
            raise BankError(f'{mwhere}: cannot read the mask: {e}') from None
        if m.shape[:2] != im.shape[:2]:
            raise BankError(
                f'{arg}: the mask is {m.shape[0]}x{m.shape[1]} (H x W) but the '
                f'image is {im.shape[0]}x{im.shape[1]}: {mwhere} does not '
                f'belong to {where}'
            )
        res = inf.preprocess(im, [im], [m])
        fg = np.asarray(res['support_masks'][0]) > 0
        if not fg.any():
            raise BankError(
                f'{mwhere} is empty at the network size '
                f'{inf.scale[0]}x{inf.scale[1]} (mask > {inf.mask_threshold}): '
                'an example needs defect pixels (defect-free images go to '
                'calibrate)'
            )
        if fg.all():
            raise BankError(f'{mwhere} is full: an example needs background too')
        img_t = inf.to_chw(res['support_imgs'][0])[None]
        return img_t, torch.from_numpy(fg.astype(np.int64))[None]

    @torch.no_grad()
    def _encode(self, img_t: torch.Tensor, mask_t: torch.Tensor):
        dev = self.inferencer.device
        labels = torch.ones(1, dtype=torch.long, device=dev)
        if self.kind == 'prototype':
            st = self.model.encode_raw_support(img_t.to(dev), mask_t.to(dev), labels)
            return dict(protos=st['protos'], groups=st['groups'])
        m = self.model
        with torch.inference_mode(), m._autocast():
            frames = m.sam2_frames(img_t.to(dev), normalized=False)
            cond = m._conditioning_frame(frames, m.sam2_mask(mask_t[0].to(dev)), 0, 2)
        return dict(cond=cond)

    def add(self, name: str, image, mask, source: Optional[str] = None) -> int:
        """Encode one example (only this one) and add it to class ``name``.

        Args:
            name (str): Class name (created when new).
            image: Path, RGB array, tensor or PIL image.
            mask: Its defect mask (same size; binary rules of
                :class:`~fdseg.apis.FewShotInferencer`).
            source (str, optional): Recorded description (default: the
                image path).

        Returns:
            int: The example's index in its class.

        Raises:
            BankError: A clashing class name, an unreadable image or mask,
                a mask of another size than its image, or an empty mask.
        """
        from fdseg.apis.sources import is_path

        name = self._check_name(name)
        img_t, mask_t = self._prepare(
            image, mask, f'{name}[{len(self.classes.get(name, []))}]'
        )
        state = self._encode(img_t, mask_t)
        if source is None:
            source = os.fspath(image) if is_path(image) else 'array'
        self.classes.setdefault(name, []).append(dict(state=state, source=source))
        self.thresholds.setdefault(name, None)
        self._changed()
        return len(self.classes[name]) - 1

    def remove(self, name: str, index: Optional[int] = None) -> None:
        """Remove class ``name`` (or only its example ``index``).

        Raises:
            BankError: No such class or example.
        """
        if name not in self.classes:
            raise BankError(
                f'no class {name!r} in the bank (classes: {list(self.classes)})'
            )
        if index is None:
            del self.classes[name]
            self.thresholds.pop(name, None)
        else:
            n = len(self.classes[name])
            if not -n <= index < n:
                raise BankError(f'class {name!r} has {n} examples, no index {index}')
            del self.classes[name][index]
            if not self.classes[name]:
                del self.classes[name]
                self.thresholds.pop(name, None)
        self._changed()

    def list(self) -> List[dict]:
        """Per class: ``name``, ``label``, ``examples``, ``threshold``, ``sources``."""
        return [
            dict(
                name=n,
                label=i + 1,
                examples=len(ex),
                threshold=self.thresholds.get(n),
                sources=[e['source'] for e in ex],
            )
            for i, (n, ex) in enumerate(self.classes.items())
        ]

    def set_threshold(self, name: str, threshold: Optional[float]) -> None:
        """Per-class pixel threshold on the class probability (None: argmax).

        A pixel whose arg-max class ``k`` has probability (softmax over
        background and the classes) below ``threshold[k]`` is background.
        """
        if name not in self.classes:
            raise BankError(
                f'no class {name!r} in the bank (classes: {list(self.classes)})'
            )
        if threshold is not None and not 0 <= threshold <= 1:
            raise BankError(f'threshold of {name!r} must be in [0, 1], got {threshold}')
        self.thresholds[name] = threshold

    def _changed(self):
        self._merged = None
        if self.calibration is not None:
            self.calibration = dict(self.calibration, stale=True)

    # ------------------------------------------------------------------
    # N-way state
    # ------------------------------------------------------------------
    def state(self):
        """The N-way support state of the model (what is pinned).

        Raises:
            BankError: The bank is empty.
        """
        if not self.classes:
            raise BankError(
                'the defect bank is empty: add examples first '
                '(DefectBank.add or `fdseg bank add`)'
            )
        if self._merged is not None:
            return self._merged
        if self.kind == 'prototype':
            exs = [
                (k + 1, e['state'])
                for k, ex in enumerate(self.classes.values())
                for e in ex
            ]
            protos = [s['protos'][s['groups'] == 0] for _, s in exs]
            groups = [
                torch.zeros(len(p), dtype=torch.long, device=p.device) for p in protos
            ]
            for k, s in exs:
                fg = s['protos'][s['groups'] == 1]
                protos.append(fg)
                groups.append(
                    torch.full((len(fg),), k, dtype=torch.long, device=fg.device)
                )
            merged = dict(
                protos=torch.cat(protos),
                groups=torch.cat(groups),
                num_ways=len(self.classes),
            )
            head = self.model.head
            if getattr(head, 'bg_coreset', 0):
                merged['coreset'] = head.coreset_index(
                    merged['protos'], merged['groups']
                )
        else:
            merged = []
            for ex in self.classes.values():
                cond = {k: e['state']['cond'] for k, e in enumerate(ex)}
                merged.append(dict(cond=cond, num_frames=len(ex) + 1))
        self._merged = merged
        return merged

    def prototypes(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """``protos [P, C]`` and ``groups [P]`` of the prototype matcher."""
        if self.kind != 'prototype':
            raise BankError('prototypes exist only for the prototype matcher')
        st = self.state()
        return st['protos'], st['groups']

    # ------------------------------------------------------------------
    # prediction
    # ------------------------------------------------------------------
    @torch.no_grad()
    def logits(self, images: Sequence[np.ndarray]) -> List[torch.Tensor]:
        """``[N + 1, h, w]`` logits at the network size per RGB image."""
        state = self.state()
        model = self.model
        data = self.inferencer.query_batch(images)
        model.pin_support_state(state)
        try:
            out = model.predict(data['inputs'], data['data_samples'])
        finally:
            model.clear_support()
        return [r.seg_logits.data.float() for r in out]

    def maps(
        self, logits: torch.Tensor, size: Tuple[int, int]
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Label map and defect score map at ``size`` ``(h, w)`` from logits.

        Probabilities are the softmax over ``[background, classes]``; the
        label is the arg-max, set to background where its probability is
        below the class threshold; the score is ``1 - p(background)``.
        Both are computed at the network size, then resized (nearest /
        bilinear) to the image.
        """
        prob = torch.softmax(logits, 0)
        label = prob.argmax(0)
        thr = [0.0] + [self.thresholds.get(n) or 0.0 for n in self.classes]
        thr = torch.tensor(thr, dtype=prob.dtype, device=prob.device)
        top = prob.gather(0, label[None])[0]
        label = torch.where(top >= thr[label], label, torch.zeros_like(label))
        score = (1 - prob[0]).cpu().numpy().astype(np.float32)
        h, w = size
        lab = cv2.resize(
            label.cpu().numpy().astype(np.uint8),
            (w, h),
            interpolation=cv2.INTER_NEAREST,
        )
        score = np.clip(cv2.resize(score, (w, h), interpolation=cv2.INTER_LINEAR), 0, 1)
        return lab, score

    @property
    def image_threshold(self) -> Optional[float]:
        """The calibrated image-level threshold (None before calibration)."""
        return None if self.calibration is None else self.calibration['threshold']

    def predict_batch(
        self, items: Sequence[Tuple[str, np.ndarray]], threshold: Optional[float] = None
    ):
        """``[(name, RGB)] -> [FewShotResult]`` (the ``fdseg predict`` interface).

        The image-level decision uses ``threshold``, else the calibrated
        one, else "any defect pixel".
        """
        from fdseg.apis import FewShotResult

        if threshold is None:
            threshold = self.image_threshold
        out = []
        logits = self.logits([img for _, img in items])
        for (name, img), lg in zip(items, logits):
            lab, score = self.maps(lg, img.shape[:2])
            out.append(
                FewShotResult.from_maps(
                    name, lab, score, self.class_names, image=img, threshold=threshold
                )
            )
        return out

    def predict(
        self,
        source,
        batch_size: int = 8,
        threshold: Optional[float] = None,
        on_error=None,
    ):
        """Results for a path, folder, glob, array, PIL image or list."""
        from fdseg.apis import ImageSource

        self.state()  # an empty bank fails before reading anything
        src = ImageSource(source, on_error=on_error, arg='source')
        out, chunk = [], []
        for item in src:
            chunk.append(item)
            if len(chunk) == batch_size:
                out += self.predict_batch(chunk, threshold)
                chunk = []
        if chunk:
            out += self.predict_batch(chunk, threshold)
        return out

    def describe(self) -> dict:
        """What ``fdseg predict`` records in summary.json."""
        return dict(
            kind='bank',
            bank=getattr(self, 'path', None),
            classes=self.list(),
            calibration=self.calibration,
            model=self.identity()['model'],
        )

    # ------------------------------------------------------------------
    # calibration
    # ------------------------------------------------------------------
    def image_scores(self, source, batch_size: int = 8) -> List[Tuple[str, float]]:
        """Image-level defect scores (max of the score map) of ``source``."""
        res = self.predict(source, batch_size=batch_size, threshold=2.0)
        return [(r.name, float(r.score)) for r in res]

    def calibrate(
        self,
        good,
        target_far: float = 0.01,
        holdout: float = 0.5,
        seed: int = 0,
        batch_size: int = 8,
    ) -> dict:
        """Calibrate the image-level "no defect" threshold on good images.

        The good images are split (seeded shuffle) into a calibration part
        and a held-apart part (fraction ``holdout``). The threshold is the
        smallest value such that at most ``floor(target_far * n_cal)`` of the
        calibration scores reach it (an image is "defect" when its score is
        ``>= threshold``); the false-alarm rate is then measured on the
        held-apart images, which played no part in choosing it.

        Args:
            good: Defect-free images (folder, glob, list, ...).
            target_far (float): Target false-alarm rate in ``(0, 1)``.
            holdout (float): Fraction of the good images held apart
                (``0`` measures nothing: the report says so).
            seed (int): Shuffle seed.
            batch_size (int): Images per forward pass.

        Returns:
            dict: ``threshold``, ``target_far``, ``num_calibration``,
            ``calibration_far``, ``num_holdout``, ``holdout_far`` (None
            without held-apart images), ``holdout_false_alarms``, ``note``.

        Raises:
            BankError: An empty bank, no good images, or bad rates.
        """
        if not 0 < target_far < 1:
            raise BankError(f'target_far must be in (0, 1), got {target_far}')
        if not 0 <= holdout < 1:
            raise BankError(f'holdout must be in [0, 1), got {holdout}')
        self.state()
        errors = []
        scores = self.image_scores_checked(good, batch_size, errors)
        if len(scores) < 2:
            raise BankError(
                f'calibrate needs at least 2 readable good images, got {len(scores)}'
            )
        order = np.random.default_rng(seed).permutation(len(scores))
        n_hold = int(round(holdout * len(scores)))
        n_hold = min(n_hold, len(scores) - 1)
        hold = [scores[i] for i in order[:n_hold]]
        cal = [scores[i] for i in order[n_hold:]]
        vals = np.sort(np.array([s for _, s in cal], dtype=np.float64))[::-1]
        allowed = int(math.floor(target_far * len(vals)))
        # exactly `allowed` calibration scores are >= the threshold
        thr = float(np.nextafter(vals[allowed], np.inf))
        cal_far = float(np.mean(vals >= thr))
        hold_vals = np.array([s for _, s in hold], dtype=np.float64)
        hold_far = float(np.mean(hold_vals >= thr)) if n_hold else None
        note = ''
        if target_far * len(vals) < 1:
            note = (
                f'{len(vals)} calibration images cannot resolve a {target_far:g} '
                'false-alarm rate: the threshold is just above the highest good '
                'score; add good images'
            )
        self.calibration = dict(
            threshold=thr,
            target_far=float(target_far),
            num_calibration=len(cal),
            calibration_far=cal_far,
            num_holdout=n_hold,
            holdout_far=hold_far,
            holdout_false_alarms=[n for n, s in hold if s >= thr],
            holdout_images=[n for n, _ in hold],
            skipped=errors,
            seed=int(seed),
            note=note,
        )
        return self.calibration

    def image_scores_checked(self, good, batch_size, errors) -> List[Tuple[str, float]]:
        """Scores of readable good images; unreadable ones go to ``errors``."""
        from fdseg.apis import ImageSource

        try:
            src = ImageSource(
                good, on_error=lambda n, e: errors.append(f'{n}: {e}'), arg='good'
            )
        except (FileNotFoundError, ValueError, TypeError) as e:
            raise BankError(f'good images {good}: {e}') from None
        out, chunk = [], []
        for item in src:
            chunk.append(item)
            if len(chunk) == batch_size:
                out += [
                    (r.name, float(r.score)) for r in self.predict_batch(chunk, 2.0)
                ]
                chunk = []
        if chunk:
            out += [(r.name, float(r.score)) for r in self.predict_batch(chunk, 2.0)]
        return out

    # ------------------------------------------------------------------
    # files
    # ------------------------------------------------------------------
    def save(self, path: str) -> None:
        """Write the bank (safetensors; written to a temporary file, then renamed).

        A bank whose model was passed as a built module (no config) can be
        saved too; loading it then needs that model (``load(path, model=)``).
        """
        from safetensors.torch import save_file

        tensors: Dict[str, torch.Tensor] = {}
        classes = []
        for ci, (name, ex) in enumerate(self.classes.items()):
            exs = []
            for ei, e in enumerate(ex):
                struct = _flatten(e['state'], f'c{ci}/e{ei}', tensors)
                exs.append(dict(source=e['source'], state=struct))
            classes.append(
                dict(name=name, threshold=self.thresholds.get(name), examples=exs)
            )
        meta = dict(
            format=FORMAT,
            version=FORMAT_VERSION,
            **self.identity(),
            classes=classes,
            calibration=self.calibration,
        )
        if not tensors:  # safetensors needs at least a valid header
            tensors['_empty'] = torch.zeros(0)
        tmp = f'{path}.tmp-{os.getpid()}'
        try:
            save_file(tensors, tmp, metadata={'fdseg': json.dumps(meta)})
            os.replace(tmp, path)
        finally:
            if osp.exists(tmp):
                os.remove(tmp)
        self.path = osp.abspath(path)

    @staticmethod
    def read_meta(path: str) -> dict:
        """The metadata of a bank file (:func:`fdseg.bank.file.read_meta`)."""
        return read_meta(path)

    @classmethod
    def load(
        cls, path: str, model=None, device: str = 'auto', **kwargs
    ) -> 'DefectBank':
        """Read a bank and rebuild (or check) its model.

        Args:
            path (str): Bank file.
            model (str | FewShotInferencer, optional): The model to use;
                default: the recorded config with its cfg options and
                preprocessing.
            device (str): Device.
            **kwargs: Passed to :class:`DefectBank` with ``model``.

        Raises:
            BankError: Not a bank file.
            BankModelMismatchError: ``model`` (or the recorded config
                today) has other weights, another type or other
                preprocessing than the bank was built with.
        """
        from safetensors.torch import load_file

        meta = cls.read_meta(path)
        rec, pre = meta['model'], meta['preprocessing']
        if model is None:
            config = rec['config']
            if not config or not osp.isfile(config):
                from fdseg.apis import resolve_config

                try:
                    config = resolve_config(rec['config_name'])
                except FileNotFoundError:
                    raise BankError(
                        f'bank {path}: its config {rec["config"]} is not here; '
                        'pass the model (--model)'
                    ) from None
            kwargs.setdefault('cfg_options', rec.get('cfg_options') or None)
            kwargs.setdefault('checkpoint', rec.get('checkpoint'))
            model = config
        if isinstance(model, str):
            kwargs.setdefault('scale', tuple(pre['scale']))
            kwargs.setdefault('mask_threshold', pre['mask_threshold'])
        bank = cls(model, device=device, **kwargs)
        mine = bank.identity()
        problems = []
        for key in ('type', 'kind', 'arch_sha256', 'state_sha256'):
            if mine['model'][key] != rec[key]:
                problems.append(f'{key}: bank {rec[key]}, model {mine["model"][key]}')
        for key in ('scale', 'mask_threshold', 'mean', 'std'):
            if mine['preprocessing'][key] != pre[key]:
                problems.append(
                    f'preprocessing {key}: bank {pre[key]}, '
                    f'model {mine["preprocessing"][key]}'
                )
        if problems:
            raise BankModelMismatchError(
                f'bank {path} was built with another model than '
                f'{mine["model"]["config_name"] or "the given one"} '
                f'(bank: {rec["config_name"]}): '
                + '; '.join(problems)
                + '. Use the model the bank was built with, or rebuild the bank.'
            )
        try:
            tensors = load_file(path)
        except Exception as e:  # safetensors raises its own error types
            raise BankError(f'bank {path}: unreadable tensors ({e})') from None
        dev = bank.inferencer.device
        for c in meta['classes']:
            bank.classes[c['name']] = [
                dict(state=_unflatten(e['state'], tensors, dev), source=e['source'])
                for e in c['examples']
            ]
            bank.thresholds[c['name']] = c.get('threshold')
        bank.calibration = meta.get('calibration')
        bank.path = osp.abspath(path)
        return bank
