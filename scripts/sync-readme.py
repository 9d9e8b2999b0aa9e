"""Rewrite the README's settings table from semcache.settings (run after adding a setting)."""

from __future__ import annotations

import re
from pathlib import Path

from semcache.settings import settings_table

readme = Path(__file__).resolve().parents[1] / "README.md"
text = readme.read_text()
text = re.sub(
    r"(<!-- settings-table:start -->\n).*?(<!-- settings-table:end -->)",
    lambda m: m.group(1) + settings_table() + "\n" + m.group(2),
    text,
    flags=re.S,
)
readme.write_text(text)
