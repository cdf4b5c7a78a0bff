"""County cells as bureaus write them → the province's 6-digit county codes.

Codes: a 12-digit 统计用区划代码 is the 6-digit code followed by six zeros. Names: full-width
characters and spaces, traditional characters (OpenCC's t2s tables), the 县/区/市 suffix left out
and the city written in front (澄屿市樾渚区, 澄屿樾渚) are all read, as long as exactly one county
of the province fits; a name two counties could carry is refused, never guessed. A name found only
as such a variant is reported, so the analyst sees what was matched.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache

import polars as pl

_COUNTY_SUFFIX = re.compile(r"(自治县|自治旗|特区|林区|新区|县|区|市|旗)$")
_CITY_SUFFIX = re.compile(r"(自治州|地区|市|州|盟)$")


@cache
def _to_simplified():
    from opencc import OpenCC  # the dictionaries load once, on the first name that needs them

    return OpenCC("t2s").convert


_SEPARATORS = re.compile(r"[\s\-_·•/、,，.。]+")


def _plain(text: str) -> str:
    """NFKC, without white space (full-width spaces too) or the separators people put between
    a city and a county (澄屿市-樾渚区, 澄屿市·樾渚区)."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", text))


def name_key(text: str) -> str:
    """`_plain`, in simplified characters."""
    plain = _plain(text)
    return _to_simplified()(plain) if re.search(r"[^\x00-\x7f]", plain) else plain


def _core(name: str, suffix: re.Pattern) -> str | None:
    """The name without its administrative suffix, when two characters or more remain
    (和县 stays 和县)."""
    core = suffix.sub("", name)
    return core if core != name and len(core) >= 2 else None


@dataclass(frozen=True)
class NameMatch:
    code: str | None
    how: str             # exact | variant | ambiguous | unknown
    candidates: tuple[str, ...] = ()


class CountyNames:
    """The province's counties by every form of their name a file may use."""

    def __init__(self, counties: pl.DataFrame) -> None:
        self.counties = counties
        self.names = dict(zip(counties["county_code"], counties["county_name"], strict=False))
        # the official names as written (a file usually spells every name so: no conversion)
        self.exact = {_plain(name): code for code, name in self.names.items()}
        self._variants: dict[str, set[str]] | None = None

    @property
    def variants(self) -> dict[str, set[str]]:
        """Every form of every name → the counties it fits; built on the first name that is
        not written as in the list."""
        if self._variants is None:
            self._variants = {}
            counties = self.counties
            cities = (counties["city_name"] if "city_name" in counties.columns
                      else pl.Series([None] * counties.height))
            for code, name, city in zip(counties["county_code"], counties["county_name"], cities,
                                        strict=False):
                full = name_key(name)
                forms = {f for f in (full, _core(full, _COUNTY_SUFFIX)) if f}
                if city:
                    city_key = name_key(city)
                    prefixes = {p for p in (city_key, _core(city_key, _CITY_SUFFIX)) if p}
                    forms |= {p + f for p in prefixes for f in forms}
                for form in forms:
                    self._variants.setdefault(form, set()).add(code)
        return self._variants

    def match(self, cell: str) -> NameMatch:
        if (code := self.exact.get(cell)) is not None:
            return NameMatch(code, "exact")
        key = name_key(cell)
        if (code := self.exact.get(key)) is not None:
            return NameMatch(code, "variant")
        codes = self.variants.get(key, set())
        if len(codes) == 1:
            return NameMatch(next(iter(codes)), "variant")
        if codes:
            return NameMatch(None, "ambiguous", tuple(sorted(codes)))
        return NameMatch(None, "unknown")

    def label(self, code: str) -> str:
        return f"{self.names[code]}（{code}）"


def county_codes(cells: pl.Series) -> pl.Series:
    """Code cells as 6-digit codes: NFKC, no ".0" Excel added, a 12-digit 统计用区划代码 cut to
    its first six digits when the other six are zeros."""
    text = cells.cast(pl.String).str.strip_suffix(".0")
    if not (text.str.len_bytes().max() or 0) > 6:     # plain 6-digit codes: nothing to do
        return text
    if text.str.contains(r"[^\x00-\x7f]").any():
        text = text.str.normalize("NFKC").str.replace_all(r"\s", "").str.strip_suffix(".0")
    return pl.select(pl.when(text.str.contains(r"^\d{6}0{6}$")).then(text.str.slice(0, 6))
                     .otherwise(text)).to_series()
