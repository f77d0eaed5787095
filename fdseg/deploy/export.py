"""Export a defect bank's query graph to ONNX / OpenVINO, and run it.

The exported graph is the whole query path of a prototype-matcher bank:

    image uint8 [H, W, 3] (RGB, any size)
      ─ bilinear resize to the network size, rounded to 8-bit levels
        (what the config's cv2 ``ResizeEpisode`` gives) ─ mean/std
      ─ backbone ─ L2-normalised query vectors [h*w, C]
      ─ per class: max cosine to its prototypes (eqs. 5-8) x scale
      ─ bilinear upsampling to the network size (the head's
        ``predict_by_feat``) ─ softmax ─ arg-max, per-class thresholds
      ─ nearest / bilinear resize to [H, W]
    -> mask uint8 [H, W] (0 = background, k = class k),
       score float32 [H, W] (1 - p(background))

The prototypes are constants of the graph, or, with ``dynamic_bank=True``,
inputs ``protos_0`` (background), ``protos_1`` ... ``protos_N`` (one
``[P_k, C]`` matrix per class, any ``P_k >= 1``): examples can then be added
to or removed from a class without exporting again (the class list is
fixed by the graph). A JSON manifest next to the file records the class
names, thresholds, the bank's model identity and the inputs/outputs.
"""

import json
import os
import os.path as osp
import shutil
import tempfile
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

FORMATS = ('onnx', 'openvino')


class ExportError(ValueError):
    """A bank or option that cannot be exported (the message says why)."""


class BankQueryGraph(nn.Module):
    """The query path of a prototype-matcher bank as one module (see module docs).

    Args:
        bank (DefectBank): A bank of the prototype matcher (not empty).
        dynamic_bank (bool): Prototypes as inputs instead of constants.
    """

    def __init__(self, bank, dynamic_bank: bool = False):
        super().__init__()
        if bank.kind != 'prototype':
            raise ExportError(
                'export supports prototype-matcher banks; a SAM2 bank runs in '
                'PyTorch (fdseg predict --bank)'
            )
        model = bank.model
        head = model.head
        if head.distance != 'cosine':
            raise ExportError('export supports the cosine distance only')
        if getattr(model, 'refiner', None) is not None:
            raise ExportError('a model with a refiner cannot be exported')
        protos, groups = bank.prototypes()
        self.num_ways = len(bank.classes)
        self.backbone = model.backbone
        self.head = head
        self.scale_w, self.scale_h = (int(v) for v in bank.inferencer.scale)
        pre = model.data_preprocessor
        self.register_buffer('mean', pre.mean.detach().reshape(1, 3, 1, 1).float())
        self.register_buffer('std', pre.std.detach().reshape(1, 3, 1, 1).float())
        thr = [0.0] + [bank.thresholds.get(n) or 0.0 for n in bank.classes]
        self.register_buffer('thresholds', torch.tensor(thr))
        self.dynamic_bank = dynamic_bank
        self.group_protos = [
            protos[groups == g].detach().float() for g in range(self.num_ways + 1)
        ]
        if not dynamic_bank:
            for g, p in enumerate(self.group_protos):
                self.register_buffer(f'protos_{g}', p)

    def example_inputs(self, image: np.ndarray) -> Tuple[Tensor, ...]:
        """``(image, [protos_0, ..., protos_N])`` tensors for export / runs."""
        img = torch.from_numpy(np.ascontiguousarray(image))
        if not self.dynamic_bank:
            return (img,)
        return (img, *self.group_protos)

    def forward(self, image: Tensor, *protos: Tensor) -> Tuple[Tensor, Tensor]:
        """``[H, W, 3]`` uint8 (+ prototypes) -> mask, score (``[H, W]`` each)."""
        H, W = image.shape[0], image.shape[1]
        x = image.permute(2, 0, 1)[None].float()
        x = F.interpolate(
            x, size=(self.scale_h, self.scale_w), mode='bilinear', align_corners=False
        )
        x = torch.round(x).clamp(0, 255)
        x = (x - self.mean) / self.std
        feat = self.head.select_level(self.backbone(x))  # [1, C, h, w]
        C, h, w = feat.shape[1], feat.shape[2], feat.shape[3]
        q = F.normalize(feat.reshape(C, h * w).t(), dim=1)
        if not self.dynamic_bank:
            protos = [getattr(self, f'protos_{g}') for g in range(self.num_ways + 1)]
        maxima = [(q @ p.t()).amax(1) for p in protos]
        logits = torch.stack(maxima).reshape(1, self.num_ways + 1, h, w)
        logits = logits * self.head.scale
        logits = F.interpolate(
            logits,
            size=(self.scale_h, self.scale_w),
            mode='bilinear',
            align_corners=self.head.align_corners,
        )
        prob = torch.softmax(logits[0], 0)
        top, label = prob.max(0)
        label = torch.where(
            top >= self.thresholds[label], label, torch.zeros_like(label)
        )
        mask = F.interpolate(label[None, None].float(), size=(H, W), mode='nearest')
        score = F.interpolate(
            (1 - prob[0])[None, None], size=(H, W), mode='bilinear', align_corners=False
        )
        return mask[0, 0].to(torch.uint8), score[0, 0].clamp(0, 1)


def _manifest(bank, graph: BankQueryGraph, fmt: str, files: List[str]) -> dict:
    ins = ['image: uint8 [H, W, 3] RGB']
    if graph.dynamic_bank:
        ins += [
            f'protos_{g}: float32 [P_{g}, C] '
            + ('background' if g == 0 else f'class {name!r}')
            for g, name in enumerate(bank.class_names)
        ]
    return dict(
        format=fmt,
        files=files,
        class_names=list(bank.class_names),
        thresholds=[bank.thresholds.get(n) for n in bank.classes],
        image_threshold=bank.image_threshold,
        calibration=bank.calibration,
        network_size=[graph.scale_w, graph.scale_h],
        dynamic_bank=graph.dynamic_bank,
        inputs=ins,
        outputs=[
            'mask: uint8 [H, W] (0 background, k class_names[k])',
            'score: float32 [H, W] defect score 1 - p(background)',
        ],
        **bank.identity(),
    )


def export_bank(
    bank, out: str, fmt: str = 'onnx', dynamic_bank: bool = False, opset: int = 18
) -> dict:
    """Export the bank's query graph.

    Args:
        bank (DefectBank): Prototype-matcher bank with at least one class.
        out (str): Output file (``.onnx``; for OpenVINO the ``.xml``, its
            ``.bin`` beside it). A ``<out>.json`` manifest is written too.
        fmt (str): ``'onnx'`` or ``'openvino'``.
        dynamic_bank (bool): Prototypes as graph inputs.
        opset (int): ONNX opset.

    Returns:
        dict: The manifest.

    Raises:
        ExportError: Unsupported model / format, or a missing package
            (named, with the extra to install).
    """
    if fmt not in FORMATS:
        raise ExportError(f'--format must be one of {FORMATS}, got {fmt!r}')
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ExportError(
            'export needs the onnx package: pip install "fdseg[export]"'
        ) from None
    if fmt == 'openvino':
        try:
            import openvino  # noqa: F401
        except ImportError:
            raise ExportError(
                'OpenVINO export needs the openvino package: pip install '
                '"fdseg[export]"'
            ) from None
    graph = BankQueryGraph(bank, dynamic_bank).eval()
    os.makedirs(osp.dirname(osp.abspath(out)) or '.', exist_ok=True)
    w, h = graph.scale_w, graph.scale_h
    dummy = np.zeros((h + 3, w + 5, 3), np.uint8)
    args = graph.example_inputs(dummy)
    names = ['image'] + [f'protos_{g}' for g in range(len(args) - 1)]
    axes = {
        'image': {0: 'H', 1: 'W'},
        'mask': {0: 'H', 1: 'W'},
        'score': {0: 'H', 1: 'W'},
    }
    for g in range(len(args) - 1):
        axes[f'protos_{g}'] = {0: f'P_{g}'}
    tmpdir = None
    if fmt == 'onnx':
        onnx_path = out
    else:  # an intermediate ONNX file, never beside the output
        tmpdir = tempfile.mkdtemp(prefix='fdseg-export-')
        onnx_path = osp.join(tmpdir, 'graph.onnx')
    with torch.no_grad():
        torch.onnx.export(
            graph,
            args,
            onnx_path,
            input_names=names,
            output_names=['mask', 'score'],
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    files = [onnx_path]
    if fmt == 'openvino':
        import openvino as ov

        try:
            ov_model = ov.convert_model(onnx_path)
            xml = out if out.endswith('.xml') else out + '.xml'
            ov.save_model(ov_model, xml, compress_to_fp16=False)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        files = [xml, osp.splitext(xml)[0] + '.bin']
    manifest = _manifest(bank, graph, fmt, [osp.basename(f) for f in files])
    with open(files[0] + '.json', 'w') as f:
        json.dump(manifest, f, indent=2)
    return manifest


class ExportedBank:
    """Run an exported bank graph (onnxruntime or OpenVINO, CPU).

    Args:
        path (str): The ``.onnx`` or ``.xml`` file of :func:`export_bank`.
        threads (int, optional): Intra-op threads (default: the runtime's).
    """

    def __init__(self, path: str, threads: Optional[int] = None):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path}: no such file')
        with open(path + '.json') as f:
            self.manifest = json.load(f)
        self.class_names = tuple(self.manifest['class_names'])
        self.path = path
        if path.endswith('.xml'):
            import openvino as ov

            core = ov.Core()
            cfg = {'INFERENCE_PRECISION_HINT': 'f32'}
            if threads:
                cfg['INFERENCE_NUM_THREADS'] = int(threads)
            self._ov = core.compile_model(path, 'CPU', cfg)
            self._run = self._run_ov
        else:
            import onnxruntime as ort

            so = ort.SessionOptions()
            if threads:
                so.intra_op_num_threads = int(threads)
            self._sess = ort.InferenceSession(
                path, so, providers=['CPUExecutionProvider']
            )
            self._run = self._run_ort

    def _run_ort(self, feeds: dict):
        return self._sess.run(['mask', 'score'], feeds)

    def _run_ov(self, feeds: dict):
        res = self._ov(feeds)
        return [res[self._ov.output('mask')], res[self._ov.output('score')]]

    def __call__(
        self, image: np.ndarray, protos: Optional[Sequence[np.ndarray]] = None
    ) -> Tuple[np.ndarray, np.ndarray]:
        """RGB uint8 ``[H, W, 3]`` -> (mask ``[H, W]`` uint8, score ``[H, W]``)."""
        feeds = {'image': np.ascontiguousarray(image, dtype=np.uint8)}
        if self.manifest['dynamic_bank']:
            if protos is None:
                raise ValueError('this graph takes the prototypes as inputs')
            feeds.update(
                {f'protos_{g}': np.asarray(p, np.float32) for g, p in enumerate(protos)}
            )
        mask, score = self._run(feeds)
        return np.asarray(mask), np.asarray(score)

    def predict_batch(self, items, threshold: Optional[float] = None):
        """``[(name, RGB)] -> [FewShotResult]`` (the ``fdseg predict`` interface)."""
        from fdseg.apis import FewShotResult

        if threshold is None:
            threshold = self.manifest.get('image_threshold')
        out = []
        for name, img in items:
            mask, score = self(img)
            out.append(
                FewShotResult.from_maps(
                    name, mask, score, self.class_names, image=img, threshold=threshold
                )
            )
        return out
