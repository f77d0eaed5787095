"""A defect bank over the SAM2 video segmentor (one memory bank per class).

Tiny SAM2.1 with random weights at 64 px: the bank, built one example at
a time, must give the masks of the segmentor's own N-way support encoding
(every class's examples as the conditioning frames of its own video).
"""

import numpy as np
import pytest
import torch

pytest.importorskip('sam2', reason='sam2 is not installed')
pytest.importorskip('safetensors', reason='safetensors is not installed')

from fdseg.apis import FewShotInferencer  # noqa: E402
from fdseg.bank import DefectBank  # noqa: E402
from tests.test_bank.test_defect_bank import example  # noqa: E402


@pytest.fixture(scope='module')
def inf():
    from mmengine.registry import init_default_scope

    from fdseg.models.segmentors import SAM2VideoSegmentor

    init_default_scope('fdseg')  # module fixtures run before the autouse one
    torch.manual_seed(0)
    seg = SAM2VideoSegmentor('tiny', image_size=64, fill_hole_area=0)
    return FewShotInferencer(seg, device='cpu', scale=(64, 64))


def test_sam2_bank_equals_joint_memory(inf, tmp_path):
    exs = [
        ('a', example(1)),
        ('b', example(3, box=(40, 60, 40, 60))),
        ('a', example(2, box=(5, 20, 30, 60))),
    ]
    bank = DefectBank(inf)
    for name, (img, mask) in exs:
        bank.add(name, img, mask)
    q = example(5)[0]
    ours = bank.predict([q])[0]
    inf.set_support(
        [e[0] for _, e in exs],
        [e[1] for _, e in exs],
        [1, 2, 1],
        class_names=['a', 'b'],
    )
    ref = inf.predict_batch([('q', q)])[0]
    np.testing.assert_array_equal(ours.mask, ref.mask)
    np.testing.assert_allclose(ours.score_map, ref.score_map, atol=1e-5)
    inf.model.clear_support()
    # the per-class memories (bf16 features) survive the file round trip
    bank.save(str(tmp_path / 'sam2.bank'))
    again = DefectBank.load(str(tmp_path / 'sam2.bank'), model=inf)
    feats = again.classes['a'][1]['state']['cond']['maskmem_features']
    assert feats.dtype == torch.bfloat16 and again.list() == bank.list()
    np.testing.assert_array_equal(again.predict([q])[0].mask, ours.mask)
