"""Seeing a network: per-layer shapes and parameter counts (`shapes`), the
arithmetic of convolutions (`calculators`), training curves (`curves`) and
pictures of a network and a run (`pictures`): its architecture, filters,
feature maps, confusion matrix and worst mistakes.

Imports `models` at most; reads a training history by its interface.
"""
from .curves import LivePlot, plot_history, save_history_plot
from .pictures import (Misclassified, confusion_matrix, plot_architecture, plot_confusion_matrix,
                       plot_feature_maps, plot_filters, plot_misclassified, save_run_pictures,
                       worst_misclassified)
from .shapes import count_parameters, layer_table, multiply_adds, print_layer_shapes

__all__ = ['print_layer_shapes', 'layer_table', 'count_parameters', 'multiply_adds',
           'plot_history', 'save_history_plot', 'LivePlot', 'plot_architecture', 'plot_filters',
           'plot_feature_maps', 'confusion_matrix', 'plot_confusion_matrix', 'worst_misclassified',
           'plot_misclassified', 'Misclassified', 'save_run_pictures']
