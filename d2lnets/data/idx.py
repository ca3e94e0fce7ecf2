"""Read IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a big-endian header -- two zero bytes, a type code, the number of
dimensions, then one 32-bit size per dimension -- followed by the array's bytes
(http://yann.lecun.com/exdb/mnist/, "file formats"). The files ship gzipped.
"""
import gzip
import hashlib
import struct
import zlib

import numpy as np

# Type codes of the IDX format and the NumPy dtypes they stand for.
_IDX_DTYPES = {
    0x08: np.dtype('u1'),
    0x09: np.dtype('i1'),
    0x0B: np.dtype('>i2'),
    0x0C: np.dtype('>i4'),
    0x0D: np.dtype('>f4'),
    0x0E: np.dtype('>f8'),
}


class IDXError(ValueError):
    """An IDX file that is not whole or not IDX at all."""


def read_gzip_bytes(path):
    """Return the decompressed content of the gzip file at `path`.

    A truncated or damaged file raises `IDXError` naming the file, never a
    partial result.
    """
    try:
        with gzip.open(path, 'rb') as f:
            return f.read()
    except (EOFError, OSError, zlib.error) as err:
        raise IDXError(f'{path}: not a whole gzip file ({err})') from None


def payload_sha256(payload):
    """SHA-256 of decompressed IDX bytes, as the checksum tables list it."""
    return hashlib.sha256(payload).hexdigest()


def parse_idx(payload, name='<bytes>'):
    """Parse IDX bytes into a NumPy array of the shape the header gives."""
    if len(payload) < 4:
        raise IDXError(f'{name}: {len(payload)} bytes is too short for an IDX header')
    zero, type_code, ndim = struct.unpack('>HBB', payload[:4])
    if zero != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise IDXError(f'{name}: not an IDX file (magic bytes {payload[:4].hex()})')
    header_len = 4 + 4 * ndim
    if len(payload) < header_len:
        raise IDXError(f'{name}: header cut off after {len(payload)} bytes')
    shape = struct.unpack(f'>{ndim}I', payload[4:header_len])
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape)) * dtype.itemsize
    got = len(payload) - header_len
    if got != expected:
        raise IDXError(f'{name}: header promises {shape} ({expected} bytes of data) '
                       f'but the file holds {got}')
    array = np.frombuffer(payload, dtype=dtype, offset=header_len).reshape(shape)
    return array.astype(dtype.newbyteorder('='), copy=False)


def write_idx(path, array):
    """Write `array` as a gzipped IDX file (for tests and tools)."""
    array = np.asarray(array)
    codes = {dtype.newbyteorder('='): code for code, dtype in _IDX_DTYPES.items()}
    code = codes[array.dtype.newbyteorder('=')]
    header = struct.pack(f'>HBB{array.ndim}I', 0, code, array.ndim, *array.shape)
    big_endian = array.astype(_IDX_DTYPES[code], copy=False)
    with gzip.open(path, 'wb') as f:
        f.write(header + big_endian.tobytes())
