r"""``fdseg bank``: build, inspect and calibrate a defect bank file.

::

    fdseg bank add --bank line3.bank --model fm_pdn-s_no-train_custom-all-1shot \
        --class scratch --image s1.png s2.png --mask s1_mask.png s2_mask.png
    fdseg bank add --bank line3.bank --class dent --image d1.png --mask d1_mask.png
    fdseg bank list --bank line3.bank [--json]
    fdseg bank remove --bank line3.bank --class dent [--index 0]
    fdseg bank calibrate --bank line3.bank --good 'good/*.png' --far 0.01
    fdseg predict --bank line3.bank --source 'line/*.png' --out predictions

``--model`` (and ``--cfg-options``, ``--scale``, ``--mask-threshold``) is
needed only when the bank file is created; afterwards the bank rebuilds its
own model and checks it against the recorded identity (docs/deploy.md).
Every change is written to a temporary file and renamed over ``--bank``.
"""

import argparse
import json
import os.path as osp
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``fdseg bank``."""
    from mmengine.config import DictAction

    p = subparsers.add_parser(
        'bank',
        help='defect bank: add / remove / list / calibrate',
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest='bank_command', metavar='ACTION')
    sub.required = True

    def common(q):
        q.add_argument('--bank', required=True, help='bank file (.bank, safetensors)')
        q.add_argument('--device', default='auto', help="'auto', 'cpu', 'cuda'")

    a = sub.add_parser('add', help='encode examples of one class into the bank')
    common(a)
    a.add_argument('--class', dest='cls', help='defect class name')
    a.add_argument('--image', nargs='+', default=[], help='example image(s)')
    a.add_argument('--mask', nargs='+', default=[], help='their mask(s), in order')
    a.add_argument(
        '--support',
        help='instead: a folder images/[<class>/] + masks/[<class>/] (the '
        'fdseg predict --support layout); each sub-folder is a class',
    )
    a.add_argument(
        '--mask-suffix', default='', help='with --support: masks are <stem><suffix>'
    )
    a.add_argument('--model', help='config file or name (when creating the bank)')
    a.add_argument(
        '--scale', type=int, nargs=2, metavar=('W', 'H'), help='network input size'
    )
    a.add_argument(
        '--mask-threshold', type=int, default=30, help='mask threshold after resizing'
    )
    a.add_argument('--checkpoint', help='an fdseg training checkpoint')
    a.add_argument('--cfg-options', nargs='+', action=DictAction)

    r = sub.add_parser('remove', help='remove a class or one of its examples')
    common(r)
    r.add_argument('--class', dest='cls', required=True)
    r.add_argument('--index', type=int, help='example index (default: whole class)')

    s = sub.add_parser('list', help='classes, examples, thresholds, calibration')
    common(s)
    s.add_argument('--json', action='store_true', help='print JSON')

    c = sub.add_parser('calibrate', help='image-level threshold from good images')
    common(c)
    c.add_argument('--good', required=True, help='defect-free images: folder or glob')
    c.add_argument('--far', type=float, default=0.01, help='target false-alarm rate')
    c.add_argument(
        '--holdout', type=float, default=0.5, help='fraction of good images held apart'
    )
    c.add_argument('--seed', type=int, default=0)
    c.add_argument('--batch-size', type=int, default=8)

    t = sub.add_parser('threshold', help='set a per-class pixel threshold')
    common(t)
    t.add_argument('--class', dest='cls', required=True)
    t.add_argument('--value', type=float, help='0..1; omit to clear')
    return p


def _open(args, create: bool = False):
    from fdseg.bank import BankError, DefectBank

    if osp.exists(args.bank):
        if create and getattr(args, 'model', None):
            from fdseg.apis import resolve_config

            bank = DefectBank.load(
                args.bank,
                model=resolve_config(args.model),
                device=args.device,
                scale=tuple(args.scale) if args.scale else None,
                mask_threshold=args.mask_threshold,
                cfg_options=args.cfg_options,
                checkpoint=args.checkpoint,
            )
        else:
            bank = DefectBank.load(args.bank, device=args.device)
        return bank
    if not create:
        raise BankError(f'--bank {args.bank}: no such file')
    if not args.model:
        raise BankError(
            f'--bank {args.bank} does not exist yet: pass --model CONFIG to create it'
        )
    return DefectBank(
        args.model,
        device=args.device,
        scale=tuple(args.scale) if args.scale else None,
        mask_threshold=args.mask_threshold,
        cfg_options=args.cfg_options,
        checkpoint=args.checkpoint,
    )


def _print_list(path: str, as_json: bool) -> None:
    from fdseg.bank.file import read_meta, summary

    info = summary(read_meta(path), path)
    if as_json:
        print(json.dumps(info, indent=2))
        return
    print(f'{info["bank"]}: model {info["model"]}, {len(info["classes"])} classes')
    for c in info['classes']:
        thr = 'argmax' if c['threshold'] is None else f'p >= {c["threshold"]:g}'
        print(f'  {c["label"]}: {c["name"]} ({c["examples"]} examples, {thr})')
    cal = info['calibration']
    if cal:
        far = cal['holdout_far']
        measured = 'not measured' if far is None else f'{far:.3f}'
        print(
            f'  image threshold {cal["threshold"]:.6g} (target false-alarm rate '
            f'{cal["target_far"]:g}, measured on {cal["num_holdout"]} held-apart '
            f'good images: {measured})'
            + (' STALE: recalibrate' if cal.get('stale') else '')
        )


def run(args) -> int:
    """Run ``fdseg bank ...``; returns the exit status."""
    from fdseg.bank.file import BankError

    cmd = args.bank_command
    if cmd == 'list':  # the file's header only: no model, no torch
        try:
            _print_list(args.bank, args.json)
        except BankError as e:
            print(f'error: {e}', file=sys.stderr)
            return 1
        return 0
    from fdseg.engine import USER_ERRORS

    try:
        bank = _open(args, create=cmd == 'add')
        if cmd == 'add':
            if args.support:
                from fdseg.cli.predict import PredictError, read_support_folder

                if args.image or args.mask or args.cls:
                    raise BankError('--support excludes --class / --image / --mask')
                try:
                    imgs, masks, labels, names = read_support_folder(
                        args.support, args.mask_suffix
                    )
                except PredictError as e:
                    raise BankError(str(e)) from None
                todo = [(names[k - 1], i, m) for i, m, k in zip(imgs, masks, labels)]
            elif not args.cls or not args.image:
                raise BankError(
                    'bank add needs --class and --image/--mask, or --support'
                )
            else:
                todo = [(args.cls, i, m) for i, m in zip(args.image, args.mask)]
            if not args.support and len(args.image) != len(args.mask):
                raise BankError(
                    f'--image has {len(args.image)} files but --mask has '
                    f'{len(args.mask)}: one mask per image, in order'
                )
            for cls, img, mask in todo:
                k = bank.add(cls, img, mask)
                print(f'added {img} to {cls!r} (example {k})')
            bank.save(args.bank)
        elif cmd == 'remove':
            bank.remove(args.cls, args.index)
            bank.save(args.bank)
            print(
                f'removed {args.cls!r}'
                + ('' if args.index is None else f'[{args.index}]')
            )
        elif cmd == 'threshold':
            bank.set_threshold(args.cls, args.value)
            bank.save(args.bank)
        elif cmd == 'calibrate':
            cal = bank.calibrate(
                args.good, args.far, args.holdout, args.seed, args.batch_size
            )
            bank.save(args.bank)
            far = cal['holdout_far']
            print(
                f'image threshold {cal["threshold"]:.6g} for a target false-alarm '
                f'rate {cal["target_far"]:g} ({cal["num_calibration"]} calibration '
                f'images, {cal["calibration_far"]:.3f} there); measured on '
                f'{cal["num_holdout"]} held-apart good images: '
                + ('not measured' if far is None else f'{far:.3f}')
            )
            if cal['note']:
                print(f'note: {cal["note"]}')
            for s in cal['skipped']:
                print(f'warning: skipped {s}', file=sys.stderr)
        if cmd in ('add', 'remove', 'threshold'):
            _print_list(args.bank, False)
    except USER_ERRORS + (BankError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    return 0
