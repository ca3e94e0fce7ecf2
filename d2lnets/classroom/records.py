"""Observations and verdicts as files, for the grader and a student's process.

An observation (see `observe`) is stored as one .npz file holding its arrays
and its other fields as JSON text, and read back with `allow_pickle=False`:
reading what a student's process wrote can never run code.
"""
import json

import numpy as np


def save_observation(observation, path):
    """Write `observation` (or {'error': message}) to `path` (.npz)."""
    arrays = {}

    def keep(array):
        key = f'a{len(arrays)}'
        arrays[key] = np.asarray(array)
        return key

    fields = {'error': observation.get('error'),
              'param_problem': observation.get('param_problem'),
              'weights': [keep(w) for w in observation.get('weights', [])],
              'layout': observation.get('layout', []),
              'outputs': [[name, keep(value)] for name, value in observation.get('outputs', [])],
              'steps': [dict(step, values=keep(step['values']))
                        for step in observation.get('steps', [])]}
    np.savez(path, fields=np.array(json.dumps(fields)), **arrays)


def load_observation(path):
    """The observation stored at `path`."""
    with np.load(path, allow_pickle=False) as stored:
        fields = json.loads(str(stored['fields']))
        get = stored.__getitem__
        return {'error': fields['error'], 'param_problem': fields['param_problem'],
                'weights': [get(k) for k in fields['weights']], 'layout': fields['layout'],
                'outputs': [[name, get(k)] for name, k in fields['outputs']],
                'steps': [dict(step, values=get(step['values'])) for step in fields['steps']]}
