import asyncio

import numpy as np

from semcache import MicroBatchingEmbedder
from semcache.testing import HashingTestEmbedder


class SlowModel(HashingTestEmbedder):
    def __init__(self):
        super().__init__(32)
        self.batches = []

    async def embed(self, texts):
        self.batches.append(len(texts))
        await asyncio.sleep(0.01)  # the model computing
        return await super().embed(texts)


async def test_concurrent_calls_are_batched_and_rows_routed():
    model = SlowModel()
    batching = MicroBatchingEmbedder(model, max_batch=16, window_ms=1)
    texts = [f"text {i}" for i in range(33)]
    rows = await asyncio.gather(*(batching.embed([t]) for t in texts))
    batches = list(model.batches)
    expected = await model.embed(texts)
    for i, row in enumerate(rows):
        assert np.allclose(row[0], expected[i])
    assert sum(batches) == 33
    assert max(batches) <= 16
    assert len(batches) == 3


async def test_lone_call_goes_straight_through():
    model = SlowModel()
    batching = MicroBatchingEmbedder(model, max_batch=16, window_ms=500)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await batching.embed(["alone"])
    assert loop.time() - t0 < 0.4  # did not sit out the 500 ms window
    assert model.batches == [1]


async def test_model_failure_reaches_every_waiter():
    class Broken(HashingTestEmbedder):
        async def embed(self, texts):
            await asyncio.sleep(0.01)
            raise RuntimeError("model crashed")

    batching = MicroBatchingEmbedder(Broken(), max_batch=8)
    results = await asyncio.gather(
        *(batching.embed([f"t{i}"]) for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    # and the next call works again once the model does
    batching.inner = HashingTestEmbedder()
    assert (await batching.embed(["ok"])).shape == (1, 256)


class ParallelModel(HashingTestEmbedder):
    """A model that can run ``max_concurrency`` calls at once; records the overlap."""

    def __init__(self, max_concurrency, preferred_batch_size=None, seconds=0.02):
        super().__init__(32)
        self.max_concurrency = max_concurrency
        if preferred_batch_size is not None:
            self.preferred_batch_size = preferred_batch_size
        self.seconds = seconds
        self.running = 0
        self.most_running = 0
        self.batches = []

    async def embed(self, texts):
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        self.batches.append(len(texts))
        try:
            await asyncio.sleep(self.seconds)
            return await super().embed(texts)
        finally:
            self.running -= 1


async def test_runs_as_many_batches_at_once_as_the_model_allows():
    model = ParallelModel(max_concurrency=3)
    batching = MicroBatchingEmbedder(model, max_batch=4, window_ms=1)
    assert batching.concurrency == 3
    texts = [f"text {i}" for i in range(40)]
    rows = await asyncio.gather(*(batching.embed([t]) for t in texts))
    expected = await HashingTestEmbedder(32).embed(texts)
    for i, row in enumerate(rows):
        assert np.allclose(row[0], expected[i])
    assert model.most_running == 3  # never more than allowed, and all of it used
    assert batching.most_concurrent == 3
    assert sum(model.batches) == 40 and max(model.batches) <= 4


async def test_a_model_that_does_not_say_runs_one_call_at_a_time():
    model = ParallelModel(max_concurrency=1)
    del model.max_concurrency
    batching = MicroBatchingEmbedder(model, max_batch=4, window_ms=1)
    await asyncio.gather(*(batching.embed([f"t{i}"]) for i in range(12)))
    assert batching.concurrency == 1 and model.most_running == 1


async def test_parallel_calls_finish_sooner_than_one_at_a_time():
    loop = asyncio.get_running_loop()
    timings = {}
    for n in (1, 4):
        model = ParallelModel(max_concurrency=n, seconds=0.05)
        batching = MicroBatchingEmbedder(model, max_batch=1, window_ms=0)
        t0 = loop.time()
        await asyncio.gather(*(batching.embed([f"t{i}"]) for i in range(8)))
        timings[n] = loop.time() - t0
    assert timings[4] < timings[1] / 2


async def test_a_backlog_is_shared_between_the_slots():
    # Twelve at once and two idle slots: each takes half, not the first one all twelve
    # while the other idles.
    model = ParallelModel(max_concurrency=2, seconds=0.03)
    batching = MicroBatchingEmbedder(model, max_batch=32, window_ms=0)
    await asyncio.gather(*(batching.embed([f"t{i}"]) for i in range(12)))
    assert model.batches == [6, 6]
    assert model.most_running == 2


async def test_the_models_preferred_batch_size_caps_the_batches():
    model = ParallelModel(max_concurrency=1, preferred_batch_size=4)
    batching = MicroBatchingEmbedder(model, max_batch=32, window_ms=1)
    assert batching.batch_limit == 4
    await asyncio.gather(*(batching.embed([f"t{i}"]) for i in range(20)))
    assert max(model.batches) == 4
    # max_batch (SEMANTIC_CACHE_BATCH_MAX_SIZE) stays an upper bound
    assert MicroBatchingEmbedder(model, max_batch=2).batch_limit == 2


async def test_expected_latency_counts_the_slots():
    model = ParallelModel(max_concurrency=4, seconds=0.05)
    batching = MicroBatchingEmbedder(model, max_batch=1, window_ms=0)
    batching.seconds_per_text = 0.01
    calls = [asyncio.ensure_future(batching.embed([f"t{i}"])) for i in range(12)]
    await asyncio.sleep(0.01)  # 4 running, 8 queued
    assert abs(batching.expected_latency() - (12 / 4 + 1) * 0.01) < 1e-9
    await asyncio.gather(*calls)


async def test_the_queue_fails_only_when_every_slot_is_stalled():
    from semcache.errors import EmbeddingStalledError

    class OneStuck(ParallelModel):
        async def embed(self, texts):
            if texts == ["stuck"]:
                await asyncio.sleep(0.5)
            return await super().embed(texts)

    model = OneStuck(max_concurrency=2, seconds=0.01)
    batching = MicroBatchingEmbedder(model, max_batch=1, window_ms=0, stall_after=0.05)
    stuck = asyncio.ensure_future(batching.embed(["stuck"]))
    await asyncio.sleep(0.1)  # past its budget, but the other slot still serves
    rows = await asyncio.gather(*(batching.embed([f"t{i}"]) for i in range(4)))
    assert len(rows) == 4
    await stuck

    model = OneStuck(max_concurrency=1, seconds=0.01)
    batching = MicroBatchingEmbedder(model, max_batch=1, window_ms=0, stall_after=0.05)
    stuck = asyncio.ensure_future(batching.embed(["stuck"]))
    queued = asyncio.ensure_future(batching.embed(["queued"]))
    await asyncio.sleep(0.1)
    assert isinstance(queued.exception(), EmbeddingStalledError)
    try:
        await batching.embed(["new"])
        raise AssertionError("a new call waits on the stuck model")
    except EmbeddingStalledError:
        pass
    await stuck
    assert (await batching.embed(["after"])).shape == (1, 32)


def test_choose_batch_size_takes_the_largest_size_that_costs_no_more():
    from semcache.embedder import choose_batch_size

    # Batching makes each text dearer (the 2-core EPYC): one at a time.
    assert choose_batch_size({1: 0.019, 4: 0.026, 8: 0.031, 16: 0.036}) == 1
    # Batching pays up to 8, then flattens: the largest within 10% of the best.
    assert choose_batch_size({1: 0.010, 4: 0.006, 8: 0.005, 16: 0.0054}) == 16
    assert choose_batch_size({1: 0.010, 4: 0.006, 8: 0.005, 16: 0.0058}) == 8
    # Flat (a GPU far from full, or one-by-one int8): as big as measured.
    assert choose_batch_size({1: 0.004, 4: 0.004, 8: 0.0041, 16: 0.0042}) == 16
    assert choose_batch_size({1: 0.01, 4: 0.0105}, tolerance=0.0) == 1
