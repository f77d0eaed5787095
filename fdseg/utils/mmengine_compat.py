"""Make ``_base_ = 'fdseg::...'`` resolve with mmengine 0.10.

mmengine resolves ``package::path`` configs through ``pkg_resources``, which
recent setuptools no longer ship, and through the distribution's location,
which is wrong for editable (PEP 660) installs. fdseg registers itself in
mmengine's package table and resolves installed paths with importlib, whose
answer is right for wheels and editable installs alike.

Not applied on ``import fdseg`` (importing has no side effects): it is applied
where configs are loaded, by :func:`fdseg.utils.register_all_modules`,
:func:`fdseg.utils.config_checks.load_config` and
:func:`fdseg.apis.init_model`. Code that calls ``Config.fromfile`` on a
config with ``fdseg::`` names itself calls
:func:`fdseg.utils.setup_config_loading` (or ``register_all_modules``) first.
"""

import importlib.util
import os.path as osp


def _find_package_dir(package: str):
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    return osp.dirname(spec.origin)


def apply() -> None:
    """Patch mmengine's config package lookup (idempotent)."""
    import mmengine.config.config as cfg_mod
    from mmengine.config.utils import MODULE2PACKAGE

    MODULE2PACKAGE.setdefault('fdseg', 'fdseg')
    if getattr(cfg_mod, '_fdseg_patched', False):
        return
    orig_is_installed = cfg_mod.is_installed
    orig_get_installed_path = cfg_mod.get_installed_path

    def is_installed(package: str) -> bool:
        if _find_package_dir(package) is not None:
            return True
        try:
            return orig_is_installed(package)
        except ImportError:  # no pkg_resources
            return False

    def get_installed_path(package: str) -> str:
        path = _find_package_dir(package)
        if path is not None:
            return path
        return orig_get_installed_path(package)

    cfg_mod.is_installed = is_installed
    cfg_mod.get_installed_path = get_installed_path
    cfg_mod._fdseg_patched = True


#: Public name of :func:`apply`: make ``fdseg::`` config names loadable.
setup_config_loading = apply
