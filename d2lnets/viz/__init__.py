"""Seeing a network: per-layer shapes and parameter counts (`shapes`), the
arithmetic of convolutions (`calculators`) and training curves (`curves`).

Imports `models` at most; reads a training history by its interface.
"""
from .curves import LivePlot, plot_history, save_history_plot
from .shapes import count_parameters, layer_table, multiply_adds, print_layer_shapes

__all__ = ['print_layer_shapes', 'layer_table', 'count_parameters', 'multiply_adds',
           'plot_history', 'save_history_plot', 'LivePlot']
