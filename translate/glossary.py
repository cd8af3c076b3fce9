"""A show's trade glossary, applied around every provider.

Machine translation mangles what a buyer and an exhibitor must read exactly: "FOB Shanghai"
becomes "FOB Shanghái" at best and a translated acronym at worst, and a brand is translated
word by word. Before a text goes to a provider each glossary term is replaced by a
placeholder that providers pass through as an unknown word; afterwards the placeholder
becomes the term again (kept verbatim) or the term's given rendering in the target language
(mapped). A provider that mangled a placeholder anyway has its output used as it is, the
term translated by the provider: the message is never lost over a glossary term.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Incoterms 2020 (ICC): delivery terms every trade-fair negotiation uses.
INCOTERMS = frozenset({
    "EXW", "FCA", "CPT", "CIP", "DAP", "DPU", "DDP", "FAS", "FOB", "CFR", "CIF",
})
# Units and trade abbreviations that must stay as written.
TRADE_UNITS = frozenset({"MOQ", "OEM", "ODM", "kg", "pcs", "CBM", "TEU", "FCL", "LCL", "HS"})
# A placeholder: letters no language has as a word, and digits, so that every provider keeps
# it as an unknown token (Apertium without -u would mark it with '*': it runs with -u).
PLACEHOLDER = "QZX{}XZQ"
_PLACEHOLDER_RE = re.compile(r"QZX(\d+)XZQ")

Restore = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Glossary:
    """Terms kept verbatim, and terms rendered per target language (term → {lang: text})."""

    verbatim: frozenset[str] = INCOTERMS | TRADE_UNITS
    mapped: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Glossary:
        """A show's glossary from TOML: ``verbatim = ["Acme", ...]`` (added to the Incoterms
        and units) and ``[mapped.booth] es = "stand"``."""
        document = tomllib.loads(path.read_text(encoding="utf-8"))
        verbatim = document.get("verbatim", [])
        mapped = document.get("mapped", {})
        if not isinstance(verbatim, list) or not all(isinstance(t, str) and t.strip()
                                                     for t in verbatim):
            raise ValueError(f"{path}: verbatim must be a list of terms")
        if not isinstance(mapped, dict) or not all(
                isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
                for v in mapped.values()):
            raise ValueError(f"{path}: mapped must be tables of language = text")
        return cls(INCOTERMS | TRADE_UNITS | frozenset(t.strip() for t in verbatim),
                   {term: dict(renderings) for term, renderings in mapped.items()})

    def _pattern(self) -> re.Pattern[str] | None:
        terms = sorted({*self.verbatim, *self.mapped}, key=len, reverse=True)
        if not terms:
            return None
        # Whole words only: "CIF" in "CIFRA" is not the Incoterm.
        return re.compile(r"(?<!\w)(" + "|".join(re.escape(t) for t in terms) + r")(?!\w)")

    def protect(self, text: str, target: str) -> tuple[str, Restore]:
        """``text`` with each glossary term replaced by a placeholder, and the function that
        turns a translation of it back (placeholders to terms or their renderings)."""
        pattern = self._pattern()
        if pattern is None:
            return text, _unchanged
        found: list[str] = []

        def hold(match: re.Match[str]) -> str:
            term = match.group(1)
            found.append(self.mapped.get(term, {}).get(target, term))
            return PLACEHOLDER.format(len(found) - 1)

        protected = pattern.sub(hold, text)
        if not found:
            return text, _unchanged

        def restore(translated: str) -> str:
            # A placeholder the provider dropped leaves its own rendering of the term in the
            # text, which beats losing the message; one it invented is removed.
            return _PLACEHOLDER_RE.sub(lambda m: _term(found, m), translated)

        return protected, restore


def _term(found: list[str], match: re.Match[str]) -> str:
    index = int(match.group(1))
    return found[index] if index < len(found) else ""


def _unchanged(text: str) -> str:
    return text
