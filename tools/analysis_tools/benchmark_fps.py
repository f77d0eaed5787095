"""Inference speed of a few-shot segmentor with the GFDS protocol (Sec. 6.3).

Batch size 1, the support set encoded once and pinned (support processing
excluded), queries pre-loaded on the device, warm-up, mixed precision where
the device supports it (bf16/fp16 autocast on CUDA, fp32 on CPU). Prints
the FPS with the device, dtype and thread count, and writes them as JSON
with ``--out`` (``gfds_table.py`` reads that file for the FPS column)::

    python tools/analysis_tools/benchmark_fps.py <config> [checkpoint] \
        --device cuda --warmup 10 --iters 100 --out fps.json
    python tools/analysis_tools/benchmark_fps.py <config> --device cpu \
        --threads 4

``--official`` (prototype-matcher configs) also times the official GFDS
``MatchingNet`` episode (support + query) with the same weights in the same
process and prints the speed ratio and the mask agreement (issue 14);
``--channels-last`` runs the backbone NHWC, each convolution in the faster
of NCHW / NHWC on this CPU; ``--fast-conv`` also tries Winograd and
im2col + GEMM per convolution, all fp32 (docs/deploy.md). The CPU's
vector capability is printed with every CPU run.
"""

import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='test config (method + dataset)')
    parser.add_argument(
        'checkpoint',
        nargs='?',
        default=None,
        help='fdseg checkpoint; omit for training-free methods',
    )
    parser.add_argument(
        '--device',
        default=None,
        help="'cpu', 'cuda', 'cuda:1'; default cuda if available",
    )
    parser.add_argument('--warmup', type=int, default=10, help='untimed queries first')
    parser.add_argument('--iters', type=int, default=50, help='timed queries')
    parser.add_argument(
        '--episodes', type=int, default=10, help='distinct episodes to cycle through'
    )
    parser.add_argument(
        '--amp',
        default='auto',
        choices=['auto', 'bf16', 'fp16', 'fp32'],
        help='autocast dtype (auto: bf16/fp16 on CUDA, fp32 on CPU)',
    )
    parser.add_argument(
        '--threads', type=int, default=None, help='torch.set_num_threads (CPU)'
    )
    parser.add_argument(
        '--no-pin',
        action='store_true',
        help='time support encoding too (not the protocol)',
    )
    parser.add_argument(
        '--official',
        action='store_true',
        help='also time the official GFDS MatchingNet episode; print the ratio',
    )
    parser.add_argument(
        '--channels-last',
        action='store_true',
        help='run the backbone channels-last (each conv in its faster format)',
    )
    parser.add_argument(
        '--fast-conv',
        action='store_true',
        help='channels-last, and each backbone conv runs the fastest of '
        'direct NCHW/NHWC, Winograd and im2col+GEMM (fp32)',
    )
    parser.add_argument('--out', default=None, help='write the result JSON')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='override config settings'
    )
    return parser.parse_args(argv)


def load_batches(cfg: Config, num: int):
    """``num`` collated single-episode batches of the test dataset."""
    from fdseg.registry import DATASETS

    ds_cfg = cfg.test_dataloader.dataset
    dataset = DATASETS.build(ds_cfg)
    if len(dataset) == 0:
        raise ValueError('the test dataset is empty')
    return [
        pseudo_collate([dataset[i % len(dataset)]])
        for i in range(min(num, len(dataset)))
    ]


def main(argv=None):
    args = parse_args(argv)
    from fdseg.utils.config_checks import load_config

    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'fdseg'))
    import fdseg.utils

    fdseg.utils.register_all_modules(init_default_scope=False)
    if cfg.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings

        import_modules_from_strings(**cfg.custom_imports)
    from fdseg.apis.inference import init_model
    from fdseg.evaluation.fps import measure_fps

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = init_model(cfg, args.checkpoint, device=device)
    batches = load_batches(cfg, args.episodes)
    if args.channels_last or args.fast_conv:
        from fdseg.deploy import optimize_for_cpu, use_channels_last

        with torch.no_grad():
            example = model.data_preprocessor(batches[0], False)['inputs']
        if args.fast_conv:
            res_convs = optimize_for_cpu(model, example)
            for r in res_convs:
                ms = ', '.join(f'{k} {v:.1f}' for k, v in r['ms'].items())
                print(f'conv {r["name"]}: {r["choice"]} ({ms} ms)')
        else:
            use_channels_last(model, example)
    res = measure_fps(
        model,
        batches,
        args.warmup,
        args.iters,
        amp=args.amp,
        pin_support=not args.no_pin,
    )
    res['config'] = args.config
    res['checkpoint'] = args.checkpoint
    print(
        f'FPS {res["fps"]:.1f} ({res["ms_per_query"]:.2f} ms/query) on '
        f'{res["device"]}, {res["dtype"]}, {res["threads"]} torch threads, '
        f'batch 1, {res["num_iters"]} timed queries after '
        f'{res["num_warmup"]} warm-up, support '
        f'{"excluded" if res["support_excluded"] else "INCLUDED"}'
    )
    if res['device_type'] == 'cpu':
        from fdseg.deploy import cpu_capability

        res['cpu_capability'] = cpu_capability()
        res['channels_last'] = bool(args.channels_last or args.fast_conv)
        res['fast_conv'] = res_convs if args.fast_conv else None
        print(f'CPU capability: {res["cpu_capability"]}')
    if args.official:
        from fdseg.deploy import compare_with_official

        res.update(compare_with_official(model, batches, args.warmup, args.iters))
        print(
            f'side by side (alternating, medians): official GFDS episode '
            f'(support + query) {res["official_ms_per_episode"]:.2f} ms, '
            f'fdseg query {res["fdseg_ms_per_query"]:.2f} ms -> '
            f'{res["speedup_vs_official"]:.2f}x faster; masks equal on '
            f'{100 * res["mask_agreement"]:.3f}% of pixels '
            f'({res["num_queries"]} queries)'
        )
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == '__main__':
    from fdseg.engine import USER_ERRORS

    try:
        main()
    except USER_ERRORS as e:  # e.g. a weight file missing from the cache
        print(f'\nerror: {e}', file=sys.stderr)
        sys.exit(1)
