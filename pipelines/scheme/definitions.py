"""Questionnaire, indicator catalogue and scoring scheme, loaded from the TOML files in `surveys/`.

Every item, answer code, point value, weight and rule lives in those files; this module turns them
into typed objects and refuses a file with a clear Chinese message per problem (file and key), all
problems at once, so an analyst can fix the year's scheme in one pass.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pipelines.core.waves import in_force, next_wave, wave_error, wave_months

SURVEYS_DIR = Path(__file__).resolve().parents[2] / "surveys"
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

# Options as types: each is checked once, when its TOML file loads (`_Checker.choice`), so the code
# downstream may trust a value to be one of these.
ColumnType = Literal["text", "integer", "number", "code"]
IndicatorKind = Literal["rate", "per_thousand", "count", "flag", "amount", "index", "change_pct"]
# Sampling noise of an indicator: none (an administrative figure); poisson (a count of events);
# poisson_change (the period-on-period change, in %, of a poisson count named by `count`)
IndicatorNoise = Literal["none", "poisson", "poisson_change"]
Source = Literal["survey", "indicator"]
Direction = Literal["higher", "lower"]
# steps: points by thresholds (≥95% → 3, ≥98% → 5); per_unit: points per case (0.5 per user)
Normalisation = Literal["goalposts", "minmax", "zscore", "steps", "per_unit"]
# base components' weights total the scheme's base; a bonus adds, a deduction takes off points
Role = Literal["base", "bonus", "deduction"]
DontKnow = Literal["exclude", "score"]           # 说不清: left out of the item's mean, or scored
VetoOp = Literal[">=", ">", "<=", "<", "=="]
TieRule = Literal["min", "average", "first"]
TierLevel = Literal["省", "市"]
TierMatch = Literal["any", "all"]
LonelyPsu = Literal["adjust", "certainty", "average"]  # a stratum with one PSU (survey.lonely.psu)
ShareInterval = Literal["beta", "logit", "wald"]   # interval of a 0/100 item (R: svyciprop method)

COLUMN_TYPES: tuple[ColumnType, ...] = get_args(ColumnType)
INDICATOR_KINDS: tuple[IndicatorKind, ...] = get_args(IndicatorKind)
INDICATOR_NOISES: tuple[IndicatorNoise, ...] = get_args(IndicatorNoise)
NORMALISATIONS: tuple[Normalisation, ...] = get_args(Normalisation)
VETO_OPS: tuple[VetoOp, ...] = get_args(VetoOp)
TIE_RULES: tuple[TieRule, ...] = get_args(TieRule)
LONELY_PSU_RULES: tuple[LonelyPsu, ...] = get_args(LonelyPsu)


class DefinitionError(ValueError):
    """A definition file is invalid; `problems` holds one Chinese message per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("方案/问卷定义有误：\n" + "\n".join(f"  - {p}" for p in problems))


# ---------------------------------------------------------------------------------------------
# typed definitions


@dataclass(frozen=True)
class ColumnDef:
    id: str
    label: str
    type: ColumnType
    aliases: tuple[str, ...]
    required: bool = False
    codes: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    code: int
    label: str
    dont_know: bool = False
    synonyms: tuple[str, ...] = ()     # other words a file may write for this answer


@dataclass(frozen=True)
class Item:
    id: str
    label: str
    short: str
    aliases: tuple[str, ...]
    answers: tuple[Answer, ...]

    @property
    def codes(self) -> tuple[int, ...]:
        return tuple(a.code for a in self.answers)

    @property
    def column(self) -> str:
        """Column name of this item in the warehouse's responses table."""
        return f"q_{self.id}"


@dataclass(frozen=True)
class Questionnaire:
    name: str
    min_age: int
    max_age: int
    columns: dict[str, ColumnDef]
    items: tuple[Item, ...]
    # answer label → other words for it, for every item that has the label (说不清 → 不清楚 …)
    answer_synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def item(self, item_id: str) -> Item:
        return next(i for i in self.items if i.id == item_id)


@dataclass(frozen=True)
class IndicatorDef:
    id: str
    label: str
    unit: str
    kind: IndicatorKind
    aliases: tuple[str, ...]
    noise: IndicatorNoise = "none"
    count: str | None = None        # poisson_change: the count indicator the change is made of
    allow_missing: bool = True      # a blank (or —, /, 无) cell is a county without a value


@dataclass(frozen=True)
class IndicatorCatalogue:
    county_aliases: tuple[str, ...]
    county_name_aliases: tuple[str, ...]
    period_aliases: tuple[str, ...]
    indicators: tuple[IndicatorDef, ...]

    def get(self, indicator_id: str) -> IndicatorDef:
        return next(i for i in self.indicators if i.id == indicator_id)


@dataclass(frozen=True)
class ItemScoring:
    points: dict[int, float]
    dont_know: DontKnow = "exclude"
    dont_know_points: float | None = None


@dataclass(frozen=True)
class Component:
    id: str
    label: str
    source: Source
    weight: float
    items: tuple[str, ...] = ()
    item_weights: tuple[float, ...] = ()
    indicator: str | None = None
    direction: Direction = "higher"
    normalisation: Normalisation | None = None
    lo: float | None = None
    hi: float | None = None
    per_100k_population: bool = False
    poisson: bool = False           # carries Poisson noise (from the catalogue's `noise`)
    change_of: str | None = None    # a poisson_change: the count indicator it is the change of
    from_wave: str | None = None    # in force from this wave on (inclusive; None = always)
    until_wave: str | None = None   # in force up to this wave (inclusive; None = still)
    role: Role = "base"
    steps: tuple[tuple[float, float], ...] = ()   # (threshold, points) of a "steps" component
    per_unit: float | None = None   # points per unit of a "per_unit" component (capped at weight)


@dataclass(frozen=True)
class Veto:
    subject: str
    op: VetoOp
    value: float
    reason: str
    from_wave: str | None = None    # 今年起……一票否决: in force from this wave on
    until_wave: str | None = None


@dataclass(frozen=True)
class Band:
    label: str
    p_bottom3_at_least: float | None = None
    p_bottom10_at_least: float | None = None


@dataclass(frozen=True)
class ListingRules:
    province_bottom: int
    city_bottom: int
    city_opt_in: tuple[str, ...]
    criticism_bottom: int
    criticism_score: float
    consecutive_zero_years: int     # 连续N年通报批评 → 当年考核得分记零 (years, not waves)
    bands: tuple[Band, ...]


@dataclass(frozen=True)
class Trigger:
    """One condition of a tier: in the bottom `rank_bottom` (of the province, or of the city at
    city level), a score under `score_below`, an indicator compared with a value, or a veto."""
    rank_bottom: int | None = None
    score_below: float | None = None
    indicator: str | None = None
    op: VetoOp | None = None
    value: float | None = None
    veto: bool = False


@dataclass(frozen=True)
class Tier:
    """A named consequence tier (重点整治 / 预警通告 / 重点关注 …) at a level; the first tier of
    a level whose triggers hold (any or all of them) applies to a county that wave."""
    id: str
    label: str
    level: TierLevel
    match: TierMatch
    triggers: tuple[Trigger, ...]
    from_wave: str | None = None
    until_wave: str | None = None


@dataclass(frozen=True)
class Grade:
    label: str
    at_least: float | None = None   # None: the lowest band


@dataclass(frozen=True)
class DelistingTarget:
    indicator: str
    at_least: float | None = None
    at_most: float | None = None
    relative_to_baseline: float | None = None


@dataclass(frozen=True)
class DelistingRules:
    leave_bottom: int
    consecutive_waves: int
    deadline_waves: int
    inspection_required: bool
    targets: tuple[DelistingTarget, ...]


@dataclass(frozen=True)
class EstimationSettings:
    """How county estimates are made (see pipelines/stats/means.py)."""

    lonely_psu: LonelyPsu = "adjust"
    share_interval: ShareInterval = "logit"  # items scored 0/100 only (pipelines/stats/ciprop.py)
    rake_to_margins: bool = False     # rake the file's weights to the county margins first
    replicates: int = 2000            # draws for relative normalisations and Poisson counts
    seed: int = 20251123


@dataclass(frozen=True)
class Scheme:
    name: str
    year: int
    ties: TieRule
    confidence_level: float
    items: dict[str, ItemScoring]
    components: tuple[Component, ...]
    vetoes: tuple[Veto, ...]
    listing: ListingRules
    delisting: DelistingRules
    estimation: EstimationSettings = EstimationSettings()
    tiers: tuple[Tier, ...] = ()
    base: float = 100.0             # the base components' weights total this
    grades: tuple[Grade, ...] = ()  # 等级 bands, best first

    def grade(self, score: float | None) -> str | None:
        """The grade band of a score (≥90 先进 …), None without bands or a score."""
        if score is None or score != score:
            return None
        return next((g.label for g in self.grades if g.at_least is None or score >= g.at_least),
                    None)

    def in_force(self, wave: str) -> Scheme:
        """The scheme that scores `wave`: only the components and vetoes valid for it, so a rule
        adopted this year never re-scores the waves before it."""
        return dataclasses.replace(
            self, components=tuple(c for c in self.components
                                   if in_force(wave, c.from_wave, c.until_wave)),
            vetoes=tuple(v for v in self.vetoes if in_force(wave, v.from_wave, v.until_wave)),
            tiers=tuple(t for t in self.tiers if in_force(wave, t.from_wave, t.until_wave)))


@dataclass(frozen=True)
class Definitions:
    """Everything the pipelines need to know about the survey and its scoring."""

    questionnaire: Questionnaire
    indicators: IndicatorCatalogue
    scheme: Scheme

    def for_wave(self, wave: str) -> Definitions:
        """These definitions with the scheme in force for `wave` (Scheme.in_force)."""
        return dataclasses.replace(self, scheme=self.scheme.in_force(wave))


# ---------------------------------------------------------------------------------------------
# a small checked reader: collects problems instead of stopping at the first


class _Checker:
    def __init__(self, file: Path):
        self.file = file
        self.problems: list[str] = []

    def fail(self, key: str, message: str) -> None:
        self.problems.append(f"{self.file.name}：{key}：{message}")

    def get(self, table: dict, key: str, path: str, kind: type | tuple, *, default: Any = ...,
            ) -> Any:
        where = f"{path}.{key}" if path else key
        if key not in table:
            if default is ...:
                self.fail(where, "缺少此项")
                return None
            return default
        value = table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in kinds:
            self.fail(where, f"类型应为{_kind_name(kinds)}，实际为布尔值")
            return None
        if not isinstance(value, kinds):
            self.fail(where, f"类型应为{_kind_name(kinds)}，实际为 {value!r}")
            return None
        return value

    def choice(self, table: dict, key: str, path: str, options: Any, *, default: Any = ...) -> Any:
        """The value of `key` if it is one of the `Literal` type's `options`; otherwise None and a
        problem naming the option and the allowed values."""
        value = self.get(table, key, path, str, default=default)
        allowed = get_args(options)
        if value is None or value in allowed:
            return value
        self.fail(f"{path}.{key}" if path else key,
                  f"{key} 应为 {' / '.join(allowed)} 之一，实际为 {value!r}")
        return None

    def string_list(self, table: dict, key: str, path: str, *, default: Any = ...) -> tuple[str, ...]:
        values = self.get(table, key, path, list, default=default)
        if values is None:
            return ()
        if not all(isinstance(v, str) and v.strip() for v in values):
            self.fail(f"{path}.{key}", "应为非空文字的列表")
            return ()
        return tuple(values)

    def entries(self, raw: dict, key: str, noun: str):
        """Yield (where, table, id) for each table in the array `key`, checking ids are unique."""
        seen: set[str] = set()
        for index, spec in enumerate(self.get(raw, key, "", list) or []):
            where = f"{key}[{index + 1}]"
            if not isinstance(spec, dict):
                self.fail(where, "应为表")
                continue
            entry_id = self.identifier(spec, "id", where)
            if entry_id in seen:
                self.fail(f"{where}.id", f"{noun}标识 {entry_id!r} 重复")
            seen.add(entry_id)
            yield where, spec, entry_id

    def identifier(self, table: dict, key: str, path: str) -> str:
        value = self.get(table, key, path, str)
        if value is not None and not ID_PATTERN.match(value):
            self.fail(f"{path}.{key}", f"标识 {value!r} 只能用小写英文字母、数字和下划线，且以字母开头")
        return value or ""


def _kind_name(kinds: tuple) -> str:
    names = {str: "文字", int: "整数", float: "数值", bool: "布尔值(true/false)", list: "列表",
             dict: "表"}
    return "或".join(names.get(k, k.__name__) for k in kinds)


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise DefinitionError([f"{path.name}：找不到文件 {path}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError([f"{path.name}：TOML 格式错误（{exc}）"]) from None


# ---------------------------------------------------------------------------------------------
# questionnaire


def load_questionnaire(path: Path) -> Questionnaire:
    """Parse and validate `questionnaire.toml`."""
    raw = _read_toml(path)
    c = _Checker(path)
    head = c.get(raw, "questionnaire", "", dict) or {}
    name = c.get(head, "name", "questionnaire", str) or ""
    min_age = c.get(head, "min_age", "questionnaire", int, default=15)
    max_age = c.get(head, "max_age", "questionnaire", int, default=99)
    if isinstance(min_age, int) and isinstance(max_age, int) and min_age >= max_age:
        c.fail("questionnaire.min_age", "最小年龄应小于最大年龄")

    columns: dict[str, ColumnDef] = {}
    for col_id, spec in (c.get(raw, "columns", "", dict) or {}).items():
        where = f"columns.{col_id}"
        if not isinstance(spec, dict):
            c.fail(where, "应为表")
            continue
        col_type = c.choice(spec, "type", where, ColumnType)
        codes_raw = c.get(spec, "codes", where, dict, default={}) or {}
        codes = {}
        for canon, _variants in codes_raw.items():
            codes[canon] = c.string_list(codes_raw, canon, f"{where}.codes")
        if col_type == "code" and not codes:
            c.fail(f"{where}.codes", "代码型列必须给出 codes")
        columns[col_id] = ColumnDef(
            id=col_id,
            label=c.get(spec, "label", where, str) or col_id,
            type=col_type or "text",
            aliases=c.string_list(spec, "aliases", where),
            required=bool(c.get(spec, "required", where, bool, default=False)),
            codes=codes,
        )
    for needed in ("respondent_id", "county_code", "county_name", "weight"):
        if needed not in columns:
            c.fail(f"columns.{needed}", "缺少此列定义（导入必须用到）")

    items: list[Item] = []
    for where, spec, item_id in c.entries(raw, "items", "题目"):
        answers: list[Answer] = []
        for a_index, a_spec in enumerate(c.get(spec, "answers", where, list) or []):
            a_where = f"{where}.answers[{a_index + 1}]"
            if not isinstance(a_spec, dict):
                c.fail(a_where, "应为表")
                continue
            code = c.get(a_spec, "code", a_where, int)
            label = c.get(a_spec, "label", a_where, str)
            if code is None or label is None:
                continue
            answers.append(Answer(code, label, bool(c.get(a_spec, "dont_know", a_where, bool,
                                                           default=False)),
                                  c.string_list(a_spec, "synonyms", a_where, default=[])))
        codes = [a.code for a in answers]
        if len(set(codes)) != len(codes):
            c.fail(f"{where}.answers", "答案代码重复")
        if answers and all(a.dont_know for a in answers):
            c.fail(f"{where}.answers", "至少要有一个有效答案（不全是说不清）")
        items.append(Item(item_id, c.get(spec, "label", where, str) or item_id,
                          c.get(spec, "short", where, str, default=None)
                          or c.get(spec, "label", where, str, default=item_id),
                          c.string_list(spec, "aliases", where, default=[]), tuple(answers)))
    if not items:
        c.fail("items", "问卷至少要有一道题")
    _check_unique_aliases(c, {cid: col.aliases for cid, col in columns.items()}
                          | {f"items.{i.id}": i.aliases + (i.id,) for i in items})
    if c.problems:
        raise DefinitionError(c.problems)
    synonyms_raw = c.get(raw, "answer_synonyms", "", dict, default={}) or {}
    synonyms = {label: c.string_list(synonyms_raw, label, "answer_synonyms")
                for label in synonyms_raw}
    return Questionnaire(name, min_age, max_age, columns, tuple(items), synonyms)


def _check_unique_aliases(c: _Checker, aliases_by_owner: dict[str, tuple[str, ...]]) -> None:
    from pipelines.core.headers import normalise_header  # local import: headers imports nothing of ours

    owner_of: dict[str, str] = {}
    for owner, aliases in aliases_by_owner.items():
        for alias in aliases:
            key = normalise_header(alias)
            if key in owner_of and owner_of[key] != owner:
                c.fail(f"{owner}.aliases", f"别名 {alias!r} 与 {owner_of[key]} 的别名冲突")
            owner_of[key] = owner


# ---------------------------------------------------------------------------------------------
# indicator catalogue


def load_indicator_catalogue(path: Path) -> IndicatorCatalogue:
    """Parse and validate `indicators.toml`."""
    raw = _read_toml(path)
    c = _Checker(path)
    sheet = c.get(raw, "sheet", "", dict) or {}
    indicators: list[IndicatorDef] = []
    for where, spec, ind_id in c.entries(raw, "indicators", "指标"):
        kind = c.choice(spec, "kind", where, IndicatorKind)
        label = c.get(spec, "label", where, str) or ind_id
        indicators.append(IndicatorDef(ind_id, label, c.get(spec, "unit", where, str, default=""),
                                       kind or "index",
                                       c.string_list(spec, "aliases", where, default=[]),
                                       c.choice(spec, "noise", where, IndicatorNoise,
                                                default="none") or "none",
                                       c.get(spec, "count", where, str, default=None),
                                       bool(c.get(spec, "allow_missing", where, bool,
                                                  default=True))))
    _check_noise(c, indicators)
    catalogue = IndicatorCatalogue(
        county_aliases=c.string_list(sheet, "county_aliases", "sheet"),
        county_name_aliases=c.string_list(sheet, "county_name_aliases", "sheet", default=[]),
        period_aliases=c.string_list(sheet, "period_aliases", "sheet"),
        indicators=tuple(indicators),
    )
    _check_unique_aliases(c, {"sheet.county": catalogue.county_aliases,
                              "sheet.county_name": catalogue.county_name_aliases,
                              "sheet.period": catalogue.period_aliases}
                          | {f"indicators.{i.id}": i.aliases + (i.label, i.id) for i in indicators})
    if c.problems:
        raise DefinitionError(c.problems)
    return catalogue


def _check_noise(c: _Checker, indicators: list[IndicatorDef]) -> None:
    """A poisson indicator is a count; a poisson_change is a change_pct naming a poisson count."""
    by_id = {i.id: i for i in indicators}
    for index, ind in enumerate(indicators):
        where = f"indicators[{index + 1}]"
        if ind.noise == "poisson" and ind.kind != "count":
            c.fail(f"{where}.noise", "noise = \"poisson\" 只适用于 kind = \"count\" 的计数指标")
        if ind.noise == "poisson_change":
            if ind.kind != "change_pct":
                c.fail(f"{where}.noise",
                       "noise = \"poisson_change\" 只适用于 kind = \"change_pct\" 的同比变化指标")
            source = by_id.get(ind.count or "")
            if source is None or source.noise != "poisson":
                c.fail(f"{where}.count",
                       "同比变化指标须用 count 指明其计数指标（该指标须为 noise = \"poisson\"）")
        elif ind.count is not None:
            c.fail(f"{where}.count", "只有 noise = \"poisson_change\" 的指标才需要 count")


# ---------------------------------------------------------------------------------------------
# scheme


def load_scheme(path: Path, questionnaire: Questionnaire, catalogue: IndicatorCatalogue) -> Scheme:
    """Parse `scheme.toml` and check it against the questionnaire and the indicator catalogue."""
    raw = _read_toml(path)
    c = _Checker(path)
    head = c.get(raw, "scheme", "", dict) or {}
    ties = c.choice(head, "ties", "scheme", TieRule, default="min")
    level = c.get(head, "confidence_level", "scheme", float, default=0.95)
    if level is not None and not 0.5 < level < 1:
        c.fail("scheme.confidence_level", "置信水平应在 0.5 与 1 之间，例如 0.95")

    item_ids = {i.id for i in questionnaire.items}
    indicator_ids = {i.id for i in catalogue.indicators}
    items = _load_item_scoring(c, c.get(raw, "items", "", dict) or {}, questionnaire)
    base = c.get(head, "base", "scheme", float, default=100.0)
    if base is not None and base <= 0:
        c.fail("scheme.base", "基础分应为正数")
    components = _load_components(c, c.get(raw, "components", "", list) or [], items, item_ids,
                                  catalogue, base or 100.0)
    component_ids = {comp.id for comp in components}

    vetoes: list[Veto] = []
    for index, spec in enumerate(c.get(raw, "vetoes", "", list, default=[]) or []):
        where = f"vetoes[{index + 1}]"
        subject = c.get(spec, "subject", where, str) or ""
        op = c.choice(spec, "op", where, VetoOp) or ">="
        target = subject.removeprefix("component:")
        known = component_ids if subject.startswith("component:") else indicator_ids
        if subject and target not in known:
            c.fail(f"{where}.subject", f"未知的指标或分项 {subject!r}")
        vetoes.append(Veto(subject, op, c.get(spec, "value", where, float) or 0.0,
                           c.get(spec, "reason", where, str) or subject, **_validity(c, spec, where)))

    listing = _load_listing(c, c.get(raw, "listing", "", dict) or {})
    delisting = _load_delisting(c, c.get(raw, "delisting", "", dict) or {}, indicator_ids)
    estimation = _load_estimation(c, c.get(raw, "estimation", "", dict, default={}) or {})
    tiers = _load_tiers(c, raw, indicator_ids)
    grades = _load_grades(c, c.get(raw, "grades", "", list, default=[]) or [])
    if c.problems:
        raise DefinitionError(c.problems)
    return Scheme(c.get(head, "name", "scheme", str) or "", c.get(head, "year", "scheme", int) or 0,
                  ties, level, items, components, tuple(vetoes), listing, delisting, estimation,
                  tiers, base or 100.0, grades)


def _load_grades(c: _Checker, raw: list) -> tuple[Grade, ...]:
    """`[[grades]]` best first, thresholds falling; only the last may omit at_least."""
    grades = []
    for index, spec in enumerate(raw):
        where = f"grades[{index + 1}]"
        at_least = c.get(spec, "at_least", where, float, default=None)
        if at_least is None and index != len(raw) - 1:
            c.fail(f"{where}.at_least", "只有最后一个等级可以不设分数下限")
        if at_least is not None and grades and grades[-1].at_least is not None \
                and at_least >= grades[-1].at_least:
            c.fail(f"{where}.at_least", "等级应从高到低排列，分数下限逐个降低")
        grades.append(Grade(c.get(spec, "label", where, str) or "?", at_least))
    return tuple(grades)


TRIGGER_KINDS = ("rank_bottom", "score_below", "indicator", "veto")


def _load_tiers(c: _Checker, raw: dict, indicator_ids: set[str]) -> tuple[Tier, ...]:
    """`[[tiers]]` with their `[[tiers.triggers]]`: each trigger names exactly one kind."""
    tiers = []
    for where, spec, tier_id in c.entries(raw | {"tiers": raw.get("tiers", [])}, "tiers", "等级"):
        triggers = []
        for index, t_spec in enumerate(c.get(spec, "triggers", where, list) or []):
            t_where = f"{where}.triggers[{index + 1}]"
            if not isinstance(t_spec, dict):
                c.fail(t_where, "应为表")
                continue
            kinds = [k for k in TRIGGER_KINDS if k in t_spec]
            if len(kinds) != 1:
                c.fail(t_where, "须且只须给出 rank_bottom、score_below、indicator、veto 之一")
                continue
            rank = c.get(t_spec, "rank_bottom", t_where, int, default=None)
            if rank is not None and rank < 1:
                c.fail(f"{t_where}.rank_bottom", "应为正整数")
            indicator = c.get(t_spec, "indicator", t_where, str, default=None)
            op = value = None
            if indicator is not None:
                if indicator not in indicator_ids:
                    c.fail(f"{t_where}.indicator", f"指标目录中没有指标 {indicator!r}")
                op = c.choice(t_spec, "op", t_where, VetoOp)
                value = c.get(t_spec, "value", t_where, float)
            veto = c.get(t_spec, "veto", t_where, bool, default=False)
            if "veto" in kinds and veto is not True:
                c.fail(f"{t_where}.veto", "veto 触发条件只能写 veto = true")
            triggers.append(Trigger(rank, c.get(t_spec, "score_below", t_where, float, default=None),
                                    indicator, op, value, bool(veto)))
        if not triggers:
            c.fail(f"{where}.triggers", "每个等级至少要有一个触发条件")
        tiers.append(Tier(tier_id, c.get(spec, "label", where, str) or tier_id,
                          c.choice(spec, "level", where, TierLevel, default="省") or "省",
                          c.choice(spec, "match", where, TierMatch, default="any") or "any",
                          tuple(triggers), **_validity(c, spec, where)))
    return tuple(tiers)


def _load_estimation(c: _Checker, raw: dict) -> EstimationSettings:
    default = EstimationSettings()
    lonely = c.choice(raw, "lonely_psu", "estimation", LonelyPsu, default=default.lonely_psu)
    share = c.choice(raw, "share_interval", "estimation", ShareInterval,
                     default=default.share_interval)
    replicates = c.get(raw, "replicates", "estimation", int, default=default.replicates)
    if replicates is not None and replicates < 200:
        c.fail("estimation.replicates", "重复抽样次数至少为 200")
    return EstimationSettings(
        lonely_psu=lonely or default.lonely_psu,
        share_interval=share or default.share_interval,
        rake_to_margins=bool(c.get(raw, "rake_to_margins", "estimation", bool,
                                   default=default.rake_to_margins)),
        replicates=replicates or default.replicates,
        seed=c.get(raw, "seed", "estimation", int, default=default.seed) or default.seed)


def _load_item_scoring(c: _Checker, raw_items: dict, questionnaire: Questionnaire,
                       ) -> dict[str, ItemScoring]:
    scoring: dict[str, ItemScoring] = {}
    for item_id, spec in raw_items.items():
        where = f"items.{item_id}"
        if item_id not in {i.id for i in questionnaire.items}:
            c.fail(where, f"问卷中没有题目 {item_id!r}")
            continue
        item = questionnaire.item(item_id)
        valid_codes = {a.code for a in item.answers if not a.dont_know}
        if "share" in spec:      # 满意率: the share answering one of these codes, as 0/100
            if "points" in spec:
                c.fail(where, "share 与 points 只能给出其一")
            share = c.get(spec, "share", where, list) or []
            if not share or not all(isinstance(v, int) and v in valid_codes for v in share):
                c.fail(f"{where}.share", f"应为该题有效答案代码的列表（{sorted(valid_codes)}）")
            spec = spec | {"points": {str(code): 100.0 if code in share else 0.0
                                      for code in sorted(valid_codes)}}
        raw_points = c.get(spec, "points", where, dict) or {}
        points: dict[int, float] = {}
        for code_text, value in raw_points.items():
            if not re.fullmatch(r"-?\d+", code_text):
                c.fail(f"{where}.points", f"答案代码 {code_text!r} 应为整数")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                c.fail(f"{where}.points.{code_text}", f"分值应为数值，实际为 {value!r}")
                continue
            points[int(code_text)] = float(value)
        for code in sorted(valid_codes - points.keys()):
            c.fail(f"{where}.points", f"答案代码 {code}（{_answer_label(item, code)}）未赋分")
        for code in sorted(points.keys() - valid_codes):
            c.fail(f"{where}.points", f"答案代码 {code} 不是该题的有效答案（说不清另用 dont_know 规定）")
        dont_know = c.choice(spec, "dont_know", where, DontKnow, default="exclude")
        dk_points = c.get(spec, "dont_know_points", where, float, default=None)
        if dont_know == "score" and dk_points is None:
            c.fail(f"{where}.dont_know_points", "dont_know = \"score\" 时必须给出说不清的分值")
        scoring[item_id] = ItemScoring(points, dont_know, dk_points)
    return scoring


def _answer_label(item: Item, code: int) -> str:
    return next((a.label for a in item.answers if a.code == code), "?")


def _load_components(c: _Checker, raw: list, items: dict[str, ItemScoring], item_ids: set[str],
                     catalogue: IndicatorCatalogue, base: float = 100.0) -> tuple[Component, ...]:
    indicator_ids = {i.id for i in catalogue.indicators}
    components: list[Component] = []
    seen: set[str] = set()
    for index, spec in enumerate(raw):
        where = f"components[{index + 1}]"
        comp_id = c.identifier(spec, "id", where)
        if comp_id in seen:
            c.fail(f"{where}.id", f"分项标识 {comp_id!r} 重复")
        seen.add(comp_id)
        source = c.choice(spec, "source", where, Source)
        weight = c.get(spec, "weight", where, float)
        if weight is not None and weight <= 0:
            c.fail(f"{where}.weight", "权重必须为正数")
        common = dict(id=comp_id, label=c.get(spec, "label", where, str) or comp_id,
                      source=source, weight=weight or 0.0, **_validity(c, spec, where),
                      **_formula(c, spec, where, weight))
        if source == "survey":
            comp_items = c.string_list(spec, "items", where)
            for item_id in comp_items:
                if item_id not in item_ids:
                    c.fail(f"{where}.items", f"问卷中没有题目 {item_id!r}")
                elif item_id not in items:
                    c.fail(f"{where}.items", f"题目 {item_id!r} 在 [items.{item_id}] 中没有赋分")
            raw_weights = c.get(spec, "item_weights", where, list, default=None)
            item_weights = tuple(float(w) for w in raw_weights or [1.0] * len(comp_items)
                                 if isinstance(w, (int, float)) and not isinstance(w, bool))
            if len(item_weights) != len(comp_items) or any(w <= 0 for w in item_weights):
                c.fail(f"{where}.item_weights", "题目权重个数须与题目个数相同，且都为正数")
            components.append(Component(**common, **_normalisation(c, spec, where),
                                        items=comp_items, item_weights=item_weights))
        elif source == "indicator":
            indicator = c.get(spec, "indicator", where, str)
            if indicator is not None and indicator not in indicator_ids:
                c.fail(f"{where}.indicator", f"指标目录中没有指标 {indicator!r}")
            components.append(Component(
                **common, **_normalisation(c, spec, where), indicator=indicator,
                per_100k_population=bool(c.get(spec, "per_100k_population", where, bool,
                                               default=False)),
                **_noise(c, spec, where, catalogue.get(indicator)
                         if indicator in indicator_ids else None)))
    base_components = [comp for comp in components if comp.role == "base"]
    _check_weights_per_period(c, base_components, base,
                              "（加分、扣分项不计）" if len(base_components) < len(components) else "")
    if not components:
        c.fail("components", "至少要有一个分项")
    return tuple(components)


def _validity(c: _Checker, spec: dict, where: str) -> dict[str, str | None]:
    """`from_wave` / `until_wave` of a rule or component: wave labels, from ≤ until."""
    bounds = {key: c.get(spec, key, where, str, default=None) for key in ("from_wave", "until_wave")}
    for key, label in bounds.items():
        if label is not None and (message := wave_error(label)):
            c.fail(f"{where}.{key}", message)
            bounds[key] = None
    first, last = bounds["from_wave"], bounds["until_wave"]
    if first and last and wave_months(first)[0] > wave_months(last)[1]:
        c.fail(where, f"from_wave {first} 晚于 until_wave {last}")
    return bounds


def _formula(c: _Checker, spec: dict, where: str, weight: float | None) -> dict[str, Any]:
    """Role (base / bonus / deduction), step points and per-unit points of a component."""
    role = c.choice(spec, "role", where, Role, default="base") or "base"
    method = spec.get("normalisation")
    steps: list[tuple[float, float]] = []
    for index, pair in enumerate(c.get(spec, "steps", where, list, default=[]) or []):
        if not (isinstance(pair, list) and len(pair) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair)):
            c.fail(f"{where}.steps[{index + 1}]", "每一档应为 [门槛, 分值]，例如 [95, 3]")
            continue
        if weight is not None and not 0 < pair[1] <= weight:
            c.fail(f"{where}.steps[{index + 1}]", f"分值应大于0且不超过该分项权重 {weight:g}")
        steps.append((float(pair[0]), float(pair[1])))
    if (method == "steps") != bool(steps):
        c.fail(f"{where}.steps", "normalisation = \"steps\" 须且只须与 steps 一起给出")
    per_unit = c.get(spec, "per_unit", where, float, default=None)
    if (method == "per_unit") != (per_unit is not None):
        c.fail(f"{where}.per_unit", "normalisation = \"per_unit\" 须且只须与 per_unit 一起给出")
    elif per_unit is not None and per_unit <= 0:
        c.fail(f"{where}.per_unit", "每单位分值应为正数")
    if method in ("steps", "per_unit") and spec.get("source") != "indicator":
        c.fail(f"{where}.normalisation", f"{method} 只适用于工作指标分项")
    return dict(role=role, steps=tuple(sorted(steps)), per_unit=per_unit)


def _check_weights_per_period(c: _Checker, components: list[Component], base: float = 100.0,
                              note: str = "") -> None:
    """Base weights total the scheme's base (100) in every period: at the start of each
    from_wave, and just after each until_wave (checked on a representative wave label)."""
    starts = {None} | {comp.from_wave for comp in components if comp.from_wave}
    ends = {comp.until_wave for comp in components if comp.until_wave}
    probes: set[str | None] = set(starts)
    for end in ends:
        probes.add(next_wave(end))
    for probe in sorted(probes, key=lambda w: wave_months(w)[0] if w else 0):
        live = [comp for comp in components
                if (comp.from_wave is None if probe is None
                    else in_force(probe, comp.from_wave, comp.until_wave))]
        total = sum(comp.weight for comp in live)
        if live and abs(total - base) > 1e-9:
            period = f"自 {probe} 起" if probe else ""
            c.fail("components", f"{period}各分项权重之和应为 {base:g}，实际为 {total:g}{note}")


def _noise(c: _Checker, spec: dict, where: str, indicator: IndicatorDef | None) -> dict[str, Any]:
    """The component's noise comes from the catalogue; an older scheme's `poisson = true` still
    marks a plain count, but never a change, whose counts only the catalogue can name."""
    legacy = bool(c.get(spec, "poisson", where, bool, default=False))
    noise = indicator.noise if indicator is not None else "none"
    if legacy and noise == "none" and indicator is not None and indicator.kind == "change_pct":
        c.fail(f"{where}.poisson", "同比变化指标的泊松误差须在 indicators.toml 中以 "
                                   "noise = \"poisson_change\" 和 count 声明")
    return dict(poisson=legacy or noise != "none",
                change_of=indicator.count if noise == "poisson_change" and indicator else None)


def _normalisation(c: _Checker, spec: dict, where: str) -> dict[str, Any]:
    """Direction and normalisation of a component. A survey component without one is used as
    it is (already 0–100, higher is better); an indicator needs one."""
    direction = c.choice(spec, "direction", where, Direction, default="higher")
    normalisation = c.choice(spec, "normalisation", where, Normalisation,
                             default=None if spec.get("source") == "survey" else ...)
    lo = c.get(spec, "lo", where, float, default=None)
    hi = c.get(spec, "hi", where, float, default=None)
    if normalisation == "goalposts" and (lo is None or hi is None or lo >= hi):
        c.fail(where, "goalposts 标准化须给出 lo < hi")
    return dict(direction=direction, normalisation=normalisation, lo=lo, hi=hi)


def _load_listing(c: _Checker, raw: dict) -> ListingRules:
    def positive_int(key: str, default: Any = ...) -> int:
        value = c.get(raw, key, "listing", int, default=default)
        if value is not None and value < 1:
            c.fail(f"listing.{key}", "应为正整数")
        return value or 0

    bands: list[Band] = []
    for index, spec in enumerate(c.get(raw, "bands", "listing", list, default=[]) or []):
        where = f"listing.bands[{index + 1}]"
        thresholds = {key: c.get(spec, key, where, float, default=None)
                      for key in ("p_bottom3_at_least", "p_bottom10_at_least")}
        for key, value in thresholds.items():
            if value is not None and not 0 <= value <= 1:
                c.fail(f"{where}.{key}", "概率阈值应在 0 与 1 之间")
        bands.append(Band(c.get(spec, "label", where, str) or "?", **thresholds))
    if bands and (bands[-1].p_bottom3_at_least is not None
                  or bands[-1].p_bottom10_at_least is not None):
        c.fail("listing.bands", "最后一个风险等级应不设条件（兜底等级，例如“安全”）")
    return ListingRules(
        province_bottom=positive_int("province_bottom"),
        city_bottom=positive_int("city_bottom"),
        city_opt_in=c.string_list(raw, "city_opt_in", "listing", default=["all"]),
        criticism_bottom=positive_int("criticism_bottom", 3),
        criticism_score=c.get(raw, "criticism_score", "listing", float, default=80.0) or 0.0,
        # years, not waves; the older key name is read as years too
        consecutive_zero_years=positive_int(
            "consecutive_zero_years", raw.get("consecutive_zero_waves", 2)),
        bands=tuple(bands),
    )


def _load_delisting(c: _Checker, raw: dict, indicator_ids: set[str]) -> DelistingRules:
    targets: list[DelistingTarget] = []
    for index, spec in enumerate(c.get(raw, "targets", "delisting", list, default=[]) or []):
        where = f"delisting.targets[{index + 1}]"
        indicator = c.get(spec, "indicator", where, str) or ""
        if indicator and indicator not in indicator_ids:
            c.fail(f"{where}.indicator", f"指标目录中没有指标 {indicator!r}")
        bounds = {key: c.get(spec, key, where, float, default=None)
                  for key in ("at_least", "at_most", "relative_to_baseline")}
        if sum(v is not None for v in bounds.values()) != 1:
            c.fail(where, "须且只须给出 at_least、at_most、relative_to_baseline 之一")
        targets.append(DelistingTarget(indicator, **bounds))
    return DelistingRules(
        leave_bottom=c.get(raw, "leave_bottom", "delisting", int, default=10) or 10,
        consecutive_waves=c.get(raw, "consecutive_waves", "delisting", int, default=1) or 1,
        deadline_waves=c.get(raw, "deadline_waves", "delisting", int, default=2) or 2,
        inspection_required=bool(c.get(raw, "inspection_required", "delisting", bool,
                                       default=True)),
        targets=tuple(targets),
    )


def load_definitions(directory: Path = SURVEYS_DIR, scheme_file: Path | None = None) -> Definitions:
    """Load the three definition files from `directory`, raising one error listing every problem;
    `scheme_file` scores by another scheme (e.g. surveys/schemes/*.toml) with the same
    questionnaire and catalogue."""
    problems: list[str] = []
    questionnaire = catalogue = None
    try:
        questionnaire = load_questionnaire(directory / "questionnaire.toml")
    except DefinitionError as exc:
        problems += exc.problems
    try:
        catalogue = load_indicator_catalogue(directory / "indicators.toml")
    except DefinitionError as exc:
        problems += exc.problems
    if questionnaire is None or catalogue is None:
        raise DefinitionError(problems)
    scheme = load_scheme(scheme_file or directory / "scheme.toml", questionnaire, catalogue)
    return Definitions(questionnaire, catalogue, scheme)
