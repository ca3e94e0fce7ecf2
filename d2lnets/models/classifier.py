"""The layout of an ImageNet network as MXNet's model zoo
(`mxnet.gluon.model_zoo.vision`) builds it: a `features` part, then an
`output` part.

Gluon saves and loads parameters under the path of child names
(`features.4.0.body.0.weight`, `output.weight`), so a network laid out as the
zoo's loads a zoo `.params` file by name (`load_parameters`), and its output
layer can be swapped (`net.output = ...`) or given its own learning rate
(`net.output.collect_params().setattr('lr_mult', 10)`) without rebuilding it.
Every layer is created inside the network's name scope, so parameter names
start with the network's prefix (`resnet50_stage2_...`).

Iterating a `Classifier` (or indexing it) gives its layers in the order they
run, `features` then `output`, as iterating the book's flat networks does, so
the book's `for blk in net` loop and layer tables read it the same way.
"""
from mxnet.gluon import nn


class Classifier(nn.HybridSequential):
    """`features()` (a list of layers) then `output()` (one block), both called
    inside the network's name scope."""

    def __init__(self, features, output, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            self.features.add(*features())
            self.output = output()

    def layers(self):
        """The layers in the order they run: those of `features`, then
        `output` (or its layers when it is a sequence)."""
        output = self.output
        tail = list(output) if isinstance(output, nn.HybridSequential) else [output]
        return list(self.features) + tail

    def __iter__(self):
        return iter(self.layers())

    def __len__(self):
        return len(self.layers())

    def __getitem__(self, key):
        layers = self.layers()
        if not isinstance(key, slice):
            return layers[key]
        part = nn.HybridSequential(prefix=self.prefix)
        part.add(*layers[key])
        return part
