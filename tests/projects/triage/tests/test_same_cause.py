"""Five failures of one root cause, with other numbers, addresses and paths each time."""

import pytest


def check_record(n):
    raise ValueError(f"record {n} has checksum {hex(n * 7919)}, expected 0x0 (cache /tmp/records-{n}/index)")


@pytest.mark.parametrize("n", [3, 14, 159, 2653, 58979])
def test_record(n):
    check_record(n)
