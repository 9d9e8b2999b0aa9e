"""What the default verifier costs per candidate it checks, on new texts and seen ones.

    python -m benchmarks.verifier_cost [--pairs 300] [--rounds 5]

Every text of the first pass is new, so the verifier's analysis cache cannot help; the
later passes check the same pairs again. Printed in microseconds per call.
"""

from __future__ import annotations

import argparse
import time

from semcache.verify import DefaultVerifier


def measure(pairs: int, rounds: int) -> tuple[float, float]:
    """Microseconds per call: (new texts, seen texts)."""
    verifier = DefaultVerifier()
    texts = [
        (
            f"how do i reset my password for account {i} on windows 11",
            f"what are the steps to reset the password of account {i} on windows",
        )
        for i in range(pairs)
    ]
    started = time.perf_counter()
    for query, candidate in texts:
        verifier.check(query, candidate, 0.9)
    cold = (time.perf_counter() - started) / len(texts)
    started = time.perf_counter()
    for _ in range(rounds):
        for query, candidate in texts:
            verifier.check(query, candidate, 0.9)
    warm = (time.perf_counter() - started) / (rounds * len(texts))
    return cold * 1e6, warm * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cold, warm = measure(args.pairs, args.rounds)
    print(f"verifier: {cold:.0f} us per call (new texts), {warm:.1f} us (seen texts)")


if __name__ == "__main__":
    main()
