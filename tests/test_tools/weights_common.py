"""What the tools/test.py weight tests share (tests/test_tools/test_weights*.py).

The way a user runs it: a subprocess, official-format weight files (random
values) in a temporary checkpoint cache, generated episodes, ``--out``.
The predictions it writes must equal the model-level reference (the same
weights through ``init_model``, i.e. the path the official-code equivalence
tests cover). With the cache empty the command must fail before the first
episode, naming the missing file.

The families are split over two test files (light backbones / SAM-based
refiners and segmentors) so that the two xdist workers share the runs.
"""

import glob
import json
import os.path as osp
import warnings

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from fdseg.registry import DATASETS
from tests.conftest import REPO
from tests.subprocess_utils import run_pool
from tests.test_models.test_backbones import reference_student

TEST_PY = osp.join(REPO, 'tools', 'test.py')


def _cfg(path):
    return osp.join(REPO, 'configs', path)


SYNTH = [
    'test_dataloader.dataset.num_images=2',
    'test_dataloader.dataset.image_size=64',
    'test_dataloader.dataset.products=[fabric]',
    'test_dataloader.dataset.max_episodes_per_category=1',
]
GFDS = [
    'test_dataloader.dataset.products=[Steel]',
    'test_dataloader.dataset.check_counts=False',
    'test_dataloader.num_workers=0',
    'custom_hooks=[]',
]
DEEP_STEM = [
    'model.backbone.base_channels=8',
    'model.backbone.stage_blocks=[1,1,2]',
]

# family -> (config, cfg-options, files it needs: registered names)
FAMILIES = {
    'pdn': ('fm/fm_pdn-s_no-train_synthetic-all-1shot.py', SYNTH, ['gfds_fm_small']),
    'dino': (
        'fm/fm_dino-vits8_no-train_synthetic-all-1shot.py',
        SYNTH + ['model.backbone.timm_kwargs.depth=1'],
        ['dino_vits8'],
    ),
    'dinov2': (
        'fm/fm_dinov2-vits14_no-train_gfds-all-1shot.py',
        GFDS + ['model.backbone.timm_kwargs.depth=1'],
        ['dinov2_vits14'],
    ),
    'resnet': (
        'fm/fm_r18-l2_no-train_gfds-all-1shot.py',
        GFDS,
        ['torchvision_resnet18'],
    ),
    # Meta-learning heads with their (random) learner: the backbone file is
    # what the config names; the runner's seed makes the heads equal. PATNet
    # covers HSNet too (HSNetHead + anchors, the same backbone and flow).
    'patnet': (
        'patnet/patnet_r50_800e_gfds-fold1-1shot.py',
        GFDS
        + [
            'test_dataloader.dataset.max_episodes_per_category=1',
            'test_dataloader.dataset.pipeline.1.scale=(64,64)',
            # The learner is random on purpose (no training run here).
            'allow_untrained=True',
        ],
        ['torchvision_resnet50'],
    ),
    # The refiners are the costly part: two episodes (of three).
    'fastsam': (
        'fm/fm-fastsam-s_pdn-l_no-train_synthetic-all-1shot.py',
        SYNTH + ['test_dataloader.dataset.indices=2'],
        ['gfds_fm_large', 'fastsam_s'],
    ),
    # boxes: one prompt per defect component (points mode prompts every
    # foreground pixel: minutes on CPU with random weights).
    'sam2-refiner': (
        'fm/fm-sam2-boxes_pdn-l_no-train_synthetic-all-1shot.py',
        SYNTH + ['model.refiner.image_size=256', 'test_dataloader.dataset.indices=2'],
        ['gfds_fm_large', 'sam2.1_hiera_small'],
    ),
    'sam2-video': (
        'sam2/sam2_hiera-s-256_no-train_synthetic-all-1shot.py',
        SYNTH,
        ['sam2.1_hiera_small'],
    ),
    # The deep-stem ResNet-50 at a tiny width (SSP's official key layout).
    'ssp': (
        'ssp/ssp_r50-deep_no-train_gfds-all-1shot.py',
        GFDS + DEEP_STEM,
        ['ssp_resnet50'],
    ),
    # PFENet: the same backbone class in the official PFENet layout
    # (resnet50_v2.pth, four stages), its head random (seeded by the runner).
    'pfenet': (
        'pfenet/pfenet_r50-deep_400e_gfds-fold1-1shot.py',
        GFDS
        + [
            'model.backbone.base_channels=8',
            'model.backbone.stage_blocks=[1,1,2,1]',
            'model.head.in_channels=[64,128,256]',
            'model.head.reduce_dim=8',
            'model.head.ppm_scales=[8,4,2,1]',
            'test_dataloader.dataset.max_episodes_per_category=1',
            'test_dataloader.dataset.pipeline.1.scale=(64,64)',
            # The learned head is random on purpose (no training run here);
            # with this seed its masks are neither empty nor full.
            'allow_untrained=True',
            'randomness.seed=7',
        ],
        ['pfenet_resnet50_v2'],
    ),
    # SAM v1 baselines: the official file names, tiny SAM / 1-block DINOv2.
    'persam': (
        'persam/persam_sam-vith_no-train_gfds-all-1shot.py',
        GFDS
        + [
            'model.sam_arch=tiny',
            'test_dataloader.dataset.max_episodes_per_category=1',
        ],
        ['sam_vit_h'],
    ),
    'matcher': (
        'matcher/matcher_sam-vith_dinov2-vitl14_no-train_gfds-all-1shot.py',
        GFDS
        + [
            'test_dataloader.dataset.max_episodes_per_category=1',
            'model.sam_arch=tiny',
            'model.input_size=56',
            'model.encoder.timm_kwargs.depth=1',
            'model.matcher_cfg.max_sample_iterations=2',
            'model.matcher_cfg.sample_range=[1,2]',
            'model.generator_cfg.points_per_side=2',
            # random weights: keep SAM's masks so the merged mask is not empty
            'model.generator_cfg.pred_iou_thresh=0.0',
            'model.generator_cfg.stability_score_thresh=0.0',
            'model.generator_cfg.sel_pred_iou_thresh=0.0',
            'model.generator_cfg.sel_stability_score_thresh=0.0',
        ],
        # DINOv2 is loaded first: the empty-cache run names it.
        ['dinov2_vitl14', 'sam_vit_h'],
    ),
}


# ------------------------------------------------------- official-format files
def _write_pdn(path, large):
    torch.manual_seed(1)
    torch.save(reference_student(256 if large else 128, large).state_dict(), path)


def _write_vit(path, model_name, mask_token=False):
    import timm

    torch.manual_seed(2)
    vit = timm.create_model(
        model_name, pretrained=False, num_classes=0, depth=1, dynamic_img_size=True
    )
    sd = dict(vit.state_dict())
    if mask_token:  # present in the official DINOv2 files
        sd['mask_token'] = torch.zeros(1, sd['cls_token'].shape[-1])
    torch.save(sd, path)


def _write_resnet18(path):
    import torchvision

    torch.manual_seed(3)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)


def _write_resnet50(path):
    import torchvision

    torch.manual_seed(6)
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)


def _write_fastsam(path):
    from ultralytics.nn.tasks import SegmentationModel

    torch.manual_seed(4)
    net = SegmentationModel('yolov8n-seg.yaml', nc=1, verbose=False)
    for seq in net.model[-1].cv3:  # random nets must still detect something
        seq[-1].bias.data.fill_(2.0)
    net.task = 'segment'
    torch.save(dict(model=net, train_args=dict(task='segment')), path)


def _write_sam2(path):
    from sam2.build_sam import build_sam2

    torch.manual_seed(5)
    net = build_sam2(
        'configs/sam2.1/sam2.1_hiera_s.yaml', None, device='cpu', mode='eval'
    )
    torch.save({'model': net.state_dict()}, path)


def _write_ssp_resnet(path):
    from tests.test_models.test_resnet_deep_stem import OfficialSSPResNet, randomise

    torch.manual_seed(6)
    torch.save(randomise(OfficialSSPResNet(8, (1, 1, 2)), 7).state_dict(), path)


def _write_pfenet_resnet(path):
    from tests.test_models.test_resnet_deep_stem import (
        OfficialPFENetResNet,
        randomise,
    )

    torch.manual_seed(7)
    torch.save(randomise(OfficialPFENetResNet(8, (1, 1, 2, 1)), 8).state_dict(), path)


def _write_sam_tiny(path):
    from fdseg.models.adapters.segment_anything import build_sam

    torch.manual_seed(6)
    torch.save(build_sam('tiny').state_dict(), path)


WRITERS = {
    'sam_vit_h': _write_sam_tiny,
    'dinov2_vitl14': lambda p: _write_vit(
        p, 'vit_large_patch14_dinov2', mask_token=True
    ),
    'gfds_fm_small': lambda p: _write_pdn(p, False),
    'gfds_fm_large': lambda p: _write_pdn(p, True),
    'dino_vits8': lambda p: _write_vit(p, 'vit_small_patch8_224'),
    'dinov2_vits14': lambda p: _write_vit(
        p, 'vit_small_patch14_dinov2', mask_token=True
    ),
    'torchvision_resnet18': _write_resnet18,
    'torchvision_resnet50': _write_resnet50,
    'fastsam_s': _write_fastsam,
    'sam2.1_hiera_small': _write_sam2,
    'ssp_resnet50': _write_ssp_resnet,
    'pfenet_resnet50_v2': _write_pfenet_resnet,
}


def write_cache(d, families):
    """One random official-format file per name the ``families`` need."""
    from fdseg.utils.checkpoints import CHECKPOINTS

    names = {n for f in families for n in FAMILIES[f][2]}
    for name, write in WRITERS.items():
        if name in names:
            write(str(d / CHECKPOINTS[name]['filename']))
    return d


def write_data(root):
    """Synthetic benchmark (generated by the dataset) + a small GFDS 'Steel'."""
    from tests.conftest import write_product

    write_product(str(root / 'gfds'), 'Steel', ['Am', 'Ld', 'Sc'], n=2, size=(64, 48))
    return root


def _options(family, data, cache):
    config, opts, _ = FAMILIES[family]
    root = data / ('gfds' if '_gfds-' in config else 'synthetic')
    opts = list(opts) + [f'test_dataloader.dataset.data_root={root}']
    from fdseg.utils.checkpoints import CHECKPOINTS

    tv = {'resnet': 'resnet18', 'patnet': 'resnet50'}
    f = cache / CHECKPOINTS[f'torchvision_{tv.get(family, "resnet18")}']['filename']
    if family in tv and f.is_file():
        # torchvision files carry an 8-hex sha256 prefix a random file cannot
        # match: name the file by path (a registered name is checked).
        opts.append(f'model.backbone.init_cfg.checkpoint={f}')
    return opts


def _job(family, data, cache_dir, tmp, checkpoint=()):
    """``tools/test.py`` of one family, as a :func:`run_pool` job."""
    config, _, _ = FAMILIES[family]
    args = [
        TEST_PY,
        _cfg(config),
        *checkpoint,
        '--work-dir',
        str(tmp / 'wd'),
        '--out',
        str(tmp / 'out'),
        '--cfg-options',
        *_options(family, data, cache_dir),
    ]
    return args, REPO, {'FDSEG_CHECKPOINT_DIR': str(cache_dir)}


# The family whose empty-cache run goes through tools/test.py (exit status,
# no traceback, nothing evaluated): Matcher, two files, the first one named.
# The message of every other family is the same code path, checked
# in-process (a subprocess per family would cost the suite ~45 s).
EMPTY_BY_TOOL = ('matcher',)


def run_families(families, data, cache, root, extra=None):
    """``tools/test.py`` of every family, cache full (and empty where the
    family is in :data:`EMPTY_BY_TOOL`), two runs at a time."""
    empty = root / 'empty_cache'
    empty.mkdir()
    jobs = {}
    for family in families:  # longest first, the short failing runs between
        jobs[family, 'full'] = _job(family, data, cache, root / f'{family}_full')
        if family in EMPTY_BY_TOOL:
            jobs[family, 'empty'] = _job(family, data, empty, root / f'{family}_empty')
    jobs.update(extra or {})
    done = run_pool(jobs, width=2, timeout=900)
    return dict(root=root, empty=empty, done=done)


_REFERENCES = {}


def _reference(family, data, cache, monkeypatch):
    """Predictions of the same config and weights through ``init_model``
    (computed once per family, cache and data)."""
    key = (family, str(data), str(cache))
    if key not in _REFERENCES:
        _REFERENCES[key] = _compute_reference(family, data, cache, monkeypatch)
    return _REFERENCES[key]


def _compute_reference(family, data, cache, monkeypatch):
    from mmengine.config import DictAction

    from fdseg.apis import init_model

    config, _, _ = FAMILIES[family]
    monkeypatch.setenv('FDSEG_CHECKPOINT_DIR', str(cache))
    opts = {}
    for item in _options(family, data, cache):
        k, v = item.split('=', 1)
        opts[k] = DictAction._parse_iterable(v)
    cfg = Config.fromfile(_cfg(config))
    cfg.merge_from_dict(opts)
    seed = (cfg.get('randomness') or {}).get('seed')
    if seed is not None:  # as the runner seeds before building the model
        torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = init_model(cfg)
        ds = DATASETS.build(cfg.test_dataloader.dataset)
    out = {}
    # The tool runs with one thread (tests/subprocess_utils.tool_env); some
    # kernels (ultralytics' convolutions) round differently with two.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with torch.no_grad():
        for i in range(len(ds)):
            sample = model.test_step(pseudo_collate([ds[i]]))[0]
            meta = sample.metainfo
            label = int(meta.get('query_label', 1))
            pred = (sample.pred_sem_seg.data == label).to(torch.uint8)
            # Predictions are saved at the original size, pixel-centre
            # aligned (torch's 'nearest-exact').
            mask = torch.nn.functional.interpolate(
                pred[None].float(),
                size=tuple(meta['ori_shape'][:2]),
                mode='nearest-exact',
            )[0, 0]
            out[meta['img_path']] = mask.numpy().astype(np.uint8) * 255
    torch.set_num_threads(threads)
    return out


def _tool_predictions(out_dir):
    found = glob.glob(str(out_dir / '**' / 'metrics.json'), recursive=True)
    assert len(found) == 1, found
    with open(found[0]) as f:
        res = json.load(f)
    base = osp.dirname(found[0])
    preds = {}
    for ep in res['episodes']:
        m = cv2.imread(osp.join(base, ep['prediction']), cv2.IMREAD_UNCHANGED)
        preds[ep['query_path']] = m
    return res, preds


def check_uses_the_cached_weights(family, tool_runs, cache, data, monkeypatch):
    """The full-cache run of ``family`` equals the reference."""
    code, log = tool_runs['done'][family, 'full']
    assert code == 0, log[-5000:]
    # Which file each module loaded is reported once, with a sha256 prefix.
    assert log.count('Weights of this run') == 1
    from fdseg.utils.checkpoints import CHECKPOINTS

    for name in FAMILIES[family][2]:
        assert CHECKPOINTS[name]['filename'] in log, name
    assert 'RANDOM' not in log.split('Weights of this run')[1][:2000]
    res, preds = _tool_predictions(tool_runs['root'] / f'{family}_full' / 'out')
    ref = _reference(family, data, cache, monkeypatch)
    assert set(preds) == set(ref) and len(ref) >= 2
    if family == 'pfenet':  # a random head: not an all-background answer
        assert any(0 < m.mean() < 255 for m in ref.values())
    for path, mask in ref.items():
        assert preds[path] is not None, path
        assert np.array_equal(preds[path], mask), path
    # Each episode can be replayed from its recorded supports.
    for ep in res['episodes']:
        assert ep['support_paths'] and all(osp.isfile(p) for p in ep['support_paths'])


def check_fails_without_weights_naming_the_file(family, tool_runs, data, monkeypatch):
    """Empty cache: the run stops before the first episode, naming the
    file, its full target path and the environment variable."""
    from fdseg.utils.checkpoints import CHECKPOINTS, MissingCheckpointError

    first = FAMILIES[family][2][0]
    fname = CHECKPOINTS[first]['filename']
    if family not in EMPTY_BY_TOOL:
        # The model-level path tools/test.py takes (init_weights before the
        # first episode), with the tool's options and the cache empty.
        from mmengine.config import DictAction

        from fdseg.apis import init_model

        cfg = Config.fromfile(_cfg(FAMILIES[family][0]))
        cfg.merge_from_dict(
            {
                k: DictAction._parse_iterable(v)
                for k, v in (
                    o.split('=', 1) for o in _options(family, data, tool_runs['empty'])
                )
            }
        )
        monkeypatch.setenv('FDSEG_CHECKPOINT_DIR', str(tool_runs['empty']))
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            with pytest.raises(MissingCheckpointError) as e:
                init_model(cfg)
        msg = str(e.value)
        assert f'Checkpoint {first!r}' in msg, msg
        assert osp.join(str(tool_runs['empty']), fname) in msg, msg
        assert 'FDSEG_CHECKPOINT_DIR' in msg
        return
    code, log = tool_runs['done'][family, 'empty']
    assert code != 0, log[-3000:]
    assert f'error: Checkpoint {first!r}' in log, log[-3000:]
    assert osp.join(str(tool_runs['empty']), fname) in log, log[-3000:]
    assert 'FDSEG_CHECKPOINT_DIR' in log and 'Traceback' not in log
    # Nothing was evaluated: no metrics, no predictions.
    assert not glob.glob(
        str(tool_runs['root'] / f'{family}_empty' / 'out' / '**' / 'metrics.json'),
        recursive=True,
    )
