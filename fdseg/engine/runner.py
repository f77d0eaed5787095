"""fdseg's runner: mmengine's ``Runner`` with trusted checkpoints and CPU DDP."""

import copy
from typing import Callable, Dict, Optional, Union

import torch.nn as nn
from mmengine.device import get_device
from mmengine.dist import is_distributed
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint_to_model

from fdseg.registry import RUNNERS

from .checkpoint import load_trusted_checkpoint, register_trusted_scheme
from .dist import init_cpu_dist, resolve_dist_backend
from .weights import (
    check_fdseg_checkpoint,
    check_trained,
    log_weights_report,
    prepare_weights,
)

# Wrapper types that mean "the default DDP": on CPU they become the CPU one.
_DEFAULT_DDP_TYPES = (
    None,
    'MMDistributedDataParallel',
    'mmengine.MMDistributedDataParallel',
    'CPUDistributedDataParallel',
)
# Scoped: mmengine's wrap_model looks types up in the *root* MODEL_WRAPPERS
# without switching to the fdseg scope.
_CPU_DDP_TYPE = 'fdseg.CPUDistributedDataParallel'


@RUNNERS.register_module()
class FDSegRunner(Runner):
    """``mmengine.runner.Runner`` adapted to fdseg.

    Configs opt in with ``runner_type = 'FDSegRunner'`` (set in
    ``configs/_base_/default_runtime.py``); ``tools/train.py`` and
    ``tools/test.py`` build runners through ``RUNNERS.build(cfg)``, which
    honours it. Differences from the base runner:

    * **Trusted checkpoints.** :meth:`load_checkpoint` (used by ``load_from``,
      by :meth:`resume` and so by ``--resume`` and ``tools/test.py <ckpt>``)
      unpickles local files with ``weights_only=False``: mmengine training
      checkpoints hold the message hub (``HistoryBuffer``), which torch>=2.6's
      weights-only default refuses. Pretrained weights loaded through a
      model's ``init_cfg`` keep torch's safe default.
    * **Weights before testing.** :meth:`test` and :meth:`val` load every
      pretrained file the config names before the first episode (mmengine
      does so only in ``train()``), or stop with the resolver's message;
      with an fdseg checkpoint only the refiners' files (which checkpoints
      do not carry) are needed. Each run logs once which weights it uses
      (file and sha256 prefix, or ``RANDOM``).
    * **Strict checkpoints.** fdseg checkpoints (``load_from``, ``--resume``,
      ``tools/test.py CONFIG CKPT``) must match the model key for key;
      ``load_strict=False`` in the config (``--non-strict``) loads the
      matching keys and warns about the rest.
    * **Backend choice.** ``env_cfg.dist_cfg.backend='auto'`` (or no backend)
      becomes ``'nccl'`` with CUDA and ``'gloo'`` without.
    * **CPU distributed.** Without CUDA, a launcher other than ``'none'``
      initialises gloo via :func:`fdseg.engine.init_cpu_dist` (mmengine's
      ``init_dist`` would call ``torch.cuda.set_device``) and the model is
      wrapped in :class:`fdseg.engine.CPUDistributedDataParallel` instead of
      mmengine's default DDP (which passes CUDA ``device_ids``).

    Args are those of :class:`mmengine.runner.Runner`.
    """

    def setup_env(self, env_cfg: Dict) -> None:
        """Resolve the dist backend, init CPU gloo if needed, then defer.

        Args:
            env_cfg (dict): ``env_cfg`` of the config; its
                ``dist_cfg.backend`` may be ``'auto'``.
        """
        # Runs once in ``__init__``, before the model is built: from here
        # on ``fdseg-trusted://`` paths load through mmengine's loaders too.
        register_trusted_scheme()
        env_cfg = copy.deepcopy(dict(env_cfg or {}))
        dist_cfg = dict(env_cfg.get('dist_cfg') or {})
        dist_cfg['backend'] = resolve_dist_backend(dist_cfg.get('backend'))
        env_cfg['dist_cfg'] = dist_cfg
        if self.distributed and not is_distributed() and get_device() == 'cpu':
            # mmengine's setup_env skips init_dist once a group exists.
            init_cpu_dist(self.launcher, **dist_cfg)
        super().setup_env(env_cfg)

    def wrap_model(
        self, model_wrapper_cfg: Optional[Dict], model: nn.Module
    ) -> nn.Module:
        """Wrap as mmengine does, but with a CPU-capable DDP on CPU.

        Args:
            model_wrapper_cfg (dict, optional): ``cfg.model_wrapper_cfg``.
            model (nn.Module): The model to wrap.

        Returns:
            nn.Module: The (possibly) wrapped model.
        """
        if self.distributed and not is_model_wrapper(model) and get_device() == 'cpu':
            model_wrapper_cfg = self._cpu_wrapper_cfg(model_wrapper_cfg)
        return super().wrap_model(model_wrapper_cfg, model)

    def _cpu_wrapper_cfg(self, model_wrapper_cfg: Optional[Dict]) -> Dict:
        if model_wrapper_cfg is None:
            # Same defaults as mmengine's implicit MMDistributedDataParallel.
            return dict(
                type=_CPU_DDP_TYPE,
                broadcast_buffers=False,
                find_unused_parameters=self.cfg.get('find_unused_parameters', False),
            )
        model_wrapper_cfg = copy.deepcopy(dict(model_wrapper_cfg))
        if model_wrapper_cfg.get('type') in _DEFAULT_DDP_TYPES:
            model_wrapper_cfg['type'] = _CPU_DDP_TYPE
        return model_wrapper_cfg

    @property
    def _bare_model(self) -> nn.Module:
        return self.model.module if is_model_wrapper(self.model) else self.model

    def _checkpoint_to_load(self) -> Optional[str]:
        """The fdseg checkpoint ``load_or_resume`` will load, if any."""
        if self._resume and self._load_from is None:
            from mmengine.runner.checkpoint import find_latest_checkpoint

            return find_latest_checkpoint(self.work_dir)
        return self._load_from

    def _before_eval(self) -> None:
        given = self._checkpoint_to_load() is not None
        check_trained(
            self._bare_model, given, bool(self.cfg.get('allow_untrained', False))
        )
        prepare_weights(self._bare_model, checkpoint_given=given)

    def test(self) -> dict:
        """Load the weights (see the class docstring), then test."""
        self._before_eval()
        return super().test()

    def val(self) -> dict:
        """Load the weights (see the class docstring), then validate."""
        self._before_eval()
        return super().val()

    def load_or_resume(self) -> None:
        """As mmengine's, then log which weights the run uses (once)."""
        super().load_or_resume()
        if not getattr(self, '_weights_reported', False):
            self._weights_reported = True
            log_weights_report(self._bare_model, self._loaded_checkpoint_path)

    _loaded_checkpoint_path: Optional[str] = None

    def load_checkpoint(
        self,
        filename: str,
        map_location: Union[str, Callable] = 'cpu',
        strict: Optional[bool] = None,
        revise_keys: list = [(r'^module\.', '')],
    ) -> dict:
        """Load an fdseg checkpoint into the model (trusted unpickling).

        Same contract as :meth:`mmengine.runner.Runner.load_checkpoint`;
        :meth:`resume` goes through here too, so resuming is covered.

        Args:
            filename (str): Local path (loaded with ``weights_only=False``) or
                URL (mmengine's loaders, torch's weights-only default).
            map_location (str | callable): As in :func:`torch.load`.
            strict (bool, optional): Require exactly matching keys; None
                (what ``load_or_resume`` / ``resume`` pass) takes the
                config's ``load_strict`` (default True).
            revise_keys (list): ``(pattern, replacement)`` pairs applied to
                state-dict keys.

        Returns:
            dict: The loaded checkpoint.

        Raises:
            CheckpointMismatchError: Not an fdseg checkpoint, or (strict)
                keys that do not match the model; the message names them.
        """
        if strict is None:
            strict = bool(self.cfg.get('load_strict', True))
        checkpoint = load_trusted_checkpoint(filename, map_location=map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self._bare_model
        state = check_fdseg_checkpoint(model, checkpoint, filename, strict, revise_keys)
        # Keys are checked (and revised) above; mmengine only copies them.
        _load_checkpoint_to_model(
            model, dict(checkpoint, state_dict=state), strict=False, revise_keys=[]
        )
        self._has_loaded = True
        self._loaded_checkpoint_path = filename
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint
