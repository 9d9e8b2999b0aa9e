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
