"""Exported bank graphs (ONNX / OpenVINO) against the PyTorch bank.

The PyTorch reference is :meth:`DefectBank.predict` (the config's cv2 test
pipeline, the segmentor, cv2 resizes back); the exported graph does the same
inside one graph from uint8 HWC input. Parity: >= 99.9 % equal mask pixels
on queries of several sizes (up- and down-scaled).
"""

import numpy as np
import pytest
import torch

pytest.importorskip('safetensors', reason='safetensors is not installed')
pytest.importorskip('onnx', reason='onnx is not installed (pip install fdseg[export])')

from fdseg.apis import FewShotInferencer  # noqa: E402
from fdseg.bank import DefectBank  # noqa: E402
from fdseg.deploy.export import ExportedBank, ExportError, export_bank  # noqa: E402
from tests.test_bank.test_defect_bank import CONFIG, TINY, example  # noqa: E402

QUERIES = [
    example(5)[0],
    example(6, size=(48, 80), box=(10, 30, 40, 70))[0],
    example(7, size=(100, 90), box=(50, 90, 10, 40))[0],
]


@pytest.fixture(scope='module')
def bank():
    torch.manual_seed(0)
    inf = FewShotInferencer(CONFIG, device='cpu', scale=(64, 64), cfg_options=TINY)
    b = DefectBank(inf)
    b.add('scratch', *example(1))
    b.add('dent', *example(3, box=(40, 60, 40, 60)))
    b.set_threshold('dent', 0.6)
    return b


@pytest.fixture(scope='module')
def reference(bank):
    return bank.predict(QUERIES)


def _check(runner, reference, protos=None):
    for q, ref in zip(QUERIES, reference):
        mask, score = runner(q, protos)
        assert mask.shape == q.shape[:2] and mask.dtype == np.uint8
        assert (mask == ref.mask).mean() >= 0.999
        np.testing.assert_allclose(score, ref.score_map, atol=5e-3)
    assert any(len(np.unique(r.mask)) > 1 for r in reference)  # not all bg


@pytest.mark.parametrize('dynamic', [False, True])
def test_onnx_parity(bank, reference, tmp_path, dynamic):
    pytest.importorskip('onnxruntime', reason='onnxruntime is not installed')
    out = str(tmp_path / 'bank.onnx')
    man = export_bank(bank, out, 'onnx', dynamic_bank=dynamic)
    assert man['class_names'] == ['background', 'scratch', 'dent']
    assert man['thresholds'] == [None, 0.6]
    runner = ExportedBank(out)
    protos = None
    if dynamic:
        p, g = bank.prototypes()
        protos = [p[g == k].numpy() for k in range(3)]
    _check(runner, reference, protos)
    if dynamic:
        # One more example in a class: new prototypes, same graph, and the
        # PyTorch bank with that example agrees.
        bank.add('scratch', *example(2, box=(5, 20, 30, 60)))
        try:
            p, g = bank.prototypes()
            _check(
                runner,
                bank.predict(QUERIES),
                [p[g == k].numpy() for k in range(3)],
            )
        finally:
            bank.remove('scratch', -1)


def test_openvino_parity(bank, reference, tmp_path):
    pytest.importorskip('openvino', reason='openvino is not installed')
    out = str(tmp_path / 'bank.xml')
    man = export_bank(bank, out, 'openvino')
    assert man['files'] == ['bank.xml', 'bank.bin']
    _check(ExportedBank(out), reference)


def test_export_refuses_what_it_cannot_do(bank, tmp_path):
    with pytest.raises(ExportError, match='--format'):
        export_bank(bank, str(tmp_path / 'x'), 'tflite')
    empty = DefectBank(bank.inferencer)
    with pytest.raises(ValueError, match='empty'):
        export_bank(empty, str(tmp_path / 'x.onnx'))
