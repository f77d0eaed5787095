"""SAM2VideoSegmentor vs sam2's own SAM2VideoPredictor (paper Sec. 5.2).

The reference is the public predictor API, unchanged: ``init_state`` on the
video ``[support_0, ..., support_{K-1}, query]``, ``add_new_mask`` on the
support frames, ``propagate_in_video``, and the query frame's logits > 0.
Two things are substituted, and only these:

* ``load_video_frames`` returns in-memory frames: a transcription of
  ``load_video_frames_from_jpg_images`` on already-decoded 8-bit frames
  (``uint8 / 255``, then SAM2's mean / std), so no JPEG loss enters.
* Hole filling needs sam2's compiled CUDA extension (absent here: the
  predictor then skips the step with a warning). The tests either set
  ``fill_hole_area=0`` on both sides or give the predictor a pure-Python
  8-connected component labelling in place of the extension.

Same random weights on both sides (``build_sam2(..., ckpt_path=None)``),
tiny model at 256, frames at 256 (so the only resize is the output's).
"""

import glob
import os.path as osp
import warnings
from collections import deque

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip('sam2', reason='sam2 is not installed')

from mmengine.config import Config  # noqa: E402

from fdseg.models.segmentors.sam2_video_segmentor import (  # noqa: E402
    NO_OBJ_SCORE,
    SAM2VideoSegmentor,
    fill_holes_in_mask_scores,
)
from fdseg.structures import EpisodeDataSample  # noqa: E402
from tests.conftest import REPO

S = 256  # SAM2 image_size and frame size of the equivalence tests


# ----------------------------------------------------------------------
# the reference: sam2's SAM2VideoPredictor
# ----------------------------------------------------------------------
def in_memory_loader(frames_u8):
    """A ``load_video_frames`` over decoded ``[H, W, 3]`` uint8 frames.

    Transcribes sam2.utils.misc.load_video_frames_from_jpg_images after the
    JPEG decode and PIL resize (frames are already ``image_size``).
    """

    def loader(
        video_path,
        image_size,
        offload_video_to_cpu,
        img_mean=(0.485, 0.456, 0.406),
        img_std=(0.229, 0.224, 0.225),
        async_loading_frames=False,
        compute_device=None,
    ):
        images = torch.zeros(
            len(frames_u8), 3, image_size, image_size, dtype=torch.float32
        )
        for n, f in enumerate(frames_u8):
            assert f.shape[:2] == (image_size, image_size)
            images[n] = torch.from_numpy(f / 255.0).permute(2, 0, 1)
        img_mean = torch.tensor(img_mean, dtype=torch.float32)[:, None, None]
        img_std = torch.tensor(img_std, dtype=torch.float32)[:, None, None]
        images -= img_mean
        images /= img_std
        return images, frames_u8[0].shape[0], frames_u8[0].shape[1]

    return loader


def python_connected_components(mask):
    """8-connected components of ``[N, 1, H, W]`` uint8, like sam2's _C.

    Returns labels (0 for background) and, per pixel, its component's area.
    """
    m = mask.cpu().numpy().astype(bool)
    labels = np.zeros(m.shape, np.int32)
    areas = np.zeros(m.shape, np.int32)
    H, W = m.shape[-2:]
    for n in range(m.shape[0]):
        lab, area, cur = labels[n, 0], areas[n, 0], 0
        for y0 in range(H):
            for x0 in range(W):
                if not m[n, 0, y0, x0] or lab[y0, x0]:
                    continue
                cur += 1
                lab[y0, x0] = cur
                comp, queue = [], deque([(y0, x0)])
                while queue:
                    y, x = queue.popleft()
                    comp.append((y, x))
                    for dy in (-1, 0, 1):
                        for dx in (-1, 0, 1):
                            v, u = y + dy, x + dx
                            if (
                                0 <= v < H
                                and 0 <= u < W
                                and m[n, 0, v, u]
                                and not lab[v, u]
                            ):
                                lab[v, u] = cur
                                queue.append((v, u))
                for y, x in comp:
                    area[y, x] = len(comp)
    return torch.from_numpy(labels), torch.from_numpy(areas)


def predictor_query_logits(
    predictor, supports, masks, query, monkeypatch, fill_hole_area=0
):
    """Query-frame logits ``[H, W]`` from SAM2VideoPredictor.

    Args:
        predictor: A ``SAM2VideoPredictor``.
        supports (list[np.ndarray]): ``[H, W, 3]`` uint8 support frames.
        masks (list[np.ndarray]): ``[H, W]`` binary masks.
        query (np.ndarray): ``[H, W, 3]`` uint8 query frame.
        monkeypatch: pytest's fixture (the frame loader is replaced).
        fill_hole_area (int): The predictor's hole filling.
    """
    import sam2.sam2_video_predictor as svp
    import sam2.utils.misc as misc

    monkeypatch.setattr(
        svp, 'load_video_frames', in_memory_loader(list(supports) + [query])
    )
    if fill_hole_area:
        monkeypatch.setattr(
            misc, 'get_connected_components', python_connected_components
        )
    predictor.fill_hole_area = fill_hole_area
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        state = predictor.init_state(video_path='in-memory')
        for k, m in enumerate(masks):
            predictor.add_new_mask(
                state, frame_idx=k, obj_id=1, mask=torch.from_numpy(m).bool()
            )
        out = {f: lg for f, _, lg in predictor.propagate_in_video(state)}
    return out[len(supports)][0, 0]


# ----------------------------------------------------------------------
# fixtures
# ----------------------------------------------------------------------
@pytest.fixture(scope='module')
def models():
    """The segmentor and sam2's predictor with the same random weights."""
    from mmengine.registry import init_default_scope

    init_default_scope('fdseg')
    from sam2.build_sam import build_sam2_video_predictor

    torch.manual_seed(0)
    seg = SAM2VideoSegmentor('tiny', image_size=S, fill_hole_area=0)
    predictor = build_sam2_video_predictor(
        'configs/sam2.1/sam2.1_hiera_t.yaml',
        None,
        device='cpu',
        hydra_overrides_extra=[f'++model.image_size={S}'],
    )
    predictor.load_state_dict(seg.sam2.state_dict())
    return seg, predictor


@pytest.fixture
def seg_settings(models):
    """Restore the segmentor's settings after a test changes them."""
    seg = models[0]
    saved = (seg.fill_hole_area, seg.empty_support)
    yield seg
    seg.fill_hole_area, seg.empty_support = saved
    seg.clear_support()


def smooth_image(seed, size=S, defect=None):
    """``[H, W, 3]`` uint8: smooth texture, optionally a dark rectangle."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, size // 8, size // 8, generator=g) * 140 + 60
    x = F.interpolate(x, (size, size), mode='bicubic', align_corners=False)
    img = x.clamp(0, 255).round()[0].permute(1, 2, 0).to(torch.uint8).numpy()
    if defect is not None:
        y0, y1, x0, x1 = defect
        img[y0:y1, x0:x1] = 40
    return np.ascontiguousarray(img)


def rect_mask(y0, y1, x0, x1, size=S, hole=None):
    """``[H, W]`` uint8 rectangle mask, optionally with a hole."""
    m = np.zeros((size, size), np.uint8)
    m[y0:y1, x0:x1] = 1
    if hole is not None:
        hy0, hy1, hx0, hx1 = hole
        m[hy0:hy1, hx0:hx1] = 0
    return m


def chw(img):
    """``[H, W, 3]`` uint8 array -> ``[3, H, W]`` float 0..255."""
    return torch.from_numpy(img).permute(2, 0, 1).float()


def segmentor_query_logits(seg, supports, masks, query):
    """Way-1 query logits ``[H, W]``, object scores, support state."""
    state = seg.encode_support(
        torch.stack([chw(s) for s in supports]),
        torch.from_numpy(np.stack(masks)),
        normalized=False,
    )
    logits, scores = seg.segment(chw(query)[None], [state], normalized=False)
    return logits[0][1], scores[0], state


def assert_same_mask(ours, ref):
    """Same query mask, and bitwise the same logits."""
    assert torch.equal(ours > 0, ref > 0), (
        f'{int(((ours > 0) != (ref > 0)).sum())} pixels differ'
    )
    # Same operations in the same order: the logits are bitwise equal too.
    assert torch.equal(ours, ref), float((ours - ref).abs().max())


# ----------------------------------------------------------------------
# equivalence with SAM2VideoPredictor
# ----------------------------------------------------------------------
def test_matches_video_predictor_1shot(models, seg_settings, monkeypatch):
    """1-shot with the predictor's hole filling (8 px) on both sides."""
    seg, predictor = models
    # The 8x8 hole survives the 4x downsampling of the conditioning mask,
    # so hole filling also acts on the support memory.
    sup = smooth_image(1, defect=(100, 140, 60, 130))
    mask = rect_mask(100, 140, 60, 130, hole=(116, 124, 88, 96))
    query = smooth_image(2, defect=(50, 80, 150, 200))
    ref = predictor_query_logits(
        predictor, [sup], [mask], query, monkeypatch, fill_hole_area=8
    )
    seg.fill_hole_area = 8
    ours, scores, state = segmentor_query_logits(seg, [sup], [mask], query)
    assert ours.shape == (S, S) and scores.shape == (1,)
    assert_same_mask(ours, ref)
    assert 0 < int((ours > 0).sum()) < S * S  # a real mask, not a constant
    # The filling did something on both the support and the query.
    seg.fill_hole_area = 0
    unfilled, _, state0 = segmentor_query_logits(seg, [sup], [mask], query)
    assert (state[0]['cond'][0]['pred_masks'] <= 0).sum() < (
        state0[0]['cond'][0]['pred_masks'] <= 0
    ).sum()
    assert not torch.equal(unfilled > 0, ours > 0)


def test_matches_video_predictor_2shot(models, seg_settings, monkeypatch):
    """K-shot: K conditioning frames; no hole filling on either side."""
    seg, predictor = models
    supports = [
        smooth_image(3, defect=(30, 60, 30, 90)),
        smooth_image(4, defect=(150, 200, 100, 130)),
    ]
    masks = [rect_mask(30, 60, 30, 90), rect_mask(150, 200, 100, 130)]
    query = smooth_image(5, defect=(80, 120, 80, 160))
    ref = predictor_query_logits(predictor, supports, masks, query, monkeypatch)
    ours, _, state = segmentor_query_logits(seg, supports, masks, query)
    assert sorted(state[0]['cond']) == [0, 1]  # K conditioning frames
    assert state[0]['num_frames'] == 3
    assert_same_mask(ours, ref)


def test_empty_support(models, seg_settings, monkeypatch):
    """An empty support mask: 'track' = the predictor, 'background' = none."""
    seg, predictor = models
    sup, query = smooth_image(6), smooth_image(7, defect=(10, 40, 10, 40))
    empty = np.zeros((S, S), np.uint8)
    ref = predictor_query_logits(predictor, [sup], [empty], query, monkeypatch)
    seg.empty_support = 'track'
    ours, scores, state = segmentor_query_logits(seg, [sup], [empty], query)
    assert_same_mask(ours, ref)
    # SAM2 marks the conditioning frame itself as "no object".
    assert float(state[0]['cond'][0]['object_score_logits']) < 0

    seg.empty_support = 'background'
    calls = []
    orig = seg.sam2.track_step
    monkeypatch.setattr(
        seg.sam2, 'track_step', lambda *a, **k: calls.append(1) or orig(*a, **k)
    )
    ours, scores, state = segmentor_query_logits(seg, [sup], [empty], query)
    assert state == [None] and not calls  # the tracker never runs
    assert torch.all(ours == NO_OBJ_SCORE)
    assert scores.tolist() == [NO_OBJ_SCORE]


def test_defect_free_query(models, seg_settings, monkeypatch):
    """A query SAM2 scores as "no object" is all background on both sides."""
    seg, predictor = models
    saved = {k: v.clone() for k, v in seg.sam2.state_dict().items()}
    # Push the object-score head below 0: SAM2 then declares the object
    # absent from the query (the supports' scores come from their masks).
    head = seg.sam2.sam_mask_decoder.pred_obj_score_head.layers[-1]
    with torch.no_grad():
        head.bias.fill_(-100.0)
    predictor.load_state_dict(seg.sam2.state_dict())
    try:
        sup = smooth_image(8, defect=(100, 140, 60, 130))
        mask = rect_mask(100, 140, 60, 130)
        query = smooth_image(9)
        ref = predictor_query_logits(predictor, [sup], [mask], query, monkeypatch)
        ours, scores, _ = segmentor_query_logits(seg, [sup], [mask], query)
        assert torch.all(ref == NO_OBJ_SCORE)
        assert torch.equal(ours, ref)
        assert float(scores[0]) < 0
    finally:
        seg.sam2.load_state_dict(saved)
        predictor.load_state_dict(saved)


# ----------------------------------------------------------------------
# inputs as the official loader makes them
# ----------------------------------------------------------------------
def test_frames_and_masks_match_official_loader(models, tmp_path):
    """Frames as load_video_frames, masks as add_new_mask make them."""
    seg, predictor = models
    from sam2.utils.misc import _load_img_as_tensor

    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]

    # Same size: bitwise the loader's frames, also after the ImageNet
    # normalisation round trip of the data preprocessor.
    img = smooth_image(10)
    ref = in_memory_loader([img])(None, S, False)[0][0]
    assert torch.equal(seg.sam2_frames(chw(img)[None], False)[0], ref)
    normed = seg.data_preprocessor.normalize(chw(img)[None])
    assert torch.equal(seg.sam2_frames(normed)[0], ref)

    # Other sizes: the official PIL resize (lossless PNG, so only the
    # resampling differs), within one grey level.
    import cv2

    for size in (128, 200):
        small = smooth_image(11, size=size)
        path = str(tmp_path / f'f{size}.png')
        cv2.imwrite(path, small[..., ::-1])
        pil, _, _ = _load_img_as_tensor(path, S)
        pil = (pil.float() - mean) / std
        ours = seg.sam2_frames(chw(small)[None], False)[0]
        assert ((ours - pil) * std * 255).abs().max() <= 1.0 + 1e-3

    # Masks: what add_new_mask stores for a 128 x 128 mask.
    import sam2.sam2_video_predictor as svp

    m = rect_mask(10, 50, 20, 33, size=128)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(svp, 'load_video_frames', in_memory_loader([img]))
        state = predictor.init_state(video_path='in-memory')
        predictor.add_new_mask(state, 0, 1, torch.from_numpy(m).bool())
    assert torch.equal(
        seg.sam2_mask(torch.from_numpy(m)), state['mask_inputs_per_obj'][0][0]
    )


def test_fill_holes():
    """Holes up to max_area pixels, 8-connected, filled with logit 0.1."""
    m = torch.full((1, 1, 12, 12), 5.0)
    m[0, 0, 1:3, 1:5] = -1.0  # area 8
    m[0, 0, 6:9, 6:9] = -1.0  # area 9
    m[0, 0, 1, 9] = m[0, 0, 2, 10] = -2.0  # diagonal neighbours: area 2
    out = fill_holes_in_mask_scores(m, 8)
    assert torch.all(out[0, 0, 1:3, 1:5] == 0.1)
    assert torch.all(out[0, 0, 6:9, 6:9] == -1.0)
    assert out[0, 0, 1, 9] == 0.1 and out[0, 0, 2, 10] == 0.1
    assert torch.equal(fill_holes_in_mask_scores(m, 0), m)
    # Same as sam2's own function with the component labelling it expects.
    import sam2.utils.misc as misc

    g = torch.Generator().manual_seed(0)
    r = torch.randn(2, 1, 32, 32, generator=g)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(misc, 'get_connected_components', python_connected_components)
        ref = misc.fill_holes_in_mask_scores(r, 8)
    assert torch.equal(fill_holes_in_mask_scores(r, 8), ref)


# ----------------------------------------------------------------------
# the segmentor API
# ----------------------------------------------------------------------
def _episode_sample(supports, masks, labels=None, key='set-a'):
    """An EpisodeDataSample as PackEpisodeInputs makes it (uint8)."""
    s = EpisodeDataSample()
    s.support_imgs = torch.stack([chw(x).to(torch.uint8) for x in supports])
    s.support_masks = torch.from_numpy(np.stack(masks)).long()
    if labels is not None:
        s.support_labels = torch.tensor(labels)
    s.set_metainfo(dict(support_key=key, img_shape=(S, S), ori_shape=(S, S)))
    return s


def test_support_memory_is_cached(models, seg_settings, monkeypatch):
    """Through the data preprocessor: supports encoded once per set."""
    seg, _ = models
    sup = smooth_image(12, defect=(100, 140, 60, 130))
    mask = rect_mask(100, 140, 60, 130)
    queries = [smooth_image(13), smooth_image(14)]
    calls = []
    orig = seg.sam2.forward_image
    monkeypatch.setattr(
        seg.sam2, 'forward_image', lambda x: calls.append(x.shape[0]) or orig(x)
    )
    preds = []
    for q in queries:
        data = dict(
            inputs=[chw(q).to(torch.uint8)],
            data_samples=[_episode_sample([sup], [mask])],
        )
        out = seg.test_step(data)[0]
        assert out.seg_logits.data.shape == (2, S, S)
        assert out.pred_sem_seg.data.shape == (1, S, S)
        assert out.obj_score_logits.shape == (1,)
        preds.append(out)
    assert calls == [1, 1, 1]  # support once, then one query each

    # A pinned support set (raw uint8, no preprocessor) serves any episode,
    # with the same result: the normalisation round trip is exact once the
    # frames are rounded to 8 bits.
    seg.clear_support()
    seg.set_support(chw(sup)[None].to(torch.uint8), torch.from_numpy(mask)[None])
    calls.clear()
    data = dict(
        inputs=[chw(queries[1]).to(torch.uint8)],
        data_samples=[_episode_sample([sup], [mask], key='other')],
    )
    out = seg.test_step(data)[0]
    assert calls == [1]
    assert torch.equal(out.seg_logits.data, preds[1].seg_logits.data)
    assert torch.equal(
        out.pred_sem_seg.data[0], (preds[1].seg_logits.data[1] > 0).long()
    )


def test_batch_and_ways(models, seg_settings):
    """Batched queries = one at a time; N-way = each way tracked alone."""
    seg, _ = models
    a = (smooth_image(15, defect=(20, 60, 20, 60)), rect_mask(20, 60, 20, 60))
    b = (smooth_image(16, defect=(150, 200, 150, 220)), rect_mask(150, 200, 150, 220))
    q = chw(smooth_image(17))[None]
    st_a = seg.encode_support(
        chw(a[0])[None], torch.from_numpy(a[1])[None], normalized=False
    )
    st_b = seg.encode_support(
        chw(b[0])[None], torch.from_numpy(b[1])[None], normalized=False
    )
    one_a, _ = seg.segment(q, [st_a], normalized=False)
    one_b, _ = seg.segment(q, [st_b], normalized=False)
    # A batch of two episodes (the same query against two support sets).
    batch, _ = seg.segment(torch.cat([q, q]), [st_a, st_b], normalized=False)
    torch.testing.assert_close(batch[0], one_a[0], rtol=0, atol=1e-3)
    torch.testing.assert_close(batch[1], one_b[0], rtol=0, atol=1e-3)

    # 2-way: supports labelled 2, 1; channel n is way n's own tracking.
    st_2 = seg.encode_support(
        torch.stack([chw(b[0]), chw(a[0])]),
        torch.from_numpy(np.stack([b[1], a[1]])),
        torch.tensor([2, 1]),
        normalized=False,
    )
    two, scores = seg.segment(q, [st_2], normalized=False)
    assert two[0].shape == (3, S, S) and scores[0].shape == (2,)
    assert torch.equal(two[0][1], one_a[0][1])
    assert torch.equal(two[0][2], one_b[0][1])
    assert torch.all(two[0][0] == 0)

    # Output at a smaller img_shape (top-left valid region of the input).
    small, _ = seg.segment(q, [st_a], out_shapes=[(100, 120)], normalized=False)
    assert small[0].shape == (2, 100, 120)


def test_invalid_arguments(models):
    """Training, odd sizes and unknown options are refused."""
    seg, _ = models
    with pytest.raises(NotImplementedError):
        seg.loss(None, None)
    with pytest.raises(ValueError, match='multiple of 32'):
        SAM2VideoSegmentor('tiny', image_size=300)
    with pytest.raises(ValueError, match='empty_support'):
        SAM2VideoSegmentor('tiny', image_size=S, empty_support='skip')


def test_checkpoint_through_resolver(models, tmp_path, monkeypatch):
    """Official-format weights ({'model': sd}) load via the resolver."""
    seg, _ = models
    sd = {k: v.clone() for k, v in seg.sam2.state_dict().items()}
    torch.save({'model': sd}, str(tmp_path / 'sam2.1_hiera_tiny.pt'))
    monkeypatch.setenv('FDSEG_CHECKPOINT_DIR', str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # no published sha256
        torch.manual_seed(123)
        other = SAM2VideoSegmentor('tiny', checkpoint='sam2.1_hiera_tiny', image_size=S)
        # Nothing is read while building; init_weights() loads the file.
        assert not torch.equal(
            other.sam2.state_dict()['image_encoder.neck.convs.0.conv.weight'],
            sd['image_encoder.neck.convs.0.conv.weight'],
        )
        other.init_weights()
    for k, v in other.sam2.state_dict().items():
        assert torch.equal(v, sd[k]), k
    assert not any(p.requires_grad for p in other.parameters())


# ----------------------------------------------------------------------
# configs
# ----------------------------------------------------------------------
TABLE4 = {  # config stem prefix -> (model_cfg, checkpoint, image_size)
    'sam2_hiera-l-1024': ('large', 'sam2.1_hiera_large', 1024),
    'sam2_hiera-bplus-1024': ('base_plus', 'sam2.1_hiera_base_plus', 1024),
    'sam2_hiera-t-1024': ('tiny', 'sam2.1_hiera_tiny', 1024),
    'sam2_hiera-s-1024': ('small', 'sam2.1_hiera_small', 1024),
    'sam2_hiera-s-512': ('small', 'sam2.1_hiera_small', 512),
    'sam2_hiera-s-256': ('small', 'sam2.1_hiera_small', 256),
}


def test_configs_cover_table4():
    """Every Table 4 SAM2 row, on both GFDS folds and synthetic, 1/5-shot."""
    files = sorted(glob.glob(osp.join(REPO, 'configs', 'sam2', '*.py')))
    seen = set()
    for f in files:
        cfg = Config.fromfile(f)
        stem = osp.basename(f)[:-3]
        prefix, rest = stem.split('_no-train_')
        data, shot = rest.rsplit('-', 1)
        shot = int(shot[: -len('shot')])
        assert prefix in TABLE4, stem
        model_cfg, ckpt, size = TABLE4[prefix]
        assert cfg.model.type == 'SAM2VideoSegmentor'
        assert (cfg.model.model_cfg, cfg.model.checkpoint, cfg.model.image_size) == (
            model_cfg,
            ckpt,
            size,
        )
        assert cfg.test_dataloader.dataset.shot == shot
        # mmengine's Runner wants all three or none of them.
        val = [
            cfg.get(k) is None for k in ('val_dataloader', 'val_cfg', 'val_evaluator')
        ]
        assert len(set(val)) == 1, stem
        if data.startswith('gfds-'):
            assert cfg.test_dataloader.dataset.split == data[len('gfds-') :]
        seen.add((prefix, data, shot))
    assert seen == {
        (p, d, k)
        for p in TABLE4
        for k in (1, 5)
        for d in ('gfds-fold0', 'gfds-fold1', 'synthetic-all')
    }


@pytest.mark.slow
def test_tools_test_end_to_end(tmp_path):
    """tools/test.py on generated data, random weights (SAM2-s at 256)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        'fdseg_test_tool', osp.join(REPO, 'tools', 'test.py')
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    cfg = osp.join(
        REPO, 'configs', 'sam2', 'sam2_hiera-s-256_no-train_synthetic-all-1shot.py'
    )
    metrics = tool.main(
        [
            cfg,
            '--work-dir',
            str(tmp_path / 'wd'),
            '--cfg-options',
            'model.checkpoint=None',
            'model.model_cfg=tiny',
            f'test_dataloader.dataset.data_root={tmp_path / "data"}',
            'test_dataloader.dataset.num_images=3',
            'test_dataloader.dataset.indices=2',
        ]
    )
    assert 'mIoU' in metrics and 'FB-IoU' in metrics


def test_sam2_model_table():
    """One SAM2.1 table; both spellings resolve to the same entry."""
    from fdseg.models.adapters.sam2 import SAM2_ALIASES, sam2_model
    from fdseg.models.refiners.sam2_prompt_refiner import SAM21_MODELS
    from fdseg.models.segmentors.sam2_video_segmentor import SAM2_VARIANTS

    for short, name in SAM2_ALIASES.items():
        assert sam2_model(short) == sam2_model(name) == SAM21_MODELS[short]
        assert sam2_model(name)[1].startswith('sam2.1_hiera_')
    assert SAM2_VARIANTS['large'] == sam2_model('l')
    assert sam2_model('configs/sam2.1/sam2.1_hiera_s.yaml') is None
