"""The segment-anything package (SAM v1, 1.0): models, weights and decoding.

fdseg's PerSAM and Matcher segmentors run SAM v1 through this module only:

* :data:`SAM_MODELS` / :func:`build_sam`: ``vit_h`` / ``vit_l`` / ``vit_b``
  composed from the package's ``ImageEncoderViT``, ``PromptEncoder``,
  ``MaskDecoder`` and ``TwoWayTransformer`` exactly as its ``_build_sam``
  does, plus ``tiny`` (same classes, small widths, 64 px input) for tests.
  Nothing is read from disk here.
* :func:`load_sam_checkpoint`: the official files (``sam_vit_h_4b8939.pth``
  ...) through the offline resolver, ``weights_only=True``, strict.
* :func:`sam_image` / :func:`encode_image`: what ``SamPredictor.set_image``
  does (PIL resize of the longest side, normalise, pad, encode).
* :func:`decode`: ``SamPredictor.predict_torch`` without the predictor's
  state; with ``attn_sim`` / ``target_embedding`` it runs PerSAM's decoder
  (:func:`persam_two_way_transformer`), composed from the package modules.

Pinned by tests/test_models/test_persam.py (PerSAM decoder and prediction
against a transcription of Personalize-SAM's modified modules) and
tests/test_models/test_matcher.py.
"""

import math
from functools import partial
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Architectures: the three official ones (segment_anything/build_sam.py)
#: and a tiny one for tests. ``checkpoint`` is the offline resolver's name.
SAM_MODELS: Dict[str, dict] = {
    'vit_h': dict(
        embed_dim=1280,
        depth=32,
        num_heads=16,
        global_attn_indexes=(7, 15, 23, 31),
        checkpoint='sam_vit_h',
    ),
    'vit_l': dict(
        embed_dim=1024,
        depth=24,
        num_heads=16,
        global_attn_indexes=(5, 11, 17, 23),
        checkpoint='sam_vit_l',
    ),
    'vit_b': dict(
        embed_dim=768,
        depth=12,
        num_heads=12,
        global_attn_indexes=(2, 5, 8, 11),
        checkpoint='sam_vit_b',
    ),
    # Tests only: same classes, 64 px input (4x4 image embedding).
    'tiny': dict(
        embed_dim=32,
        depth=2,
        num_heads=2,
        global_attn_indexes=(1,),
        image_size=64,
        window_size=2,
        prompt_embed_dim=32,
        decoder_mlp_dim=64,
        decoder_num_heads=2,
        iou_head_hidden_dim=32,
        checkpoint=None,
    ),
}

#: SAM's pixel statistics (0..255), as in ``_build_sam``.
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)


def import_segment_anything():
    """Import the optional ``segment_anything`` package or say how to get it."""
    try:
        import segment_anything
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(
            'PerSAM and Matcher need the `segment-anything` package: '
            'pip install "fdseg[sam]" (or pip install segment-anything pot).'
        ) from e
    return segment_anything


def build_sam(arch: str = 'vit_h') -> nn.Module:
    """Build a randomly initialised SAM v1 (no file is read).

    Args:
        arch (str): ``'vit_h'``, ``'vit_l'``, ``'vit_b'`` or ``'tiny'``.

    Returns:
        nn.Module: ``segment_anything.modeling.Sam`` in eval mode.
    """
    if arch not in SAM_MODELS:
        raise KeyError(f'unknown SAM arch {arch!r}; choose from {sorted(SAM_MODELS)}')
    import_segment_anything()
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    c = SAM_MODELS[arch]
    image_size = c.get('image_size', 1024)
    patch = 16
    dim = c.get('prompt_embed_dim', 256)
    emb = image_size // patch
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=c['depth'],
            embed_dim=c['embed_dim'],
            img_size=image_size,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=c['num_heads'],
            patch_size=patch,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=list(c['global_attn_indexes']),
            window_size=c.get('window_size', 14),
            out_chans=dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=dim,
            image_embedding_size=(emb, emb),
            input_image_size=(image_size, image_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2,
                embedding_dim=dim,
                mlp_dim=c.get('decoder_mlp_dim', 2048),
                num_heads=c.get('decoder_num_heads', 8),
            ),
            transformer_dim=dim,
            iou_head_depth=3,
            iou_head_hidden_dim=c.get('iou_head_hidden_dim', 256),
        ),
        pixel_mean=list(SAM_PIXEL_MEAN),
        pixel_std=list(SAM_PIXEL_STD),
    )
    sam.eval()
    return sam


def load_sam_checkpoint(sam: nn.Module, checkpoint: str, owner: nn.Module) -> str:
    """Load an official SAM v1 state dict strictly (offline resolver).

    Args:
        sam (nn.Module): The model from :func:`build_sam`.
        checkpoint (str): Resolver name (``'sam_vit_h'``), file name or path.
        owner (nn.Module): Module the loaded file is recorded on.

    Returns:
        str: The resolved path.
    """
    from fdseg.utils.checkpoints import (
        load_third_party_state_dict,
        record_loaded_weights,
        resolve_checkpoint,
    )

    path = resolve_checkpoint(checkpoint)
    state = load_third_party_state_dict(path)
    sam.load_state_dict(state, strict=True)
    record_loaded_weights(owner, checkpoint, path)
    return path


# ----------------------------------------------------------------------
# SamPredictor.set_image, statelessly
# ----------------------------------------------------------------------
def sam_image(sam: nn.Module, img: np.ndarray) -> Tuple[Tensor, Tuple[int, int]]:
    """``HxWxC`` uint8 -> the padded, normalised encoder input.

    ``ResizeLongestSide.apply_image`` (PIL bilinear) then ``Sam.preprocess``
    (``(x - mean) / std``, zero padding to a square), as ``set_image``.
    A 3-channel mask in 0..255 goes through the same steps (PerSAM).

    Returns:
        tuple: ``[1, C, S, S]`` float tensor and the resized ``(h, w)``
        (``input_size`` of the predictor).
    """
    from segment_anything.utils.transforms import ResizeLongestSide

    tf = ResizeLongestSide(sam.image_encoder.img_size)
    x = tf.apply_image(np.ascontiguousarray(img))
    t = torch.as_tensor(x, device=sam.pixel_mean.device)
    t = t.permute(2, 0, 1).contiguous()[None]
    return sam.preprocess(t), tuple(t.shape[-2:])


def encode_image(sam: nn.Module, img: np.ndarray) -> Tuple[Tensor, Tuple[int, int]]:
    """Image embedding ``[1, C, S/16, S/16]`` and ``input_size``."""
    x, input_size = sam_image(sam, img)
    return sam.image_encoder(x), input_size


# ----------------------------------------------------------------------
# PerSAM's decoder (Personalize-SAM per_segment_anything/modeling)
# ----------------------------------------------------------------------
def _attention(attn: nn.Module, q: Tensor, k: Tensor, v: Tensor, attn_sim=None):
    """``segment_anything`` ``Attention.forward`` with PerSAM's guidance.

    PerSAM's modified attention takes the softmax of the scaled logits,
    adds ``attn_sim`` (``[1, 1, 1, HW]``, broadcast over heads and tokens)
    and takes the softmax again.
    """
    if attn_sim is None:
        return attn(q=q, k=k, v=v)
    q = attn._separate_heads(attn.q_proj(q), attn.num_heads)
    k = attn._separate_heads(attn.k_proj(k), attn.num_heads)
    v = attn._separate_heads(attn.v_proj(v), attn.num_heads)
    logits = q @ k.permute(0, 1, 3, 2) / math.sqrt(q.shape[-1])
    weights = torch.softmax(torch.softmax(logits, dim=-1) + attn_sim, dim=-1)
    return attn.out_proj(attn._recombine_heads(weights @ v))


def persam_two_way_transformer(
    tf: nn.Module,
    image_embedding: Tensor,
    image_pe: Tensor,
    point_embedding: Tensor,
    attn_sim: Optional[Tensor],
    target_embedding: Optional[Tensor],
) -> Tuple[Tensor, Tensor]:
    """``TwoWayTransformer.forward`` with PerSAM's two changes.

    * Target-guided attention: ``attn_sim`` enters every block's
      token-to-image cross attention (:func:`_attention`), not the final
      token-to-image attention.
    * Target-semantic prompting: ``target_embedding`` is added to the
      queries before every block and before the final attention. The
      official code adds it in place to ``queries``, which in the first
      block is the prompt tokens tensor itself, so the tokens' positional
      term (``query_pe``) carries it too: reproduced here explicitly.

    Args:
        tf (nn.Module): A ``segment_anything`` ``TwoWayTransformer``.
        image_embedding (Tensor): ``[B, C, h, w]``.
        image_pe (Tensor): ``[B, C, h, w]``.
        point_embedding (Tensor): ``[B, N, C]`` output + prompt tokens.
        attn_sim (Tensor, optional): ``[1, 1, 1, h*w]``.
        target_embedding (Tensor, optional): ``[1, 1, C]``.

    Returns:
        tuple: queries ``[B, N, C]`` and keys ``[B, h*w, C]``.
    """
    image_embedding = image_embedding.flatten(2).permute(0, 2, 1)
    image_pe = image_pe.flatten(2).permute(0, 2, 1)
    query_pe = point_embedding
    if target_embedding is not None:
        query_pe = point_embedding + target_embedding
    queries, keys = point_embedding, image_embedding
    for blk in tf.layers:
        if target_embedding is not None:
            queries = queries + target_embedding
        # TwoWayAttentionBlock.forward, with the guided cross attention.
        if blk.skip_first_layer_pe:
            queries = blk.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + blk.self_attn(q=q, k=q, v=queries)
        queries = blk.norm1(queries)
        q, k = queries + query_pe, keys + image_pe
        queries = blk.norm2(
            queries + _attention(blk.cross_attn_token_to_image, q, k, keys, attn_sim)
        )
        queries = blk.norm3(queries + blk.mlp(queries))
        q, k = queries + query_pe, keys + image_pe
        keys = blk.norm4(keys + blk.cross_attn_image_to_token(q=k, k=q, v=queries))
    q = queries + query_pe
    if target_embedding is not None:
        q = q + target_embedding
    queries = queries + tf.final_attn_token_to_image(q=q, k=keys + image_pe, v=keys)
    return tf.norm_final_attn(queries), keys


def persam_mask_decoder(
    dec: nn.Module,
    image_embeddings: Tensor,
    image_pe: Tensor,
    sparse: Tensor,
    dense: Tensor,
    multimask_output: bool,
    attn_sim: Optional[Tensor] = None,
    target_embedding: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """``MaskDecoder.forward`` running :func:`persam_two_way_transformer`.

    Returns:
        tuple: low-res mask logits ``[B, M, 4h, 4w]`` and IoU ``[B, M]``.
    """
    if attn_sim is None and target_embedding is None:
        return dec(
            image_embeddings=image_embeddings,
            image_pe=image_pe,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output,
        )
    out_tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
    out_tokens = out_tokens.unsqueeze(0).expand(sparse.size(0), -1, -1)
    tokens = torch.cat((out_tokens, sparse), dim=1)
    src = torch.repeat_interleave(image_embeddings, tokens.shape[0], dim=0) + dense
    pos_src = torch.repeat_interleave(image_pe, tokens.shape[0], dim=0)
    b, c, h, w = src.shape
    hs, src = persam_two_way_transformer(
        dec.transformer, src, pos_src, tokens, attn_sim, target_embedding
    )
    iou_token_out = hs[:, 0, :]
    mask_tokens_out = hs[:, 1 : 1 + dec.num_mask_tokens, :]
    up = dec.output_upscaling(src.transpose(1, 2).view(b, c, h, w))
    hyper = torch.stack(
        [
            mlp(mask_tokens_out[:, i, :])
            for i, mlp in enumerate(dec.output_hypernetworks_mlps)
        ],
        dim=1,
    )
    b, c, h, w = up.shape
    masks = (hyper @ up.view(b, c, h * w)).view(b, -1, h, w)
    iou = dec.iou_prediction_head(iou_token_out)
    sl = slice(1, None) if multimask_output else slice(0, 1)
    return masks[:, sl], iou[:, sl]


def decode(
    sam: nn.Module,
    features: Tensor,
    input_size: Tuple[int, int],
    original_size: Tuple[int, int],
    coords: Optional[Tensor] = None,
    labels: Optional[Tensor] = None,
    boxes: Optional[Tensor] = None,
    mask_input: Optional[Tensor] = None,
    multimask_output: bool = True,
    attn_sim: Optional[Tensor] = None,
    target_embedding: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor, Tensor]:
    """``SamPredictor.predict_torch(return_logits=True)``, stateless.

    Prompts are already in the resized frame (``apply_coords`` /
    ``apply_boxes``).

    Args:
        sam (nn.Module): SAM v1.
        features (Tensor): ``[1, C, h, w]`` image embedding.
        input_size (tuple): Resized image ``(h, w)`` before padding.
        original_size (tuple): Image ``(H, W)``.
        coords (Tensor, optional): ``[B, n, 2]`` (x, y).
        labels (Tensor, optional): ``[B, n]``.
        boxes (Tensor, optional): ``[B, 4]``.
        mask_input (Tensor, optional): ``[B, 1, 4h, 4w]`` logits.
        multimask_output (bool): Three masks (True) or the single one.
        attn_sim (Tensor, optional): PerSAM's target-guided attention.
        target_embedding (Tensor, optional): PerSAM's target embedding.

    Returns:
        tuple: logits at ``original_size`` ``[B, M, H, W]``, IoU
        predictions ``[B, M]``, low-res logits ``[B, M, 4h, 4w]``.
    """
    points = (coords, labels) if coords is not None else None
    sparse, dense = sam.prompt_encoder(points=points, boxes=boxes, masks=mask_input)
    low, iou = persam_mask_decoder(
        sam.mask_decoder,
        features,
        sam.prompt_encoder.get_dense_pe(),
        sparse,
        dense,
        multimask_output,
        attn_sim,
        target_embedding,
    )
    high = sam.postprocess_masks(low, input_size, original_size)
    return high, iou, low


def upsample_to_image(
    sam: nn.Module, x: Tensor, input_size, original_size, scale: int = 4
) -> Tensor:
    """PerSAM's similarity upsampling: x4 bilinear, then ``postprocess_masks``.

    Args:
        sam (nn.Module): SAM v1.
        x (Tensor): ``[1, 1, h, w]`` map on the embedding grid.
        input_size (tuple): Resized image ``(h, w)`` before padding.
        original_size (tuple): Image ``(H, W)``.
        scale (int): First upsampling factor (4, as PerSAM).

    Returns:
        Tensor: ``[H, W]`` at ``original_size``.
    """
    x = F.interpolate(x, scale_factor=scale, mode='bilinear')
    return sam.postprocess_masks(x, input_size, original_size).squeeze()
