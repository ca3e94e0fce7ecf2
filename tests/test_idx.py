"""IDX parsing on generated files, whole, truncated and corrupt."""
import gzip

import numpy as np
import pytest

from d2lnets.data.idx import IDXError, parse_idx, read_gzip_bytes, write_idx


@pytest.mark.parametrize('array', [
    np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
    np.array([3, 1, 4, 1, 5], dtype=np.uint8),
    np.array([[-7, 70000], [1, 2]], dtype=np.int32),
    np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2),
])
def test_round_trip(tmp_path, array):
    path = tmp_path / 'a.gz'
    write_idx(path, array)
    parsed = parse_idx(read_gzip_bytes(path))
    assert parsed.shape == array.shape
    assert parsed.dtype == array.dtype
    np.testing.assert_array_equal(parsed, array)


def test_header_is_big_endian_as_the_format_says(tmp_path):
    path = tmp_path / 'labels.gz'
    write_idx(path, np.zeros(258, dtype=np.uint8))
    with gzip.open(path) as f:
        assert f.read(8) == bytes([0, 0, 0x08, 1, 0, 0, 1, 2])


def test_truncated_gzip_is_reported(tmp_path):
    path = tmp_path / 'images.gz'
    write_idx(path, np.random.default_rng(0).integers(0, 255, (50, 28, 28), dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(IDXError, match='not a whole gzip file'):
        read_gzip_bytes(path)


def test_flipped_byte_in_gzip_is_reported(tmp_path):
    path = tmp_path / 'images.gz'
    write_idx(path, np.random.default_rng(0).integers(0, 255, (50, 28, 28), dtype=np.uint8))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IDXError):
        read_gzip_bytes(path)


def test_short_payload_is_refused():
    payload = bytes([0, 0, 0x08, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28]) + bytes(100)
    with pytest.raises(IDXError, match=r'header promises \(10, 28, 28\)'):
        parse_idx(payload, 'x.gz')


def test_long_payload_is_refused():
    payload = bytes([0, 0, 0x08, 1, 0, 0, 0, 2]) + bytes(3)
    with pytest.raises(IDXError, match='holds 3'):
        parse_idx(payload)


@pytest.mark.parametrize('payload', [b'', b'PK\x03\x04 not idx at all', bytes([0, 0, 0x07, 1])])
def test_not_idx_is_refused(payload):
    with pytest.raises(IDXError):
        parse_idx(payload)


def test_header_cut_off_is_refused():
    with pytest.raises(IDXError, match='header cut off'):
        parse_idx(bytes([0, 0, 0x08, 3, 0, 0, 0, 10]))


# The exact messages, the bounds of each check and the no-copy read (mutation
# testing, docs/results.md).

def test_messages_name_the_payload_and_say_what_is_wrong():
    with pytest.raises(IDXError) as info:
        parse_idx(bytes([0, 0, 0x08]))
    assert str(info.value) == '<bytes>: 3 bytes is too short for an IDX header'
    with pytest.raises(IDXError) as info:
        parse_idx(bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 9]), 'x.gz')
    assert str(info.value) == 'x.gz: not an IDX file (magic bytes 00000701)'


def test_exactly_four_bytes_is_a_header_cut_off_not_too_short():
    with pytest.raises(IDXError) as info:
        parse_idx(bytes([0, 0, 0x08, 1]))
    assert str(info.value) == '<bytes>: header cut off after 4 bytes'


def test_a_bad_type_code_is_refused_whatever_the_number_of_dimensions():
    # A known type code with a size, but the type code itself unknown.
    with pytest.raises(IDXError, match=r'not an IDX file \(magic bytes 00000f01\)'):
        parse_idx(bytes([0, 0, 0x0F, 1, 0, 0, 0, 1, 9]))


def test_nonzero_first_bytes_are_refused_even_with_a_known_type_code():
    with pytest.raises(IDXError) as info:
        parse_idx(bytes([1, 0, 0x08, 1, 0, 0, 0, 1, 9]))
    assert str(info.value) == '<bytes>: not an IDX file (magic bytes 01000801)'


def test_a_dimension_count_above_127_is_read_unsigned():
    # 200 dimensions need an 804-byte header: a clean IDXError, not a struct error.
    with pytest.raises(IDXError) as info:
        parse_idx(bytes([0, 0, 0x08, 200]) + bytes(20))
    assert str(info.value) == '<bytes>: header cut off after 24 bytes'


def test_a_header_with_no_data_after_it_is_an_empty_array():
    parsed = parse_idx(bytes([0, 0, 0x08, 1, 0, 0, 0, 0]))
    assert parsed.shape == (0,) and parsed.dtype == np.uint8


def test_uint8_data_is_a_view_of_the_payload_not_a_copy():
    """The 47 MB of training images are not copied a second time."""
    payload = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))
    parsed = parse_idx(payload)
    np.testing.assert_array_equal(parsed, [[0, 1, 2], [3, 4, 5]])
    assert np.shares_memory(parsed, np.frombuffer(payload, dtype=np.uint8))
