"""Feature distillation (GFDS Sec. 5.1.1, 6.1.2, 7.1.2 / Fig. 9).

Tiny random teachers on generated images stand in for DINO / ImageNet:

* unit tests of the image-folder dataset, the two-resolution pipeline, the
  data preprocessor, the l2 loss and :class:`FeatureDistiller` (loss against
  a hand computation, frozen teacher, student-only checkpoints, teacher
  feature statistics against a direct computation);
* ``tools/train.py`` end to end (subprocesses, as users run it): the loss
  decreases over 20 iterations; 10 + ``--resume`` + 10 iterations equal 20
  straight ones (``torch.equal`` on the student and Adam state); 2-process
  CPU DDP through ``torch.distributed.run`` ends with identical students;
* ``tools/analysis_tools/plot_distill_loss.py`` draws the curves (PNG);
* every ``configs/distill/*.py`` parses, builds (pretrained weights off)
  and runs its pipeline and a loss step at 1/8 of its resolutions.
"""

import importlib.util
import json
import os
import os.path as osp
from glob import glob
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from PIL import Image
from torch.utils.data import DataLoader

import fdseg.datasets.image_folder  # noqa: F401 (registers the dataset)
import fdseg.datasets.transforms.distill_transforms  # noqa: F401
from fdseg.datasets.image_folder import ImageFolderDataset, list_images
from fdseg.engine import load_trusted_checkpoint
from fdseg.engine.hooks import TeacherFeatureStatsHook
from fdseg.models.data_preprocessors.episode_data_preprocessor import (
    IMAGENET_MEAN,
    IMAGENET_STD,
)
from fdseg.registry import DATASETS, MODELS, TRANSFORMS
from fdseg.utils.checkpoints import CHECKPOINTS
from tests.conftest import REPO
from tests.subprocess_utils import assert_same_state as _assert_same_state
from tests.subprocess_utils import finish_ok as _finish
from tests.subprocess_utils import start as _start
from tests.subprocess_utils import torchrun_train as _torchrun_train

TOOLS = osp.join(REPO, 'tools')
BASE = osp.join(REPO, 'configs', '_base_')
DISTILL_CFGS = sorted(glob(osp.join(REPO, 'configs', 'distill', '*.py')))

N_IMAGES = 25  # 3 classes x 8 PNGs + one nested JPEG

# Tiny random setup: ResNet-18 layer2 (128 ch, stride 8) at 128 px and a
# thin PDN student (stride 4) at 64 px: both give 16x16x128 maps, the
# paper's 2:1 teacher/student input ratio.
TEACHER = dict(type='ResNetLayer', arch='resnet18', out_layer='layer2')
STUDENT = dict(type='PDNStudent', size='small', base_channels=8, out_channels=128)

TRAIN_CFG = """
_base_ = [r'{base}/default_runtime.py',
          r'{base}/schedules/schedule_160k_adam.py']
custom_imports = dict(
    imports=['fdseg.datasets.image_folder',
             'fdseg.datasets.transforms.distill_transforms',
             'tests.toy_modules'],
    allow_failed_imports=False)
randomness = dict(seed=0)
model = dict(type='FeatureDistiller', teacher={teacher}, student={student},
             teacher_input_size=128)
train_dataloader = dict(
    batch_size={batch_size}, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='ImageFolderDataset', data_root=r'{data_root}',
        data_prefix=dict(img_path='train'),
        pipeline=[dict(type='LoadDistillImage'),
                  dict(type='DistillRandomGrayscale', prob=0.3),
                  dict(type='DistillRandomFlip', prob=0.5),
                  dict(type='ResizeDistill', student_size=64,
                       teacher_size=128),
                  dict(type='PackDistillInputs')]))
val_cfg = None
test_cfg = None
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_iters={max_iters}, val_interval=1000000)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval={ckpt_interval}))
# Dumps every rank's weights (rank{{r}}.pt) for the DDP comparison.
custom_hooks = [dict(type='ToyDumpStateHook')]
"""


def write_cfg(path, data_root, max_iters, ckpt_interval=15, batch_size=4):
    with open(path, 'w') as f:
        f.write(
            TRAIN_CFG.format(
                base=BASE,
                data_root=data_root,
                max_iters=max_iters,
                ckpt_interval=ckpt_interval,
                batch_size=batch_size,
                teacher=TEACHER,
                student=STUDENT,
            )
        )
    return str(path)


@pytest.fixture(scope='module', autouse=True)
def _one_thread():
    # Tiny tensors: a second intra-op thread only adds contention on 2 cores
    # (3-5x slower in-process tests on a busy machine).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _make_image(rng, h=72, w=88):
    """Smooth colour waves plus a square: structure a student can learn."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), np.float32)
    for c in range(3):
        fy, fx = rng.uniform(0.02, 0.2, 2)
        img[..., c] = 127 + 100 * np.sin(fx * xx + fy * yy + rng.uniform(0, 6.28))
    y0, x0 = rng.integers(0, h - 20), rng.integers(0, w - 20)
    img[y0 : y0 + 16, x0 : x0 + 16] = rng.integers(0, 255, 3)
    return img.clip(0, 255).astype(np.uint8)  # RGB


@pytest.fixture(scope='module')
def image_root(tmp_path_factory):
    """ImageNet-style ``train/<class>/*`` with a nested JPEG and a non-image."""
    root = str(tmp_path_factory.mktemp('imagenet'))
    rng = np.random.default_rng(0)
    for c in range(3):
        d = osp.join(root, 'train', f'n0{c}')
        os.makedirs(d)
        for i in range(8):
            cv2.imwrite(osp.join(d, f'img_{i}.png'), _make_image(rng)[..., ::-1])
    nested = osp.join(root, 'train', 'n01', 'extra')
    os.makedirs(nested)
    cv2.imwrite(osp.join(nested, 'deep.JPEG'), _make_image(rng)[..., ::-1])
    with open(osp.join(root, 'train', 'n00', 'README.txt'), 'w') as f:
        f.write('not an image')
    return root


# --------------------------------------------------------------- subprocess
def _scalars(work_dir):
    """Per-iteration train scalars of every run in a work dir."""
    recs = {}
    for path in sorted(glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if 'loss_distill' in rec:
                    recs[rec['iter']] = rec['loss_distill']
    return recs


@pytest.fixture(scope='module')
def runs(image_root, tmp_path_factory):
    """20 iterations straight; 10, then ``--resume`` to 20.

    The interrupted run and its resumption are the user's commands
    (tools/train.py subprocesses); the straight run they must equal goes
    through the tool's ``main()`` in this process (one thread, as the
    commands) while the first command runs.
    """
    from tests.subprocess_utils import tool_main

    root = tmp_path_factory.mktemp('distill_runs')
    cfg20 = write_cfg(root / 'd20.py', image_root, 20, ckpt_interval=10)
    cfg10 = write_cfg(root / 'd10.py', image_root, 10, ckpt_interval=10)
    straight, resumed = str(root / 'straight'), str(root / 'resumed')
    train = osp.join(TOOLS, 'train.py')
    first = _start([train, cfg10, '--work-dir', resumed], str(root))
    tool_main('train', [cfg20, '--work-dir', straight])  # _one_thread: 1 thread
    _finish(first)
    log = _finish(_start([train, cfg20, '--work-dir', resumed, '--resume'], str(root)))
    return dict(root=root, straight=straight, resumed=resumed, resume_log=log)


# ------------------------------------------------------------------ dataset
def test_image_folder_listing_and_errors(image_root, tmp_path):
    ds = ImageFolderDataset(data_root=image_root, data_prefix=dict(img_path='train'))
    paths = [ds.get_data_info(i)['img_path'] for i in range(len(ds))]
    assert len(ds) == N_IMAGES
    assert paths == sorted(paths)  # identical order on every rank
    assert any(p.endswith(osp.join('extra', 'deep.JPEG')) for p in paths)
    assert not any(p.endswith('.txt') for p in paths)
    assert list_images(osp.join(image_root, 'train'))[0] == osp.join('n00', 'img_0.png')
    # The registry name, max_images and a list file.
    assert (
        len(
            DATASETS.build(
                dict(
                    type='ImageFolderDataset',
                    data_root=image_root,
                    data_prefix=dict(img_path='train'),
                    max_images=5,
                )
            )
        )
        == 5
    )
    lst = tmp_path / 'list.txt'
    lst.write_text('n01/img_3.png 1\nn02/img_0.png 2\n')
    ds = ImageFolderDataset(
        data_root=image_root, ann_file=str(lst), data_prefix=dict(img_path='train')
    )
    assert [osp.basename(ds.get_data_info(i)['img_path']) for i in range(2)] == [
        'img_3.png',
        'img_0.png',
    ]

    with pytest.raises(FileNotFoundError, match='does not exist'):
        ImageFolderDataset(
            data_root=str(tmp_path / 'nowhere'), data_prefix=dict(img_path='train')
        )
    (tmp_path / 'empty' / 'train' / 'n00').mkdir(parents=True)
    (tmp_path / 'empty' / 'train' / 'n00' / 'notes.txt').write_text('x')
    with pytest.raises(ValueError, match='no images found'):
        ImageFolderDataset(
            data_root=str(tmp_path / 'empty'), data_prefix=dict(img_path='train')
        )


def test_bad_image_error_names_file(tmp_path):
    d = tmp_path / 'train' / 'n00'
    d.mkdir(parents=True)
    (d / 'garbage.JPEG').write_bytes(b'not an image at all')
    good = _make_image(np.random.default_rng(1))
    cv2.imwrite(str(d / 'cut.png'), good)
    data = (d / 'cut.png').read_bytes()
    (d / 'cut.png').write_bytes(data[: len(data) // 2])  # truncated
    pipeline = [
        dict(type='LoadDistillImage'),
        dict(type='ResizeDistill', student_size=32, teacher_size=64),
        dict(type='PackDistillInputs'),
    ]
    ds = ImageFolderDataset(
        data_root=str(tmp_path), data_prefix=dict(img_path='train'), pipeline=pipeline
    )
    for i in range(len(ds)):
        name = osp.basename(ds.get_data_info(i)['img_path'])
        with pytest.raises(OSError, match=name):
            ds[i]


def test_distill_reader_is_the_episode_reader(tmp_path):
    """One reader (issue 10): 16-bit images are scaled by their bit depth,
    not squashed; a PNG named ``.JPEG`` (as in ImageNet) is read by content;
    the distillation folder lists the datasets' image suffixes."""
    from fdseg.datasets.few_shot_defect import IMG_EXTENSIONS as episodic
    from fdseg.datasets.image_folder import IMG_EXTENSIONS as folder
    from fdseg.datasets.transforms import read_image

    assert folder is episodic
    load = TRANSFORMS.build(dict(type='LoadDistillImage'))
    deep = np.zeros((8, 8), np.uint16)
    deep[:, 4:] = 4095  # 12-bit data in a 16-bit PNG
    cv2.imwrite(str(tmp_path / 'deep.png'), deep)
    img = load(dict(img_path=str(tmp_path / 'deep.png')))['img']
    assert img.dtype == np.uint8 and img.shape == (8, 8, 3)
    assert img[:, 4:].min() == 255 and img[:, :4].max() == 0
    rgb = _make_image(np.random.default_rng(2))
    Image.fromarray(rgb).save(str(tmp_path / 'png.JPEG'), format='PNG')
    path = str(tmp_path / 'png.JPEG')
    out = load(dict(img_path=path))['img']
    np.testing.assert_array_equal(out, rgb)
    np.testing.assert_array_equal(out, read_image(path))


# ----------------------------------------------------------------- pipeline
def test_pipeline_two_resolutions_from_original(image_root):
    path = osp.join(image_root, 'train', 'n01', 'img_2.png')
    orig = cv2.imread(path)[..., ::-1]
    build = TRANSFORMS.build
    res = build(dict(type='LoadDistillImage'))(dict(img_path=path))
    assert np.array_equal(res['img'], orig)
    res = build(dict(type='ResizeDistill', student_size=(32, 40), teacher_size=128))(
        res
    )
    # Reference: each input resized from the original by Pillow (what
    # torchvision's Resize does for EfficientAD), not the teacher image
    # upsampled from the student's.
    pil = Image.fromarray(orig)
    ref_t = np.asarray(pil.resize((128, 128), Image.Resampling.BILINEAR))
    ref_s = np.asarray(pil.resize((40, 32), Image.Resampling.BILINEAR))
    assert np.array_equal(res['teacher_img'], ref_t)
    assert np.array_equal(res['img'], ref_s)
    upsampled = np.asarray(
        Image.fromarray(ref_s).resize((128, 128), Image.Resampling.BILINEAR)
    )
    assert not np.array_equal(res['teacher_img'], upsampled)

    packed = build(dict(type='PackDistillInputs'))(res)
    assert packed['inputs']['student'].shape == (3, 32, 40)
    assert packed['inputs']['teacher'].shape == (3, 128, 128)
    assert packed['inputs']['teacher'].dtype == torch.uint8
    assert packed['data_samples'].img_path == path
    assert packed['data_samples'].teacher_shape == (128, 128)

    # Augmentations act on the original, before both resizes.
    res = dict(img=orig.copy())
    res = build(dict(type='DistillRandomGrayscale', prob=1.0))(res)
    gray = np.asarray(Image.fromarray(orig).convert('L'))
    assert all(np.array_equal(res['img'][..., c], gray) for c in range(3))
    res = build(dict(type='DistillRandomFlip', prob=1.0))(dict(img=orig.copy()))
    assert np.array_equal(res['img'], orig[:, ::-1]) and res['flip']
    np.random.seed(0)
    res = build(dict(type='RandomScaleAspectCrop', scale=(0.2, 0.5)))(
        dict(img=orig.copy())
    )
    h, w = res['img'].shape[:2]
    assert (
        0.15 * orig.shape[0] * orig.shape[1]
        <= h * w
        <= 0.55 * orig.shape[0] * orig.shape[1]
    )
    x0, y0, x1, y1 = res['crop_bbox']
    assert np.array_equal(res['img'], orig[y0:y1, x0:x1])


def test_data_preprocessor():
    pre = MODELS.build(dict(type='DistillDataPreprocessor'))
    g = torch.Generator().manual_seed(0)
    s = [
        torch.randint(0, 256, (3, 8, 8), generator=g, dtype=torch.uint8)
        for _ in range(2)
    ]
    t = [
        torch.randint(0, 256, (3, 16, 16), generator=g, dtype=torch.uint8)
        for _ in range(2)
    ]
    out = pre(dict(inputs=dict(student=s, teacher=t), data_samples=None))
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    ref = (torch.stack(t).float() - mean) / std
    assert torch.allclose(out['inputs']['teacher'], ref)
    assert out['inputs']['student'].shape == (2, 3, 8, 8)
    # A plain batch means student images only.
    out = pre(dict(inputs=torch.stack(s)))
    assert set(out['inputs']) == {'student'}
    with pytest.raises(ValueError, match='differ in size'):
        pre(dict(inputs=dict(student=[s[0], t[0]])))


# -------------------------------------------------------------------- model
def test_l2_loss_reductions():
    loss = MODELS.build(dict(type='DistillL2Loss', loss_weight=2.0))
    a, b = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    sq = [
        [float((x - y) ** 2) for x, y in zip(pa.flatten(), pb.flatten())]
        for pa, pb in zip(a, b)
    ]  # hand computation, element by element
    assert loss.loss_name == 'loss_distill'
    assert loss(a, b).item() == pytest.approx(2 * np.mean(sq), rel=1e-5)
    assert loss(a, b, 'sum').item() == pytest.approx(2 * np.sum(sq), rel=1e-5)
    assert loss(a, b, 'sample').tolist() == pytest.approx(
        (2 * np.mean(sq, axis=1)).tolist(), rel=1e-5
    )
    with pytest.raises(ValueError):
        loss(a, b[:, :2])


def _model(**kwargs):
    torch.manual_seed(0)
    cfg = dict(
        type='FeatureDistiller',
        teacher=TEACHER,
        student=STUDENT,
        teacher_input_size=128,
    )
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _batch(n=2, s=64, t=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        student=torch.randn(n, 3, s, s, generator=g),
        teacher=torch.randn(n, 3, t, t, generator=g),
    )


def test_distiller_loss_and_frozen_teacher():
    model = _model()
    model.train()
    assert model.student.training and not model.teacher.training
    assert not any(p.requires_grad for p in model.teacher.parameters())
    inputs = _batch()
    losses = model(inputs, mode='loss')
    with torch.no_grad():
        ref = (
            (model.student(inputs['student'])[0] - model.teacher(inputs['teacher'])[0])
            ** 2
        ).mean()
    assert set(losses) == {'loss_distill'}
    assert torch.allclose(losses['loss_distill'], ref)
    losses['loss_distill'].backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert all(p.grad is not None for p in model.student.parameters())

    # Under autocast (AMP) the loss is still computed in float32.
    with torch.autocast('cpu', dtype=torch.bfloat16):
        amp_loss = model(inputs, mode='loss')['loss_distill']
    assert amp_loss.dtype == torch.float32 and torch.isfinite(amp_loss)

    feats = model(inputs, mode='tensor')
    assert feats.shape == (2, 128, 16, 16)
    preds = model(inputs, mode='predict')
    errs = torch.stack([p.distill_error for p in preds])
    assert torch.allclose(errs.mean(), ref)
    # No teacher image: the student input is resized to teacher_input_size.
    only = model(inputs['student'], mode='loss')['loss_distill']
    with torch.no_grad():
        up = F.interpolate(
            inputs['student'], size=(128, 128), mode='bilinear', align_corners=False
        )
        ref_up = (
            (model.student(inputs['student'])[0] - model.teacher(up)[0]) ** 2
        ).mean()
    assert torch.allclose(only, ref_up)


def test_distiller_state_dict_and_alignment():
    model = _model()
    state = model.state_dict()
    assert state and all(k.startswith('student.') for k in state)
    other = _model()
    torch.nn.init.zeros_(other.student.pdn[0].weight)
    other.load_state_dict(state, strict=True)  # teacher keys not required
    assert torch.equal(other.student.pdn[0].weight, model.student.pdn[0].weight)
    with_teacher = _model(save_teacher=True).state_dict()
    assert any(k.startswith('teacher.') for k in with_teacher)

    # A teacher map of another size is resized to the student's.
    inputs = _batch(t=192)
    model = _model(teacher_input_size=None)
    loss = model(inputs, mode='loss')['loss_distill']
    with torch.no_grad():
        t = F.interpolate(
            model.teacher(inputs['teacher'])[0],
            size=(16, 16),
            mode='bilinear',
            align_corners=False,
        )
        ref = ((model.student(inputs['student'])[0] - t) ** 2).mean()
    assert torch.allclose(loss, ref)
    with pytest.raises(ValueError, match='out_channels=128'):
        _model(student=dict(STUDENT, out_channels=64))


def test_teacher_channel_norm_hook(image_root):
    model = _model(teacher_norm='channel')
    inputs = _batch()
    with pytest.raises(RuntimeError, match='TeacherFeatureStatsHook'):
        model(inputs, mode='loss')
    pipeline = [
        dict(type='LoadDistillImage'),
        dict(type='ResizeDistill', student_size=64, teacher_size=128),
        dict(type='PackDistillInputs'),
    ]
    ds = ImageFolderDataset(
        data_root=image_root, data_prefix=dict(img_path='train'), pipeline=pipeline
    )
    from mmengine.dataset import pseudo_collate

    loader = DataLoader(ds, batch_size=4, num_workers=0, collate_fn=pseudo_collate)
    runner = SimpleNamespace(model=model, train_dataloader=loader, seed=0)
    TeacherFeatureStatsHook(num_images=1000).before_train(runner)
    assert int(model.teacher_stats_count) == N_IMAGES
    # Reference: every image's teacher map, statistics over (N, h, w).
    with torch.no_grad():
        feats = torch.cat(
            [
                model.teacher(
                    model.data_preprocessor(pseudo_collate([ds[i]]))['inputs'][
                        'teacher'
                    ]
                )[0]
                for i in range(len(ds))
            ]
        ).double()
    mean = feats.mean(dim=(0, 2, 3))
    std = feats.permute(1, 0, 2, 3).flatten(1).std(dim=1, unbiased=False)
    assert torch.allclose(model.teacher_mean.flatten().double(), mean, atol=1e-5)
    assert torch.allclose(
        model.teacher_std.flatten().double(), std, rtol=1e-4, atol=1e-5
    )
    loss = model(inputs, mode='loss')['loss_distill']
    with torch.no_grad():
        t = (
            model.teacher(inputs['teacher'])[0] - model.teacher_mean
        ) / model.teacher_std
        ref = ((model.student(inputs['student'])[0] - t) ** 2).mean()
    assert torch.allclose(loss, ref)
    # Present statistics (resume / load_from) are kept.
    assert 'teacher_mean' in model.state_dict()
    model.teacher_mean.fill_(7.0)
    TeacherFeatureStatsHook().before_train(runner)
    assert torch.all(model.teacher_mean == 7.0)


# ---------------------------------------------------------------- end to end
def test_loss_decreases(runs):
    losses = _scalars(runs['straight'])
    assert sorted(losses) == list(range(1, 21))
    first = np.mean([losses[i] for i in range(1, 6)])
    last = np.mean([losses[i] for i in range(16, 21)])
    print(f'loss_distill: first 5 iters {first:.4f}, last 5 {last:.4f}')
    assert last < 0.6 * first


def test_resume_is_exact(runs):
    assert 'resumed epoch: 0, iter: 10' in runs['resume_log']
    for it in (10, 20):
        a = load_trusted_checkpoint(osp.join(runs['straight'], f'iter_{it}.pth'))
        b = load_trusted_checkpoint(osp.join(runs['resumed'], f'iter_{it}.pth'))
        assert all(k.startswith('student.') for k in a['state_dict'])
        _assert_same_state(a['state_dict'], b['state_dict'])
        sa, sb = a['optimizer']['state'], b['optimizer']['state']
        assert sa.keys() == sb.keys()
        for k in sa:
            for name in sa[k]:
                assert torch.equal(sa[k][name], sb[k][name]), (k, name)
    assert b['meta']['iter'] == 20
    # The resumed run saw the same batches: identical logged losses.
    la, lb = _scalars(runs['straight']), _scalars(runs['resumed'])
    assert sorted(lb) == list(range(1, 21))
    assert all(la[i] == lb[i] for i in range(1, 21))


def _load_tool(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_plot_distill_loss(runs, tmp_path):
    tool = _load_tool(
        osp.join(TOOLS, 'analysis_tools', 'plot_distill_loss.py'),
        'fdseg_tool_plot_distill_loss',
    )
    # A resumed work dir holds two runs; they join into one curve.
    key, iters, vals = tool.read_curve(tool.find_logs(runs['resumed']))
    assert key == 'loss_distill' and iters == list(range(1, 21))
    out = str(tmp_path / 'fig9_loss.png')
    tool.main(
        [
            runs['straight'],
            runs['resumed'],
            '--labels',
            'straight',
            'resumed',
            '--smooth',
            '3',
            '--logy',
            '--out',
            out,
        ]
    )
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert Image.open(out).size[0] > 100
    with pytest.raises(FileNotFoundError):
        tool.find_logs(str(tmp_path))


@pytest.mark.slow
@pytest.mark.skipif(
    torch.cuda.is_available(), reason='exercises the CPU (gloo) DDP path'
)
def test_cpu_ddp_two_processes(image_root, tmp_path):
    cfg = write_cfg(
        tmp_path / 'ddp.py', image_root, max_iters=4, ckpt_interval=4, batch_size=2
    )
    wd = str(tmp_path / 'wd')
    proc = _start(
        _torchrun_train(cfg, wd),
        str(tmp_path),
    )
    _finish(proc)  # torchrun exits 0 only if both workers did
    r0, r1 = (
        torch.load(osp.join(wd, f'rank{r}.pt'), weights_only=True) for r in (0, 1)
    )
    init = torch.load(osp.join(wd, 'rank0_init.pt'), weights_only=True)
    _assert_same_state(
        init, torch.load(osp.join(wd, 'rank1_init.pt'), weights_only=True)
    )
    _assert_same_state(r0, r1)
    key = 'student.pdn.0.weight'
    assert not torch.equal(r0[key], init[key])
    ckpt = load_trusted_checkpoint(osp.join(wd, 'iter_4.pth'))
    _assert_same_state(ckpt['state_dict'], r0)


# ------------------------------------------------------------------ configs
def _resize_step(pipeline):
    steps = [t for t in pipeline if t['type'] == 'ResizeDistill']
    assert len(steps) == 1
    return steps[0]


@pytest.mark.parametrize(
    'cfg_path', DISTILL_CFGS, ids=[osp.basename(p) for p in DISTILL_CFGS]
)
def test_distill_configs(cfg_path, image_root):
    cfg = Config.fromfile(cfg_path)
    # The paper recipe (Sec. 6.1.2).
    assert cfg.optim_wrapper.optimizer.type == 'Adam'
    assert cfg.optim_wrapper.optimizer.lr == 1e-4
    assert cfg.optim_wrapper.optimizer.weight_decay == 1e-5
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.train_dataloader.batch_size == 12
    assert cfg.train_dataloader.sampler.type == 'InfiniteSampler'
    assert cfg.val_cfg is None and cfg.test_cfg is None
    assert cfg.model.teacher.init_cfg.checkpoint in CHECKPOINTS
    resize = _resize_step(cfg.train_dataloader.dataset.pipeline)
    assert resize.student_size == 256
    assert resize.teacher_size == cfg.model.teacher_input_size
    name = osp.basename(cfg_path)
    assert cfg.model.student.size == ('small' if 'pdn-s' in name else 'large')
    assert cfg.model.student.out_channels == (512 if '-c512_' in name else 384)

    # The pipeline on a real image, at 1/8 of the sizes.
    s, t = resize.student_size // 8, resize.teacher_size // 8
    pipeline = [dict(p) for p in cfg.train_dataloader.dataset.pipeline]
    _resize_step(pipeline).update(student_size=s, teacher_size=t)
    ds = DATASETS.build(
        dict(cfg.train_dataloader.dataset, data_root=image_root, pipeline=pipeline)
    )
    item = ds[0]
    assert item['inputs']['student'].shape == (3, s, s)
    assert item['inputs']['teacher'].shape == (3, t, t)

    # Build without pretrained weights and run one loss step.
    cfg.model.teacher.init_cfg = None
    if 'ViT' in cfg.model.teacher.type:
        # timm's truncated-normal init costs seconds on CPU; not needed.
        cfg.model.teacher.timm_kwargs = dict(weight_init='skip')
    cfg.model.teacher_input_size = t
    model = MODELS.build(cfg.model)
    if 'ViT' in cfg.model.teacher.type:
        with torch.no_grad():  # 'skip' leaves e.g. cls_token uninitialised
            for p in model.teacher.parameters():
                p.normal_(std=0.02)
    model.train()
    assert not any(p.requires_grad for p in model.teacher.parameters())
    assert all(p.requires_grad for p in model.student.parameters())
    data = model.data_preprocessor(
        dict(
            inputs=dict(
                student=[item['inputs']['student']] * 2,
                teacher=[item['inputs']['teacher']] * 2,
            )
        ),
        True,
    )
    with torch.no_grad():
        feats_s = model(data['inputs'], mode='tensor')
        feats_t = model.extract_teacher(data['inputs']['teacher'])
    # The configured sizes give equal maps: no resizing of the target.
    assert (
        feats_s.shape
        == feats_t.shape
        == (2, cfg.model.student.out_channels, s // 4, s // 4)
    )
    loss = model(data['inputs'], mode='loss')['loss_distill']
    assert torch.isfinite(loss)


@pytest.mark.slow
def test_train_tool_loads_the_teacher_or_names_the_file(
    image_root, tmp_path, monkeypatch
):
    """``tools/train.py`` on a distillation config, the way a user runs it:
    the teacher's official-format file in the cache is loaded (and reported
    with its sha256 prefix); with the cache empty the run stops first,
    naming the file and where to put it."""
    import timm

    from fdseg.utils.checkpoints import CHECKPOINTS

    fname = CHECKPOINTS['dino_vits8']['filename']
    full, empty = tmp_path / 'cache', tmp_path / 'empty'
    full.mkdir()
    empty.mkdir()
    vit = timm.create_model(
        'vit_small_patch8_224', pretrained=False, num_classes=0, depth=1
    )
    torch.save(vit.state_dict(), full / fname)  # official keys = timm's
    cfg = osp.join(
        REPO, 'configs', 'distill', 'distill_pdn-s_dino-vits8_160k_imagenet.py'
    )
    opts = [
        '--cfg-options',
        f'train_dataloader.dataset.data_root={image_root}',
        'train_dataloader.batch_size=1',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'train_cfg.max_iters=1',
        'model.teacher.timm_kwargs.depth=1',
    ]
    from fdseg.utils.checkpoints import MissingCheckpointError
    from tests.subprocess_utils import finish, start, tool_main

    train = osp.join(TOOLS, 'train.py')
    proc = start(
        [train, cfg, '--work-dir', str(tmp_path / 'full'), *opts],
        str(tmp_path),
        {'FDSEG_CHECKPOINT_DIR': str(full)},
    )
    # The cache empty, while the command runs: the tool's main() in-process
    # (the empty-cache exit path of tools/train.py as a command is in
    # test_train_weights).
    monkeypatch.setenv('FDSEG_CHECKPOINT_DIR', str(empty))
    with pytest.raises(MissingCheckpointError) as err:
        tool_main('train', [cfg, '--work-dir', str(tmp_path / 'empty'), *opts])
    msg = str(err.value)
    assert f"Checkpoint 'dino_vits8' (file '{fname}')" in msg, msg
    assert str(empty / fname) in msg, msg
    assert not glob(osp.join(str(tmp_path / 'empty'), '*', '*.pth'))
    code, log = finish(proc, 300)
    assert code == 0, log[-4000:]
    report = log.split('Weights of this run')[1][:1500]
    assert f'teacher (DINOViT): dino_vits8 <- {full / fname}' in report
    assert 'RANDOM' not in report  # the student is trained from scratch
