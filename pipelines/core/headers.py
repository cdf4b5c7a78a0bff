"""Header matching: bureaus spell the same column many ways (全角括号, spaces, English names).

A header and an alias match when their normalised forms are equal: NFKC (full-width → half-width),
case-folded, with white space and common punctuation removed. A header that matches no alias as
written is tried again without what bureaus add around a name: a unit in brackets at the end
(社会面管控率(%)、外流贩毒人员（人）) and a question number at the start (1.、Q1、（1）、第1题).
The aliases stay the only source of names; no file's spelling is listed in code.
"""

from __future__ import annotations

import re
import unicodedata

_STRIP = re.compile(r"[\s_\-·•、,，.。:：;；/\\()\[\]（）【】{}\"'“”‘’]+")
# a trailing bracket holding a unit: short, no CJK word longer than a unit (人, 起, 千克, 万元, %)
_UNIT = re.compile(r"\s*[(\[【{]\s*(?:[%‰‱]|[^()\[\]【】{}]{1,4})\s*[)\]】}]\s*$")
# a leading question number: 1. / 1、 / 1) / (1) / Q1. / Q1_ / 第1题 / 一、
_NUMBER = re.compile(r"^\s*(?:第\s*\d+\s*题|[(（]\s*\d+\s*[)）]|[Qq]?\d+(?:\.\d+)*\s*[.、)）:：_\-\s]"
                     r"|[一二三四五六七八九十]+\s*[、.])\s*")


def normalise_header(text: str) -> str:
    """The comparison key of a header or alias."""
    return _STRIP.sub("", unicodedata.normalize("NFKC", str(text)).casefold())


def header_keys(text: str) -> list[str]:
    """The keys a file header is looked up by, most literal first: as written, without a unit,
    without a question number, without both."""
    plain = unicodedata.normalize("NFKC", str(text)).strip()
    no_unit = _UNIT.sub("", plain)
    no_number = _NUMBER.sub("", plain)
    keys = [normalise_header(v) for v in (plain, no_unit, no_number, _NUMBER.sub("", no_unit))]
    return [k for i, k in enumerate(keys) if k and k not in keys[:i]]


def build_alias_index(aliases_by_target: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Map each normalised alias to its canonical target name (target names match themselves)."""
    index: dict[str, str] = {}
    for target, aliases in aliases_by_target.items():
        for alias in (target, *aliases):
            index.setdefault(normalise_header(alias), target)
    return index


def lookup_header(header: str, index: dict[str, str]) -> str | None:
    """The target of one file header, or None."""
    for key in header_keys(header):
        if (target := index.get(key)) is not None:
            return target
    return None


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
        target = lookup_header(header, index)
        if target is None:
            unmatched.append(header)
            continue
        matched[header] = target
        claimed.setdefault(target, []).append(header)
    duplicates = {target: hs for target, hs in claimed.items() if len(hs) > 1}
    return matched, unmatched, duplicates
