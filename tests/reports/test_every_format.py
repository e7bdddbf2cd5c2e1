"""What every text report format must do alike."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from reports.html import render_html
from reports.junit import render_junit
from reports.markdown import render_markdown
from reports.sarif import render_sarif
from scanner.model import Evidence, Report


@pytest.mark.parametrize(
    "render",
    [render_html, render_junit, render_markdown, render_sarif],
    ids=["html", "junit", "markdown", "sarif"],
)
def test_a_non_utf8_name_is_shown_with_a_replacement_character_not_an_encoding_error(
    mixed_report: Report, render: Callable[[Report], str]
) -> None:
    first = dataclasses.replace(
        mixed_report.results[0],
        id="linux.\udcff",
        summary="key in /root/id_\udcff\udcfe",
        evidence=(Evidence("/root/id_\udcff\udcfe:1", "-----BEGIN \udcff"),),
    )
    report = dataclasses.replace(mixed_report, results=(first, *mixed_report.results[1:]))
    text = render(report)
    text.encode("utf-8")  # no lone surrogate is left to fail the write
    assert "\\ufffd" in text or "\ufffd" in text  # SARIF escapes it as JSON does
