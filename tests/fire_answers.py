"""Students' answers to the Fire assignment, as source text, for the grading tests."""

RIGHT = '''
from mxnet.gluon import nn
from mxnet.gluon.contrib.nn import HybridConcurrent


class Fire(nn.HybridBlock):
    def __init__(self, squeeze, expand, **kwargs):
        super().__init__(**kwargs)
        self.squeeze = nn.Conv2D(squeeze, kernel_size=1, activation='relu')
        self.expand = HybridConcurrent(axis=1)
        self.expand.add(nn.Conv2D(expand, kernel_size=1, activation='relu'),
                        nn.Conv2D(expand, kernel_size=3, padding=1, activation='relu'))

    def hybrid_forward(self, F, x):
        return self.expand(self.squeeze(x))
'''
# no ReLU after the 3x3 path: an honest wrong answer
WRONG = RIGHT.replace("kernel_size=3, padding=1, activation='relu'", 'kernel_size=3, padding=1')
