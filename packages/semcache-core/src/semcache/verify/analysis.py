"""Turn a question into the facts its answer depends on (numbers, negation, dates...).

Pure functions over one text; the verifier compares two analyses. Works on normalised
(case-folded) text; when the text still has its original case, capitalised words are
also collected as named entities.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from semcache.verify import lexicon as lx

__all__ = ["MAX_ANALYSED_CHARS", "Analysis", "analyze", "stem"]

# Linear time on any input: a run of quote marks can only start a match at its first
# mark and is taken whole (possessive), and a quoted span is at most _QUOTE_SPAN long,
# so no position is scanned more than a bounded number of times.
_QUOTE_SPAN = 200
_SPAN = "{1,%d}" % _QUOTE_SPAN  # noqa: UP031 - braces are regex syntax here
_QUOTED = re.compile(
    rf"""(?<![\w"])"++([^"]{_SPAN})"++(?!\w)"""
    rf"""|(?<!\w)(?:'([^']{_SPAN})'|`([^`]{_SPAN})`|“([^”]{_SPAN})”|‘([^’]{_SPAN})’)(?!\w)"""
)
_TOKEN = re.compile(
    r"""
    (?P<id>\#\d\w*)
    | (?P<num>[$€£¥]?\d[\w]*(?:[.,:/]\d[\w]*)*%?)
    | (?P<word>(?:(?<!\w)--?)?[^\W\d_][\w]*(?:['.+\#_@^-][\w]+)*[+\#]*)
    """,
    re.VERBOSE,
)
_ACRONYM = re.compile(r"(?:[a-z]\.)+[a-z]?")
_SYMBOL = re.compile(r"[._@^+#]")
_DIGIT = re.compile(r"\d")
_PLAIN_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?|\d+(?:\.\d+)?")
_NUM_SUFFIX = re.compile(r"(\d+(?:,\d{3})*(?:\.\d+)?)([a-z%]+)")
_ORDINAL_SUFFIXES = frozenset({"st", "nd", "rd", "th"})
_MAGNITUDE_SUFFIXES = {"k": 1000, "m": 1_000_000, "mn": 1_000_000, "bn": 1_000_000_000}
_APOSTROPHE_SUFFIXES = ("'s", "'re", "'ll", "'ve", "'d", "'m")
_SENTENCE_END = frozenset(".?!:;")
_CLAUSE_PUNCT = frozenset(".?!:;,()")
_DATE_PREPOSITIONS = frozenset(
    {
        "in",
        "on",
        "of",
        "since",
        "until",
        "till",
        "by",
        "during",
        "this",
        "next",
        "last",
        "early",
        "late",
        "mid",
        "before",
        "after",
        "every",
    }
)
_ARTICLES = frozenset({"a", "an", "the", "my", "your", "our", "their", "his", "her", "its"})
# Negations that do not negate anything: "why or why not", "whether or not", "if not, ...".
_IDLE_NEGATION = {("or", "not"), ("if", "not"), ("not", "only"), ("not", "just"), ("no", "matter")}
_CLAUSE_END = frozenset({"and", "but", "or", "because", "if", "when", "while", "so", "although"})
_VOWEL = re.compile(r"[aeiouy]")
_NEGATING_PREFIX = re.compile(r"(anti|dis|non|mis|un|in|im|il|ir|de)(\w{4,})")
_AUXILIARIES = frozenset(
    {
        "is",
        "are",
        "am",
        "was",
        "were",
        "can",
        "could",
        "do",
        "does",
        "did",
        "will",
        "would",
        "should",
        "shall",
        "has",
        "have",
        "had",
        "may",
        "might",
        "must",
    }
)
_REQUEST_VERBS = frozenset(
    {
        "tell",
        "explain",
        "give",
        "recommend",
        "suggest",
        "show",
        "help",
        "write",
        "list",
        "describe",
        "share",
        "name",
        "provide",
        "make",
        "create",
        "find",
        "know",
    }
)

# word -> (axis, pole) for every antonym pole word
_POLES: dict[str, list[tuple[str, int]]] = {}
for _axis, _poles in lx.ANTONYM_AXES.items():
    for _i, _words in enumerate(_poles):
        for _w in _words:
            _POLES.setdefault(_w, []).append((_axis, _i))


@dataclass(frozen=True, slots=True)
class Analysis:
    """What one question's answer depends on."""

    tokens: tuple[str, ...]
    negated: tuple[frozenset[str], ...]
    """What each negation applies to: the words after it, to the end of its clause."""
    numbers: frozenset[str]
    units: frozenset[str]
    temporal: frozenset[str]
    quoted: tuple[tuple[str, ...], ...]
    identifiers: frozenset[str]
    entities: frozenset[str] | None
    """Capitalised words, or ``None`` when the text carries no case (normalised)."""
    question: str | None
    """Kind of answer asked for: reason, person, time, place, yes-no, open; ``None``
    for requests and statements."""
    poles: dict[str, frozenset[int]]
    relations: tuple[tuple[str, frozenset[str], frozenset[str]], ...]
    """(marker, words right before it, words right after it): "usd to eur"."""
    content: tuple[str, ...]
    """Topic words (stemmed, synonyms merged) in order."""
    vocab: frozenset[str]
    """Every form and stem, plus joined neighbours, for matching the other text."""
    words: frozenset[str]
    prefixed: tuple[tuple[str, str, str], ...]
    """Words that may be a negating prefix plus a word: (word, base, stem of base)."""


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light suffix stripper: enough to match plurals and verb forms, nothing more."""
    w = word
    if len(w) <= 3:
        return w
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "i"
    elif w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if w.endswith("ied") and len(w) > 4:
        w = w[:-3] + "i"
    elif w.endswith("ing") and len(w) > 5 and _VOWEL.search(w[:-3]):
        w = _undouble(w[:-3])
    elif w.endswith("ed") and len(w) > 4 and _VOWEL.search(w[:-2]):
        w = _undouble(w[:-2])
    elif w.endswith("ly") and len(w) > 5:
        w = w[:-2]
    if w.endswith(("e", "y")) and len(w) > 3:
        w = w[:-1] + ("i" if w[-1] == "y" else "")
    return w


def _undouble(w: str) -> str:
    if len(w) > 2 and w[-1] == w[-2] and w[-1] not in "lsz":
        return w[:-1]
    return w


@lru_cache(maxsize=1)
def _synonyms_by_stem() -> dict[str, str]:
    return {stem(word): target for word, target in lx.SYNONYMS.items()}


def _synonym(word: str) -> str:
    """The word a synonym stands for, matched in any regular form ("films": "movie")."""
    return lx.SYNONYMS.get(word) or _synonyms_by_stem().get(stem(word)) or word


@lru_cache(maxsize=65536)
def _key(word: str) -> str:
    """Stem with synonyms merged: the form topic words are compared in."""
    return stem(_synonym(word))


def _number_value(raw: str) -> str:
    """Canonical spelling of a numeral: thousands separators and trailing zeros dropped."""
    text = raw.replace(",", "")
    if "." in text:
        text = text.rstrip("0").rstrip(".") or "0"
    return text.lstrip("0") or "0"


def _expand(token: str) -> list[str]:
    """Split contractions ("don't" -> do not), acronyms and plain hyphenated words."""
    if token in lx.CONTRACTIONS:
        return list(lx.CONTRACTIONS[token])
    if token.endswith("n't"):
        base = token[:-3]
        base = {"ca": "can", "wo": "will", "sha": "shall", "ai": "is"}.get(base, base)
        return [base, "not"]
    for suffix in _APOSTROPHE_SUFFIXES:
        if token.endswith(suffix) and len(token) > len(suffix):
            return [token[: -len(suffix)]]
    token = token.rstrip("'")  # plural possessive: "dogs'"
    if _ACRONYM.fullmatch(token):  # u.s. -> us
        return [token.replace(".", "")]
    if "-" in token and all(p.isalpha() for p in token.split("-") if p):
        parts = [p for p in token.split("-") if p]
        if len(parts) == 2 and len(parts[0]) == 1:  # e-mail, x-ray: one word
            return [parts[0] + parts[1]]
        return parts
    return [token]


def _is_identifier(token: str) -> bool:
    # node.js, c++, #4821, user@host, snake_case, --force, gpt-4, ps5
    return bool(
        token.startswith("-")
        or _SYMBOL.search(token)
        or (_DIGIT.search(token) and not token.isdigit())
    )


_CACHED_LENGTH = 1000
"""Longer texts (conversation histories) are analysed afresh: they would crowd the cache."""

MAX_ANALYSED_CHARS = 2000
"""Only this much of a text is analysed, so an analysis costs a bounded time whatever
the input (the cache sends longer questions down the exact-only path anyway)."""


def analyze(text: str) -> Analysis:
    """Analyse one question (cached: stored candidates are checked again and again)."""
    text = text[:MAX_ANALYSED_CHARS]
    if len(text) > _CACHED_LENGTH:
        return _analyze(text)
    return _cached_analyze(text)


@lru_cache(maxsize=8192)
def _cached_analyze(text: str) -> Analysis:
    return _analyze(text)


def _analyze(text: str) -> Analysis:
    text = text.replace("’", "'").replace("‘", "'")
    has_case = text.lower() != text
    entities: set[str] | None = set() if has_case else None

    raw: list[tuple[str, str, bool]] = []
    last_end = 0
    for m in _TOKEN.finditer(text):
        gap = text[last_end : m.start()]
        boundary = any(c in _CLAUSE_PUNCT for c in gap)
        sentence_start = not raw or any(c in _SENTENCE_END for c in gap)
        last_end = m.end()
        tok = m.group()
        if (
            m.lastgroup == "word"
            and entities is not None
            and tok[0].isupper()
            and not sentence_start
            and tok not in ("I", "I'm", "I've", "I'll", "I'd")
        ):
            entities.add(_expand(tok.casefold())[0])
        raw.append((tok.casefold(), m.lastgroup or "word", boundary))

    tokens: list[str] = []
    identifiers: set[str] = set()
    clause_ends: set[int] = set()
    for tok, kind, boundary in raw:
        if boundary and tokens:
            clause_ends.add(len(tokens))
        if kind == "id":  # "#4821": an order or ticket number names one thing
            identifiers.add(tok)
            tokens.append(tok)
        elif kind == "word":
            for part in _expand(tok):
                if _is_identifier(part):
                    ident = part.strip("-").replace("-", "")
                    identifiers.add(ident)
                    tokens.append(ident)
                else:
                    tokens.append(part)
        else:
            tokens.append(tok)

    numbers, units, temporal, consumed = _quantities(tokens, identifiers)

    poles: dict[str, set[int]] = {}
    for t in tokens:
        for key in {t, stem(t)}:
            for axis, pole in _POLES.get(key, ()):
                poles.setdefault(axis, set()).add(pole)

    content_at: dict[int, str] = {}
    for i, t in enumerate(tokens):
        if i in consumed or t in identifiers or len(t) < 2:
            continue
        if t in lx.FUNCTION_WORDS or t in lx.SCAFFOLD_WORDS or t in lx.NEGATIONS:
            continue
        if _synonym(t) in lx.SCAFFOLD_WORDS:  # "earn" money = "make" money
            continue
        if any(c.isalpha() for c in t):
            content_at[i] = _key(t)

    vocab: set[str] = set()
    for i, t in enumerate(tokens):
        vocab.update((t, stem(t), _key(t)))
        if i + 1 < len(tokens):
            joined = tokens[i] + tokens[i + 1]
            vocab.update((joined, stem(joined)))

    quoted = tuple(
        tuple(_key(t) for t in _quote_tokens(next(g for g in m.groups() if g)))
        for m in _QUOTED.finditer(text.casefold())
    )
    return Analysis(
        tokens=tuple(tokens),
        negated=_negated(tokens, clause_ends),
        numbers=frozenset(numbers),
        units=frozenset(units),
        temporal=frozenset(temporal),
        quoted=tuple(q for q in quoted if q),
        identifiers=frozenset(identifiers),
        entities=frozenset(entities) if entities is not None else None,
        question=_question_kind(tokens),
        poles={axis: frozenset(p) for axis, p in poles.items()},
        relations=_relations(tokens, content_at, identifiers, consumed),
        content=tuple(content_at[i] for i in sorted(content_at)),
        vocab=frozenset(vocab),
        words=frozenset(tokens),
        prefixed=tuple(
            (m.group(), m.group(2), stem(m.group(2)))
            for m in map(_NEGATING_PREFIX.fullmatch, set(tokens))
            if m is not None
        ),
    )


def _question_kind(tokens: list[str]) -> str | None:
    """What kind of answer the question wants, from its first question word."""
    for i, t in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if t == "why":
            return "reason"
        if t == "how":
            return "reason" if nxt == "come" else "open"
        if t in ("who", "whom", "whose"):
            return "person"
        if t == "when":
            return "time"
        if t == "where":
            return "place"
        if t in ("what", "which"):
            if nxt in ("time", "year", "date", "day", "month"):
                return "time"
            return "reason" if nxt in ("makes", "causes", "caused", "made") else "open"
    if tokens and tokens[0] in _AUXILIARIES:
        if len(tokens) > 2 and tokens[1] == "you" and tokens[2] in _REQUEST_VERBS:
            return None  # "can you explain ...": a request, not a yes-no question
        if tokens[1:3] == ["there", "a"] or tokens[1:3] == ["there", "any"]:
            return "open"  # "is there a way to ..."
        if tokens[1:3] == ["it", "possible"]:
            return "open"
        return "yes-no"
    return None


def _quote_tokens(span: str) -> list[str]:
    out: list[str] = []
    for m in _TOKEN.finditer(span):
        out.extend(_expand(m.group()))
    return out


def _negated(tokens: list[str], clause_ends: set[int]) -> tuple[frozenset[str], ...]:
    """For each negation, the words it applies to (to the end of its clause)."""
    idle: set[int] = set()
    for i in range(len(tokens) - 1):
        if (tokens[i], tokens[i + 1]) in _IDLE_NEGATION:
            idle.update((i, i + 1))
        elif tokens[i] == "why" and tokens[i + 1] == "not" and i > 0 and tokens[i - 1] == "or":
            idle.add(i + 1)  # "why or why not"
    out = []
    for i, t in enumerate(tokens):
        if t not in lx.NEGATIONS or i in idle:
            continue
        scope: set[str] = set()
        for j in range(i + 1, len(tokens)):
            if j in clause_ends or tokens[j] in _CLAUSE_END or len(scope) == 6:
                break
            if tokens[j] not in lx.FUNCTION_WORDS and tokens[j] not in lx.NEGATIONS:
                scope.add(_key(tokens[j]))
        out.append(frozenset(scope))
    return tuple(out)


def _quantities(
    tokens: list[str], identifiers: set[str]
) -> tuple[set[str], set[str], set[str], set[int]]:
    """Numbers, units, dates and times; and the token positions they used."""
    numbers: set[str] = set()
    units: set[str] = set()
    temporal: set[str] = set()
    consumed: set[int] = set()
    n = len(tokens)
    i = 0
    while i < n:
        t = tokens[i]
        value: str | None = None
        unit = ""
        start = i
        if t in identifiers:
            i += 1
            continue
        if t[:1].isdigit() or t[:1] in "$€£¥":
            currency = lx.UNITS.get(t[0], "") if t[0] in "$€£¥" else ""
            body = t[1:] if currency else t
            if body.endswith("%"):
                unit, body = "%", body[:-1]
            m = _NUM_SUFFIX.fullmatch(body)
            if m and not _PLAIN_NUMBER.fullmatch(body):
                body, suffix = m.group(1), m.group(2)
                if suffix in _ORDINAL_SUFFIXES:
                    value = "#" + _number_value(body)
                elif suffix in _MAGNITUDE_SUFFIXES and (currency or suffix != "m"):
                    scaled = float(body.replace(",", "")) * _MAGNITUDE_SUFFIXES[suffix]
                    value = _number_value(f"{scaled:f}")
                elif suffix in ("am", "pm"):
                    value, unit = _number_value(body), suffix
                elif lx.UNITS.get(suffix):
                    value, unit = _number_value(body), lx.UNITS[suffix]
                else:  # 3d, 4k, 0x80070005: a name, not a quantity
                    identifiers.add(t)
                    i += 1
                    continue
            elif _PLAIN_NUMBER.fullmatch(body):
                value = _number_value(body)
            else:  # 6:30, 3/4, 1.2.3: kept as written
                value = body
            unit = unit or currency
            i += 1
        elif t in lx.ORDINAL_WORDS and not (
            t == "second" and i > 0 and tokens[i - 1][:1].isdigit()
        ):
            value = f"#{lx.ORDINAL_WORDS[t]}"
            i += 1
        elif t in lx.FRACTION_WORDS:
            value = lx.FRACTION_WORDS[t]
            i += 1
        elif t in lx.NUMBER_WORDS:
            total, current = 0, 0
            while i < n and tokens[i] in lx.NUMBER_WORDS:
                v = lx.NUMBER_WORDS[tokens[i]]
                if v >= 100:
                    current = max(current, 1) * v
                    if v >= 1000:
                        total, current = total + current, 0
                else:
                    current += v
                i += 1
                if i + 1 < n and tokens[i] == "and" and tokens[i + 1] in lx.NUMBER_WORDS:
                    i += 1
            value = str(total + current)
        if value is not None:
            consumed.update(range(start, i))
            if i < n and not unit:
                nxt = tokens[i]
                u = lx.UNITS.get(nxt) or lx.UNITS.get(nxt.rstrip("s")) or lx.UNITS.get(stem(nxt))
                if nxt in ("am", "pm", "a.m", "p.m"):
                    u = nxt.replace(".", "")
                if u:
                    unit = u
                    consumed.add(i)
                    i += 1
            elif (
                start > 0
                and not unit
                and lx.UNITS.get(tokens[start - 1])
                and len(tokens[start - 1]) > 1
            ):
                unit = lx.UNITS[tokens[start - 1]]  # "rs 500", "usd 100"
            if unit:
                units.add(unit)
            if value != "1" or unit:  # a bare "one" is mostly an article ("one of the best")
                numbers.add(value)
            continue
        # Stand-alone units (long names only: "m" or "in" alone are not units) and dates.
        u = (lx.UNITS.get(t) or lx.UNITS.get(t.rstrip("s"))) if len(t) > 3 else None
        if u:
            units.add(u)
        d = lx.TEMPORAL_WORDS.get(t)
        if d and t in lx.AMBIGUOUS_MONTHS:
            prev = tokens[i - 1] if i > 0 else ""
            nxt = tokens[i + 1] if i + 1 < n else ""
            if not (prev in _DATE_PREPOSITIONS or prev[:1].isdigit() or nxt[:1].isdigit()):
                d = None
        if d:
            temporal.add(d)
            consumed.add(i)
        elif t in lx.TEMPORAL_MODIFIERS and i + 1 < n:
            nxt = tokens[i + 1]
            period = lx.UNITS.get(nxt.rstrip("s")) or lx.TEMPORAL_WORDS.get(nxt)
            if period:
                temporal.add(f"{t} {period}")
                consumed.update((i, i + 1))
        i += 1
    return numbers, units, temporal, consumed


def _relations(
    tokens: list[str],
    content_at: dict[int, str],
    identifiers: set[str],
    consumed: set[int],
) -> tuple[tuple[str, frozenset[str], frozenset[str]], ...]:
    """Each directional word with the words right next to it ("usd to eur")."""
    side: dict[int, str] = dict(content_at)
    for i, t in enumerate(tokens):
        if (i in consumed and t[:1].isdigit()) or t in identifiers:
            side[i] = t  # numbers and names take sides too
    out = []
    for i, t in enumerate(tokens):
        marker = lx.RELATION_MARKERS.get(t)
        if marker is None:
            continue
        left = _adjacent(tokens, side, range(i - 1, -1, -1))
        right = _adjacent(tokens, side, range(i + 1, len(tokens)))
        if left and right:
            out.append((marker, frozenset(left), frozenset(right)))
    return tuple(out)


def _adjacent(tokens: list[str], side: dict[int, str], positions: range) -> list[str]:
    # Up to two words touching the marker (articles aside): "new york" in "new york to x".
    found: list[str] = []
    for j in positions:
        if j in side:
            found.append(side[j])
            if len(found) == 2:
                break
        elif tokens[j] in _ARTICLES and not found:
            continue
        else:
            break
    return found
