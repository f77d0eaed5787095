"""The weight table: every third-party file fdseg knows about.

Data only: name -> where to download the file, its file name, a description
and a checksum when one is known. :mod:`fdseg.utils.checkpoints` resolves
these names to local files (it never downloads). Add a model's weights by
adding an entry here.
"""

from typing import Any, Dict, Optional

_DINO_URL = 'https://dl.fbaipublicfiles.com/dino'
_DINOV2_URL = 'https://dl.fbaipublicfiles.com/dinov2'
_SAM21_URL = 'https://dl.fbaipublicfiles.com/segment_anything_2/092824'
_SAM_URL = 'https://dl.fbaipublicfiles.com/segment_anything'
_TV_URL = 'https://download.pytorch.org/models'
# The release tag ultralytics 8.4.x's attempt_download_asset() pulls from
# (earlier ultralytics versions used v8.2.0 / v8.3.0 for the same files).
_ULTRALYTICS_URL = 'https://github.com/ultralytics/assets/releases/download/v8.4.0'
# The single "pretrained models" Google-Drive link of the official GFDS
# README (github.com/liutongkun/GFDS). It is one shared file for both
# students; its exact packaging (zip vs. .pth) is not stated there.
_GFDS_DRIVE_URL = (
    'https://drive.google.com/file/d/'
    '1mTFBYodaZZeltezIgWERtGtuQT8cKSbM/view?usp=drive_link'
)


def _entry(
    url: str, filename: str, description: str, sha256: Optional[str] = None, **extra
) -> Dict[str, Any]:
    entry = dict(url=url, sha256=sha256, filename=filename, description=description)
    entry.update(extra)
    return entry


def _dino(tag: str, desc: str) -> Dict[str, Any]:
    fname = f'{tag}_pretrain.pth'
    return _entry(
        f'{_DINO_URL}/{tag}_pretrain/{fname}',
        fname,
        f'{desc}. Official DINO backbone-only weights (facebookresearch/'
        "dino hubconf); plain state dict whose keys match timm's "
        'VisionTransformer one-to-one. No published sha256.',
        format='state_dict',
    )


def _dinov2(tag: str, desc: str) -> Dict[str, Any]:
    fname = f'{tag}_pretrain.pth'
    return _entry(
        f'{_DINOV2_URL}/{tag}/{fname}',
        fname,
        f'{desc}. Official DINOv2 LVD-142M weights (facebookresearch/dinov2 '
        'hub/backbones.py); plain state dict, timm naming plus an unused '
        '`mask_token`. No published sha256.',
        format='state_dict',
    )


def _tv(fname: str, desc: str) -> Dict[str, Any]:
    # torchvision file names are "<arch>-<first 8 hex of sha256>.pth".
    prefix = fname.rsplit('-', 1)[1].split('.')[0]
    return _entry(
        f'{_TV_URL}/{fname}',
        fname,
        f'{desc}. torchvision ImageNet-1k weights; the file name carries the '
        'first 8 hex digits of its sha256 (verified like torch.hub '
        'check_hash).',
        sha256_prefix=prefix,
        format='state_dict',
    )


def _sam21(size: str, cfg: str) -> Dict[str, Any]:
    fname = f'sam2.1_hiera_{size}.pt'
    return _entry(
        f'{_SAM21_URL}/{fname}',
        fname,
        f'SAM 2.1 Hiera-{size} (facebookresearch/sam2, '
        'checkpoints/download_ckpts.sh); a dict {"model": state_dict} '
        f'for configs/sam2.1/{cfg}. No published sha256.',
        format='state_dict',
        state_dict_key='model',
        sam2_config=cfg,
    )


def _sam(arch: str, fname: str) -> Dict[str, Any]:
    return _entry(
        f'{_SAM_URL}/{fname}',
        fname,
        f'SAM v1 ViT-{arch[-1].upper()} (facebookresearch/segment-anything '
        'README "Model Checkpoints"); a plain state dict of '
        f'segment_anything.Sam ({arch}). No published sha256 (the hex '
        'suffix of the file name is not documented as a digest).',
        format='state_dict',
    )


def _fastsam(size: str, desc: str) -> Dict[str, Any]:
    fname = f'FastSAM-{size}.pt'
    return _entry(
        f'{_ULTRALYTICS_URL}/{fname}',
        fname,
        f'{desc} (ultralytics assets release; the FastSAM repo '
        'CASIA-IVA-Lab/FastSAM also links it). This is an ultralytics '
        'checkpoint holding a pickled model object: it can only be opened '
        'by ultralytics itself (full unpickling), never by '
        'load_third_party_state_dict. No published sha256.',
        format='ultralytics',
    )


#: Registered third-party checkpoints: name -> dict(url, sha256, filename,
#: description[, sha256_prefix, format, ...]). ``sha256=None`` means no
#: digest could be verified for this project; nothing here is guessed.
CHECKPOINTS: Dict[str, Dict[str, Any]] = {
    # GFDS feature-matching students (paper Sec. 5.1.1 / Table 3).
    'gfds_fm_large': _entry(
        _GFDS_DRIVE_URL,
        'model_large.pth',
        'GFDS FM-l student (c=256, EfficientAD-style large PDN, 384 output '
        'channels) distilled from DINO ViT-S/8 @512. State dict of the '
        'official get_pdn_large(384, padding=True) nn.Sequential (keys '
        '"0.weight", "3.weight", ...). Hosted only behind the Google-Drive '
        '"pretrained models" link of the official README '
        '(github.com/liutongkun/GFDS); no direct URL and no sha256 are '
        'published.',
        format='state_dict',
    ),
    'gfds_fm_small': _entry(
        _GFDS_DRIVE_URL,
        'model_small.pth',
        'GFDS FM-s student (c=128 PDN, 384 output channels). State dict of '
        'the official get_pdn_small(384, padding=True) nn.Sequential. Same '
        'Google-Drive link as gfds_fm_large; no direct URL and no sha256 '
        'are published.',
        format='state_dict',
    ),
    # DINO (Caron et al. 2021), Table 5.
    'dino_vits16': _dino('dino_deitsmall16', 'DINO ViT-S/16'),
    'dino_vits8': _dino(
        'dino_deitsmall8', 'DINO ViT-S/8 (the GFDS distillation teacher)'
    ),
    'dino_vitb16': _dino('dino_vitbase16', 'DINO ViT-B/16'),
    'dino_vitb8': _dino('dino_vitbase8', 'DINO ViT-B/8'),
    # DINOv2 (Oquab et al. 2023), Table 5 and Matcher's ViT-L/14.
    'dinov2_vits14': _dinov2('dinov2_vits14', 'DINOv2 ViT-S/14'),
    'dinov2_vitb14': _dinov2('dinov2_vitb14', 'DINOv2 ViT-B/14'),
    'dinov2_vitl14': _dinov2('dinov2_vitl14', 'DINOv2 ViT-L/14'),
    # torchvision ImageNet-supervised CNNs, Table 5 (IMAGENET1K_V1 is the
    # classic release used by PatchCore-style feature extractors).
    'torchvision_resnet18': _tv('resnet18-f37072fd.pth', 'ResNet-18 IMAGENET1K_V1'),
    'torchvision_resnet50': _tv('resnet50-0676ba61.pth', 'ResNet-50 IMAGENET1K_V1'),
    'torchvision_resnet50_v2': _tv('resnet50-11ad3fa6.pth', 'ResNet-50 IMAGENET1K_V2'),
    'torchvision_wide_resnet50_2': _tv(
        'wide_resnet50_2-95faca4d.pth', 'Wide ResNet-50-2 IMAGENET1K_V1'
    ),
    'torchvision_wide_resnet101_2': _tv(
        'wide_resnet101_2-32ee1156.pth', 'Wide ResNet-101-2 IMAGENET1K_V1'
    ),
    # Deep-stem ResNet-50 of the meta-learning heads (Sec. 6.1.1).
    'pfenet_resnet50_v2': _entry(
        # The "ImageNet pretrained backbones" Google-Drive folder of the
        # official README (dvlab-research/PFENet); model/resnet.py reads
        # initmodel/resnet50_v2.pth from it.
        'https://drive.google.com/drive/folders/1Hrz1wOxOZm4nIIS7UMJeL79AQrdvpj6v',
        'resnet50_v2.pth',
        'PFENet deep-stem ResNet-50 (three 3x3 stem convs 64-64-128; keys '
        'conv1/bn1/conv2/bn2/conv3/bn3, layer1..layer4, fc), file '
        'resnet50_v2.pth in the official "backbones" Drive folder. No '
        'direct URL and no sha256 are published.',
        format='state_dict',
    ),
    'ssp_resnet50': _entry(
        # "Pretrained model: ResNet-50" link of the official README
        # (fanq15/SSP); the code loads it as ./pretrained/resnet50.pth.
        'https://drive.google.com/file/d/11yONyypvBEYZEh9NIOJBGMdiLLAgsMgj/'
        'view?usp=sharing',
        'ssp_resnet50.pth',
        'SSP deep-stem ResNet-50 (stem as nn.Sequential: conv1.0/1/3/4/6 and '
        'bn1). The official code expects it as pretrained/resnet50.pth; save '
        'it here as ssp_resnet50.pth (the generic name would be ambiguous in '
        'a shared cache). No sha256 is published.',
        format='state_dict',
    ),
    # SAM 2.1 (Sec. 5.2 / 6.1.2).
    'sam2.1_hiera_tiny': _sam21('tiny', 'sam2.1_hiera_t.yaml'),
    'sam2.1_hiera_small': _sam21('small', 'sam2.1_hiera_s.yaml'),
    'sam2.1_hiera_base_plus': _sam21('base_plus', 'sam2.1_hiera_b+.yaml'),
    'sam2.1_hiera_large': _sam21('large', 'sam2.1_hiera_l.yaml'),
    # SAM v1 (PerSAM / Matcher rows of Table 4).
    'sam_vit_h': _sam('vit_h', 'sam_vit_h_4b8939.pth'),
    'sam_vit_l': _sam('vit_l', 'sam_vit_l_0b3195.pth'),
    'sam_vit_b': _sam('vit_b', 'sam_vit_b_01ec64.pth'),
    # FastSAM refiners (Sec. 5.1.3).
    'fastsam_x': _fastsam('x', 'FastSAM (YOLOv8-x-seg backbone, default)'),
    'fastsam_s': _fastsam('s', 'FastSAM-s (YOLOv8-s-seg backbone)'),
}
