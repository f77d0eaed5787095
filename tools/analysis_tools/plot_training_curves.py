"""Plot loss, train-set mIoU and test-set mIoU per epoch (GFDS Fig. 7).

Reads a run's mmengine logs (``<work_dir>/<timestamp>/vis_data/
scalars.json``, resumed runs included) and draws the loss (left axis) and
the two mIoU curves (right axis) against the epoch; prints the numbers.
An episodic training run (``configs/_base_/schedules/episodic_epoch.py``)
logs all three, one JSON object a line:

* training lines (``LoggerHook``): ``loss`` with ``epoch`` (1-based) and
  ``iter``; the loss of an epoch is the mean of its logged values (each of
  which mmengine already averages over the last ``window_size``
  iterations);
* train-set mIoU (``EpisodicTrainMIoUHook``, ``default_hooks.train_miou``):
  ``train/mIoU`` with ``step`` = finished epochs (0 = before training);
* test-set mIoU (the validation loop): ``mIoU`` with ``step`` = finished
  epochs, on lines without ``loss``.

A log that lacks one of them is an error naming the file and the key. No
torch or fdseg import: the tool starts fast.

Example::

    python tools/analysis_tools/plot_training_curves.py \\
        work_dirs/pfenet_r50-deep_400e_gfds-fold0-1shot --out fig7_pfenet.png
"""

import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

# the work-dir log reader shared with plot_distill_loss.py (same folder)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from plot_distill_loss import find_logs, read_records  # noqa: E402

#: What each curve reads by default.
LOSS_KEY = 'loss'
TRAIN_MIOU_KEY = 'train/mIoU'
TEST_MIOU_KEY = 'mIoU'


def read_training_curves(
    files: Sequence[str],
    loss_key: str = LOSS_KEY,
    train_key: str = TRAIN_MIOU_KEY,
    test_key: str = TEST_MIOU_KEY,
) -> Dict[str, Dict[int, float]]:
    """Per-epoch loss, train-set mIoU and test-set mIoU.

    A later file wins for an epoch it also holds (a resumed run repeats
    the epochs after its checkpoint).

    Args:
        files (Sequence[str]): ``scalars.json`` files, oldest first.
        loss_key (str): Loss scalar of the training lines.
        train_key (str): Train-set mIoU scalar.
        test_key (str): Test-set mIoU scalar (validation lines).

    Returns:
        dict: ``{'loss': {epoch: mean loss}, 'train': {epoch: mIoU},
        'test': {epoch: mIoU}}``, epochs counted from 1 (0 = before
        training, for the mIoU curves).

    Raises:
        KeyError: A curve has no value in any of the files; the message
            names the files and the key.
    """
    curves: Dict[str, Dict[int, float]] = dict(loss={}, train={}, test={})
    for path in files:
        sums: Dict[int, List[float]] = {}
        train: Dict[int, float] = {}
        test: Dict[int, float] = {}
        for rec in read_records(path):
            if loss_key in rec and 'epoch' in rec:
                sums.setdefault(int(rec['epoch']), []).append(float(rec[loss_key]))
            elif train_key in rec and 'step' in rec:
                train[int(rec['step'])] = float(rec[train_key])
            elif test_key in rec and 'step' in rec and loss_key not in rec:
                test[int(rec['step'])] = float(rec[test_key])
        curves['loss'].update({e: sum(v) / len(v) for e, v in sums.items()})
        curves['train'].update(train)
        curves['test'].update(test)
    hints = dict(
        loss=(loss_key, 'training lines with "epoch" (log_processor by_epoch=True)'),
        train=(train_key, 'the EpisodicTrainMIoUHook (default_hooks.train_miou)'),
        test=(test_key, 'the validation loop (val_dataloader, val_interval)'),
    )
    for name, (key, hint) in hints.items():
        if not curves[name]:
            raise KeyError(
                f'{", ".join(files)}: no {key!r} values (written by {hint}); '
                f'choose another key with --{name}-key'
            )
    return {k: dict(sorted(v.items())) for k, v in curves.items()}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Plot loss, train mIoU and test mIoU per epoch (GFDS Fig. 7)'
    )
    parser.add_argument('source', help='work dir of the run, or a scalars.json')
    parser.add_argument('--out', default='training_curves.png', help='PNG to write')
    parser.add_argument('--title', default=None, help='default: the source name')
    parser.add_argument('--loss-key', default=LOSS_KEY)
    parser.add_argument('--train-key', default=TRAIN_MIOU_KEY)
    parser.add_argument('--test-key', default=TEST_MIOU_KEY)
    parser.add_argument('--dpi', type=int, default=100)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    files = find_logs(args.source)
    curves = read_training_curves(files, args.loss_key, args.train_key, args.test_key)
    import matplotlib

    matplotlib.use('Agg')  # files only
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    loss = curves['loss']
    ax.plot(
        list(loss),
        list(loss.values()),
        color='tab:blue',
        marker='.',
        label=f'loss ({args.loss_key})',
    )
    ax.set_xlabel('epoch')
    ax.set_ylabel('loss', color='tab:blue')
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    for name, color, label in (
        ('train', 'tab:orange', 'train-set mIoU'),
        ('test', 'tab:green', 'test-set mIoU'),
    ):
        c = curves[name]
        ax2.plot(list(c), list(c.values()), color=color, marker='o', ms=3, label=label)
    ax2.set_ylabel('mIoU (%)')
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc='best')
    ax.set_title(args.title or osp.basename(osp.normpath(args.source)))
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=args.dpi)
    plt.close(fig)
    epochs = sorted(set(loss) | set(curves['train']) | set(curves['test']))
    print('epoch  loss     train mIoU  test mIoU')
    for e in epochs:
        cells = [
            f'{loss[e]:.4f}' if e in loss else '-',
            f'{curves["train"][e]:.2f}' if e in curves['train'] else '-',
            f'{curves["test"][e]:.2f}' if e in curves['test'] else '-',
        ]
        print(f'{e:5d}  {cells[0]:8s} {cells[1]:11s} {cells[2]}')
    print(f'saved {args.out}')
    return curves


if __name__ == '__main__':
    try:
        main()
    except (KeyError, FileNotFoundError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f'error: {msg}', file=sys.stderr)
        sys.exit(1)
