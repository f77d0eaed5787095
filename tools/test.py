"""Evaluate an fdseg model (mmsegmentation-style entry point).

Examples::

    python tools/test.py configs/x.py work_dirs/x/iter_160000.pth
    python tools/test.py configs/training_free.py        # no checkpoint
    python tools/test.py configs/x.py ckpt.pth --out results --show-dir vis
    bash tools/dist_test.sh configs/x.py ckpt.pth 2
"""

import argparse
import os
import os.path as osp
import sys

# Work from a clean checkout, without `pip install -e .`.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import Config, ConfigDict, DictAction  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import fdseg  # noqa: E402,F401
import fdseg.utils  # noqa: E402
from fdseg.engine import USER_ERRORS, finalize_dist  # noqa: E402
from fdseg.evaluation.writers import check_output_dirs  # noqa: E402
from fdseg.registry import RUNNERS  # noqa: E402
from fdseg.utils.config_checks import load_config  # noqa: E402


def register_all_modules():
    # Fill every fdseg registry and make 'fdseg' the default scope.
    if hasattr(fdseg.utils, 'register_all_modules'):
        fdseg.utils.register_all_modules()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test an fdseg model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument(
        'checkpoint',
        nargs='?',
        default=None,
        help='checkpoint file; omit for training-free methods',
    )
    parser.add_argument(
        '--work-dir', help='the dir to save logs and evaluation results'
    )
    parser.add_argument(
        '--out', help='dir where the metric writes predictions and metrics.json'
    )
    parser.add_argument('--show-dir', help='dir to save the drawn episodes (overlays)')
    parser.add_argument('--show', action='store_true', help='show the drawn episodes')
    parser.add_argument('--wait-time', type=float, default=2, help='display time (s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs such as '
        '"test_dataloader.dataset.shot=5"',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    parser.add_argument(
        '--non-strict',
        action='store_true',
        help='load a checkpoint whose keys do not all match the model '
        '(mismatched keys keep their initial values; a warning lists them)',
    )
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _set_output_dir(evaluator_cfg, out_dir: str) -> None:
    # test_evaluator may be one metric, a list of metrics or an Evaluator
    # dict holding `metrics`.
    if isinstance(evaluator_cfg, (list, tuple)):
        for item in evaluator_cfg:
            _set_output_dir(item, out_dir)
    elif isinstance(evaluator_cfg, dict):
        is_evaluator = evaluator_cfg.get('type') in (
            'Evaluator',
            'mmengine.Evaluator',
        ) or ('metrics' in evaluator_cfg and 'type' not in evaluator_cfg)
        if is_evaluator:
            _set_output_dir(evaluator_cfg['metrics'], out_dir)
        else:
            evaluator_cfg['output_dir'] = out_dir


def build_cfg(args) -> Config:
    """Load the config and apply the command-line overrides."""
    # Names the file of a syntax error, warns about misspelled top-level
    # keys and type-checks --cfg-options against the values they replace.
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher

    if args.non_strict:
        cfg.load_strict = False

    # work_dir priority: CLI > config > ./work_dirs/<config stem>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join(
            './work_dirs', osp.splitext(osp.basename(args.config))[0]
        )

    # Training-free methods have no checkpoint: keep the config's load_from.
    if args.checkpoint is not None:
        cfg.load_from = args.checkpoint

    # Unusable output paths fail here, before the first episode.
    check_output_dirs(out=args.out, show_dir=args.show_dir, work_dir=cfg.work_dir)
    if args.out is not None:
        _set_output_dir(cfg.test_evaluator, args.out)

    if args.show or args.show_dir:
        default_hooks = cfg.get('default_hooks', None) or ConfigDict()
        default_hooks['visualization'] = dict(
            type='FewShotVisualizationHook',
            draw=True,
            show_dir=args.show_dir,
            show=args.show,
            wait_time=args.wait_time,
        )
        cfg.default_hooks = default_hooks
    return cfg


def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    cfg = build_cfg(args)

    # runner_type='FDSegRunner' (default_runtime) selects fdseg's runner,
    # which loads fdseg checkpoints with weights_only=False.
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    metrics = runner.test()
    return metrics


if __name__ == '__main__':
    try:
        main()
    except USER_ERRORS as e:
        print(f'\nerror: {e}', file=sys.stderr)
        sys.exit(1)
    # Distributed runs leave through a barrier + os._exit (see finalize_dist).
    finalize_dist()
