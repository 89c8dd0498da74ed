"""ComfyUI entry point: copy or link this folder into ComfyUI/custom_nodes/ (with the latup Python
package importable: PYTHONPATH=<latup>/python, and liblatup.so found, see python/latup)."""
from .latup_nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
