"""The one report format: render, parse (tolerantly), reject with a reason, JSON schema."""

from __future__ import annotations

import json

import pytest

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.report import (
    PARTS,
    Label,
    Report,
    ReportFormatError,
    parse_report,
    render_report,
    report_json_schema,
)

REPORT = Report(
    analysis="The input closes the quoted string and appends OR '1'='1', a tautology.\nEvery row matches.",
    label=Label.HIGH,
    risk="Authentication bypass and data disclosure (CWE-89).",
    solution="Use parameterized queries; never concatenate user input into SQL.",
)


def test_label_scale_and_names() -> None:
    assert [lab.value for lab in Label] == ["safe", "low", "medium", "high", "critical"]
    assert [lab.zh for lab in Label] == ["安全", "低危", "中危", "高危", "严重"]
    assert not Label.SAFE.is_risky and all(lab.is_risky for lab in list(Label)[1:])
    assert Label.CRITICAL.severity == 4 and Label("low") is Label.LOW
    assert Label.parse("高危") is Label.HIGH and Label.parse("**CRITICAL**") is Label.CRITICAL


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_render_then_parse_roundtrips(lang: str) -> None:
    text = render_report(REPORT, lang)
    parsed = parse_report(text, strict=True)
    assert parsed == REPORT and parsed.lang == lang
    assert render_report(parsed, lang) == text
    assert parsed.render() == text


def test_render_headings_in_each_language() -> None:
    zh = render_report(REPORT, "zh").splitlines()
    assert zh[0].startswith("分析：") and zh[2] == "标签：高危（high）"
    assert zh[3].startswith("风险：") and zh[4].startswith("解决方案：")
    en = render_report(REPORT, "en").splitlines()
    assert en[0].startswith("Analysis: ") and en[2] == "Label: high"
    assert en[3].startswith("Risk: ") and en[4].startswith("Solution: ")
    with pytest.raises(ValueError):
        render_report(REPORT, "fr")


@pytest.mark.parametrize(
    "text, label",
    [
        (
            "**分析**：注入了永真条件\n**标签**：**高危**\n**风险**：绕过登录\n**解决方案**：参数化查询",
            Label.HIGH,
        ),
        (
            "### Analysis\nA tautology.\n\n### Label\nCritical\n\n### Risk\nBypass.\n\n### Solution\nBind.",
            Label.CRITICAL,
        ),
        (
            "- **Analysis:** a tautology\n- **Label:** Medium\n- **Risk:** bypass\n- **Solution:** bind",
            Label.MEDIUM,
        ),
        (
            "1. 分析 : 读取文件\n2. 风险等级 ： 低风险\n3. 风险 ： 信息泄露\n4. 修复建议 ： 校验路径",
            Label.LOW,
        ),
        ("【分析】正常的查询\n【标签】安全\n【风险】无\n【解决方案】保持参数化", Label.SAFE),
        (
            "Sure, here is the report:\n\nanalysis: fine\nSEVERITY: none\nrisk: none\nremediation: nothing",
            Label.SAFE,
        ),
        ("Analysis: x\nLabel: 严重 (critical)\nRisk: y\nSolution: z", Label.CRITICAL),
        ("```\nAnalysis: x\nLabel: high\nRisk: y\nSolution: z\n```", Label.HIGH),
        ("Analysis: x\nLabel: not safe, high\nRisk: y\nSolution: z", Label.HIGH),
    ],
)
def test_parse_tolerates_how_models_write(text: str, label: Label) -> None:
    report = parse_report(text)
    assert report.label is label
    assert report.analysis and report.risk and report.solution
    assert "**" not in report.analysis and not report.solution.startswith(":")


def test_parse_keeps_multiline_parts_and_mixed_language_headings() -> None:
    text = "分析：第一行\n第二行\nLabel: high\n风险：泄露\nSolution:\n1. bind\n2. escape"
    report = parse_report(text)
    assert report.analysis == "第一行\n第二行"
    assert report.solution == "1. bind\n2. escape"
    assert report.lang is None  # headings in both languages


def test_risk_level_heading_is_the_label_not_the_risk() -> None:
    report = parse_report("Analysis: a\nRisk level: low\nRisks: b\nFix: c")
    assert report.label is Label.LOW and report.risk == "b" and report.solution == "c"


@pytest.mark.parametrize(
    "text, reason",
    [
        ("Analysis: a\nLabel: high\nSolution: c", "missing the risk part"),
        ("分析：a\n风险：b\n解决方案：c", "missing the label part"),
        ("Label: high\nRisk: b\nSolution: c", "missing the analysis part"),
        ("Analysis: a\nLabel: high\nRisk: b", "missing the solution part"),
        ("The input looks dangerous, rated high.", "no headings found"),
        ("", "empty"),
        ("Analysis: a\nLabel: dangerous\nRisk: b\nSolution: c", "not on the scale"),
        ("Analysis: a\nLabel: safe or critical\nRisk: b\nSolution: c", "names two ratings"),
        ("Analysis: a\nLabel: 不安全\nRisk: b\nSolution: c", "not safe"),
        ("Analysis: a\nLabel:\nRisk: b\nSolution: c", "label part is empty"),
        ("Analysis: a\nLabel: low\nRisk:\nSolution: c", "risk part is empty"),
        ("Analysis: a\nLabel: low\nRisk: b\nRisk: b2\nSolution: c", "appears twice"),
    ],
)
def test_parse_rejects_with_a_clear_reason(text: str, reason: str) -> None:
    with pytest.raises(ReportFormatError) as info:
        parse_report(text)
    assert reason in str(info.value)
    assert isinstance(info.value, FwyyError)


def test_strict_mode_requires_order_and_no_preamble() -> None:
    swapped = "Analysis: a\nRisk: b\nLabel: low\nSolution: c"
    assert parse_report(swapped).label is Label.LOW
    with pytest.raises(ReportFormatError, match="out of order"):
        parse_report(swapped, strict=True)
    with pytest.raises(ReportFormatError, match="before the first heading"):
        parse_report("Here you go\nAnalysis: a\nLabel: low\nRisk: b\nSolution: c", strict=True)


def test_json_schema_and_json_roundtrip() -> None:
    schema = report_json_schema()
    assert schema["type"] == "object" and schema["required"] == list(PARTS)
    assert set(schema["properties"]) == set(PARTS)
    assert schema["properties"]["label"]["enum"] == [lab.value for lab in Label]
    json.dumps(schema)  # serialisable for Ollama's format=
    data = REPORT.to_json()
    assert data["label"] == "high" and Report.from_json(data) == REPORT
    # A structured-output answer goes through parse_report too, label in Chinese accepted.
    assert parse_report(json.dumps({**data, "label": "高危"}, ensure_ascii=False)) == REPORT
    with pytest.raises(ReportFormatError, match="missing key 'risk'"):
        Report.from_json({"analysis": "a", "label": "low", "solution": "c"})
    with pytest.raises(ReportFormatError, match="not on the scale"):
        Report.from_json({**data, "label": "bad"})


def test_content_starting_with_emphasis_or_underscores_is_kept() -> None:
    text = "Analysis: __import__('os') is called\nLabel: high\nRisk: *any* code runs\nSolution: remove it"
    report = parse_report(text, strict=True)
    assert report.analysis.startswith("__import__") and report.risk == "*any* code runs"
    assert render_report(report, "en") == text


def test_four_parts_run_together_on_one_line_are_read() -> None:
    report = parse_report(
        "Analysis: a tautology. Label: high. Risk: login bypass. Solution: bind parameters."
    )
    assert report.label is Label.HIGH and report.analysis == "a tautology."
    assert report.risk == "login bypass." and report.solution == "bind parameters."
    zh = parse_report("分析：永真条件。标签：高危。风险：绕过登录。解决方案：参数化查询。")
    assert zh.label is Label.HIGH and zh.solution == "参数化查询。"
    with pytest.raises(ReportFormatError, match="missing the risk part"):
        parse_report("Analysis: a. Label: high. Solution: c.")
    with pytest.raises(ReportFormatError):
        parse_report("Analysis: a. Label: high. Risk: b. Solution: c.", strict=True)
