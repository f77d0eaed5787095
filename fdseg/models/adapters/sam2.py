"""The sam2 package (1.1.x): model table and the private calls fdseg makes.

Pinned by:
    * tests/test_models/test_sam2_video.py::test_matches_video_predictor_1shot / _2shot:
      :func:`prepare_backbone_features` and :func:`encode_new_memory` give
      the query mask of the official ``SAM2VideoPredictor``.
    * tests/test_models/test_refiners.py::test_sam2_prompt_modes /
      test_sam2_batched_prompts_match_single: :func:`set_predictor_image_size`
      and :func:`predict_batched` give the masks of
      ``SAM2ImagePredictor.predict`` at a non-default ``image_size``.
    * tests/test_models/test_sam2_video.py::test_sam2_model_table: the table's names.
"""

from typing import Dict, Optional, Tuple

from torch import Tensor

#: The SAM2.1 models (paper Table 4: SAM2-t/s/b+/l), one table for fdseg:
#: name -> (sam2 package Hydra config, checkpoint name of the offline
#: resolver :func:`fdseg.utils.checkpoints.resolve_checkpoint`).
SAM2_MODELS: Dict[str, Tuple[str, str]] = {
    'tiny': ('configs/sam2.1/sam2.1_hiera_t.yaml', 'sam2.1_hiera_tiny'),
    'small': ('configs/sam2.1/sam2.1_hiera_s.yaml', 'sam2.1_hiera_small'),
    'base_plus': ('configs/sam2.1/sam2.1_hiera_b+.yaml', 'sam2.1_hiera_base_plus'),
    'large': ('configs/sam2.1/sam2.1_hiera_l.yaml', 'sam2.1_hiera_large'),
}
#: Short spellings (the paper's t/s/b+/l), accepted wherever a name is.
SAM2_ALIASES = {'t': 'tiny', 's': 'small', 'b+': 'base_plus', 'l': 'large'}


def sam2_model(name: str) -> Optional[Tuple[str, str]]:
    """``(hydra config, checkpoint name)`` of a SAM2.1 model, else None.

    Args:
        name (str): ``'tiny'``, ``'small'``, ``'base_plus'``, ``'large'`` or
            the short ``'t'``, ``'s'``, ``'b+'``, ``'l'``.
    """
    return SAM2_MODELS.get(SAM2_ALIASES.get(name, name))


# ----------------------------------------------------------------------
# SAM2Base internals (video-track mode, fdseg.models.segmentors)
# ----------------------------------------------------------------------
def prepare_backbone_features(sam, backbone_out: dict):
    """Call ``SAM2Base._prepare_backbone_features``.

    Returns:
        tuple: flattened multi-level features ``[HW, B, C]``, their
        position encodings and sizes.
    """
    _, feats, pos, sizes = sam._prepare_backbone_features(backbone_out)
    return feats, pos, sizes


def encode_new_memory(
    sam,
    feats: list,
    sizes: list,
    pred_masks_high_res: Tensor,
    object_score_logits: Tensor,
    is_mask_from_pts: bool = True,
):
    """Call ``SAM2Base._encode_new_memory`` (paper eq. 15).

    Returns:
        tuple: memory features and position encodings of one frame.
    """
    return sam._encode_new_memory(
        current_vision_feats=feats,
        feat_sizes=sizes,
        pred_masks_high_res=pred_masks_high_res,
        object_score_logits=object_score_logits,
        is_mask_from_pts=is_mask_from_pts,
    )


# ----------------------------------------------------------------------
# SAM2ImagePredictor internals (prompt refiner, fdseg.models.refiners)
# ----------------------------------------------------------------------
def set_predictor_image_size(predictor, image_size: int) -> None:
    """Set ``SAM2ImagePredictor._bb_feat_sizes`` for ``image_size``.

    The predictor hard-codes the feature sizes of a 1024 input.
    """
    s = image_size
    predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]


def predict_batched(
    predictor,
    points: Optional[Tensor],
    labels: Optional[Tensor],
    boxes: Optional[Tensor],
    multimask_output: bool,
    batch: int,
):
    """Decode many prompts on the image set in ``predictor``, in batches.

    ``SAM2ImagePredictor._predict`` on prompts transformed as ``predict``
    does (``_transforms``, ``_orig_hw``).

    Args:
        predictor: A ``SAM2ImagePredictor`` with its image set.
        multimask_output (bool): Three masks per prompt (the best kept).
        batch (int): Prompts per decoder call.
        points (Tensor, optional): ``[P, n, 2]`` (x, y) in query pixels.
        labels (Tensor, optional): ``[P, n]``.
        boxes (Tensor, optional): ``[P, 4]`` (x0, y0, x1, y1).

    Returns:
        list[tuple]: Per batch, ``(masks [p, m, H, W], iou [p, m])``.
    """
    dev = predictor.device
    tf = predictor._transforms
    hw = predictor._orig_hw[-1]
    if points is not None:
        points = tf.transform_coords(points.to(dev), normalize=True, orig_hw=hw)
        labels = labels.to(dev)
    if boxes is not None:
        boxes = tf.transform_boxes(boxes.to(dev), normalize=True, orig_hw=hw)
    n = points.shape[0] if points is not None else boxes.shape[0]
    out = []
    for i in range(0, n, batch):
        sl = slice(i, i + batch)
        masks, iou, _ = predictor._predict(
            points[sl] if points is not None else None,
            labels[sl] if labels is not None else None,
            boxes[sl] if boxes is not None else None,
            multimask_output=multimask_output,
        )
        out.append((masks, iou))
    return out
