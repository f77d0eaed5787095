"""DefectBank: per-example encoding, N-way prediction, files, calibration.

Tiny random PDN (c=8, 16 outputs) at 64 px; the reference is the model's
own joint support encoding (FewShotInferencer.set_support with labels), which
the bank must reproduce from examples encoded one at a time.
"""

import numpy as np
import pytest
import torch

pytest.importorskip('safetensors', reason='safetensors is not installed')

from fdseg.apis import FewShotInferencer  # noqa: E402
from fdseg.bank import BankError, BankModelMismatchError, DefectBank  # noqa: E402

CONFIG = 'fdseg::fm/fm_pdn-s_no-train_synthetic-all-1shot.py'
TINY = {
    'model.backbone.init_cfg': None,
    'model.backbone.base_channels': 8,
    'model.backbone.out_channels': 16,
}


def example(seed, size=(64, 64), box=(20, 40, 10, 30)):
    r = np.random.default_rng(seed)
    img = r.integers(0, 255, (*size, 3), dtype=np.uint8)
    mask = np.zeros(size, np.uint8)
    y0, y1, x0, x1 = box
    mask[y0:y1, x0:x1] = 255
    img[mask > 0] = img[mask > 0] // 4 + 180
    return img, mask


def tiny_inferencer(seed):
    torch.manual_seed(seed)
    return FewShotInferencer(CONFIG, device='cpu', scale=(64, 64), cfg_options=TINY)


@pytest.fixture(scope='module')
def inf():
    return tiny_inferencer(0)


EXAMPLES = [
    ('scratch', example(1)),
    ('scratch', example(2, box=(5, 20, 30, 60))),
    ('dent', example(3, box=(40, 60, 40, 60))),
]


@pytest.fixture(scope='module')
def bank(inf):
    b = DefectBank(inf)
    for name, (img, mask) in EXAMPLES:
        b.add(name, img, mask)
    return b


QUERIES = [example(5)[0], example(6, size=(48, 80))[0]]


def test_nway_equals_joint_support_encoding(bank, inf):
    res = bank.predict(QUERIES)
    imgs = [e[0] for _, e in EXAMPLES]
    masks = [e[1] for _, e in EXAMPLES]
    inf.set_support(imgs, masks, [1, 1, 2], class_names=['scratch', 'dent'])
    ref = inf.predict_batch([(f'q{i}', q) for i, q in enumerate(QUERIES)])
    for r, e in zip(res, ref):
        np.testing.assert_array_equal(r.mask, e.mask)
        np.testing.assert_allclose(r.score_map, e.score_map, atol=1e-6)
    assert res[0].class_names == ('background', 'scratch', 'dent')
    assert {1, 2} <= set(np.unique(res[0].mask))  # both classes appear
    inf.model.clear_support()


def test_add_encodes_only_the_new_example(inf):
    b = DefectBank(inf)
    b.add('a', *example(1))
    seen = []
    h = inf.model.backbone.register_forward_hook(
        lambda m, i, o: seen.append(i[0].shape[0])
    )
    try:
        b.add('a', *example(2))
    finally:
        h.remove()
    assert seen == [1]
    assert [c['examples'] for c in b.list()] == [2]
    b.remove('a', 0)
    assert b.list()[0]['examples'] == 1
    b.remove('a')
    assert b.list() == []


def test_save_load_roundtrip_and_other_model(bank, inf, tmp_path):
    path = str(tmp_path / 'line.bank')
    bank.set_threshold('dent', 0.7)
    bank.save(path)
    again = DefectBank.load(path, model=inf)
    assert again.list() == bank.list()
    for a, b in zip(again.predict(QUERIES), bank.predict(QUERIES)):
        np.testing.assert_array_equal(a.mask, b.mask)
    bank.set_threshold('dent', None)
    with pytest.raises(BankModelMismatchError, match='state_sha256'):
        DefectBank.load(path, model=tiny_inferencer(1))
    other = FewShotInferencer(
        inf.model, scale=(32, 32)
    )  # same weights, other preprocessing
    with pytest.raises(BankModelMismatchError, match='preprocessing scale'):
        DefectBank.load(path, model=other)
    bad = tmp_path / 'x.bank'
    bad.write_bytes(b'not a bank')
    with pytest.raises(BankError, match='x.bank'):
        DefectBank.load(str(bad), model=inf)


def test_class_threshold_removes_unsure_pixels(bank):
    plain = bank.predict(QUERIES[:1])[0]
    bank.set_threshold('scratch', 1.0)
    try:
        strict = bank.predict(QUERIES[:1])[0]
    finally:
        bank.set_threshold('scratch', None)
    assert (plain.mask == 1).any() and not (strict.mask == 1).any()
    np.testing.assert_array_equal(strict.mask == 2, plain.mask == 2)


def test_bad_inputs(inf, tmp_path):
    b = DefectBank(inf)
    with pytest.raises(BankError, match='empty'):
        b.predict(QUERIES)
    with pytest.raises(BankError, match='empty'):
        b.calibrate(QUERIES)
    img, mask = example(1)
    with pytest.raises(BankError, match=r'mask is 32x32 .* image is 64x64'):
        b.add('a', img, mask[:32, :32])
    with pytest.raises(BankError, match='empty'):
        b.add('a', img, np.zeros_like(mask))
    corrupt = tmp_path / 'broken.png'
    corrupt.write_bytes(b'\x89PNG\r\n\x1a\n garbage')
    with pytest.raises(BankError, match='broken.png'):
        b.add('a', str(corrupt), mask)
    b.add('Scratch', img, mask)
    with pytest.raises(BankError, match="clashes with the existing class 'Scratch'"):
        b.add('scratch', img, mask)
    with pytest.raises(BankError, match='clashes'):
        b.add('SCRATCH', img, mask)
    with pytest.raises(BankError, match='reserved'):
        b.add('Background', img, mask)


def test_calibration_hand_worked(bank, monkeypatch):
    # Ten good images scoring 0.1 .. 1.0: with no held-apart images and a
    # 20 % target, two false alarms are allowed -> the threshold lies just
    # above 0.8, so 0.9 and 1.0 alarm and 0.8 does not.
    scores = [(f'g{i}', i / 10) for i in range(1, 11)]
    monkeypatch.setattr(bank, 'image_scores_checked', lambda *a: list(scores))
    cal = bank.calibrate('unused', target_far=0.2, holdout=0.0)
    assert 0.8 < cal['threshold'] <= np.nextafter(0.8, 1) and cal['holdout_far'] is None
    assert cal['calibration_far'] == pytest.approx(0.2)
    # Half held apart: the rate is measured on images that set nothing.
    cal = bank.calibrate('unused', target_far=0.2, holdout=0.5, seed=3)
    assert cal['num_calibration'] == 5 and cal['num_holdout'] == 5
    thr, by_name = cal['threshold'], dict(scores)
    hold = cal['holdout_images']
    cal_scores = sorted(s for n, s in scores if n not in hold)
    # floor(0.2 * 5) = 1: only the highest calibration score reaches it
    assert cal_scores[-2] < thr <= cal_scores[-1]
    assert cal['holdout_false_alarms'] == [n for n in hold if by_name[n] >= thr]
    assert cal['holdout_far'] == len(cal['holdout_false_alarms']) / 5
    cal = bank.calibrate('unused', target_far=0.05, holdout=0.5)
    assert '5 calibration images cannot resolve a 0.05' in cal['note']
    res = bank.predict(QUERIES[:1])[0]
    assert res.threshold == cal['threshold']
    assert res.decision == ('defect' if res.score >= res.threshold else 'no defect')
    bank.calibration = None


def test_fast_cpu_model_reads_and_writes_the_same_bank(bank, inf, tmp_path):
    """The CPU algorithm choice is not part of the model's identity: a bank
    saved with the plain model loads into a tuned one (same seed, same
    weights) and predicts the same masks, up to float rounding."""
    path = str(tmp_path / 'line.bank')
    bank.save(path)
    torch.manual_seed(0)
    fast = FewShotInferencer(
        CONFIG, device='cpu', scale=(64, 64), cfg_options=TINY, fast_cpu=True
    )
    assert [r['name'] for r in fast.cpu_report] == ['pdn.0', 'pdn.3', 'pdn.6', 'pdn.8']
    again = DefectBank.load(path, model=fast)
    assert again.identity()['model'] == bank.identity()['model']
    for a, b in zip(again.predict(QUERIES), bank.predict(QUERIES)):
        assert (a.mask == b.mask).mean() >= 0.995
        np.testing.assert_allclose(a.score_map, b.score_map, atol=1e-4)
