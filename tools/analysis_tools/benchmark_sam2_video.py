r"""Per-query cost of SAM2VideoSegmentor vs sam2's SAM2VideoPredictor.

The paper's FPS protocol (Sec. 6.3) excludes support processing, and a
production line sends many queries against one support set. This tool
times, with the same (random) weights and the same frames:

* ``segmentor/query``: :class:`SAM2VideoSegmentor` with the support memory
  cached (``set_support`` once per support set, untimed), one query;
* ``segmentor/episode``: the same without the cache (support memory +
  query), to separate the cache effect from the bookkeeping;
* ``predictor/episode``: the official path for one support/query pair, as
  the video-track mode is usually run: ``init_state`` on the two-frame
  video, ``add_new_mask`` on frame 0, ``propagate_in_video``.

The predictor reads in-memory frames by default (its ``load_video_frames``
replaced, so JPEG decoding is not counted); ``--jpeg`` gives it a folder of
two JPEG files instead, as the public API requires. The runs are
interleaved (support set by support set) so that load changes on a shared
machine hit both paths alike; medians are reported.

Example::

    python tools/analysis_tools/benchmark_sam2_video.py \\
        --models tiny small --sizes 256 512 --out work_dirs/sam2_speed.json
"""

import argparse
import contextlib
import json
import os
import os.path as osp
import platform
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

# Work from a clean checkout, without `pip install -e .`.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from fdseg.models.segmentors.sam2_video_segmentor import (  # noqa: E402
    SAM2_VARIANTS,
    SAM2VideoSegmentor,
)


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description='SAM2VideoSegmentor (cached support) vs '
        'SAM2VideoPredictor (per episode)'
    )
    parser.add_argument(
        '--models', nargs='+', default=['tiny', 'small'], choices=sorted(SAM2_VARIANTS)
    )
    parser.add_argument(
        '--sizes',
        nargs='+',
        type=int,
        default=[256, 512],
        help='SAM2 image_size values',
    )
    parser.add_argument(
        '--img-size', type=int, default=256, help='episode image size (GFDS: 256)'
    )
    parser.add_argument('--support-sets', type=int, default=2)
    parser.add_argument(
        '--queries', type=int, default=3, help='queries per support set'
    )
    parser.add_argument(
        '--warmup', type=int, default=1, help='untimed episodes per path first'
    )
    parser.add_argument(
        '--fill-hole-area',
        type=int,
        default=0,
        help="both paths; >0 needs sam2's CUDA extension "
        'in the predictor (it skips the step without it)',
    )
    parser.add_argument(
        '--jpeg',
        action='store_true',
        help='feed the predictor a JPEG folder (decoding and PIL resizing then count)',
    )
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help="torch.set_num_threads (default: torch's)",
    )
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', help='write the results as JSON here')
    return parser.parse_args(argv)


def make_image(rng, size):
    """``[H, W, 3]`` uint8 smooth texture with a dark rectangle, and mask."""
    low = rng.integers(60, 200, (1, 3, size // 8, size // 8))
    img = F.interpolate(
        torch.from_numpy(low).float(), (size, size), mode='bicubic', align_corners=False
    )
    img = img.clamp(0, 255).round()[0].permute(1, 2, 0).to(torch.uint8)
    img = img.numpy().copy()
    mask = np.zeros((size, size), np.uint8)
    h, w = rng.integers(size // 16, size // 4, 2)
    y, x = rng.integers(0, size - h), rng.integers(0, size - w)
    mask[y : y + h, x : x + w] = 1
    img[mask > 0] = rng.integers(20, 60)
    return img, mask


def in_memory_loader(frames_u8):
    """``load_video_frames`` over decoded uint8 frames (no JPEG)."""

    def loader(
        video_path,
        image_size,
        offload_video_to_cpu,
        img_mean=(0.485, 0.456, 0.406),
        img_std=(0.229, 0.224, 0.225),
        async_loading_frames=False,
        compute_device=None,
    ):
        x = torch.stack(
            [torch.from_numpy(f).permute(2, 0, 1) for f in frames_u8]
        ).float()
        if x.shape[-1] != image_size:
            # Stands in for PIL's bicubic resize of the official loader.
            x = (
                F.interpolate(
                    x,
                    (image_size, image_size),
                    mode='bicubic',
                    align_corners=False,
                    antialias=True,
                )
                .round()
                .clamp(0, 255)
            )
        x = x / 255.0
        mean = torch.tensor(img_mean)[:, None, None]
        std = torch.tensor(img_std)[:, None, None]
        x = ((x - mean) / std).contiguous()
        if compute_device is not None and not offload_video_to_cpu:
            x = x.to(compute_device)
        return x, frames_u8[0].shape[0], frames_u8[0].shape[1]

    return loader


def sync(device):
    """Wait for CUDA work so that timings are complete."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed(fn, device):
    """Wall seconds and process CPU seconds of ``fn()``, and its output.

    On a shared CPU the CPU time (with ``--threads 1``) is the robust
    measure: other processes stretch the wall time, not the CPU time.
    """
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    sync(device)
    return (time.perf_counter() - t0, time.process_time() - c0), out


def build_pair(model, size, fill_hole_area, device, seed):
    """The segmentor and sam2's predictor with the same random weights."""
    from mmengine.registry import init_default_scope

    init_default_scope('fdseg')
    from sam2.build_sam import build_sam2_video_predictor

    import fdseg.models  # noqa: F401  (registers the data preprocessor)

    torch.manual_seed(seed)
    seg = SAM2VideoSegmentor(model, image_size=size, fill_hole_area=fill_hole_area).to(
        device
    )
    seg.eval()
    predictor = build_sam2_video_predictor(
        SAM2_VARIANTS[model][0],
        None,
        device='cpu',
        hydra_overrides_extra=[f'++model.image_size={size}'],
    )
    predictor.load_state_dict(seg.sam2.state_dict())
    predictor.fill_hole_area = fill_hole_area
    return seg, predictor.to(device).eval()


def run_config(args, model, size, device):
    """Time the three paths for one model and image_size."""
    import sam2.sam2_video_predictor as svp
    import sam2.utils.misc as misc

    # The predictor's per-frame progress bars are noise here.
    svp.tqdm = misc.tqdm = lambda it, *a, **k: it
    seg, predictor = build_pair(model, size, args.fill_hole_area, device, args.seed)
    rng = np.random.default_rng(args.seed)
    sets = []
    for _ in range(args.support_sets):
        sup = make_image(rng, args.img_size)
        queries = [make_image(rng, args.img_size)[0] for _ in range(args.queries)]
        sets.append((sup, queries))
    autocast = (
        torch.autocast('cuda', dtype=torch.bfloat16)
        if device.type == 'cuda'
        else contextlib.nullcontext()
    )
    tmp = tempfile.TemporaryDirectory()
    original_loader = svp.load_video_frames

    def chw(img):
        return torch.from_numpy(img).permute(2, 0, 1)[None].float().to(device)

    def predictor_episode(sup, query, idx):
        (s_img, s_mask) = sup
        if args.jpeg:
            import cv2

            video = osp.join(tmp.name, f'ep{idx}')
            os.makedirs(video, exist_ok=True)
            for i, f in enumerate((s_img, query)):
                cv2.imwrite(osp.join(video, f'{i:05d}.jpg'), f[..., ::-1])
            svp.load_video_frames = original_loader
        else:
            video = 'in-memory'
            svp.load_video_frames = in_memory_loader([s_img, query])

        def run():
            with torch.inference_mode(), autocast:
                state = predictor.init_state(video_path=video)
                predictor.add_new_mask(state, 0, 1, torch.from_numpy(s_mask).bool())
                out = None
                for f, _, logits in predictor.propagate_in_video(state):
                    out = logits
                return out[0, 0] > 0

        try:
            return timed(run, device)[0]
        finally:
            svp.load_video_frames = original_loader

    def segmentor_query(q):
        return timed(
            lambda: seg.segment(chw(q), [seg._pinned], normalized=False), device
        )[0]

    def segmentor_episode(sup, q):
        def run():
            state = seg.encode_support(
                chw(sup[0]), torch.from_numpy(sup[1])[None], normalized=False
            )
            return seg.segment(chw(q), [state], normalized=False)

        return timed(run, device)[0]

    keys = (
        'segmentor_query',
        'segmentor_episode',
        'predictor_episode',
        'support_memory',
    )
    times = {k: [] for k in keys}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        # Warm-up (first calls allocate, build RoPE tables, ...).
        sup0, q0 = sets[0][0], sets[0][1][0]
        seg.set_support(chw(sup0[0]), torch.from_numpy(sup0[1])[None])
        for _ in range(args.warmup):
            segmentor_query(q0)
            segmentor_episode(sup0, q0)
            predictor_episode(sup0, q0, -1)
        ep = 0
        for sup, queries in sets:
            dt, _ = timed(
                lambda: seg.set_support(chw(sup[0]), torch.from_numpy(sup[1])[None]),
                device,
            )
            times['support_memory'].append(dt)
            for q in queries:
                times['segmentor_query'].append(segmentor_query(q))
                times['predictor_episode'].append(predictor_episode(sup, q, ep))
                times['segmentor_episode'].append(segmentor_episode(sup, q))
                ep += 1
    tmp.cleanup()
    med = {k: statistics.median(w for w, _ in v) for k, v in times.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in times.items()}
    return dict(
        model=model,
        image_size=size,
        median_wall_s=med,
        median_cpu_s=cpu,
        all_wall_s={k: [w for w, _ in v] for k, v in times.items()},
        n=len(times['segmentor_query']),
        ratio_wall=med['predictor_episode'] / med['segmentor_query'],
        ratio_cpu=cpu['predictor_episode'] / cpu['segmentor_query'],
        ratio_uncached_wall=(med['predictor_episode'] / med['segmentor_episode']),
        ratio_uncached_cpu=(cpu['predictor_episode'] / cpu['segmentor_episode']),
    )


def main(argv=None):
    """Run every model x size and print / write the report."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    results = []
    for model in args.models:
        for size in args.sizes:
            r = run_config(args, model, size, device)
            results.append(r)
            for kind in ('wall', 'cpu'):
                m = r[f'median_{kind}_s']
                print(
                    f'{model:>9s} @{size:<4d} {kind:>4s} | segmentor/query '
                    f'{m["segmentor_query"] * 1e3:8.1f} ms | '
                    f'segmentor/episode {m["segmentor_episode"] * 1e3:8.1f}'
                    f' ms | predictor/episode '
                    f'{m["predictor_episode"] * 1e3:8.1f} ms | ratio '
                    f'{r[f"ratio_{kind}"]:.2f}x (uncached '
                    f'{r[f"ratio_uncached_{kind}"]:.2f}x)',
                    flush=True,
                )
    report = dict(
        results=results,
        settings=dict(vars(args)),
        environment=dict(
            torch=torch.__version__,
            threads=torch.get_num_threads(),
            device=str(device),
            cpu=platform.processor() or platform.machine(),
            cpu_count=os.cpu_count(),
            loadavg=os.getloadavg() if hasattr(os, 'getloadavg') else None,
        ),
    )
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == '__main__':
    main()
