"""FewShotResult: instances, decision, JSON, files and overlay, by hand."""

import json

import cv2
import numpy as np
import pytest

from fdseg.apis import FewShotResult

NAMES = ('background', 'scratch', 'dent')


def _maps():
    """A 6x8 label map with three components and known scores."""
    mask = np.zeros((6, 8), np.uint8)
    score = np.full((6, 8), 0.1, np.float32)
    mask[1:4, 1:4] = 1  # A: 3x3 scratch, score 0.6
    score[1:4, 1:4] = 0.6
    mask[4, 6] = mask[5, 7] = 1  # B: diagonal pair (one 8-connected part)
    score[4, 6], score[5, 7] = 0.8, 0.9
    mask[0, 7] = 2  # C: one dent pixel
    score[0, 7] = 0.7
    return mask, score


def test_instances_decision_and_json():
    mask, score = _maps()
    r = FewShotResult.from_maps('sub/q.png', mask, score, NAMES)
    assert r.instances == [
        dict(
            class_name='scratch',
            label=1,
            area=9,
            bbox=[1, 1, 3, 3],
            mean_score=pytest.approx(0.6),
        ),
        dict(
            class_name='scratch',
            label=1,
            area=2,
            bbox=[6, 4, 2, 2],
            mean_score=pytest.approx(0.85),
        ),
        dict(
            class_name='dent',
            label=2,
            area=1,
            bbox=[7, 0, 1, 1],
            mean_score=pytest.approx(0.7),
        ),
    ]
    assert r.score == pytest.approx(0.9) and r.decision == 'defect' and r.is_defect
    rec = json.loads(r.to_json())
    assert rec == dict(
        image='sub/q.png',
        height=6,
        width=8,
        decision='defect',
        score=0.9,
        threshold=None,
        defect_area=12,
        instances=[
            dict(i, mean_score=round(float(i['mean_score']), 6)) for i in r.instances
        ],
    )
    # a calibrated image-level threshold decides on the score alone
    r = FewShotResult.from_maps('q', mask, score, NAMES, threshold=0.95)
    assert r.decision == 'no defect' and r.threshold == 0.95 and r.instances
    r = FewShotResult.from_maps('q', mask, score, NAMES, threshold=0.9)
    assert r.decision == 'defect'
    empty = FewShotResult.from_maps('q', np.zeros((6, 8)), score * 0, NAMES)
    assert (empty.decision, empty.instances, empty.score) == ('no defect', [], 0.0)


def test_bad_maps_are_refused():
    mask, score = _maps()
    with pytest.raises(ValueError, match=r'q: mask \(6, 8\) and score_map \(8, 6\)'):
        FewShotResult.from_maps('q', mask, score.T, NAMES)
    score[0, 0] = np.nan
    with pytest.raises(ValueError, match='q: the score map has NaN'):
        FewShotResult.from_maps('q', mask, score, NAMES)


def test_save_and_plot(tmp_path):
    mask, score = _maps()
    img = np.full((6, 8, 3), 100, np.uint8)
    r = FewShotResult.from_maps('sub/q.jpg', mask, score, NAMES, image=img)
    files = r.save(str(tmp_path), overlay=True, scores=True)
    assert files == {
        'mask': str(tmp_path / 'masks/sub/q.png'),
        'overlay': str(tmp_path / 'overlays/sub/q.png'),
        'scores': str(tmp_path / 'scores/sub/q.npy'),
    }
    # several classes: the labels; one class: 0/255
    assert np.array_equal(cv2.imread(files['mask'], cv2.IMREAD_UNCHANGED), mask)
    assert np.array_equal(np.load(files['scores']), score)
    one = FewShotResult.from_maps('one', mask > 0, score, ('background', 'defect'))
    saved = cv2.imread(one.save(str(tmp_path))['mask'], cv2.IMREAD_UNCHANGED)
    assert np.array_equal(saved, (mask > 0) * 255)
    # overlay: inside A (not on its contour) 50 % scratch red over gray 100
    over = r.plot(boxes=False)
    assert over[2, 2].tolist() == [178, 70, 70]
    assert over[5, 0].tolist() == [100, 100, 100]
    saved = cv2.cvtColor(cv2.imread(files['overlay']), cv2.COLOR_BGR2RGB)
    assert saved.shape == (6, 8, 3) and saved[5, 0].tolist() == [100, 100, 100]
