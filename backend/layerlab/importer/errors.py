"""The errors an import raises, each naming the submodule it concerns."""

from __future__ import annotations


class ModuleImportError(ValueError):
    """The module cannot become a LayerLab graph; ``path`` names the submodule ('' is the root)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path or '<root module>'}: {message}")


class UnsupportedModuleError(ModuleImportError):
    """A submodule, or a function its forward calls, has no op in the catalog."""

    def __init__(self, path: str, type_name: str, message: str) -> None:
        self.type_name = type_name
        super().__init__(path, message)
