from .mmengine_compat import setup_config_loading
from .setup_env import register_all_modules

__all__ = ['register_all_modules', 'setup_config_loading']
