"""Train an fdseg model (mmsegmentation-style entry point).

Examples::

    python tools/train.py configs/x.py
    python tools/train.py configs/x.py --resume            # latest in work_dir
    python tools/train.py configs/x.py --resume work_dirs/x/iter_10000.pth
    bash tools/dist_train.sh configs/x.py 2                # torchrun, 2 procs
"""

import argparse
import logging
import os
import os.path as osp
import sys

# Work from a clean checkout, without `pip install -e .`.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import fdseg  # noqa: E402,F401
import fdseg.utils  # noqa: E402
from fdseg.engine import USER_ERRORS, finalize_dist  # noqa: E402
from fdseg.registry import RUNNERS  # noqa: E402
from fdseg.utils.config_checks import load_config  # noqa: E402


def register_all_modules():
    # Fill every fdseg registry and make 'fdseg' the default scope.
    if hasattr(fdseg.utils, 'register_all_modules'):
        fdseg.utils.register_all_modules()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train an fdseg model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint; without a value, from the '
        'latest checkpoint in the work dir',
    )
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic mixed precision training (CUDA only)',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs such as '
        '"train_cfg.max_iters=1000"; lists as key="[a,b]" or key=a,b',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    # torch.distributed.launch passes --local-rank (torch>=2.0) or
    # --local_rank; torchrun sets LOCAL_RANK instead.
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

    if args.amp:
        if not torch.cuda.is_available():
            print_log(
                '--amp needs CUDA; ignored on CPU.',
                logger='current',
                level=logging.WARNING,
            )
        elif cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print_log(
                'AMP training is already enabled in the config.',
                logger='current',
                level=logging.WARNING,
            )
        else:
            assert cfg.optim_wrapper.get('type', 'OptimWrapper') == 'OptimWrapper', (
                '`--amp` is only supported when the '
                'optimizer wrapper type is `OptimWrapper`, '
                f'got {cfg.optim_wrapper.type}.'
            )
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    cfg = build_cfg(args)

    # runner_type='FDSegRunner' (default_runtime) selects fdseg's runner.
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    runner.train()
    return runner


if __name__ == '__main__':
    try:
        main()
    except USER_ERRORS as e:
        print(f'\nerror: {e}', file=sys.stderr)
        sys.exit(1)
    # Distributed runs leave through a barrier + os._exit (see finalize_dist).
    finalize_dist()
