"""FastSAM and SAM2 prompt-mode refiners on random-weight models.

The fusion itself is checked against independent references in
``test_fusion.py``; here the refiners' wiring is checked: the masks they
feed the fusion (compared with the third-party APIs called directly), the
prompts derived from R0 (by hand), one image encoding per query, lazy
loading and weights kept out of the state dict.
"""

import importlib.util
import os

import numpy as np
import pytest
import torch

from fdseg.models.refiners import FastSAMRefiner, MaskFusion, SAM2PromptRefiner
from fdseg.models.refiners.sam2_prompt_refiner import prompts_from_mask
from fdseg.registry import MODELS
from tests.conftest import REPO

os.environ.setdefault('YOLO_OFFLINE', '1')
# The FastSAM tests need ultralytics, the SAM2 tests sam2: each skips on its
# own (a module-level importorskip would also skip the prompt tests).
needs_ultralytics = pytest.mark.skipif(
    importlib.util.find_spec('ultralytics') is None,
    reason='ultralytics is not installed',
)
needs_sam2 = pytest.mark.skipif(
    importlib.util.find_spec('sam2') is None, reason='sam2 is not installed'
)


def scene(b=2, h=64, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    imgs = torch.rand(b, 3, h, w, generator=g) * 255
    imgs[:, :, 16:40, 16:40] = 230.0  # a bright square the detector may see
    coarse = torch.zeros(b, h, w, dtype=torch.long)
    coarse[0, 18:30, 18:34] = 1
    coarse[0, 50:54, 4:8] = 1
    if b > 1:
        coarse[1:] = 0  # second query: empty R0
    return imgs, coarse


# ---------------------------------------------------------------------------
# FastSAM
@pytest.fixture(scope='module')
def fastsam_ckpt(tmp_path_factory):
    """A random one-class YOLOv8n-seg saved as an ultralytics checkpoint.

    The class-score biases are raised so that random weights still produce
    detections above conf=0.1 (the default init keeps scores near 1e-5).
    """
    from ultralytics.nn.tasks import SegmentationModel

    torch.manual_seed(0)
    net = SegmentationModel('yolov8n-seg.yaml', nc=1, verbose=False)
    for seq in net.model[-1].cv3:
        seq[-1].bias.data.fill_(2.0)
    path = tmp_path_factory.mktemp('fastsam') / 'fastsam_random.pt'
    # The checkpoint must name its task (ultralytics would guess 'detect').
    torch.save(dict(model=net, train_args=dict(task='segment')), str(path))
    return str(path)


@pytest.fixture(scope='module')
def fastsam(fastsam_ckpt):
    return MODELS.build(dict(type='FastSAMRefiner', checkpoint=fastsam_ckpt))


@needs_ultralytics
def test_fastsam_lazy_and_outside_state_dict(fastsam_ckpt):
    ref = FastSAMRefiner(checkpoint=fastsam_ckpt)
    assert ref._model == []  # nothing loaded at construction
    assert len(ref.state_dict()) == 0
    ref.load()
    assert len(ref.state_dict()) == 0 and not list(ref.parameters())


@needs_ultralytics
def test_fastsam_masks_match_ultralytics(fastsam, fastsam_ckpt):
    imgs, _ = scene()
    masks = fastsam.segment_everything(imgs)
    from ultralytics import FastSAM

    threads = torch.get_num_threads()  # ultralytics would change it
    direct = FastSAM(fastsam_ckpt).predict(
        imgs / 255,
        imgsz=64,
        conf=0.1,
        iou=0.5,
        retina_masks=True,
        verbose=False,
        device='cpu',
    )
    torch.set_num_threads(threads)
    assert len(masks) == 2
    assert any(m.shape[0] > 0 for m in masks)
    for m, r in zip(masks, direct):
        assert m.dtype == torch.bool and m.shape[1:] == (64, 64)
        assert torch.equal(m, r.masks.data.bool())


@needs_ultralytics
def test_fastsam_keeps_torch_threads(fastsam):
    # ultralytics' select_device() would leave cpu_count - 1 threads.
    from ultralytics.utils import NUM_THREADS

    before = torch.get_num_threads()
    torch.set_num_threads(NUM_THREADS + 1)
    try:
        fastsam.segment_everything(scene(b=1)[0])
        assert torch.get_num_threads() == NUM_THREADS + 1
    finally:
        torch.set_num_threads(before)


@needs_ultralytics
def test_fastsam_refine_is_fusion_of_masks(fastsam):
    imgs, coarse = scene()
    out = fastsam.refine(imgs, coarse)
    assert out.shape == coarse.shape and out.dtype == torch.long
    masks = fastsam.segment_everything(imgs[:1])[0]
    assert torch.equal(out[0], MaskFusion()(coarse[0], masks))
    assert torch.equal(out[1], coarse[1])  # empty R0 stays empty


@needs_ultralytics
def test_fastsam_alternatives_and_skip(fastsam_ckpt, monkeypatch):
    imgs, coarse = scene()
    base = FastSAMRefiner(checkpoint=fastsam_ckpt)
    masks = base.segment_everything(imgs[:1])[0]
    for fusion in (dict(strategy='union'), dict(strategy='sam'), dict(variant='paper')):
        ref = FastSAMRefiner(checkpoint=fastsam_ckpt, fusion=fusion)
        ref._model = base._model  # share the loaded model
        out = ref.refine(imgs, coarse)
        assert torch.equal(out[0], MaskFusion(**fusion)(coarse[0], masks))
    # All R0 empty: FastSAM is not run at all.
    calls = []
    monkeypatch.setattr(base, 'segment_everything', lambda x: calls.append(x) or [])
    empty = torch.zeros_like(coarse)
    assert torch.equal(base.refine(imgs, empty), empty) and not calls


@needs_ultralytics
def test_fastsam_odd_size_and_random_arch():
    ref = FastSAMRefiner(checkpoint=None, arch='yolov8n-seg.yaml')
    imgs, coarse = scene(b=1, h=40, w=48)
    masks = ref.segment_everything(imgs)
    assert masks[0].shape[1:] == (40, 48)
    out = ref.refine(imgs, coarse)
    # Random default-init weights detect nothing: R = R0.
    assert torch.equal(out, coarse)
    small = FastSAMRefiner(model='s', checkpoint=None)
    assert small.arch == 'yolov8s-seg.yaml' and small.checkpoint is None
    assert FastSAMRefiner().arch == 'yolov8x-seg.yaml'
    assert FastSAMRefiner(model='s').checkpoint == 'fastsam_s'
    with pytest.raises(ValueError, match='FastSAM-x'):
        FastSAMRefiner(model='s', checkpoint='fastsam_x')


@needs_ultralytics
def test_fm_fastsam_config_in_segmentor(fastsam_ckpt):
    """The FM-l + FastSAM config composes the refiner after the head."""
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.structures import PixelData

    from fdseg.structures import EpisodeDataSample

    repo = REPO
    cfg = Config.fromfile(
        os.path.join(
            repo, 'configs/fm/fm-fastsam_pdn-l_no-train_synthetic-all-1shot.py'
        )
    )
    assert cfg.model.refiner.type == 'FastSAMRefiner'
    cfg.model.backbone.init_cfg = None  # random FM-l
    cfg.model.refiner.checkpoint = fastsam_ckpt
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    assert not any(k.startswith('refiner') for k in model.state_dict())

    imgs, coarse = scene(b=1)
    s = EpisodeDataSample()
    s.support_imgs = imgs.byte()
    s.support_masks = coarse.clone()
    s.gt_sem_seg = PixelData(data=coarse.clone())
    s.set_metainfo(dict(img_shape=(64, 64), ori_shape=(64, 64)))
    query = imgs[0].byte()
    data = model.data_preprocessor(pseudo_collate([dict(inputs=query, data_samples=s)]))
    with torch.no_grad():
        out = model.predict(**data)
    pred = out[0].pred_sem_seg.data[0]
    r0 = out[0].seg_logits.data.argmax(0)
    # The refiner sees the query in 0..255 RGB (normalisation undone).
    shown = model.data_preprocessor.denormalize(data['inputs'])
    assert torch.allclose(shown[0], query.float(), atol=1e-3)
    masks = model.refiner.segment_everything(shown)[0]
    assert torch.equal(pred, MaskFusion()(r0, masks))


@needs_ultralytics
def test_ultralytics_safe_load_adapter():
    import ultralytics.nn.tasks as tasks

    from fdseg.models.adapters.ultralytics import safe_load

    before = tasks.SAFE_LOAD
    with safe_load():
        assert tasks.SAFE_LOAD is True
    assert tasks.SAFE_LOAD == before
    with pytest.raises(KeyError), safe_load():
        raise KeyError
    assert tasks.SAFE_LOAD == before


@needs_ultralytics
def test_fastsam_missing_weights_message(tmp_path, monkeypatch):
    monkeypatch.setenv('FDSEG_CHECKPOINT_DIR', str(tmp_path))
    ref = FastSAMRefiner(checkpoint='fastsam_x')  # constructing is fine
    with pytest.raises(FileNotFoundError, match='FastSAM-x.pt'):
        ref.load()


# ---------------------------------------------------------------------------
# SAM2 prompts (by hand)
def test_prompts_points_by_hand():
    r = torch.zeros(6, 6, dtype=torch.bool)
    r[1, 1:4] = True
    r[3, 0] = True
    p = prompts_from_mask(r, 'points')
    assert p['points'][:, 0].tolist() == [[1, 1], [2, 1], [3, 1], [0, 3]]
    assert p['labels'].tolist() == [[1]] * 4 and p['boxes'] is None
    p = prompts_from_mask(r, 'points', point_stride=2)
    assert p['points'][:, 0].tolist() == [[1, 1], [3, 1]]
    r2 = torch.zeros(6, 6, dtype=torch.bool)
    r2[0:5, 0:5] = True
    p = prompts_from_mask(r2, 'points', point_stride=2, point_sampling='grid')
    assert p['points'][:, 0].tolist() == [
        [0, 0],
        [2, 0],
        [4, 0],
        [0, 2],
        [2, 2],
        [4, 2],
        [0, 4],
        [2, 4],
        [4, 4],
    ]
    assert prompts_from_mask(torch.zeros(4, 4, dtype=torch.bool), 'points')[
        'points'
    ].shape == (0, 1, 2)


def test_prompts_components_by_hand():
    r = torch.zeros(8, 8, dtype=torch.bool)
    r[1:3, 1:4] = True  # 2x3 block: centroid (2, 1.5)
    # An L: col 5 rows 4-7 and row 7 cols 6-7 -> centroid (5.5, 6), which
    # is not a pixel of the L.
    r[4:8, 5] = True
    r[7, 5:8] = True
    p = prompts_from_mask(r, 'center_points')
    assert torch.allclose(p['points'][:, 0], torch.tensor([[2.0, 1.5], [5.5, 6.0]]))
    assert p['boxes'] is None
    p = prompts_from_mask(r, 'center_points', center='inside')
    # Nearest pixels: (2, 1) and (2, 2) tie for the block -> raster-first;
    # (5, 6) for the L.
    assert p['points'][:, 0].tolist() == [[2, 1], [5, 6]]
    p = prompts_from_mask(r, 'boxes')
    assert p['points'] is None
    assert p['boxes'].tolist() == [[1, 1, 3, 2], [5, 4, 7, 7]]
    p = prompts_from_mask(r, 'center_points_boxes')
    assert p['points'].shape == (2, 1, 2) and p['boxes'].shape == (2, 4)
    with pytest.raises(ValueError):
        prompts_from_mask(r, 'everything')


# ---------------------------------------------------------------------------
# SAM2 refiner (random SAM2.1-t at a small input size for speed)


@pytest.fixture(scope='module')
def sam2_refiner():
    ref = SAM2PromptRefiner(
        model='t',
        checkpoint=None,
        image_size=128,
        prompt_mode='center_points',
        prompts_per_batch=2,
    )
    return ref


@needs_sam2
def test_sam2_lazy_outside_state_dict():
    ref = SAM2PromptRefiner(model='t', checkpoint=None)
    assert ref._engine == [] and len(ref.state_dict()) == 0
    assert SAM2PromptRefiner().checkpoint == 'sam2.1_hiera_small'
    with pytest.raises(ValueError):
        SAM2PromptRefiner(prompt_mode='text')
    with pytest.raises(ValueError, match='sam2.1_hiera_t.yaml'):
        SAM2PromptRefiner(model='t', checkpoint='sam2.1_hiera_small')


@pytest.mark.parametrize(
    'mode,stride',
    [('points', 8), ('center_points', 1), ('boxes', 1), ('center_points_boxes', 1)],
)
@needs_sam2
def test_sam2_prompt_modes(sam2_refiner, monkeypatch, mode, stride):
    ref = sam2_refiner
    monkeypatch.setattr(ref, 'prompt_mode', mode)
    monkeypatch.setattr(ref, 'point_stride', stride)
    imgs, coarse = scene()
    pred = ref.load('cpu')
    encodes = []
    orig = pred.model.forward_image
    monkeypatch.setattr(
        pred.model, 'forward_image', lambda x: encodes.append(1) or orig(x)
    )
    seen = []
    orig_pp = ref.predict_prompts

    def spy(p, prompts, size):
        m = orig_pp(p, prompts, size)
        seen.append(m)
        return m

    monkeypatch.setattr(ref, 'predict_prompts', spy)
    out = ref.refine(imgs, coarse)
    # One encoding for the query with R0 (several prompts, batches of 2),
    # none for the empty one.
    assert len(encodes) == 1
    assert out.shape == coarse.shape and torch.equal(out[1], coarse[1])
    n_fg = int((coarse[0] > 0).sum())
    n_prompts = (n_fg + 7) // 8 if mode == 'points' else 2
    assert seen[0].shape == (n_prompts, 64, 64)
    assert torch.equal(out[0], MaskFusion()(coarse[0], seen[0]))


@needs_sam2
def test_sam2_batched_prompts_match_single(sam2_refiner, monkeypatch):
    """Batched decoding equals the public predictor called per prompt."""
    ref = sam2_refiner
    monkeypatch.setattr(ref, 'prompt_mode', 'center_points_boxes')
    imgs, coarse = scene(b=1)
    pred = ref.load('cpu')
    pred.set_image(ref._to_numpy(imgs[0]))
    prompts = prompts_from_mask(coarse[0] > 0, 'center_points_boxes')
    batched = ref.predict_prompts(pred, prompts, (64, 64))
    for i in range(batched.shape[0]):
        m, _, _ = pred.predict(
            point_coords=prompts['points'][i].numpy(),
            point_labels=prompts['labels'][i].numpy(),
            box=prompts['boxes'][i].numpy(),
            multimask_output=False,
        )
        agree = (torch.from_numpy(m[0]).bool() == batched[i]).float().mean()
        assert agree > 0.999
    # Single points: best of three by predicted IoU.
    pts = prompts_from_mask(coarse[0] > 0, 'center_points')
    batched = ref.predict_prompts(pred, pts, (64, 64))
    for i in range(batched.shape[0]):
        m, s, _ = pred.predict(
            point_coords=pts['points'][i].numpy(),
            point_labels=pts['labels'][i].numpy(),
            multimask_output=True,
        )
        best = torch.from_numpy(m[int(np.argmax(s))]).bool()
        assert (best == batched[i]).float().mean() > 0.999
    pred.reset_predictor()


@needs_sam2
def test_sam2_everything_mode():
    ref = SAM2PromptRefiner(
        model='t',
        checkpoint=None,
        image_size=128,
        prompt_mode='everything',
        points_per_side=4,
        amg_cfg=dict(pred_iou_thresh=0.0, stability_score_thresh=0.0),
    )
    imgs, coarse = scene()
    amg = ref.load('cpu')
    assert len(amg.point_grids[0]) == 16
    anns = amg.generate(ref._to_numpy(imgs[0]))
    masks = torch.from_numpy(np.stack([a['segmentation'] for a in anns]))
    out = ref.refine(imgs, coarse)
    assert torch.equal(out[0], MaskFusion()(coarse[0], masks))
    assert torch.equal(out[1], coarse[1])
