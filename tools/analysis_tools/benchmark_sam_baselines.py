"""Per-query CPU time of PerSAM and Matcher at the paper's settings.

SAM v1 ViT-H at 1024 and DINOv2 ViT-L/14 at 266 (Table 4 rows), random
weights (no file is read), a 256x256 query and a 1-shot support, batch 1.
Prints the per-stage breakdown of one query (after one warm-up query).
These models are slow on CPU: the numbers are reported, not tuned down.

    python tools/analysis_tools/benchmark_sam_baselines.py [--method persam]
"""

import argparse
import time

import torch
from mmengine.registry import init_default_scope

from fdseg.registry import MODELS


class Stages:
    """Wall time of named stages (wrapping bound methods)."""

    def __init__(self):
        self.t = {}

    def wrap(self, obj, name, label):
        fn = getattr(obj, name)

        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.t[label] = self.t.get(label, 0.0) + time.perf_counter() - t0

        setattr(obj, name, timed)


def build(method):
    if method == 'persam':
        cfg = dict(type='PerSAMSegmentor', sam_arch='vit_h', checkpoint=None)
    else:
        cfg = dict(
            type='MatcherSegmentor',
            sam_arch='vit_h',
            checkpoint=None,
            encoder=dict(type='DINOv2ViT', arch='vit_large_patch14', final_norm=False),
        )
    return MODELS.build(cfg).eval()


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--method', choices=['persam', 'matcher', 'both'], default='both')
    p.add_argument('--size', type=int, default=256)
    p.add_argument('--threads', type=int, default=1)
    # Matcher at the official settings takes > 13 CPU-minutes per query:
    # --no-warmup times the first query directly.
    p.add_argument('--no-warmup', action='store_true')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    init_default_scope('fdseg')
    methods = ['persam', 'matcher'] if args.method == 'both' else [args.method]
    g = torch.Generator().manual_seed(0)
    s = args.size
    sup = torch.randint(0, 256, (1, 3, s, s), dtype=torch.uint8, generator=g)
    mask = torch.zeros(1, s, s)
    mask[0, s // 4 : s // 2, s // 3 : s // 2] = 1
    q = torch.randint(0, 256, (1, 3, s, s), dtype=torch.uint8, generator=g).float()
    for m in methods:
        torch.manual_seed(0)
        model = build(m)
        st = Stages()
        import fdseg.models.segmentors.matcher as mm
        import fdseg.models.segmentors.persam as pm

        mod = pm if m == 'persam' else mm
        real_decode, real_encode = mod.decode, mod.encode_image
        with torch.no_grad():
            t0 = time.perf_counter()
            state = model.encode_raw_support(sup, mask)
            t_support = time.perf_counter() - t0
            if not args.no_warmup:
                model.segment(q, [state], normalized=False)
            mod.decode, mod.encode_image = real_decode, real_encode
            for fn, label in (
                (real_decode, 'SAM decoder'),
                (real_encode, 'SAM encoder'),
            ):
                holder = type('H', (), {})()
                holder.f = fn
                st.wrap(holder, 'f', label)
                setattr(
                    mod, 'decode' if fn is real_decode else 'encode_image', holder.f
                )
            if m == 'matcher':
                st.wrap(model, '_tokens', 'DINOv2')
                st.wrap(mm, 'hungarian_points', 'Hungarian matching')
                st.wrap(model, 'mask_metrics', 'EMD/purity/coverage')
                st.wrap(model, 'generate', 'mask generation (incl. decoder)')
            else:
                st.wrap(model, 'similarity', 'location prior')
            c0, t0 = time.process_time(), time.perf_counter()
            _, rec = model.segment(q, [state], normalized=False)
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        mod.decode, mod.encode_image = real_decode, real_encode
        print(
            f'{m}: support encoding {t_support:.1f} s; per query: CPU {cpu:.1f} s, '
            f'wall {wall:.1f} s ({args.threads} thread(s), {s}x{s})'
        )
        for k, v in st.t.items():
            print(f'    {k:34s} {v:7.2f} s')
        print(f'    record: { {k: v for k, v in rec[0][0].items() if k != "points"} }')


if __name__ == '__main__':
    main()
