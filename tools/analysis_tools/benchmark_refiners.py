"""CPU/GPU cost per query of the refiners next to the FM head.

Measures, on the episodes of a config's test set:

* ``FM``: the few-shot segmentor without refiner (support encoding, query
  features, prototype matching, argmax), support cache off, i.e. what every
  GFDS query costs;
* every requested refiner's ``refine()`` on the same queries (FastSAM-x /
  -s split into mask generation and fusion; SAM2.1 prompt modes of
  Table 8).

Examples::

    # random weights (no downloads), 8 queries, FastSAM + three SAM2 modes
    python tools/analysis_tools/benchmark_refiners.py \\
        configs/fm/fm-fastsam_pdn-l_no-train_synthetic-all-1shot.py \\
        --random-weights --num-queries 8 \\
        --refiners fastsam_x fastsam_s sam2:center_points sam2:boxes

    # with the real weights in $FDSEG_CHECKPOINT_DIR
    python tools/analysis_tools/benchmark_refiners.py CONFIG --refiners all

Costs that depend on the masks / prompts: with random weights FastSAM
detects nothing, so ``--fastsam-bias`` (default 2.0 with random weights)
raises its class-score bias so it emits many masks (reported as
``masks/query``); R0 for the refiners is the query's ground truth by
default (``--r0 gt``: defect-like, as a trained FM gives), since a
random-weight FM's R0 is arbitrary (``--r0 fm`` uses it anyway).
"""

import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
os.environ.setdefault('YOLO_OFFLINE', '1')

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402

from fdseg.registry import DATASETS, MODELS  # noqa: E402
from fdseg.utils import register_all_modules  # noqa: E402

#: Table 8 prompt modes -> SAM2PromptRefiner options.
SAM2_MODES = {
    'everything64': dict(prompt_mode='everything', points_per_side=64),
    'everything32': dict(prompt_mode='everything', points_per_side=32),
    'points': dict(prompt_mode='points', point_stride=1),
    'points8x': dict(prompt_mode='points', point_stride=8),
    'center_points': dict(prompt_mode='center_points'),
    'boxes': dict(prompt_mode='boxes'),
    'center_points_boxes': dict(prompt_mode='center_points_boxes'),
}
ALL = ['fastsam_x', 'fastsam_s'] + [f'sam2:{m}' for m in SAM2_MODES]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument(
        'config',
        nargs='?',
        default='configs/fm/fm-fastsam_pdn-l_no-train_synthetic-all-1shot.py',
    )
    p.add_argument(
        '--refiners',
        nargs='+',
        default=['fastsam_x', 'fastsam_s'],
        help=f"any of {ALL} or 'all'",
    )
    p.add_argument('--num-queries', type=int, default=8)
    p.add_argument(
        '--sam2-queries',
        type=int,
        default=None,
        help='queries for the SAM2 modes (default: all)',
    )
    p.add_argument(
        '--warmup',
        type=int,
        default=1,
        help='untimed calls first (model loading, allocators)',
    )
    p.add_argument(
        '--random-weights',
        action='store_true',
        help='no checkpoint anywhere (FM, FastSAM, SAM2)',
    )
    p.add_argument(
        '--fastsam-bias',
        type=float,
        default=None,
        help='class-score bias of a random FastSAM (default 2.0 '
        'with --random-weights): random weights detect nothing',
    )
    p.add_argument('--r0', choices=['gt', 'fm'], default='gt')
    p.add_argument('--sam2-model', default='s')
    p.add_argument('--sam2-image-size', type=int, default=1024)
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--device', default='cpu')
    p.add_argument('--out', help='write the results as json')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def _timed(fn, device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    out = fn()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return out, (time.perf_counter() - t) * 1000.0


def _stats(ms):
    return dict(
        mean_ms=statistics.fmean(ms),
        std_ms=statistics.pstdev(ms) if len(ms) > 1 else 0.0,
        n=len(ms),
    )


def build_refiner(name, args):
    torch.manual_seed(0)  # random weights: the same model in every run
    if name.startswith('fastsam'):
        cfg = dict(
            type='FastSAMRefiner',
            model=name.split('_')[1],
            checkpoint=None if args.random_weights else 'default',
        )
        ref = MODELS.build(cfg)
        bias = args.fastsam_bias
        if bias is None and args.random_weights:
            bias = 2.0
        if bias is not None and args.random_weights:
            head = ref.load().model.model[-1]
            for seq in head.cv3:
                seq[-1].bias.data.fill_(bias)
        return ref
    mode = name.split(':', 1)[1]
    cfg = dict(
        type='SAM2PromptRefiner',
        model=args.sam2_model,
        image_size=args.sam2_image_size,
        **SAM2_MODES[mode],
    )
    if args.random_weights:
        cfg['checkpoint'] = None
    return MODELS.build(cfg)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    register_all_modules()
    names = ALL if args.refiners == ['all'] else args.refiners
    for n in names:
        if n not in ALL:
            raise SystemExit(f'unknown refiner {n!r}; choose from {ALL}')
    device = torch.device(args.device)

    from fdseg.utils.config_checks import load_config

    cfg = load_config(args.config, args.cfg_options)
    torch.manual_seed(0)
    model_cfg = cfg.model.copy()
    model_cfg.pop('refiner', None)
    if args.random_weights:
        model_cfg.backbone.init_cfg = None
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.to(device).eval()
    model.support_cache_size = 0  # every query pays its support encoding

    ds_cfg = cfg.test_dataloader.dataset
    ds_cfg.indices = args.num_queries + args.warmup
    dataset = DATASETS.build(ds_cfg)
    batches = []
    for i in range(len(dataset)):
        data = model.data_preprocessor(pseudo_collate([dataset[i]]))
        batches.append(data)

    results = {}
    fm_ms, r0s, imgs = [], [], []
    with torch.no_grad():
        for i, data in enumerate(batches):
            samples = data['data_samples']
            model.clear_support()
            out, ms = _timed(lambda: model.predict(data['inputs'], samples), device)
            if i >= args.warmup:
                fm_ms.append(ms)
            if args.r0 == 'gt':
                r0 = samples[0].gt_sem_seg.data[0].long().clone()
                r0[r0 == 255] = 0
            else:
                r0 = out[0].pred_sem_seg.data[0]
            r0s.append(r0[None].to(device))
            imgs.append(model.data_preprocessor.denormalize(data['inputs']))
    results['FM'] = _stats(fm_ms)
    print(
        f'FM ({cfg.model.backbone.get("size", "")}): '
        f'{results["FM"]["mean_ms"]:.1f} ms/query'
    )

    for name in names:
        ref = build_refiner(name, args)
        # Build the third-party model outside the timed calls.
        if name.startswith('fastsam'):
            ref.load()
        else:
            ref.load(device)
        n_q = len(batches)
        if name.startswith('sam2') and args.sam2_queries:
            n_q = min(n_q, args.sam2_queries + args.warmup)
        total, gen, fus, counts = [], [], [], []
        for i in range(n_q):
            img, r0 = imgs[i], r0s[i]
            if name.startswith('fastsam'):
                masks, t_gen = _timed(lambda: ref.segment_everything(img), device)
                _, t_fus = _timed(lambda: ref.fusion(r0[0], masks[0]), device)
                t_all = t_gen + t_fus
                count = masks[0].shape[0]
            else:
                _, t_all = _timed(lambda: ref.refine(img, r0), device)
                mode = SAM2_MODES[name.split(':', 1)[1]]
                if mode['prompt_mode'] == 'everything':
                    count = mode['points_per_side'] ** 2
                else:
                    from fdseg.models.refiners.sam2_prompt_refiner import (
                        prompts_from_mask,
                    )

                    p = prompts_from_mask(
                        r0[0] > 0, mode['prompt_mode'], mode.get('point_stride', 1)
                    )
                    count = (
                        p['points'] if p['points'] is not None else p['boxes']
                    ).shape[0]
                t_gen = t_fus = None
            if i < args.warmup:
                continue
            total.append(t_all)
            counts.append(count)
            if t_gen is not None:
                gen.append(t_gen)
                fus.append(t_fus)
        res = _stats(total)
        res['per_query_count'] = statistics.fmean(counts) if counts else 0
        res['count_kind'] = (
            'masks' if name.startswith('fastsam') or 'everything' in name else 'prompts'
        )
        if gen:
            res['masks_ms'] = statistics.fmean(gen)
            res['fusion_ms'] = statistics.fmean(fus)
        results[name] = res
        extra = (
            f' (masks {res["masks_ms"]:.1f} + fusion {res["fusion_ms"]:.1f})'
            if gen
            else ''
        )
        print(
            f'{name}: {res["mean_ms"]:.1f} ms/query{extra}, '
            f'{res["per_query_count"]:.0f} {res["count_kind"]}/query'
        )

    meta = dict(
        config=args.config,
        device=str(device),
        threads=torch.get_num_threads(),
        random_weights=args.random_weights,
        r0=args.r0,
        sam2_model=args.sam2_model,
        sam2_image_size=args.sam2_image_size,
    )
    print('\n| component | ms / query | std | FPS | per query |')
    print('|---|---|---|---|---|')
    for k, v in results.items():
        cnt = (
            f'{v["per_query_count"]:.0f} {v["count_kind"]}' if 'count_kind' in v else ''
        )
        print(
            f'| {k} | {v["mean_ms"]:.1f} | {v["std_ms"]:.1f} | '
            f'{1000.0 / v["mean_ms"]:.2f} | {cnt} |'
        )
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(meta=meta, results=results), f, indent=1)
    return results


if __name__ == '__main__':
    main()
