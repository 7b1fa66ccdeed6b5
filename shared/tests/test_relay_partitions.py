"""The relay picks the partition aiokafka's default partitioner would pick for the same key."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from tandem_shared.relay import partition_of


@given(key=st.binary(min_size=1, max_size=64), count=st.integers(min_value=1, max_value=64))
def test_partition_of_matches_the_default_partitioner(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert partition_of(key, partitions) == DefaultPartitioner()(key, partitions, partitions)


def test_partition_of_spreads_account_keys() -> None:
    keys = [f"account-{n}.example.com".encode() for n in range(600)]
    used = {partition_of(key, range(6)) for key in keys}
    assert used == set(range(6))
