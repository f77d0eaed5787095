"""Export the student of an fdseg distillation checkpoint as a plain PDN.

The output has the official GFDS key layout (``0.weight``, ``0.bias``, ...;
the state dict of the ``nn.Sequential`` in ``model_large.pth`` /
``model_small.pth``), holds tensors only, and therefore loads through the
third-party path (``weights_only=True``) — e.g.
``PDNStudent(init_cfg=dict(type='Pretrained', checkpoint='out.pth'))``.

    python tools/model_converters/distilled_student_to_pdn.py \
        work_dirs/distill_pdn-l_dino-vits8_160k_imagenet/iter_160000.pth \
        fm_large_mine.pth
"""

import argparse
import os
import os.path as osp
import sys
import tempfile
from collections import OrderedDict

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def convert(src: str, dst: str, prefix: str = 'student.pdn.') -> int:
    """Write the student weights of ``src`` to ``dst``; returns #tensors.

    Raises:
        KeyError: ``src`` holds no key starting with ``prefix``.
    """
    from fdseg.engine.checkpoint import load_trusted_checkpoint

    # fdseg's own training checkpoint: trusted (it holds the message hub).
    ckpt = load_trusted_checkpoint(src, map_location='cpu')
    state = ckpt.get('state_dict', ckpt)
    out = OrderedDict(
        (k[len(prefix) :], v.clone()) for k, v in state.items() if k.startswith(prefix)
    )
    if not out:
        raise KeyError(
            f'{src} has no "{prefix}*" weights (keys start with '
            f'{sorted({k.split(".")[0] for k in state})})'
        )
    # Write atomically: no half-written file if interrupted.
    fd, tmp = tempfile.mkstemp(dir=osp.dirname(osp.abspath(dst)) or '.')
    os.close(fd)
    try:
        torch.save(out, tmp)
        os.replace(tmp, dst)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return len(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='fdseg distillation checkpoint (.pth)')
    parser.add_argument('dst', help='output state dict (.pth)')
    parser.add_argument(
        '--prefix',
        default='student.pdn.',
        help='key prefix of the student in the checkpoint',
    )
    args = parser.parse_args(argv)
    n = convert(args.src, args.dst, args.prefix)
    print(f'wrote {n} tensors to {args.dst}')


if __name__ == '__main__':
    main()
