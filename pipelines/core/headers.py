"""Header matching: bureaus spell the same column many ways (全角括号, spaces, English names).

A header and an alias match when their normalised forms are equal: NFKC (full-width → half-width),
case-folded, with white space and common punctuation removed.
"""

from __future__ import annotations

import re
import unicodedata

_STRIP = re.compile(r"[\s_\-·•、,，.。:：;；/\\()\[\]（）【】{}\"'“”‘’]+")


def normalise_header(text: str) -> str:
    """The comparison key of a header or alias."""
    return _STRIP.sub("", unicodedata.normalize("NFKC", str(text)).casefold())


def build_alias_index(aliases_by_target: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Map each normalised alias to its canonical target name (target names match themselves)."""
    index: dict[str, str] = {}
    for target, aliases in aliases_by_target.items():
        for alias in (target, *aliases):
            index.setdefault(normalise_header(alias), target)
    return index


def match_headers(headers: list[str], index: dict[str, str]) -> tuple[dict[str, str], list[str],
                                                                      dict[str, list[str]]]:
    """Match file headers to targets.

    Returns (header → target for matched headers, unmatched headers, target → headers for targets
    claimed by more than one header).
    """
    matched: dict[str, str] = {}
    unmatched: list[str] = []
    claimed: dict[str, list[str]] = {}
    for header in headers:
        target = index.get(normalise_header(header))
        if target is None:
            unmatched.append(header)
            continue
        matched[header] = target
        claimed.setdefault(target, []).append(header)
    duplicates = {target: hs for target, hs in claimed.items() if len(hs) > 1}
    return matched, unmatched, duplicates
