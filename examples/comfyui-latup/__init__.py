"""ComfyUI entry point: link this folder into ComfyUI/custom_nodes/ under a name that is not "latup"
(custom_nodes/comfyui-latup: older ComfyUI registers the folder under its own name, which would hide
the latup package), with the latup Python package importable and liblatup.so found (README.md here)."""
from .latup_nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
