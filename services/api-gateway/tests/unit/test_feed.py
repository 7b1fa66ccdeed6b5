"""The in-process broadcaster behind the live feed."""

from __future__ import annotations

from tandem_api_gateway.feed import Feed


async def test_every_subscriber_gets_each_message() -> None:
    feed = Feed()
    async with feed.subscribe() as first, feed.subscribe() as second:
        feed.publish({"kind": "handoff", "id": "h1"})
        assert await anext(first) == {"kind": "handoff", "id": "h1"}
        assert await anext(second) == {"kind": "handoff", "id": "h1"}
    assert feed.subscriber_count == 0


async def test_a_subscriber_that_falls_behind_is_dropped() -> None:
    feed = Feed(queue_size=2)
    async with feed.subscribe() as messages:
        for i in range(3):
            feed.publish({"kind": "alert", "id": str(i)})
        assert feed.subscriber_count == 0
        received = [m async for m in messages]
    # The stream ends instead of growing; the client reconnects and reloads.
    assert received == [{"kind": "alert", "id": "1"}]
