"""Layer 3, the plugin machinery: hook specifications (the extension manual), the pluggy
manager that loads built-in and third-party plugins, and the registries they push into.
"""
