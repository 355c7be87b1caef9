"""Function calling: the tools the realtime model may call (registry.py is Django-free; builtin.py is not)."""
from .registry import Tool, ToolContext, ToolError, ToolRegistry, ToolResult, tool

__all__ = ["Tool", "ToolContext", "ToolError", "ToolRegistry", "ToolResult", "tool"]
