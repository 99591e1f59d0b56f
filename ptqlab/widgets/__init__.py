"""Interactive widgets (anywidget): the same objects run in marimo (``mo.ui.anywidget``), JupyterLab,
Notebook 7, VS Code and Colab. All numbers are computed by ptqlab in Python; the JS only draws.
"""

from ptqlab.widgets._base import InvalidWidgetValue
from ptqlab.widgets.clipping import ClippingExplorer
from ptqlab.widgets.staircase import AffineStaircase

__all__ = ["AffineStaircase", "ClippingExplorer", "InvalidWidgetValue"]
