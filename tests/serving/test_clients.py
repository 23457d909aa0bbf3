"""Who a client is (the address the trusted proxies saw, whatever the client writes) and its fair share: a few jobs
at a time, refused at once beyond them, charged by cost, and served round-robin between clients."""

import asyncio

import pytest

from cyclegan_hub.serving.clients import (
    FairShare,
    Refused,
    ShareLimits,
    client_identity,
    scope_identity,
    trusted_hops,
)


@pytest.mark.parametrize(
    "forwarded, peer, hops, who",
    [
        (None, "10.0.0.9", 0, "10.0.0.9"),  # no proxy: the socket
        ("6.6.6.6", "10.0.0.9", 0, "10.0.0.9"),  # no proxy: a header the client wrote changes nothing
        ("203.0.113.7", "10.1.1.1", 1, "203.0.113.7"),  # the Space's proxy appended the visitor's address
        ("6.6.6.6, 203.0.113.7", "10.1.1.1", 1, "203.0.113.7"),  # the client's own entry is left of the proxy's
        ("6.6.6.6, 203.0.113.7, 10.2.2.2", "10.1.1.1", 2, "203.0.113.7"),  # two proxies
        ("203.0.113.7", "10.1.1.1", 2, "203.0.113.7"),  # shorter than the hops: the leftmost it has
        ("", "10.1.1.1", 1, "10.1.1.1"),
    ],
)
def test_the_client_is_what_the_trusted_proxies_saw(forwarded, peer, hops, who):
    assert client_identity(forwarded, peer, hops) == who


def test_rotating_the_header_does_not_change_the_client():
    seen = {client_identity(f"{i}.{i}.{i}.{i}, 198.51.100.4", "10.0.0.1", 1) for i in range(50)}
    assert seen == {"198.51.100.4"}
    # two X-Forwarded-For headers are one list, in order
    headers = [(b"x-forwarded-for", b"1.1.1.1"), (b"x-forwarded-for", b"198.51.100.4")]
    scope = {"headers": headers, "client": ("10.0.0.1", 5)}
    assert scope_identity(scope, 1) == "198.51.100.4" and scope_identity(scope, 0) == "10.0.0.1"


def test_trusted_hops_follow_the_platform(monkeypatch):
    monkeypatch.delenv("CYCLEGAN_TRUSTED_HOPS", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert trusted_hops() == 0
    monkeypatch.setenv("SPACE_ID", "user/space")
    assert trusted_hops() == 1
    monkeypatch.setenv("CYCLEGAN_TRUSTED_HOPS", "2")
    assert trusted_hops() == 2
    monkeypatch.setenv("CYCLEGAN_TRUSTED_HOPS", "-1")
    with pytest.raises(ValueError, match=r"CYCLEGAN_TRUSTED_HOPS must be a whole number from 0 to 10, got '-1'"):
        trusted_hops()


def test_a_client_has_a_few_jobs_and_the_rest_are_refused_at_once():
    async def main():
        fair = FairShare(ShareLimits(max_jobs=3, slots=4, running_per_client=1, refusal_delay=0))
        release = asyncio.Event()

        async def job():
            await release.wait()
            return "done"

        jobs = [asyncio.create_task(fair.run("attacker", 0.1, job)) for _ in range(5)]
        await asyncio.sleep(0.01)
        refused = [task for task in jobs if task.done()]
        assert len(refused) == 2
        for task in refused:
            with pytest.raises(Refused, match="this address already has 3 translations waiting or running"):
                task.result()
        assert fair.waiting() == {"attacker": 2}  # one runs, two wait their turn
        release.set()
        assert [await task for task in jobs if task not in refused] == ["done"] * 3
        assert fair.waiting() == {} and await fair.run("attacker", 0.1, job) == "done"

    asyncio.run(main())


def test_slots_go_round_robin_so_a_visitor_does_not_wait_behind_a_flood():
    async def main():
        fair = FairShare(ShareLimits(max_jobs=100, slots=1, running_per_client=1))
        order, go = [], asyncio.Event()

        def job(name):
            async def run():
                await go.wait()
                order.append(name)
                return name

            return run

        tasks = [asyncio.create_task(fair.run("flood", 0, job(f"flood-{i}"))) for i in range(6)]
        await asyncio.sleep(0.01)  # the flood is there first: one job runs, five wait
        tasks.append(asyncio.create_task(fair.run("visitor", 0, job("visitor"))))
        await asyncio.sleep(0.01)
        assert fair.waiting() == {"flood": 5, "visitor": 1}
        go.set()
        await asyncio.gather(*tasks)
        assert order[:2] == ["flood-0", "visitor"]  # the visitor waits for the job running, not for the flood

    asyncio.run(main())


def test_jobs_are_charged_by_cost_not_by_count():
    fair = FairShare(ShareLimits(budget_seconds=10, window=60))
    fair.charge("photos", 6)
    with pytest.raises(Refused, match=r"this address has used its share of the Space for now: try again in \d+ s"):
        fair.charge("photos", 6)
    fair.charge("digits", 0.01)  # another client is not affected
    for _ in range(500):
        fair.charge("many-digits", 0.01)
    lone = FairShare(ShareLimits(budget_seconds=10))
    lone.charge("one-big-job", 100)  # a first job is never refused for its cost alone


def test_a_job_cancelled_while_waiting_gives_its_turn_away():
    async def main():
        fair = FairShare(ShareLimits(max_jobs=3, slots=1))
        release = asyncio.Event()

        async def hold():
            await release.wait()

        async def quick():
            return "quick"

        first = asyncio.create_task(fair.run("a", 0, hold))
        waiting = asyncio.create_task(fair.run("b", 0, quick))
        await asyncio.sleep(0.01)
        waiting.cancel()
        await asyncio.sleep(0.01)
        release.set()
        await first
        assert await asyncio.wait_for(fair.run("c", 0, quick), 1) == "quick" and fair.waiting() == {}

    asyncio.run(main())


def test_a_per_client_table_stays_bounded_and_keeps_the_newest():
    from cyclegan_hub.serving.clients import MAX_CLIENTS, remember

    table: dict = {}
    for i in range(MAX_CLIENTS + 1):
        remember(table, f"10.0.{i // 250}.{i % 250}", (float(i), 0))
    assert len(table) == MAX_CLIENTS // 2 + 1 and min(when for when, _ in table.values()) == MAX_CLIENTS // 2
