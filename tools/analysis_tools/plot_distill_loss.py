"""Plot distillation loss curves from mmengine training logs (GFDS Fig. 9 right).

Each source is a work dir (every ``<timestamp>/vis_data/scalars.json`` under
it is read, oldest first, so a resumed run continues the curve and the
resumed iterations replace those of the interrupted run) or one json log
file (``scalars.json`` or ``vis_data/<timestamp>.json``).

Examples::

    python tools/analysis_tools/plot_distill_loss.py \\
        work_dirs/distill_pdn-l_dino-vits8_160k_imagenet \\
        work_dirs/distill_pdn-l_dinov2-vits14-896x896_160k_imagenet \\
        work_dirs/distill_pdn-l-c512_wr50-l2_160k_imagenet \\
        work_dirs/distill_pdn-l-c512_wr101-l2_160k_imagenet \\
        --labels DINO DINOv2 WR50-l2 WR101-l2 --smooth 20 --out fig9_loss.png
"""

import argparse
import glob
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

DEFAULT_KEYS = ('loss_distill', 'loss')


def find_logs(source: str) -> List[str]:
    """Json scalar logs of a work dir (oldest run first) or the file itself.

    Args:
        source (str): A work dir or a json log file.

    Returns:
        list[str]: Files to read, in chronological order.

    Raises:
        FileNotFoundError: Nothing to read at ``source``.
    """
    if osp.isfile(source):
        return [source]
    if not osp.isdir(source):
        raise FileNotFoundError(f'{source} is neither a work dir nor a file')
    # mmengine: <work_dir>/<timestamp>/vis_data/scalars.json; timestamps
    # (YYYYmmdd_HHMMSS) sort chronologically.
    files = sorted(glob.glob(osp.join(source, '*', 'vis_data', 'scalars.json')))
    if not files:
        files = sorted(
            glob.glob(osp.join(source, '**', 'scalars.json'), recursive=True)
        )
    if not files:
        raise FileNotFoundError(
            f'no vis_data/scalars.json under {source}; is it an mmengine '
            'work dir (LocalVisBackend)?'
        )
    return files


def read_records(path: str) -> List[dict]:
    """The JSON objects of a json-lines log, one a line (blank lines skipped).

    Raises:
        ValueError: A line is not JSON (the message names file and line).
    """
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f'{path}:{n} is not JSON: {e}') from e
    return out


def read_curve(
    files: Sequence[str], keys: Sequence[str] = DEFAULT_KEYS
) -> Tuple[str, List[int], List[float]]:
    """Read ``(iter, loss)`` pairs; later files win on repeated iterations.

    Args:
        files (Sequence[str]): Json-lines logs in chronological order.
        keys (Sequence[str]): Candidate scalar names; the first one present
            in the logs is used.

    Returns:
        tuple: ``(key, iters, values)`` sorted by iteration.
    """
    records = [rec for path in files for rec in read_records(path)]
    for key in keys:
        points: Dict[int, float] = {}
        for rec in records:
            if key in rec and 'iter' in rec and rec.get('mode', 'train') == 'train':
                points[int(rec['iter'])] = float(rec[key])
        if points:
            iters = sorted(points)
            return key, iters, [points[i] for i in iters]
    raise KeyError(f'none of {list(keys)} found in {list(files)}')


def smooth(values: Sequence[float], window: int) -> List[float]:
    """Trailing moving average (the first points average what exists)."""
    if window <= 1:
        return list(values)
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Plot distillation loss vs iteration (GFDS Fig. 9 right)'
    )
    parser.add_argument(
        'sources', nargs='+', help='work dirs or json log files, one curve each'
    )
    parser.add_argument(
        '--labels', nargs='+', help='legend labels (default: source names)'
    )
    parser.add_argument(
        '--keys',
        nargs='+',
        default=list(DEFAULT_KEYS),
        help='scalar to plot; the first one found is used',
    )
    parser.add_argument(
        '--smooth', type=int, default=1, help='moving-average window in logged points'
    )
    parser.add_argument('--logy', action='store_true', help='log y axis')
    parser.add_argument('--title', default='Distillation loss')
    parser.add_argument('--out', default='distill_loss.png', help='output image (PNG)')
    parser.add_argument('--dpi', type=int, default=150)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> str:
    args = parse_args(argv)
    if args.labels and len(args.labels) != len(args.sources):
        raise SystemExit(f'{len(args.labels)} labels for {len(args.sources)} sources')
    import matplotlib

    matplotlib.use('Agg')  # files only, no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ylabel = None
    for i, src in enumerate(args.sources):
        key, iters, values = read_curve(find_logs(src), args.keys)
        label = args.labels[i] if args.labels else osp.basename(osp.normpath(src))
        ax.plot(iters, smooth(values, args.smooth), label=label, lw=1.2)
        ylabel = ylabel or key
        print(
            f'{label}: {key} {values[0]:.4f} (iter {iters[0]}) -> '
            f'{values[-1]:.4f} (iter {iters[-1]}), {len(iters)} points'
        )
    ax.set_xlabel('iteration')
    ax.set_ylabel(ylabel)
    if args.logy:
        ax.set_yscale('log')
    ax.set_title(args.title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    fig.savefig(args.out, dpi=args.dpi)
    plt.close(fig)
    print(f'saved {args.out}')
    return args.out


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
