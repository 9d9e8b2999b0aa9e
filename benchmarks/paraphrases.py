"""Question/paraphrase pairs for the proxy benchmark, written for it.

Every paraphrase scores at least 0.89 cosine against its question with
all-MiniLM-L6-v2 (above the model's default threshold, 0.87) and passes the default
verifier; no paraphrase scores above 0.6 against another pair's question, so a hit
is always the right answer. Checked by ``python -m benchmarks.paraphrases``.
"""

from __future__ import annotations

__all__ = ["PAIRS", "check"]

PAIRS: tuple[tuple[str, str], ...] = (
    ("How do I reset my password?", "What are the steps to reset my password?"),
    ("How can I cancel my subscription?", "How do I cancel my subscription?"),
    ("What is the capital of France?", "What's the capital city of France?"),
    ("How do I export my data to CSV?", "How can I export my data as a CSV file?"),
    ("What are your opening hours on weekends?", "What are your weekend opening hours?"),
    ("How do I change my email address?", "How can I update my email address?"),
    ("Can I get a refund for my order?", "Is it possible to get a refund for my order?"),
    ("How do I enable two-factor authentication?", "How can I turn on two-factor authentication?"),
    ("Where can I download my invoices?", "Where do I download my invoices?"),
    ("How do I delete my account?", "How can I delete my account?"),
    ("What payment methods do you accept?", "Which payment methods do you accept?"),
    ("How long does shipping take?", "How long does it take for shipping?"),
    ("How do I install Python on Windows?", "How can I install Python on a Windows computer?"),
    (
        "What is the difference between a list and a tuple in Python?",
        "What's the difference between lists and tuples in Python?",
    ),
    ("How do I reverse a string in Python?", "How can I reverse a string in Python?"),
    ("How do I merge two dictionaries in Python?", "How can I merge two Python dictionaries?"),
    ("What is a closure in JavaScript?", "What are closures in JavaScript?"),
    ("How do I undo the last git commit?", "How can I undo my last commit in git?"),
    (
        "How do I create a virtual environment in Python?",
        "How can I create a Python virtual environment?",
    ),
    ("What causes a memory leak in Java?", "What can cause memory leaks in Java?"),
    ("How do I center a div in CSS?", "How can I center a div with CSS?"),
    (
        "What is the boiling point of water at sea level?",
        "At sea level, what is the boiling point of water?",
    ),
    (
        "How many planets are in the solar system?",
        "How many planets are there in our solar system?",
    ),
    ("Who wrote Pride and Prejudice?", "Who is the author of Pride and Prejudice?"),
    ("What is photosynthesis?", "Can you explain what photosynthesis is?"),
    ("How do vaccines work?", "How does a vaccine work?"),
    ("How do I make a good cup of coffee?", "How can I make a great cup of coffee?"),
    ("What are the symptoms of the flu?", "What are common symptoms of the flu?"),
    ("How do I improve my sleep quality?", "How can I improve the quality of my sleep?"),
    ("What is machine learning?", "What is machine learning, in simple terms?"),
    ("How does a blockchain work?", "How do blockchains work?"),
    ("What is the tallest mountain in the world?", "Which mountain is the tallest in the world?"),
    ("How do I write a cover letter?", "How should I write a cover letter?"),
    (
        "What is the best way to learn a new language?",
        "What is the most effective way to learn a new language?",
    ),
    ("How do I convert a PDF to Word?", "How can I convert a PDF file into a Word document?"),
    ("Why is the sky blue?", "Why does the sky look blue?"),
    ("How do I set up a Docker container?", "How can I set up a Docker container?"),
    ("What is the meaning of life?", "What's the meaning of life?"),
    ("How do I update my shipping address?", "How can I change my shipping address?"),
    ("How do I contact customer support?", "How can I get in touch with customer support?"),
    ("What is an API?", "What does API mean?"),
    ("How do I bake sourdough bread?", "How do you bake sourdough bread?"),
    ("How do I train for a marathon?", "How should I train for a marathon?"),
    ("What is inflation in economics?", "In economics, what is inflation?"),
)


async def check(min_pair: float = 0.89, max_cross: float = 0.6) -> list[str]:
    """Problems with :data:`PAIRS` under the default model and verifier (empty when fine)."""
    import numpy as np

    from semcache import Settings, plugins
    from semcache.text import normalize_query

    settings = Settings.from_env({})
    embedder = plugins.create_embedder(settings)
    verifier = plugins.create_verifier(settings)
    questions = [normalize_query(q) for q, _ in PAIRS]
    paraphrases = [normalize_query(p) for _, p in PAIRS]
    a = np.asarray(await embedder.embed(questions))
    b = np.asarray(await embedder.embed(paraphrases))
    await embedder.aclose()
    problems = []
    cross = b @ a.T
    for i, (q, p) in enumerate(zip(questions, paraphrases, strict=True)):
        similarity = float(cross[i, i])
        if similarity < min_pair:
            problems.append(f"{similarity:.3f} below {min_pair}: {p!r} ~ {q!r}")
        if verifier is not None and not await verifier.verify(p, q, similarity):
            problems.append(f"rejected by the verifier: {p!r} ~ {q!r}")
        for label, row in (("paraphrase", cross[i]), ("question", (a @ a.T)[i])):
            others = np.delete(row, i)
            if others.max() > max_cross:
                problems.append(f"{label} {i} scores {others.max():.3f} against another question")
    return problems


if __name__ == "__main__":
    import asyncio

    found = asyncio.run(check())
    print("\n".join(found) or f"{len(PAIRS)} pairs fine")
    raise SystemExit(1 if found else 0)
