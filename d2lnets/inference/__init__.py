"""Using a trained network: top-k prediction on photos (`predict`) and the
VGG paper's dense and multi-crop evaluation (`vgg_eval`)."""
