"""The TOML definitions load, and each kind of mistake is refused with file and key in Chinese."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.scheme.definitions import SURVEYS_DIR, DefinitionError, load_definitions


def test_bundled_definitions_load(defs):
    assert len(defs.questionnaire.items) >= 8
    assert sum(c.weight for c in defs.scheme.components) == pytest.approx(100)
    kinds = {c.source for c in defs.scheme.components}
    assert kinds == {"survey", "indicator"}
    assert {"satisfaction", "seriousness", "seen_nearby", "publicity", "safety",
            "knows_report"} <= {i.id for i in defs.questionnaire.items}
    assert sum(i.id.startswith("know_") for i in defs.questionnaire.items) >= 3
    # every scored item has points for every non-说不清 code
    for item in defs.questionnaire.items:
        scoring = defs.scheme.items[item.id]
        assert {a.code for a in item.answers if not a.dont_know} == set(scoring.points)


def _patched(tmp_path: Path, file: str, old: str, new: str) -> Path:
    for name in ("questionnaire.toml", "indicators.toml", "scheme.toml"):
        shutil.copy(SURVEYS_DIR / name, tmp_path / name)
    path = tmp_path / file
    text = path.read_text(encoding="utf-8")
    assert old in text, f"fixture text not found: {old!r}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("file, old, new, expected", [
    ("scheme.toml", "weight = 30", "weight = 31", "权重之和应为 100，实际为 101"),
    ("scheme.toml", "points = { 1 = 100, 2 = 80, 3 = 60, 4 = 30, 5 = 0 }",
     "points = { 1 = 100, 2 = 80, 3 = 60, 4 = 30 }", "答案代码 5（不满意）未赋分"),
    ("scheme.toml", 'items = ["satisfaction"]', 'items = ["happiness"]', "问卷中没有题目 'happiness'"),
    ("scheme.toml", 'normalisation = "minmax"', 'normalisation = "rank"', "normalisation"),
    ("scheme.toml", 'subject = "cultivation_found"', 'subject = "weather"', "未知的指标或分项"),
    ("scheme.toml", "lo = 80\nhi = 100", "lo = 100\nhi = 80", "goalposts 标准化须给出 lo < hi"),
    ("scheme.toml", 'dont_know = "score"\ndont_know_points = 0', 'dont_know = "score"',
     "必须给出说不清的分值"),
    ("questionnaire.toml", 'id = "seriousness"', 'id = "satisfaction"', "题目标识 'satisfaction' 重复"),
    ("questionnaire.toml", '{ code = 2, label = "比较满意" }', '{ code = 1, label = "比较满意" }',
     "答案代码重复"),
    ("questionnaire.toml", 'aliases = ["Q2",', 'aliases = ["Q1",', "别名 'Q1'"),
    ("indicators.toml", 'kind = "per_thousand"', 'kind = "ratio"', "kind"),
    ("scheme.toml", "province_bottom = 3 ", "province_bottom = 0 ", "listing.province_bottom"),
    ("scheme.toml", "[scheme]", "[scheme", "TOML 格式错误"),
])
def test_invalid_definitions_are_refused_with_file_and_key(tmp_path, file, old, new, expected):
    directory = _patched(tmp_path, file, old, new)
    with pytest.raises(DefinitionError) as caught:
        load_definitions(directory)
    text = str(caught.value)
    assert expected in text
    assert file in text


@pytest.mark.parametrize("old, new, where, allowed", [
    ('source = "indicator"', 'source = "survey_and_indicator"', "components[5].source",
     "survey / indicator"),
    ('direction = "lower"', 'direction = "down"', "components[5].direction", "higher / lower"),
    ('normalisation = "goalposts"', 'normalisation = "rank"', "components[5].normalisation",
     "goalposts / minmax / zscore / steps / per_unit"),
    ('\ndont_know = "exclude"', '\ndont_know = "ignore"', "items.satisfaction.dont_know",
     "exclude / score"),
    ('op = ">="', 'op = "=>"', "vetoes[1].op", ">= / > / <= / < / =="),
    ('ties = "min"', 'ties = "random"', "scheme.ties", "min / average / first"),
    ("[scheme]", '[estimation]\nlonely_psu = "drop"\n\n[scheme]', "estimation.lonely_psu",
     "adjust / certainty / average"),
])
def test_an_option_outside_its_type_is_refused_naming_the_option_and_the_choices(
        tmp_path, old, new, where, allowed):
    """Options are `Literal` types checked once when the TOML loads: one problem, in Chinese,
    with the key, the allowed values and the value found."""
    directory = _patched(tmp_path, "scheme.toml", old, new)
    with pytest.raises(DefinitionError) as caught:
        load_definitions(directory)
    bad = new.split('"')[1]
    option = where.rsplit(".", 1)[1]
    matching = [p for p in caught.value.problems if f"：{where}：" in p]
    assert matching == [f"scheme.toml：{where}：{option} 应为 {allowed} 之一，实际为 {bad!r}"], \
        caught.value.problems


def test_all_problems_are_reported_at_once(tmp_path):
    directory = _patched(tmp_path, "scheme.toml", "weight = 30", "weight = -30")
    text = (directory / "scheme.toml").read_text(encoding="utf-8")
    (directory / "scheme.toml").write_text(text.replace('ties = "min"', 'ties = "random"'),
                                           encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        load_definitions(directory)
    assert len(caught.value.problems) >= 3  # negative weight, sum, ties
