r"""``fdseg export``: a defect bank's query graph as ONNX or OpenVINO.

::

    fdseg export --bank line3.bank --format onnx --out line3.onnx
    fdseg export --model CONFIG --bank line3.bank --format openvino \
        --out line3.xml [--dynamic-bank]

The graph takes an RGB uint8 ``[H, W, 3]`` image of any size and returns
the label mask (uint8 ``[H, W]``) and the defect score map (float32
``[H, W]``): resizing, normalisation, backbone, matching, upsampling,
softmax, per-class thresholds and the resize back are inside. The bank's
prototypes are constants, or graph inputs with ``--dynamic-bank``. A
``<out>.json`` manifest (class names, thresholds, calibrated image
threshold, model identity) is written beside it (docs/deploy.md).
"""

import argparse
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``fdseg export``."""
    p = subparsers.add_parser(
        'export',
        help='export a defect bank query graph (ONNX / OpenVINO)',
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument('--bank', required=True, help='defect bank file')
    p.add_argument(
        '--model', help='config file or name (default: the one the bank records)'
    )
    p.add_argument('--format', default='onnx', choices=['onnx', 'openvino'])
    p.add_argument('--out', required=True, help='output .onnx / .xml file')
    p.add_argument(
        '--dynamic-bank',
        action='store_true',
        help='prototypes as graph inputs (protos_0 background, protos_k class k)',
    )
    p.add_argument('--opset', type=int, default=18, help='ONNX opset')
    return p


def run(args) -> int:
    """Run ``fdseg export``; returns the exit status."""
    from fdseg.apis import resolve_config
    from fdseg.bank import BankError, DefectBank
    from fdseg.deploy.export import ExportError, export_bank
    from fdseg.engine import USER_ERRORS

    try:
        model = resolve_config(args.model) if args.model else None
        bank = DefectBank.load(args.bank, model=model, device='cpu')
        bank.state()
        man = export_bank(bank, args.out, args.format, args.dynamic_bank, args.opset)
    except USER_ERRORS + (BankError, ExportError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(
        f'exported {len(man["class_names"]) - 1} classes '
        f'({", ".join(man["class_names"][1:])}) as {args.format}: '
        + ', '.join(man['files'])
    )
    return 0
