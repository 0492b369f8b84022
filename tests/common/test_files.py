"""common.files: the checksummed file format (body + sha256 footer) and file hashes."""

import hashlib

import pytest

from common.files import CHECKSUM_FOOTER, ChecksumError, file_sha256, read_checksummed, write_checksummed

MAGIC = b"TESTFMT1"
BODY = bytes(range(256)) * 40


@pytest.fixture
def written(tmp_path):
    path = tmp_path / "file.bin"
    write_checksummed(path, lambda f: f.write(BODY), MAGIC)
    return path


def test_a_checksummed_file_reads_back_its_body(written):
    data = written.read_bytes()
    assert len(data) == len(BODY) + CHECKSUM_FOOTER.size
    assert read_checksummed(data, MAGIC) == (BODY, True)
    assert file_sha256(written) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("at", [0, len(BODY) // 2, len(BODY) + 3], ids=["first byte", "middle", "footer digest"])
def test_a_flipped_bit_is_refused(written, at):
    data = bytearray(written.read_bytes())
    data[at] ^= 0x01
    with pytest.raises(ChecksumError, match="checksum does not match"):
        read_checksummed(bytes(data), MAGIC)


def test_a_truncated_body_is_refused(written):
    data = written.read_bytes()
    with pytest.raises(ChecksumError):
        read_checksummed(data[:100] + data[-CHECKSUM_FOOTER.size :], MAGIC)


@pytest.mark.parametrize("data", [BODY, b"", b"short"], ids=["no footer", "empty", "shorter than a footer"])
def test_data_without_the_footer_is_returned_unchecked(data):
    assert read_checksummed(data, MAGIC) == (data, False)


def test_another_formats_footer_is_not_taken_for_this_one(written):
    data = written.read_bytes()
    assert read_checksummed(data, b"OTHERFMT") == (data, False)
