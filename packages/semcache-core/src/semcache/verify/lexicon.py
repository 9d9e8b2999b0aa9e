"""Word lists for the default verifier: general English.

They were developed on the tuning set (tests/data/traps.jsonl); an entry that only one
labelled pair needs is a fit to that pair, not English, and does not belong here
(``scripts/lexicon_usage.py`` counts the pairs each synonym decides).

Everything here is lower case; the analyser case-folds before looking words up.
"""

from __future__ import annotations

__all__ = [
    "AMBIGUOUS_MONTHS",
    "ANTONYM_AXES",
    "CONTRACTIONS",
    "FRACTION_WORDS",
    "FUNCTION_WORDS",
    "NEGATIONS",
    "NUMBER_WORDS",
    "ORDINAL_WORDS",
    "RELATION_MARKERS",
    "SCAFFOLD_WORDS",
    "SYNONYMS",
    "TEMPORAL_MODIFIERS",
    "TEMPORAL_WORDS",
    "UNITS",
]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# fmt: off
NEGATIONS = frozenset({
    "not", "no", "never", "without", "none", "nothing", "nobody", "nowhere", "neither",
    "nor", "cannot", "unable", "non",
})
"""Words that flip what the answer must be; their counts must agree."""

CONTRACTIONS: dict[str, tuple[str, ...]] = {
    "can't": ("can", "not"), "cant": ("can", "not"), "won't": ("will", "not"),
    "wont": ("will", "not"), "shan't": ("shall", "not"), "ain't": ("is", "not"),
    "dont": ("do", "not"), "doesnt": ("does", "not"), "didnt": ("did", "not"),
    "isnt": ("is", "not"), "arent": ("are", "not"), "wasnt": ("was", "not"),
    "werent": ("were", "not"), "havent": ("have", "not"), "hasnt": ("has", "not"),
    "hadnt": ("had", "not"), "shouldnt": ("should", "not"), "wouldnt": ("would", "not"),
    "couldnt": ("could", "not"), "mustnt": ("must", "not"), "neednt": ("need", "not"),
    "whats": ("what", "is"), "hows": ("how", "is"), "wheres": ("where", "is"),
    "whos": ("who", "is"), "im": ("i", "am"), "ive": ("i", "have"), "youre": ("you", "are"),
}
"""Apostrophe-less spellings users type; ``n't`` and ``'s`` forms are split by rule."""

FUNCTION_WORDS = _words("""
a an the and or but if then than so as of in on at to for from by with about into onto over
under between through during before after above below up down out off again further once
here there when where why how what which who whom whose this that these those am is are was
were be been being have has had having do does did doing will would shall should can could
may might must i me my mine myself we us our ours ourselves you your yours yourself
yourselves he him his himself she her hers herself it its itself they them their theirs
themselves all any both each few other some such only own same too very just also s t
don now ll re ve d m o y ma let lets get gets got getting go goes going gone went
please kindly hi hello hey thanks thank ok okay yes yeah really actually basically
that's there's here's it's
""")
"""Words that carry grammar, not the topic of a question."""

SCAFFOLD_WORDS = _words("""
way ways best good better great top some tips tip possible possibly thing things
know tell explain describe give show list help want need like would could should
someone somebody something anyone anybody anything one ones people person
steps step method methods use using used easy easiest simple simply quick quickly
make makes made making find finds found ever exactly much many lot lots kind kinds type
types example examples different difference mean means meaning called call also
really actual actually exist exists existing important main major common usually
often always sometimes generally specific particular certain whole entire
most more ever time times world life true real exactly approximately basically
effective effectively efficient efficiently successful successfully properly proper
ideal perfect possible worth become becomes becoming happen happens happened
think thinks thought opinion opinions view views feel feels believe consider
ask asked asking question questions answer answers reason reasons name named
favorite favourite greatest basic basics process procedure share suggest recommend
provide cause causes caused
""")
"""How questions are phrased ("what is the best way to", "can you tell me"), not what
they ask about: words a paraphrase adds or drops freely."""

SYNONYMS: dict[str, str] = {
    "purchase": "buy", "acquire": "buy",
    "begin": "start", "commence": "start", "launch": "start",
    "finish": "end", "complete": "end",
    "obtain": "get", "receive": "get",
    "modify": "change", "alter": "change", "edit": "change", "update": "change",
    "remove": "delete", "erase": "delete",
    "fix": "repair", "mend": "repair", "solve": "repair", "resolve": "repair",
    "large": "big", "huge": "big", "small": "little", "tiny": "little",
    "quick": "fast", "rapid": "fast",
    "writer": "write",
    "high": "tall",
    "study": "learn",
    "job": "work", "employment": "work",
    "film": "movie", "cinema": "movie",
    "automobile": "car", "vehicle": "car",
    "doctor": "physician",
    "requirement": "need", "require": "need",
    "earn": "make",
    "reply": "answer", "respond": "answer", "response": "answer",
    "assist": "help", "assistance": "help", "support": "help",
    "error": "problem", "issue": "problem", "trouble": "problem", "bug": "problem",
    "unhealthy": "bad",
    "cellphone": "phone", "smartphone": "phone", "mobile": "phone",
    "kid": "child",
    "guy": "man",
    # irregular forms, which stemming cannot reach
    "bought": "buy", "wrote": "write", "written": "write", "said": "say", "spoken": "speak",
    "children": "child", "men": "man", "women": "woman",
}
"""A few near-universal synonyms, so a paraphrase that swaps them is not a new topic.

Keys match in any regular form ("receiving", "films", "required" through "receive",
"film", "require"): the analyser compares stems."""

# Each axis lists its poles; a word on one pole in one text and on another pole in the
# other text (and not on both sides) means the texts ask opposite things.
ANTONYM_AXES: dict[str, tuple[frozenset[str], ...]] = {
    "switch": (frozenset({"enable", "activate", "on", "turn-on", "unmute", "show"}),
               frozenset({"disable", "deactivate", "off", "turn-off", "mute", "hide"})),
    "open": (frozenset({"open", "opened", "opening", "reopen"}),
             frozenset({"close", "closed", "closing", "shut"})),
    "start": (frozenset({"start", "begin", "resume", "continue"}),
              frozenset({"stop", "end", "pause", "quit", "halt", "cease", "finish"})),
    "allow": (frozenset({"allow", "permit", "enable", "unblock", "whitelist", "allowlist"}),
              frozenset({"block", "deny", "forbid", "prevent", "ban", "prohibit", "blacklist",
                         "avoid"})),
    "accept": (frozenset({"accept", "approve", "agree"}),
               frozenset({"reject", "decline", "refuse", "deny", "disagree"})),
    "include": (frozenset({"include", "including", "inclusive"}),
                frozenset({"exclude", "excluding", "except", "exclusive"})),
    "add": (frozenset({"add", "insert", "append", "attach", "join"}),
            frozenset({"remove", "delete", "detach", "leave", "drop"})),
    "increase": (frozenset({"increase", "raise", "rise", "grow", "boost", "gain", "more",
                            "higher", "greater", "up", "upgrade", "enlarge", "expand",
                            "maximize"}),
                 frozenset({"decrease", "reduce", "lower", "fall", "drop", "shrink", "lose",
                            "less", "lesser", "fewer", "down", "downgrade", "minimize", "cut"})),
    "buy": (frozenset({"buy", "buying", "buyer", "purchase"}),
            frozenset({"sell", "selling", "seller", "sold"})),
    "import": (frozenset({"import", "upload", "input", "inbound", "incoming", "receive"}),
               frozenset({"export", "download", "output", "outbound", "outgoing", "send"})),
    "lend": (frozenset({"lend", "lender", "loan"}), frozenset({"borrow", "borrower"})),
    "deposit": (frozenset({"deposit", "credit"}), frozenset({"withdraw", "withdrawal", "debit"})),
    "win": (frozenset({"win", "won", "winning", "winner", "victory"}),
            frozenset({"lose", "lost", "losing", "loser", "defeat"})),
    "pass": (frozenset({"pass", "passed", "succeed", "success", "successful"}),
             frozenset({"fail", "failed", "failure", "unsuccessful"})),
    "true": (frozenset({"true", "correct", "right", "yes"}),
             frozenset({"false", "incorrect", "wrong"})),
    "good": (frozenset({"good", "better", "best", "positive", "benefit", "benefits",
                        "advantage", "advantages", "pro", "pros", "healthy", "safe"}),
             frozenset({"bad", "worse", "worst", "negative", "harm", "harms", "risk", "risks",
                        "disadvantage", "disadvantages", "con", "cons", "unhealthy",
                        "dangerous", "harmful"})),
    "time": (frozenset({"before", "prior", "earlier", "pre"}),
             frozenset({"after", "later", "post", "following"})),
    "position": (frozenset({"above", "over", "upper", "top", "upstairs"}),
                 frozenset({"below", "under", "lower", "bottom", "beneath", "downstairs"})),
    "size": (frozenset({"big", "bigger", "biggest", "large", "larger", "largest", "huge",
                        "tall", "taller", "tallest", "long", "longer", "longest", "wide"}),
             frozenset({"small", "smaller", "smallest", "little", "tiny", "short", "shorter",
                        "shortest", "narrow"})),
    "extreme": (frozenset({"max", "maximum", "most", "highest", "greatest", "top", "peak"}),
                frozenset({"min", "minimum", "least", "lowest", "fewest", "bottom"})),
    "speed": (frozenset({"fast", "faster", "fastest", "quick", "quicker", "quickest"}),
              frozenset({"slow", "slower", "slowest"})),
    "weight": (frozenset({"heavy", "heavier", "heaviest"}),
               frozenset({"light", "lighter", "lightest"})),
    "age": (frozenset({"old", "older", "oldest", "elder", "eldest"}),
            frozenset({"young", "younger", "youngest", "new", "newer", "newest"})),
    "price": (frozenset({"cheap", "cheaper", "cheapest", "inexpensive", "affordable"}),
              frozenset({"expensive", "pricey", "costly", "dear"})),
    "difficulty": (frozenset({"easy", "easier", "easiest", "simple", "simpler"}),
                   frozenset({"hard", "harder", "hardest", "difficult", "tough"})),
    "temperature": (frozenset({"hot", "hotter", "hottest", "warm", "warmer", "heat"}),
                    frozenset({"cold", "colder", "coldest", "cool", "cooler", "freeze"})),
    "wealth": (frozenset({"rich", "richer", "richest", "wealthy"}),
               frozenset({"poor", "poorer", "poorest"})),
    "sort": (frozenset({"ascending", "asc", "increasing"}),
             frozenset({"descending", "desc", "decreasing"})),
    "case": (frozenset({"uppercase", "capital", "capitals"}), frozenset({"lowercase"})),
    "plus": (frozenset({"plus", "add", "sum", "multiply", "times"}),
             frozenset({"minus", "subtract", "divide", "divided"})),
    "life": (frozenset({"alive", "live", "living", "birth", "born"}),
             frozenset({"dead", "die", "died", "death", "dying"})),
    "sleep": (frozenset({"asleep", "sleep", "sleeping"}), frozenset({"awake", "wake"})),
    "full": (frozenset({"full", "fill"}), frozenset({"empty"})),
    "wet": (frozenset({"wet", "damp", "humid"}), frozenset({"dry"})),
    "light": (frozenset({"light", "bright"}), frozenset({"dark", "darkness"})),
    "public": (frozenset({"public"}), frozenset({"private"})),
    "internal": (frozenset({"internal", "inner", "inside", "indoor", "indoors"}),
                 frozenset({"external", "outer", "outside", "outdoor", "outdoors"})),
    "online": (frozenset({"online"}), frozenset({"offline"})),
    "arrive": (frozenset({"arrive", "arrival", "arrivals", "enter", "entry", "entrance"}),
               frozenset({"depart", "departure", "departures", "exit", "leave"})),
    "direction": (frozenset({"north", "northern"}), frozenset({"south", "southern"})),
    "direction2": (frozenset({"east", "eastern"}), frozenset({"west", "western"})),
    "side": (frozenset({"left"}), frozenset({"right"})),
    "front": (frozenset({"front", "forward", "forwards"}),
              frozenset({"back", "backward", "backwards", "rear"})),
    "first": (frozenset({"first", "earliest", "beginning"}), frozenset({"last", "latest", "final"})),
    "past": (frozenset({"past", "previous", "history", "historical"}),
             frozenset({"future", "upcoming", "next"})),
    "gender": (frozenset({"man", "male", "boy", "husband", "father", "dad", "son", "brother",
                          "he", "him", "his", "boyfriend", "king", "mr"}),
               frozenset({"woman", "female", "girl", "wife", "mother", "mom", "daughter",
                          "sister", "she", "her", "girlfriend", "queen", "mrs", "ms"})),
    "role": (frozenset({"employer", "landlord", "teacher", "parent", "seller", "host"}),
             frozenset({"employee", "tenant", "student", "child", "buyer", "guest"})),
    "love": (frozenset({"love", "like", "enjoy"}), frozenset({"hate", "dislike"})),
    "same": (frozenset({"same", "similar", "similarity", "similarities", "alike"}),
             frozenset({"different", "differ", "difference", "differences", "unlike"})),
    "lock": (frozenset({"lock", "locked"}), frozenset({"unlock", "unlocked"})),
    "connect": (frozenset({"connect", "connected", "pair", "link", "login", "log-in", "sign-in",
                           "signin"}),
                frozenset({"disconnect", "disconnected", "unpair", "unlink", "logout",
                           "log-out", "sign-out", "signout"})),
}
"""Opposite poles of one scale, as stems and word forms."""

RELATION_MARKERS: dict[str, str] = {
    "than": "than", "to": "to", "into": "to", "towards": "to", "toward": "to",
    "from": "from", "of": "of", "in": "in", "per": "per", "for": "for", "by": "by",
}
"""Words whose two sides are not interchangeable: "USD to EUR" is not "EUR to USD"."""

NUMBER_WORDS: dict[str, int] = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "million": 1_000_000, "billion": 1_000_000_000, "trillion": 1_000_000_000_000,
    "dozen": 12, "twice": 2,
}
"""Cardinal words; ones that are usually not counts ("pair", "single") are left out."""

FRACTION_WORDS: dict[str, str] = {"half": "1/2", "quarter": "1/4"}

ORDINAL_WORDS: dict[str, int] = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "twentieth": 20,
    "hundredth": 100, "thousandth": 1000,
}

UNITS: dict[str, str] = {
    # length
    "mm": "mm", "millimeter": "mm", "millimetre": "mm", "cm": "cm", "centimeter": "cm",
    "centimetre": "cm", "m": "m", "meter": "m", "metre": "m", "km": "km",
    "kilometer": "km", "kilometre": "km", "kms": "km", "in": "", "inch": "inch",
    "inches": "inch", "ft": "ft", "foot": "ft", "feet": "ft", "yd": "yard", "yard": "yard",
    "mi": "mile", "mile": "mile", "miles": "mile",
    # mass
    "mg": "mg", "milligram": "mg", "g": "g", "gram": "g", "gm": "g", "kg": "kg",
    "kilogram": "kg", "kilo": "kg", "kgs": "kg", "lb": "lb", "lbs": "lb", "pound": "lb",
    "oz": "oz", "ounce": "oz", "ton": "ton", "tonne": "ton", "stone": "stone",
    # volume
    "ml": "ml", "milliliter": "ml", "millilitre": "ml", "l": "l", "liter": "l",
    "litre": "l", "gallon": "gallon", "gal": "gallon", "quart": "quart", "pint": "pint",
    "cup": "cup", "tablespoon": "tbsp", "tbsp": "tbsp", "teaspoon": "tsp", "tsp": "tsp",
    # time
    "ms": "ms", "millisecond": "ms", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "min": "min", "mins": "min", "minute": "min", "hr": "h", "hrs": "h", "hour": "h",
    "day": "day", "week": "week", "wk": "week", "month": "month", "mo": "month",
    "year": "year", "yr": "year", "yrs": "year", "decade": "decade", "century": "century",
    # temperature, energy, power, data, speed
    "celsius": "c", "centigrade": "c", "fahrenheit": "f", "kelvin": "k",
    "calorie": "kcal", "kcal": "kcal", "cal": "kcal", "joule": "j", "kj": "kj",
    "watt": "w", "w": "w", "kw": "kw", "kilowatt": "kw", "kwh": "kwh", "volt": "v",
    "v": "v", "amp": "a", "mah": "mah", "hz": "hz", "ghz": "ghz", "mhz": "mhz",
    "bit": "bit", "byte": "byte", "kb": "kb", "kilobyte": "kb", "mb": "mb",
    "megabyte": "mb", "gb": "gb", "gigabyte": "gb", "tb": "tb", "terabyte": "tb",
    "mbps": "mbps", "gbps": "gbps", "mph": "mph", "kmh": "kmh", "kph": "kmh",
    "psi": "psi", "acre": "acre", "hectare": "ha",
    # money
    "$": "usd", "usd": "usd", "dollar": "usd", "buck": "usd", "€": "eur", "eur": "eur",
    "euro": "eur", "£": "gbp", "gbp": "gbp", "sterling": "gbp", "¥": "jpy", "jpy": "jpy",
    "yen": "jpy", "inr": "inr", "rupee": "inr", "rs": "inr", "cny": "cny", "yuan": "cny",
    "rmb": "cny", "peso": "peso", "cad": "cad", "aud": "aud", "chf": "chf", "franc": "chf",
    "btc": "btc", "bitcoin": "btc", "cent": "cent", "pence": "cent",
    # ratio
    "%": "%", "percent": "%", "percentage": "%", "pct": "%",
}
"""Unit words to one canonical name; "" marks words that are units only after a number."""

TEMPORAL_WORDS: dict[str, str] = {
    "today": "today", "tonight": "tonight", "tomorrow": "tomorrow", "yesterday": "yesterday",
    "morning": "morning", "afternoon": "afternoon",
    "evening": "evening", "midnight": "midnight", "noon": "noon", "weekend": "weekend",
    "weekday": "weekday", "weekdays": "weekday", "weekends": "weekend",
    "am": "am", "a.m": "am", "pm": "pm", "p.m": "pm",
    "monday": "mon", "tuesday": "tue", "wednesday": "wed", "thursday": "thu",
    "friday": "fri", "saturday": "sat", "sunday": "sun", "mondays": "mon",
    "tuesdays": "tue", "wednesdays": "wed", "thursdays": "thu", "fridays": "fri",
    "saturdays": "sat", "sundays": "sun",
    "january": "jan", "february": "feb", "march": "mar", "april": "apr", "may": "may",
    "june": "jun", "july": "jul", "august": "aug", "september": "sep", "october": "oct",
    "november": "nov", "december": "dec", "jan": "jan", "feb": "feb", "mar": "mar",
    "apr": "apr", "jun": "jun", "jul": "jul", "aug": "aug", "sep": "sep", "sept": "sep",
    "oct": "oct", "nov": "nov", "dec": "dec",
    "spring": "spring", "summer": "summer", "autumn": "autumn", "fall": "autumn",
    "winter": "winter", "christmas": "christmas", "easter": "easter",
    "halloween": "halloween", "thanksgiving": "thanksgiving", "eve": "eve",
}
"""Dates and times of day to a canonical name."""

AMBIGUOUS_MONTHS = frozenset({"may", "march", "fall", "mar", "jan", "sat", "sun", "dec", "am"})
"""Also ordinary words: they count as dates only next to a number or a date preposition."""

TEMPORAL_MODIFIERS = frozenset({
    "last", "next", "this", "previous", "past", "coming", "current", "upcoming",
})
"""Before a time unit ("last week"), these pick a different period."""
# fmt: on
