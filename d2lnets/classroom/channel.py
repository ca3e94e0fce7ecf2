"""Messages between the grader and a sandboxed submission, as bytes on a pipe.

A message is ``MAGIC``, its length (8 bytes, big-endian), then a JSON header
(4-byte length first) and the raw bytes of its arrays. The header says each
array's dtype and shape; in the header's fields an array is ``{"array": i}``.
Only float32 arrays of at most `MAX_DIMS` dimensions travel, so reading a
message never runs code, never decompresses anything and never allocates
more than the message's own length, which the reader bounds before reading.

The sandbox writes with `send`; the grader reads with `read_messages`
(from bytes it has already read under its own size limit) and trusts
nothing in them: see `received` for what it checks.
"""
import json
import math
import os
import struct

import numpy as np

MAGIC = b'D2LM'
MAX_DIMS = 6
_DTYPE = np.dtype('<f4')


class MalformedMessage(ValueError):
    """The bytes are not a well-formed message; the text says why, in one line."""


def encode(fields):
    """The bytes of a message holding `fields` (JSON values and NumPy arrays)."""
    arrays = []

    def pack(value):
        if isinstance(value, np.ndarray):
            arrays.append(np.ascontiguousarray(value, dtype=_DTYPE))
            return {'array': len(arrays) - 1}
        if isinstance(value, dict):
            return {key: pack(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [pack(item) for item in value]
        return value

    body = pack(fields)
    header = json.dumps({'fields': body, 'arrays': [list(a.shape) for a in arrays]}).encode()
    payload = struct.pack('>I', len(header)) + header + b''.join(a.tobytes() for a in arrays)
    return MAGIC + struct.pack('>Q', len(payload)) + payload


def send(fd, fields):
    """Write the message holding `fields` to file descriptor `fd`, whole."""
    data = memoryview(encode(fields))
    while data:
        data = data[os.write(fd, data):]


def read_messages(data):
    """(messages, problem): the messages in `data` (bytes) in order, up to the
    first one that is cut short or not well formed, and in words what is wrong
    with that one (None when all are well formed)."""
    messages, start = [], 0
    while start < len(data):
        if data[start:start + 4] != MAGIC or len(data) < start + 12:
            return messages, 'the results do not continue with a message header'
        (length,) = struct.unpack('>Q', data[start + 4:start + 12])
        if len(data) < start + 12 + length:
            return messages, 'a message is cut short'
        try:
            messages.append(decode(data[start + 12:start + 12 + length]))
        except MalformedMessage as err:
            return messages, str(err)
        start += 12 + length
    return messages, None


def decode(payload):
    """The fields of one message's payload, arrays as read-only float32 arrays."""
    if len(payload) < 4:
        raise MalformedMessage('a message has no header')
    (size,) = struct.unpack('>I', payload[:4])
    if 4 + size > len(payload):
        raise MalformedMessage('a message\'s header is longer than the message')
    try:
        header = json.loads(bytes(payload[4:4 + size]))
        shapes = header['arrays']
        fields = header['fields']
    except (ValueError, KeyError, TypeError, RecursionError):
        raise MalformedMessage('a message\'s header is not valid JSON of the expected '
                               'form') from None
    if not isinstance(shapes, list):
        raise MalformedMessage('a message\'s header lists no arrays')
    arrays, offset = [], 4 + size
    for shape in shapes:
        if (not isinstance(shape, list) or len(shape) > MAX_DIMS
                or not all(type(d) is int and 0 <= d for d in shape)):
            raise MalformedMessage(f'an array has an invalid shape {str(shape)[:40]}')
        # Python's integers: a product of huge sizes neither overflows nor wraps to 0
        count = math.prod(shape)
        end = offset + count * _DTYPE.itemsize
        if end > len(payload):
            raise MalformedMessage('an array is longer than its message')
        array = np.frombuffer(payload, _DTYPE, count, offset).reshape(shape)
        arrays.append(array)
        offset = end
    if offset != len(payload):
        raise MalformedMessage('a message has bytes after its arrays')

    def unpack(value):
        if isinstance(value, dict):
            if set(value) == {'array'}:
                index = value['array']
                if type(index) is not int or not 0 <= index < len(arrays):
                    raise MalformedMessage('a message refers to an array it does not hold')
                return arrays[index]
            return {key: unpack(item) for key, item in value.items()}
        if isinstance(value, list):
            return [unpack(item) for item in value]
        return value

    try:
        return unpack(fields)
    except RecursionError:
        raise MalformedMessage('a message nests too deep') from None
