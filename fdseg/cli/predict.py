r"""``fdseg predict``: segment a folder (glob, file) of new images.

::

    fdseg predict --model fm_pdn-s_no-train_custom-all-1shot \
        --support my_defects --source 'line/*.png' --out predictions \
        [--overlay] [--scores] [--device auto] [--batch-size 8] [--fast-cpu]

``--support`` is a folder in the own-data layout (docs/own_data.md):
``images/[<category>/]*`` with ``masks/[<category>/]*`` (``good/`` is left
out); every image there is a support, each category sub-folder one defect
class. Output (``--out``)::

    results.jsonl        one JSON line per image (FewShotResult.to_dict()),
                         or {"image", "error"} for an image that could not
                         be read (skipped, counted in the summary)
    summary.json         counts, skipped images, model, support, class names
    masks/<stem>.png     0/255 (one class) or labels 0..N, original size
    overlays/<stem>.png  with --overlay
    scores/<stem>.npy    float32 [H, W] defect scores, with --scores

Nothing appears at ``--out`` until the run is complete: files are written
into a hidden staging folder next to it (removed on errors, Ctrl-C and
SIGTERM) and renamed into place at the end, so a ``results.jsonl`` at
``--out`` is always a finished run. An earlier ``fdseg predict`` output at
``--out`` is replaced; any other non-empty folder is refused.

Sources of predictions plug in through :func:`build_predictor`: an object
with ``predict_batch([(name, rgb), ...]) -> [FewShotResult, ...]``,
``class_names`` and ``describe() -> dict`` (recorded in summary.json).
"""

import argparse
import json
import os
import os.path as osp
import shutil
import sys
import time
from typing import Dict, List, Optional, Tuple

from fdseg.version import __version__

PRODUCER = f'fdseg {__version__}'
SUMMARY_NAME = 'summary.json'
RESULTS_NAME = 'results.jsonl'


class PredictError(ValueError):
    """A bad argument or input of ``fdseg predict`` (printed, exit 1)."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``fdseg predict``."""
    from mmengine.config import DictAction

    p = subparsers.add_parser(
        'predict',
        help='segment new images against a support folder',
        description='Segment new images against a support folder: masks at the '
        'original size, overlays, score maps and results.jsonl.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Layout of --support and of the output: docs/own_data.md',
    )
    p.add_argument(
        '--model',
        help='config file, fdseg::<folder>/<config>.py, or a shipped config '
        'name (e.g. fm_pdn-s_no-train_custom-all-1shot); optional with --bank',
    )
    p.add_argument(
        '--support',
        help='folder with images/ and masks/ (category sub-folders optional)',
    )
    p.add_argument(
        '--source',
        required=True,
        help='image file, folder or glob (quote it) of the images to segment',
    )
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--overlay', action='store_true', help='write overlays/')
    p.add_argument('--scores', action='store_true', help='write scores/ (.npy)')
    p.add_argument(
        '--device', default='auto', help="'auto' (CUDA if available), 'cpu', 'cuda'"
    )
    p.add_argument('--batch-size', type=int, default=8, help='images per forward')
    p.add_argument(
        '--fast-cpu',
        action='store_true',
        help='CPU: run each backbone convolution in its fastest fp32 algorithm '
        '(channels-last, Winograd, im2col; tuned at start, a few seconds)',
    )
    p.add_argument(
        '--checkpoint', help='an fdseg training checkpoint (else the config weights)'
    )
    p.add_argument(
        '--threshold',
        type=float,
        default=None,
        help='image-level threshold on the defect score (0..1): an image is '
        '"defect" when its score is at least this; default: when its mask has '
        'a defect pixel',
    )
    p.add_argument(
        '--mask-suffix',
        default='',
        help="support masks are <stem><suffix>.<ext> (e.g. '_mask')",
    )
    p.add_argument(
        '--mask-threshold',
        type=int,
        default=30,
        help='support-mask threshold after resizing (30 as GFDS; 127 for '
        'anti-aliased masks)',
    )
    p.add_argument(
        '--recursive', action='store_true', help='list a --source folder recursively'
    )
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='config overrides, key=value (dotted keys)',
    )
    add_bank_argument(p)
    return p


# ----------------------------------------------------------------------
# --bank (the defect bank as the source of predictions; fdseg.bank)
# ----------------------------------------------------------------------
def add_bank_argument(p) -> None:
    """``--bank FILE``: predict with a defect bank instead of ``--support``."""
    p.add_argument(
        '--bank',
        help='defect bank file (fdseg bank add/calibrate): N-way prediction '
        'over its classes, its calibrated image-level threshold; replaces '
        '--support',
    )


def build_bank_predictor(args):
    """The bank of ``--bank`` (its own model, or ``--model`` checked)."""
    from fdseg.apis import resolve_config
    from fdseg.bank import BankError, DefectBank

    if args.support:
        raise PredictError('--support and --bank exclude each other')
    check_fast_cpu(args)
    try:
        model = resolve_config(args.model) if args.model else None
        bank = DefectBank.load(
            args.bank, model=model, device=args.device, fast_cpu=args.fast_cpu
        )
        bank.state()  # an empty bank stops here, before any image is read
    except (BankError, FileNotFoundError) as e:
        raise PredictError(f'--bank: {e}') from None
    if args.threshold is not None:
        bank.calibration = dict(bank.calibration or {}, threshold=args.threshold)
    report_fast_cpu(bank.inferencer)
    return bank


# ----------------------------------------------------------------------
# predictors
# ----------------------------------------------------------------------
def read_support_folder(
    folder: str, mask_suffix: str = ''
) -> Tuple[List[str], List[str], List[int], List[str]]:
    """Support images, masks, way labels and class names of a folder.

    The folder is read by :class:`~fdseg.datasets.FolderFewShotDataset`'s
    rules; each category (sub-folder, or ``defect`` for images directly in
    ``images/``) is one way, in sorted order.

    Raises:
        PredictError: The folder does not exist or has no defect images,
            or an image has no mask (the message names them).
    """
    from fdseg.datasets import FolderFewShotDataset

    if not osp.isdir(folder):
        raise PredictError(f'--support {folder}: no such folder')
    try:
        ds = FolderFewShotDataset(
            folder, mask_suffix=mask_suffix, lazy_init=True, pipeline=[]
        )
        spec = ds.products[0]
        cats = ds._categories_of(spec)
        per_cat = {c: ds._list_category(spec, c) for c in cats}
    except (FileNotFoundError, ValueError) as e:
        raise PredictError(f'--support {folder}: {e}') from None
    imgs, masks, labels, names = [], [], [], []
    for way, cat in enumerate(c for c in cats if per_cat[c]):
        names.append(cat)
        for rec in per_cat[cat]:
            imgs.append(rec['img_path'])
            masks.append(rec['seg_map_path'])
            labels.append(way + 1)
    if not imgs:
        raise PredictError(f'--support {folder}: no defect images in it')
    return imgs, masks, labels, names


def check_support_pairs(
    imgs: List[str], masks: List[str], mask_threshold: int = 30
) -> None:
    """Every support mask has its image's size and a defect pixel.

    Checked at the original size, before any model is built (the
    inferencer checks the network size again).

    Raises:
        PredictError: Naming the files: an unreadable image or mask, a mask
            of another size than its image, or an empty mask (no pixel above
            ``mask_threshold``: it would teach the model "no defect").
    """
    from fdseg.datasets.transforms import read_image, read_mask

    for img_path, mask_path in zip(imgs, masks):
        try:
            img = read_image(img_path)
            mask = read_mask(
                mask_path,
                'binary',
                threshold=mask_threshold,
                setting='--mask-threshold',
            )
        except (OSError, ValueError) as e:
            raise PredictError(f'--support: {e}') from None
        if mask.shape != img.shape[:2]:
            raise PredictError(
                f'--support: mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} '
                f'but image {img_path} is {img.shape[1]}x{img.shape[0]}'
            )
        if not (mask > mask_threshold).any():
            raise PredictError(
                f'--support: mask {mask_path} is empty (no pixel above '
                f'--mask-threshold {mask_threshold}): a support must show its '
                'defect; move defect-free images to images/good/'
            )


class SupportPredictor:
    """A model with a support set pinned from a folder (the default source).

    Args:
        inferencer (FewShotInferencer): Model with the support pinned.
        support (str): The support folder (recorded).
        threshold (float, optional): Image-level decision threshold.
    """

    def __init__(self, inferencer, support: str, threshold: Optional[float] = None):
        self.inferencer = inferencer
        self.support = support
        self.threshold = threshold

    @property
    def class_names(self) -> tuple:
        """Label names (index 0 background)."""
        return self.inferencer.class_names

    def predict_batch(self, items):
        """``[(name, RGB)] -> [FewShotResult]`` (one forward pass)."""
        return self.inferencer.predict_batch(items, threshold=self.threshold)

    def describe(self) -> dict:
        """What summary.json records about this predictor."""
        return dict(
            kind='support',
            support=osp.abspath(self.support),
            num_supports=self.inferencer._support,
            threshold=self.threshold,
        )


def build_inferencer(args):
    """The model of ``--model`` / ``--checkpoint`` / ``--cfg-options``."""
    from fdseg.apis import FewShotInferencer, resolve_config

    try:
        config = resolve_config(args.model)
    except FileNotFoundError as e:
        raise PredictError(str(e)) from None
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        raise PredictError(f'--checkpoint {args.checkpoint}: no such file')
    check_fast_cpu(args)
    inf = FewShotInferencer(
        config,
        checkpoint=args.checkpoint,
        device=args.device,
        mask_threshold=args.mask_threshold,
        cfg_options=args.cfg_options,
        fast_cpu=args.fast_cpu,
    )
    report_fast_cpu(inf)
    return inf


def check_fast_cpu(args) -> None:
    """``--fast-cpu`` tunes CPU convolutions: refuse it on another device."""
    import torch

    from fdseg.apis.inference import resolve_device

    if args.fast_cpu and torch.device(resolve_device(args.device)).type != 'cpu':
        raise PredictError(
            f'--fast-cpu tunes CPU inference; --device {args.device} is not a CPU '
            '(pass --device cpu or drop --fast-cpu)'
        )


def report_fast_cpu(inf) -> None:
    """One stderr line: the algorithm each backbone convolution got."""
    if inf.cpu_report is not None:
        picks = ', '.join(f'{r["name"]} {r["choice"]}' for r in inf.cpu_report)
        print(f'fast CPU convolutions: {picks or "none to tune"}', file=sys.stderr)


def build_predictor(args):
    """The source of predictions for ``args``.

    ``--support DIR``: the model with the folder's images pinned as the
    support set (:class:`SupportPredictor`). Another source (e.g. a defect
    bank) returns an object with the same three members.
    """
    if getattr(args, 'bank', None):
        return build_bank_predictor(args)
    if not args.support:
        raise PredictError('--support DIR is required (images/ + masks/)')
    if not args.model:
        raise PredictError('--model is required with --support')
    imgs, masks, labels, names = read_support_folder(args.support, args.mask_suffix)
    check_support_pairs(imgs, masks, args.mask_threshold)  # before the model
    inf = build_inferencer(args)
    try:
        inf.set_support(imgs, masks, labels, class_names=names, empty='error')
    except (OSError, ValueError, TypeError) as e:
        raise PredictError(f'--support {args.support}: {e}') from None
    return SupportPredictor(inf, args.support, args.threshold)


# ----------------------------------------------------------------------
# output
# ----------------------------------------------------------------------
def _is_our_output(path: str) -> bool:
    try:
        with open(osp.join(path, SUMMARY_NAME)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    return (
        isinstance(data, dict)
        and str(data.get('producer', '')).startswith('fdseg')
        and data.get('command') == 'predict'
    )


def check_out(out: str) -> None:
    """``--out`` must be new, empty, or an earlier ``fdseg predict`` output.

    Raises:
        PredictError: It is a file, or a non-empty folder fdseg did not write.
    """
    if osp.lexists(out) and not osp.isdir(out):
        raise PredictError(f'--out {out}: exists and is not a folder')
    if osp.isdir(out):
        entries = [e for e in os.listdir(out) if not e.startswith('.tmp-')]
        if entries and not _is_our_output(out):
            raise PredictError(
                f'--out {out}: the folder is not empty and is not an earlier '
                'fdseg predict output (no summary.json of ours): choose a new '
                'folder'
            )


def _check_unique_stems(names: List[str]) -> None:
    seen: Dict[str, str] = {}
    for n in names:
        stem = osp.splitext(n)[0]
        if stem in seen:
            raise PredictError(
                f'--source: {seen[stem]} and {n} would both be written as '
                f'{stem}.png; rename one of them'
            )
        seen[stem] = n


def list_source(source, recursive: bool = False):
    """The :class:`~fdseg.apis.ImageSource` of ``--source`` (listed now).

    Raises:
        PredictError: Nothing there, no images, or two images that would
            write the same output file.
    """
    from fdseg.apis import ImageSource

    if isinstance(source, ImageSource):
        src = source
    else:
        try:
            src = ImageSource(source, recursive=recursive, arg='--source')
        except (FileNotFoundError, ValueError, TypeError) as e:
            raise PredictError(str(e)) from None
    _check_unique_stems(src.names)
    return src


def _progress(total: int):
    """A tqdm bar on stderr (or a line per 10% without tqdm)."""
    try:
        from tqdm import tqdm

        return tqdm(total=total, unit='img', file=sys.stderr, dynamic_ncols=True)
    except ImportError:

        class _Bar:
            n = 0

            def update(self, k=1):
                step = max(1, total // 10)
                for _ in range(k):
                    self.n += 1
                    if self.n % step == 0 or self.n == total:
                        print(f'{self.n}/{total} images', file=sys.stderr)

            @staticmethod
            def write(msg):
                print(msg, file=sys.stderr)

            def close(self):
                pass

        return _Bar()


def _commit(staging, out: str) -> None:
    """Move the finished staging folder to ``out`` (replacing ours)."""
    from fdseg.evaluation.writers import _GUARD, OWNER_FILE

    os.remove(osp.join(staging.path, OWNER_FILE))
    with _GUARD.deferred():
        check_out(out)  # again: something may have appeared meanwhile
        old = None
        if osp.isdir(out):
            if os.listdir(out):
                old = staging.path + '-old'
                os.replace(out, old)
            else:
                os.rmdir(out)
        os.replace(staging.path, out)
        staging.forget()
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def predict_to_folder(
    predictor,
    source,
    out: str,
    batch_size: int = 8,
    overlay: bool = False,
    scores: bool = False,
    recursive: bool = False,
    record: Optional[dict] = None,
) -> dict:
    """Segment ``source`` with ``predictor`` into ``out`` (see module docs).

    Args:
        predictor: ``predict_batch`` / ``class_names`` / ``describe``.
        source: What :class:`~fdseg.apis.ImageSource` accepts.
        out (str): Output folder (written atomically at the end).
        batch_size (int): Images per forward pass.
        overlay (bool): Write overlays.
        scores (bool): Write score maps.
        recursive (bool): List a source folder recursively.
        record (dict, optional): Extra entries for summary.json.

    Returns:
        dict: The summary (also written to ``summary.json``).

    Raises:
        PredictError: No images in ``source``, two images with one output
            name, or an unusable ``out``.
    """
    from fdseg.evaluation.writers import StagingDir

    if batch_size < 1:
        raise PredictError(f'--batch-size must be >= 1, got {batch_size}')
    check_out(out)
    src = list_source(source, recursive)
    pending: list = []  # (name, rgb or None, error or None), input order
    src.on_error = lambda name, e: pending.append((name, None, e))

    parent = osp.dirname(osp.abspath(out))
    staging = StagingDir(parent, 'predict')
    counts = dict(images=len(src), defect=0, no_defect=0, skipped=0)
    skipped, instances = [], 0
    bar = _progress(len(src))
    t0 = time.perf_counter()
    try:
        with open(osp.join(staging.path, RESULTS_NAME), 'w') as jsonl:

            def flush():
                nonlocal instances
                ready = [(n, img) for n, img, _ in pending if img is not None]
                results = iter(predictor.predict_batch(ready) if ready else [])
                for name, img, err in pending:
                    if img is None:
                        msg = f'{type(err).__name__}: {err}'
                        bar.write(f'warning: skipped {name}: {msg}')
                        skipped.append(dict(image=name, error=msg))
                        counts['skipped'] += 1
                        jsonl.write(json.dumps(dict(image=name, error=msg)) + '\n')
                        continue
                    r = next(results)
                    r.save(staging.path, mask=True, overlay=overlay, scores=scores)
                    jsonl.write(r.to_json() + '\n')
                    counts['defect' if r.is_defect else 'no_defect'] += 1
                    instances += len(r.instances)
                bar.update(len(pending))
                pending.clear()

            for name, rgb in src:
                pending.append((name, rgb, None))
                if sum(img is not None for _, img, _ in pending) >= batch_size:
                    flush()
            flush()
        bar.close()
        summary = dict(
            producer=PRODUCER,
            command='predict',
            **counts,
            instances=instances,
            skipped_images=skipped,
            class_names=list(predictor.class_names),
            predictor=predictor.describe(),
            source=src.describe(),
            seconds=round(time.perf_counter() - t0, 3),
            files=dict(
                results=RESULTS_NAME,
                masks='masks/',
                overlays='overlays/' if overlay else None,
                scores='scores/' if scores else None,
            ),
            **(record or {}),
        )
        with open(osp.join(staging.path, SUMMARY_NAME), 'w') as f:
            json.dump(summary, f, indent=2)
        _commit(staging, out)
    except BaseException:
        bar.close()
        staging.discard()
        raise
    return summary


# ----------------------------------------------------------------------
def run(args) -> int:
    """Run ``fdseg predict``; returns the exit status."""
    from fdseg.engine import USER_ERRORS

    try:
        check_out(args.out)
        if args.batch_size < 1:
            raise PredictError(f'--batch-size must be >= 1, got {args.batch_size}')
        if args.threshold is not None and not 0 <= args.threshold <= 1:
            raise PredictError(
                f'--threshold is a defect score in [0, 1], got {args.threshold}'
            )
        source = list_source(args.source, args.recursive)  # before the model
        predictor = build_predictor(args)
        summary = predict_to_folder(
            predictor,
            source,
            args.out,
            batch_size=args.batch_size,
            overlay=args.overlay,
            scores=args.scores,
            recursive=args.recursive,
            record=dict(model=args.model, bank=getattr(args, 'bank', None)),
        )
    except USER_ERRORS + (PredictError,) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    n = summary['images']
    msg = (
        f'{n} image{"s" if n != 1 else ""}: {summary["defect"]} defect, '
        f'{summary["no_defect"]} no defect'
    )
    if summary['skipped']:
        names = ', '.join(s['image'] for s in summary['skipped_images'][:5])
        more = ' ...' if summary['skipped'] > 5 else ''
        msg += f', {summary["skipped"]} skipped (unreadable: {names}{more})'
    print(msg)
    print(f'results: {osp.join(args.out, RESULTS_NAME)}')
    return 0
