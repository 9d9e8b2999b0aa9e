"""The price table: US dollars per million input and output tokens, per model.

Shipped defaults live in ``prices.toml`` beside this module (list prices of common
OpenAI, Anthropic and Google models). The ``prices`` setting
(``SEMANTIC_CACHE_PRICES``) names a TOML or JSON file in the same format, or holds
inline JSON; its models are added to the defaults and replace those of the same name.
A config file hands its ``[prices]`` table to :func:`parse_prices`.

Format (TOML; JSON is the same shape)::

    [models."gpt-4o-mini"]
    input = 0.15    # dollars per million input tokens
    output = 0.60   # dollars per million output tokens

A model is priced by its own name, else by the longest name in the table that its
name starts with, followed by ``-``, ``:``, ``@`` or ``.`` (``gpt-4o-mini-2024-07-18``
is priced as ``gpt-4o-mini``, ``llama3:8b`` as ``llama3``). Names compare case-blind.
A model the table does not know costs nothing: tokens and seconds are still counted.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from semcache.errors import SettingsError

__all__ = ["ModelPrice", "PriceTable", "default_prices", "load_prices", "parse_prices"]

_SEPARATORS = ("-", ":", "@", ".")


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Dollars per million ``input`` and ``output`` tokens."""

    input: float
    output: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input + output_tokens * self.output) / 1_000_000


class PriceTable:
    """Model name -> :class:`ModelPrice`, matched as the module says."""

    def __init__(self, prices: Mapping[str, ModelPrice] | None = None) -> None:
        self.prices = {name.lower(): price for name, price in (prices or {}).items()}
        # Longest first: the first prefix found is the most specific one.
        self._by_length = sorted(self.prices, key=len, reverse=True)
        self._memo: dict[str, ModelPrice | None] = {}

    def __len__(self) -> int:
        return len(self.prices)

    def merged(self, other: PriceTable) -> PriceTable:
        """This table with ``other``'s models added (``other`` wins on a name)."""
        return PriceTable({**self.prices, **other.prices})

    def price(self, model: str | None) -> ModelPrice | None:
        """The price of ``model``, or ``None`` when the table does not know it."""
        if not model:
            return None
        key = model.strip().lower()
        if key in self._memo:
            return self._memo[key]
        found = self.prices.get(key)
        if found is None:
            # Provider prefixes ("openai/gpt-4o", "models/gemini-1.5-flash") are not part of the name.
            bare = key.rsplit("/", 1)[-1]
            found = self.prices.get(bare)
            if found is None:
                found = next(
                    (
                        self.prices[name]
                        for name in self._by_length
                        if bare.startswith(name) and bare[len(name) : len(name) + 1] in _SEPARATORS
                    ),
                    None,
                )
        if len(self._memo) < 4096:  # model names are few; a flood of odd ones is not kept
            self._memo[key] = found
        return found

    def cost(self, model: str | None, input_tokens: int, output_tokens: int) -> float | None:
        """Dollars for these tokens of ``model``; ``None`` when the model has no price."""
        price = self.price(model)
        return None if price is None else price.cost(input_tokens, output_tokens)


def parse_prices(data: Mapping[str, Any], where: str = "prices") -> PriceTable:
    """A :class:`PriceTable` from the parsed file (``{"models": {name: {input, output}}}``);
    a bare ``{name: {input, output}}`` mapping is accepted too. Raises
    :class:`~semcache.errors.SettingsError` naming the bad key."""
    if not isinstance(data, Mapping):
        raise SettingsError(f"{where}: expected a table of models")
    nested = "models" in data
    models = data["models"] if nested else data
    if not isinstance(models, Mapping):
        raise SettingsError(f"{where}.models: expected a table of models")
    if nested and set(data) != {"models"}:
        unknown = ", ".join(sorted(set(data) - {"models"}))
        raise SettingsError(f"{where}: unknown key(s) {unknown}")
    table: dict[str, ModelPrice] = {}
    for name, entry in models.items():
        key = f"{where}.models.{name}" if nested else f"{where}.{name}"
        if not isinstance(entry, Mapping):
            raise SettingsError(f"{key}: expected a table with input and output")
        extra = set(entry) - {"input", "output"}
        if extra:
            raise SettingsError(f"{key}: unknown key(s) {', '.join(sorted(extra))}")
        values = []
        for side in ("input", "output"):
            value = entry.get(side)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise SettingsError(
                    f"{key}.{side}: expected dollars per million tokens (a number >= 0)"
                )
            values.append(float(value))
        table[str(name)] = ModelPrice(*values)
    return PriceTable(table)


def default_prices() -> PriceTable:
    """The shipped price table (``prices.toml`` in this package)."""
    text = resources.files(__package__).joinpath("prices.toml").read_text(encoding="utf-8")
    return parse_prices(tomllib.loads(text), "prices.toml")


def load_prices(source: str | None) -> PriceTable:
    """The default table, with ``source`` added: a path to a ``.toml`` or ``.json``
    file, or inline JSON (text starting with ``{``). Empty: the defaults alone."""
    table = default_prices()
    if not source or not source.strip():
        return table
    source = source.strip()
    if source.startswith("{"):
        try:
            data = json.loads(source)
        except ValueError as exc:
            raise SettingsError(f"prices: inline JSON is invalid ({exc})") from exc
        return table.merged(parse_prices(data))
    path = Path(source).expanduser()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"prices: cannot read {path} ({exc.strerror or exc})") from exc
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SettingsError(f"prices: {path} is invalid ({exc})") from exc
    return table.merged(parse_prices(data, str(path)))
