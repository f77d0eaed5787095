"""Import every fdseg module so its registries are filled."""

import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register all fdseg modules and set the default scope to ``fdseg``.

    Also makes ``fdseg::`` config names loadable
    (:func:`fdseg.utils.setup_config_loading`).

    Args:
        init_default_scope (bool): Make ``fdseg`` the current default scope
            (a new uniquely named scope if another one is current).
    """
    import fdseg.datasets  # noqa: F401,F811
    import fdseg.engine  # noqa: F401,F811
    import fdseg.evaluation  # noqa: F401,F811
    import fdseg.models  # noqa: F401,F811
    import fdseg.visualization  # noqa: F401,F811

    from .mmengine_compat import setup_config_loading

    setup_config_loading()

    if init_default_scope:
        never_created = (
            DefaultScope.get_current_instance() is None
            or not DefaultScope.check_instance_created('fdseg')
        )
        if never_created:
            DefaultScope.get_instance('fdseg', scope_name='fdseg')
            return
        current = DefaultScope.get_current_instance()
        if current.scope_name != 'fdseg':
            warnings.warn(
                'The current default scope '
                f'"{current.scope_name}" is not "fdseg"; '
                'register_all_modules forces it to "fdseg".'
            )
            stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S%f')
            DefaultScope.get_instance(f'fdseg-{stamp}', scope_name='fdseg')
