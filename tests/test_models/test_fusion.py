"""Tests of the FastSAM / SAM2 mask fusion (paper eqs. 9-14, Table 7).

Expected outputs come from hand-made masks with hand-computed results, from
a line-by-line transcription of the official ``main.py`` / ``utils.py``
loops, and from a transcription of the paper's equations (loops over
components and masks, OpenCV dilation) -- never from fusion.py itself.
"""

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import label as nd_label

from fdseg.models.refiners.fusion import (
    MaskFusion,
    component_stats,
    connected_components,
    dilate,
    fuse,
    mask_coverage,
    overlap_owner,
    remove_overlap,
    select_masks,
)


def box(h, w, y0, y1, x0, x1):
    """Bool mask with rows y0..y1 and cols x0..x1 (inclusive) set."""
    m = torch.zeros(h, w, dtype=torch.bool)
    m[y0 : y1 + 1, x0 : x1 + 1] = True
    return m


def stack(*ms):
    return torch.stack(ms) if ms else torch.zeros(0, 12, 12, dtype=torch.bool)


# ---------------------------------------------------------------------------
# References
def official_remove_overlap(masks):
    """utils.remove_overlap of the official repo, on [H, W, N] (CPU)."""
    input_tensor = masks.permute(1, 2, 0).float().clone()
    areas = input_tensor.sum(dim=(0, 1))
    sorted_indices = torch.argsort(areas, stable=True)
    sorted_input_tensor = input_tensor[:, :, sorted_indices]
    output_tensor = torch.zeros_like(input_tensor)
    mask = torch.zeros(input_tensor.shape[0], input_tensor.shape[1]).bool()
    for i in range(sorted_input_tensor.shape[-1]):
        current_slice = sorted_input_tensor[:, :, i]
        current_slice[mask] = 0
        output_tensor[:, :, i] = current_slice
        mask |= current_slice == 1
    # NB: the official function returns the masks in *sorted* order; the
    # order does not matter downstream (sets), so compare as sets.
    return output_tensor.permute(2, 0, 1).bool(), sorted_indices


def official_fusion(pred, sam_mask, kernel=21, tau1=0.2, tau2=0.9, use_boundary=True):
    """Transcription of main.py's FastSAM block (CPU, one image).

    Args:
        pred: [H, W] long 0/1 (R0).
        sam_mask: [N, H, W] raw FastSAM masks.
    """
    imgsz = pred.shape[0]
    pred = pred[None].long()  # [1, H, W]
    if sam_mask.shape[0] == 0:
        return pred[0].bool()
    sam_mask = sam_mask.permute(1, 2, 0).float()
    pred_permute = pred.permute(1, 2, 0)
    sm, _ = official_remove_overlap(sam_mask.permute(2, 0, 1))
    sam_mask = sm.permute(1, 2, 0).float()
    intersection = torch.logical_and(pred_permute, sam_mask)
    intersection_sum = torch.sum(intersection, dim=(0, 1))
    mask_sum = torch.sum(sam_mask, dim=(0, 1)).float()
    over_lap = intersection_sum.float() / mask_sum
    indices_area = torch.nonzero(
        (over_lap > tau1) & ((mask_sum < 0.4 * imgsz * imgsz) | (over_lap > 0.6))
    )
    indices = indices_area[:, 0]
    if use_boundary:
        pred_r = pred_permute.clone()
        labeled, num_r = nd_label(pred.squeeze().numpy())
        labeled = torch.from_numpy(labeled).unsqueeze(-1)
        pred_r = pred_r * labeled
        s_mask_all = torch.zeros_like(pred_r)
        mask_refine_all = torch.zeros_like(pred_r)
    if indices.shape[0] != 0:
        selected_sam_mask = sam_mask[:, :, indices]
        dil = selected_sam_mask.unsqueeze(0).permute(3, 0, 1, 2)
        dil = F.max_pool2d(dil, kernel_size=kernel, stride=1, padding=kernel // 2)
        for j in range(selected_sam_mask.shape[2]):
            s_mask = selected_sam_mask[:, :, j].unsqueeze(-1)
            pred_permute = torch.logical_or(pred_permute, s_mask).to(torch.int64)
            if use_boundary:
                s_mask_dil = dil[j, :, :, :].permute(1, 2, 0)
                multi = (s_mask_dil * pred_r).to(torch.int64)
                non_zero_tensor = multi[multi != 0]
                counts = torch.bincount(non_zero_tensor)
                label_mask = torch.argmax(counts).item()
                pred_r_label = (pred_r == label_mask).int()
                inter2 = torch.logical_and(pred_r_label, s_mask_dil)
                overlap2 = torch.sum(inter2) / torch.sum(pred_r_label)
                if overlap2 > tau2:
                    mask_refine = s_mask_dil * (1 - s_mask)
                    s_mask_all = torch.logical_or(s_mask_all, s_mask).to(torch.int64)
                    mask_refine_all = torch.logical_or(mask_refine, mask_refine_all).to(
                        torch.int64
                    )
        if use_boundary:
            mask_refine_all = mask_refine_all * (1 - s_mask_all)
            pred_permute = pred_permute * (1 - mask_refine_all)
    return pred_permute[..., 0].bool()


def paper_fusion(
    r0,
    raw_masks,
    kernel=21,
    tau1=0.2,
    tau2=0.9,
    strategy='morph',
    connectivity=4,
    complete=False,
):
    """Eqs. 9-14 written out with loops (numpy + OpenCV), paper variant."""
    r0 = r0.numpy().astype(bool)
    h, w = r0.shape
    ms = [m.numpy().astype(bool) for m in raw_masks]
    # eqs. 9-10: smaller masks first keep their pixels; add the remainder.
    order = sorted(range(len(ms)), key=lambda i: (ms[i].sum(), i))
    taken = np.zeros((h, w), bool)
    m_sam = []
    for i in order:
        m = ms[i] & ~taken
        taken |= m
        m_sam.append(m)
    if complete and not taken.all():
        m_sam.append(~taken)  # eq. 10 enforced: the masks cover I
    # eq. 11
    m_sel = [m for m in m_sam if m.sum() > 0 and (m & r0).sum() / m.sum() > tau1]
    # eq. 12
    r_sam = np.zeros((h, w), bool)
    for m in m_sel:
        r_sam |= m
    if strategy == 'sam':
        return torch.from_numpy(r_sam)
    if strategy == 'union':
        return torch.from_numpy(r_sam | r0)
    # eq. 13
    n, lab = cv2.connectedComponents(r0.astype(np.uint8), connectivity=connectivity)
    kern = np.ones((kernel, kernel), np.uint8)
    dils = [
        cv2.dilate(
            m.astype(np.uint8), kern, borderType=cv2.BORDER_CONSTANT, borderValue=0
        ).astype(bool)
        for m in m_sel
    ]
    r = r_sam.copy()
    for lid in range(1, n):
        comp = lab == lid
        if all((d & comp).sum() / comp.sum() < tau2 for d in dils):
            r |= comp  # eq. 14
    return torch.from_numpy(r)


# ---------------------------------------------------------------------------
# eqs. 9-10
def test_remove_overlap_by_hand():
    a = box(6, 6, 0, 3, 0, 3)  # 16 px
    b = box(6, 6, 2, 3, 2, 5)  # 8 px, overlaps a on rows 2-3 cols 2-3
    c = box(6, 6, 5, 5, 5, 5)  # 1 px
    out = remove_overlap(stack(a, b, c))
    assert out.shape == (3, 6, 6)
    # b is smaller than a: it keeps the shared pixels.
    assert torch.equal(out[1], b)
    assert torch.equal(out[0], a & ~b)
    assert torch.equal(out[2], c)
    assert int(out.sum(0).max()) == 1


def test_remove_overlap_nested_and_duplicates():
    big = box(5, 5, 0, 4, 0, 4)
    small = box(5, 5, 1, 2, 1, 2)
    out = remove_overlap(stack(big, small, small.clone()))
    # Equal areas: the earlier (more confident) duplicate wins.
    assert torch.equal(out[1], small)
    assert not out[2].any()
    assert torch.equal(out[0], big & ~small)


def test_remove_overlap_matches_official_loop():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        n = int(torch.randint(1, 8, (1,), generator=g))
        masks = torch.rand(n, 16, 16, generator=g) > 0.6
        ours = remove_overlap(masks)
        ref, order = official_remove_overlap(masks)
        assert torch.equal(ours[order], ref)
        # The torch path (used on CUDA) agrees.
        owner, _ = overlap_owner(masks, backend='torch')
        assert torch.equal(owner, overlap_owner(masks)[0])


def test_remove_overlap_many_masks_and_dtypes():
    # > 255 masks: the wider rank weights; uint8 / float inputs.
    g = torch.Generator().manual_seed(1)
    masks = torch.rand(300, 12, 12, generator=g) > 0.9
    ref, order = official_remove_overlap(masks)
    idx = torch.arange(300)[:, None, None]
    for m in (masks, masks.to(torch.uint8), masks.float()):
        for backend in ('numpy', 'torch'):
            owner, n = overlap_owner(m, backend=backend)
            assert n == 300
            assert torch.equal((owner[None] == idx)[order], ref)


def test_remove_overlap_complete_partition():
    a = box(4, 4, 0, 1, 0, 1)
    out = remove_overlap(stack(a), complete=True)
    assert out.shape[0] == 2
    assert torch.equal(out[1], ~a)
    assert bool((out.sum(0) == 1).all())  # eq. 10: disjoint, union = I
    full = remove_overlap(torch.zeros(0, 4, 4), complete=True)
    assert full.shape == (1, 4, 4) and bool(full.all())
    # Already a partition: nothing added.
    assert remove_overlap(stack(a, ~a), complete=True).shape[0] == 2
    assert remove_overlap(torch.zeros(0, 4, 4)).shape == (0, 4, 4)


# ---------------------------------------------------------------------------
# eq. 11
def test_select_thresholds_by_hand():
    h = w = 10
    r0 = box(h, w, 0, 0, 0, 9)  # first row
    m_020 = box(h, w, 0, 4, 0, 0)  # 5 px, 1 in R0 -> 0.2, not > 0.2
    m_025 = box(h, w, 0, 3, 1, 1)  # 4 px, 1 in R0 -> 0.25
    m_0 = box(h, w, 5, 6, 5, 6)  # no overlap
    empty = torch.zeros(h, w, dtype=torch.bool)
    masks = stack(m_020, m_025, m_0, empty)
    cov, area = mask_coverage(masks, r0)
    assert torch.allclose(cov, torch.tensor([0.2, 0.25, 0.0, 0.0]))
    assert area.tolist() == [5, 4, 4, 0]
    keep = select_masks(masks, r0, tau1=0.2)
    assert keep.tolist() == [False, True, False, False]


def test_select_official_area_rule():
    h = w = 10  # 0.4 * 100 = 40 px
    r0 = box(h, w, 0, 4, 0, 9)  # rows 0-4: 50 px
    big_half = box(h, w, 0, 9, 0, 9)  # 100 px, coverage 0.5
    big_most = box(h, w, 0, 6, 0, 9)  # 70 px, coverage 50/70 = 0.714
    small = box(h, w, 0, 1, 0, 9)  # 20 px, coverage 1
    masks = stack(big_half, big_most, small)
    official = select_masks(masks, r0, 0.2, max_area_ratio=0.4, large_overlap=0.6)
    paper = select_masks(masks, r0, 0.2, max_area_ratio=None)
    assert official.tolist() == [False, True, True]
    assert paper.tolist() == [True, True, True]
    # Area exactly 0.4 * H * W is "large" (official: area < 0.4 HW).
    m40 = box(h, w, 0, 3, 0, 9)  # 40 px, coverage 1 -> kept via > 0.6
    r0b = box(h, w, 3, 3, 0, 9)  # 10 of 40 px -> 0.25
    assert select_masks(stack(m40), r0b, 0.2).tolist() == [False]
    assert select_masks(stack(m40), r0, 0.2).tolist() == [True]


# ---------------------------------------------------------------------------
# Dilation and components
@pytest.mark.parametrize('k', [1, 3, 21])
def test_dilate_matches_opencv_and_official(k):
    g = torch.Generator().manual_seed(k)
    masks = torch.rand(3, 40, 33, generator=g) > 0.97
    masks[0, 0, 0] = True  # corner pixel: the border is background
    ours = dilate(masks, k)  # OpenCV on CPU
    ours_torch = dilate(masks, k, backend='torch')  # the CUDA path
    official = (
        F.max_pool2d(masks[:, None].float(), kernel_size=k, stride=1, padding=k // 2)[
            :, 0
        ]
        > 0
    )
    assert torch.equal(ours, official)
    assert torch.equal(ours_torch, official)
    with pytest.raises(ValueError):
        dilate(masks, 4)


def test_connected_components_connectivity():
    m = torch.zeros(5, 5, dtype=torch.bool)
    m[0, 0] = m[1, 1] = True  # diagonal neighbours
    m[3, 3] = m[3, 4] = True
    lab4, n4 = connected_components(m, 4)
    lab8, n8 = connected_components(m, 8)
    assert n4 == 3 and n8 == 2
    # Raster order of first pixels, as scipy (official).
    assert lab4[0, 0] == 1 and lab4[1, 1] == 2 and lab4[3, 3] == 3
    st = component_stats(lab4, n4)
    assert st['area'].tolist() == [1, 1, 2]
    assert st['centroid'].tolist() == [[0, 0], [1, 1], [3.5, 3]]
    assert st['box'].tolist() == [[0, 0, 0, 0], [1, 1, 1, 1], [3, 3, 4, 3]]


# ---------------------------------------------------------------------------
# eqs. 12-14 on hand-made masks (kernel 3: Dil = one-pixel growth)
H = W = 12


def test_fuse_replaces_covered_component_by_hand():
    a = box(H, W, 2, 4, 2, 4)  # component A (9 px)
    b = box(H, W, 9, 9, 9, 9)  # component B (1 px), far away
    r0 = a | b
    m1 = box(H, W, 2, 5, 2, 5)  # 16 px, covers A; Dil(m1) = rows/cols 1-6
    expected = m1 | b
    for replace in ('official', 'paper'):
        out = fuse(r0, stack(m1), 'morph', 0.9, 3, replace)
        assert torch.equal(out, expected), replace
    assert torch.equal(fuse(r0, stack(m1), 'union', 0.9, 3), r0 | m1)
    assert torch.equal(fuse(r0, stack(m1), 'sam', 0.9, 3), m1)


def test_fuse_official_keeps_tail_paper_drops_component():
    # A: rows 2-4 x cols 2-7 plus a tail pixel (3, 8): 19 px.
    a = box(H, W, 2, 4, 2, 7)
    a[3, 8] = True
    m1 = box(H, W, 2, 4, 2, 6)  # Dil(m1): rows 1-5, cols 1-7 -> 18/19
    official = fuse(a, stack(m1), 'morph', 0.9, 3, 'official')
    paper = fuse(a, stack(m1), 'morph', 0.9, 3, 'paper')
    tail = torch.zeros(H, W, dtype=torch.bool)
    tail[3, 8] = True
    # Official removes only the ring Dil(m1) \ m1 (col 7 of A); the tail
    # outside the dilated mask survives. The paper drops all of A.
    assert torch.equal(official, m1 | tail)
    assert torch.equal(paper, m1)


def test_fuse_paper_threshold_boundary():
    # A: 10 px, exactly 9 under Dil(m1): coverage 0.9. Eq. 13 keeps only
    # coverage < tau2, so the paper replaces A; officially 0.9 > 0.9 fails.
    a = box(H, W, 2, 2, 0, 9)
    m1 = box(H, W, 2, 2, 0, 7)  # 8 px; Dil: rows 1-3, cols 0-8 -> 9/10
    paper = fuse(a, stack(m1), 'morph', 0.9, 3, 'paper')
    official = fuse(a, stack(m1), 'morph', 0.9, 3, 'official')
    assert torch.equal(paper, m1)
    assert torch.equal(official, a)


def test_fuse_component_touched_by_two_masks():
    a = box(H, W, 2, 4, 2, 9)  # 24 px
    m1 = box(H, W, 2, 5, 2, 5)  # Dil covers cols 1-6 of A: 15/24
    m2 = box(H, W, 2, 4, 6, 9)  # Dil covers cols 5-10 of A: 15/24
    # Eq. 13 tests each mask alone: neither covers A, so A is kept even
    # though together they cover it; same officially.
    expected = a | m1 | m2
    for replace in ('official', 'paper'):
        out = fuse(a, stack(m1, m2), 'morph', 0.9, 3, replace)
        assert torch.equal(out, expected), replace


def test_fuse_mask_touching_two_components():
    # A is large and only half under Dil(m1); B is small and fully under it.
    a = box(H, W, 0, 2, 0, 7)  # 24 px
    b = box(H, W, 6, 6, 4, 5)  # 2 px
    m1 = box(H, W, 2, 5, 3, 4)  # 8 px, 2 in A; Dil: rows 1-6, cols 2-5
    r0 = a | b
    # Official: only the most-overlapping component (A: 8 px vs B: 2 px)
    # is tested; 8/24 < 0.9, nothing replaced -> R0 ∪ m1.
    official = fuse(r0, stack(m1), 'morph', 0.9, 3, 'official')
    assert torch.equal(official, r0 | m1)
    # Paper: every component is tested; B (2/2) is replaced, A kept.
    paper = fuse(r0, stack(m1), 'morph', 0.9, 3, 'paper')
    assert torch.equal(paper, m1 | a)


def test_fuse_official_ring_removes_neighbours_but_not_replacing_masks():
    a = box(H, W, 2, 4, 2, 4)  # replaced by m1
    c = box(H, W, 2, 4, 6, 6)  # separate component, inside Dil(m1)
    m1 = box(H, W, 2, 4, 2, 5)  # Dil: rows 1-5, cols 1-6
    m2 = box(H, W, 6, 6, 6, 6)  # selected elsewhere (far from any ring)
    r0 = a | c | m2
    out = fuse(r0, stack(m1, m2), 'morph', 0.9, 3, 'official')
    # A (9 px under Dil(m1)) beats c (3 px) and is replaced; the ring
    # Dil(m1) \ m1 (col 6, rows 1 and 5, col 1) also removes c, although c
    # itself was never tested. m2 replaces its own one-pixel component.
    assert torch.equal(out, m1 | m2)
    assert torch.equal(out, official_fusion(r0.long(), stack(m1, m2), 3))


def test_fuse_corner_cases():
    r0 = box(H, W, 2, 4, 2, 4)
    none = torch.zeros(0, H, W, dtype=torch.bool)
    empty = torch.zeros(H, W, dtype=torch.bool)
    for replace in ('official', 'paper'):
        # No masks: R = R0 (R_sam is empty), or empty for R_sam only.
        assert torch.equal(fuse(r0, none, 'morph', 0.9, 3, replace), r0)
        assert torch.equal(fuse(r0, none, 'union', 0.9, 3, replace), r0)
        assert not fuse(r0, none, 'sam', 0.9, 3, replace).any()
        # No R0 foreground.
        m = box(H, W, 0, 3, 0, 3)
        assert torch.equal(fuse(empty, stack(m), 'morph', 0.9, 3, replace), m)
    for variant in ('official', 'paper'):
        f = MaskFusion(variant, kernel_size=3)
        lab = torch.zeros(H, W, dtype=torch.long)
        assert not f(lab, stack(box(H, W, 0, 3, 0, 3))).any()
        assert torch.equal(f(r0.long(), none), r0.long())


def test_masks_covering_whole_image():
    full = torch.ones(1, H, W, dtype=torch.bool)
    r0 = box(H, W, 0, 5, 0, 11)  # half the image: coverage 0.5
    # Official: the full mask is "large" (>= 0.4 HW) and covered only 0.5
    # (not > 0.6): not selected, R = R0.
    off = MaskFusion('official', kernel_size=3)
    assert torch.equal(off(r0.long(), full), r0.long())
    # Paper: selected (0.5 > 0.2); it covers R0's component -> R = I.
    pap = MaskFusion('paper', kernel_size=3)
    assert bool(pap(r0.long(), full).all())
    # eq. 10 enforced with no mask at all: the "rest of the image" mask is
    # the whole image, selected as soon as R0 covers > tau1 of it.
    none = torch.zeros(0, H, W, dtype=torch.bool)
    assert torch.equal(pap(r0.long(), none), r0.long())
    lit = MaskFusion('paper', kernel_size=3, complete_partition=True)
    assert bool(lit(r0.long(), none).all())
    small = box(H, W, 0, 1, 0, 11)  # 24 px of 144 = 0.17 < 0.2
    assert torch.equal(lit(small.long(), none), small.long())
    # R0 = whole image too: both select it and R = I.
    whole = torch.ones(H, W, dtype=torch.long)
    assert bool(off(whole, full).all()) and bool(pap(whole, full).all())
    # Two masks tiling the image; R0 inside the first.
    top, bottom = box(H, W, 0, 5, 0, 11), box(H, W, 6, 11, 0, 11)
    r0 = box(H, W, 1, 4, 1, 10)  # 40 px of top's 72 -> 0.56
    out = MaskFusion('paper', kernel_size=3)(r0.long(), stack(top, bottom))
    assert torch.equal(out.bool(), top)
    # Officially top (72 px >= 57.6) needs > 0.6 coverage: not selected.
    out = MaskFusion('official', kernel_size=3)(r0.long(), stack(top, bottom))
    assert torch.equal(out.bool(), r0)


# ---------------------------------------------------------------------------
# Against the references on random scenes
def random_scene(g, h=48, w=48, n_masks=6, n_comp=5):
    r0 = torch.zeros(h, w, dtype=torch.bool)
    for _ in range(n_comp):
        y, x = torch.randint(0, h - 4, (2,), generator=g).tolist()
        dy, dx = torch.randint(1, 10, (2,), generator=g).tolist()
        r0[y : y + dy, x : x + dx] = True
    masks = []
    for _ in range(n_masks):
        y, x = torch.randint(0, h - 4, (2,), generator=g).tolist()
        dy, dx = torch.randint(2, 30, (2,), generator=g).tolist()
        m = torch.zeros(h, w, dtype=torch.bool)
        m[y : y + dy, x : x + dx] = True
        if torch.rand(1, generator=g) < 0.3:
            m &= torch.rand(h, w, generator=g) > 0.2  # ragged masks
        masks.append(m)
    return r0, torch.stack(masks)


@pytest.mark.parametrize('seed', range(25))
def test_official_variant_matches_official_code(seed):
    g = torch.Generator().manual_seed(seed)
    r0, masks = random_scene(g)
    for k in (3, 21):
        ref = official_fusion(r0.long(), masks, kernel=k)
        out = MaskFusion('official', kernel_size=k)(r0.long(), masks)
        assert torch.equal(out.bool(), ref), k
        # useBoundary=False is the plain union.
        ref_u = official_fusion(r0.long(), masks, kernel=k, use_boundary=False)
        out_u = MaskFusion('official', strategy='union')(r0.long(), masks)
        assert torch.equal(out_u.bool(), ref_u)


@pytest.mark.parametrize('seed', range(25))
def test_paper_variant_matches_equations(seed):
    g = torch.Generator().manual_seed(100 + seed)
    r0, masks = random_scene(g)
    for strategy in ('morph', 'union', 'sam'):
        for conn, complete in ((4, False), (8, False), (4, True)):
            ref = paper_fusion(
                r0,
                masks,
                kernel=7,
                strategy=strategy,
                connectivity=conn,
                complete=complete,
            )
            out = MaskFusion(
                'paper',
                kernel_size=7,
                strategy=strategy,
                connectivity=conn,
                complete_partition=complete,
            )(r0.long(), masks)
            assert torch.equal(out.bool(), ref), (strategy, conn, complete)


def test_multi_way_label_map():
    r0 = torch.zeros(H, W, dtype=torch.long)
    r0[2:5, 2:5] = 1
    r0[8:10, 8:10] = 2
    m1 = box(H, W, 2, 5, 2, 5)  # refines way 1
    m2 = box(H, W, 7, 10, 7, 10)  # refines way 2
    out = MaskFusion('official', kernel_size=3)(r0, stack(m1, m2))
    expected = torch.zeros_like(r0)
    expected[m1] = 1
    expected[m2] = 2
    assert torch.equal(out, expected)
    # Per-way masks through a callable.
    calls = []

    def masks_of(region):
        calls.append(int(region.sum()))
        return stack(m1) if region[3, 3] else stack(m2)

    out = MaskFusion('official', kernel_size=3)(r0, masks_of)
    assert torch.equal(out, expected) and calls == [9, 4]


def test_mask_fusion_options():
    f = MaskFusion('paper', tau1=0.3)
    assert f.max_area_ratio is None and f.replace == 'paper'
    assert not f.complete_partition and f.tau1 == 0.3
    assert 'paper' in repr(f)
    f = MaskFusion()
    assert (f.tau1, f.tau2, f.kernel_size, f.max_area_ratio) == (0.2, 0.9, 21, 0.4)
    with pytest.raises(TypeError):
        MaskFusion(tau3=1)
    with pytest.raises(ValueError):
        MaskFusion('other')
    with pytest.raises(ValueError):
        MaskFusion(strategy='intersection')
