"""`python -m d2lnets.models`: one table of every registered model, with its
input size, learnable parameters and multiply-adds at that input (one example)."""
import argparse

import d2lnets  # noqa: F401  (before MXNet loads: every core)
from d2lnets.viz.shapes import count_parameters, multiply_adds
from d2lnets.models import get_model, list_models, model_input_shape


def model_rows(names):
    """(name, input shape, learnable parameters, multiply-adds) per model; a model built
    of imperative blocks has no symbolic graph to count from and shows None."""
    for name in names:
        shape = (1,) + model_input_shape(name)
        net = get_model(name)
        try:
            yield name, shape[1:], count_parameters(net, shape, True), multiply_adds(net, shape)
        except ValueError:
            yield name, shape[1:], None, None


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m d2lnets.models', description=__doc__)
    parser.add_argument('names', nargs='*', help='models to list (default: all)')
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(list_models()))
    if unknown:
        parser.error(f'unknown model(s) {", ".join(unknown)}; valid: {", ".join(list_models())}')
    print(f'{"model":<30} {"input":<14} {"parameters":>14} {"multiply-adds (M)":>18}')
    for name, shape, params, macs in model_rows(args.names or list_models()):
        size = 'x'.join(map(str, shape))
        params = f'{params:,}' if params is not None else 'n/a'
        macs = f'{macs / 1e6:,.1f}' if macs is not None else 'n/a (imperative)'
        print(f'{name:<30} {size:<14} {params:>14} {macs:>18}')


if __name__ == '__main__':
    main()
