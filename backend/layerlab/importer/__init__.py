"""Import: a ``torch.nn.Module`` written in code becomes a LayerLab graph the editor can open.

``from_module`` traces ``forward`` with torch.fx, the catalog's torch classes being the leaves:

- every leaf call becomes a layer node, its params read back by the op's ``from_torch``;
- the functions LayerLab has an op for become nodes too: ``+`` / ``torch.add`` → Add,
  ``torch.cat`` → Concat, ``torch.flatten`` / ``x.view(x.size(0), -1)`` → Flatten, ``F.relu`` → ReLU...;
- every submodule that holds them (an ``nn.Sequential``, a ResNet-style block, a ModuleList) becomes
  a Block named like the attribute it was, so the compiled graph's ``state_dict`` keys are the
  original's and ``build(from_module(m)).load_state_dict(m.state_dict(), strict=True)`` works;
- raw parameters used as an op's parameter form (``torch.cat([self.cls_token.expand(b, -1, -1), x],
  dim=1)``, ``x + self.pos_embedding``) keep their names, so those keys stay the original's too.

Before returning, the graph is analyzed and built on the meta device, and every layer is checked
against the original module's attributes: what the catalog cannot express is an error that names
the submodule, never a silently different model.

The package: ``core`` runs one import, ``trace`` holds what torch.fx sees (the tracer, the shape
probe, the function forms the catalog entries declare), ``patterns`` recognizes what forward() writes
besides those functions (raw parameters, indexing, view shapes), ``structure`` recovers residual
blocks and repeats, ``assemble`` turns the translated calls into graph JSON and ``layout`` places
its nodes.
"""

from .core import from_module
from .errors import ModuleImportError, UnsupportedModuleError
from .layout import layout

__all__ = ["ModuleImportError", "UnsupportedModuleError", "from_module", "layout"]
