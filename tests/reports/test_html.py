"""The HTML report: self-contained, failures first, and no guest string can ever execute."""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
from collections.abc import Callable
from html.parser import HTMLParser

import pytest

from reports.html import FILTER_SCRIPT, STATES, render_html
from scanner.model import Evidence, Policy, Report, Result, Severity, Status, Verdict


class _Page(HTMLParser):
    """What a browser would see: tags with attributes, script bodies and visible text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._in_script = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    @property
    def visible(self) -> str:
        return "".join(self.text)


@pytest.fixture
def page(mixed_report: Report) -> _Page:
    return _Page(render_html(mixed_report))


def _csp(page: _Page) -> str:
    (meta,) = [m for m in page.all("meta") if m.get("http-equiv") == "Content-Security-Policy"]
    return meta.get("content") or ""


def test_the_only_script_is_the_filter_script(page: _Page) -> None:
    assert page.scripts == [FILTER_SCRIPT]
    assert "</" not in FILTER_SCRIPT


def test_csp_allows_exactly_the_filter_script_by_hash(page: _Page) -> None:
    digest = hashlib.sha256(page.scripts[0].encode("utf-8")).digest()
    expected = f"script-src 'sha256-{base64.b64encode(digest).decode()}'"

    directives = [d.strip() for d in _csp(page).split(";")]

    assert expected in directives
    assert "default-src 'none'" in directives
    assert "style-src 'unsafe-inline'" in directives
    assert "img-src data:" in directives


def test_csp_meta_comes_before_any_style_or_script(page: _Page) -> None:
    names = [name for name, _ in page.tags]
    csp_at = next(
        i for i, (name, attrs) in enumerate(page.tags) if attrs.get("http-equiv") is not None
    )

    assert csp_at < names.index("style") < names.index("script")


def test_hostile_strings_appear_only_as_text(
    mixed_report: Report, page: _Page, hostile: dict[str, str]
) -> None:
    html = render_html(mixed_report)

    assert hostile["script"] not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert hostile["script"] in page.visible
    assert hostile["attribute"] in page.visible
    assert page.all("img") == []
    assert not any(name.startswith("on") for _, attrs in page.tags for name in attrs)


def test_template_syntax_in_guest_strings_is_not_evaluated(
    page: _Page, hostile: dict[str, str]
) -> None:
    # The hash is masked (evidence is redacted when rendered); the template text stays literal.
    assert f"user:!$6$********:{hostile['template']}" in page.visible


def test_nothing_is_loaded_from_outside_the_file(page: _Page) -> None:
    assert not any("src" in attrs for _, attrs in page.tags)
    assert {name for name, attrs in page.tags if "href" in attrs} == {"a"}
    for tag in ("link", "img", "iframe", "object", "embed", "base", "audio", "video"):
        assert page.all(tag) == []


def test_links_are_http_policy_links_that_leak_nothing(page: _Page) -> None:
    links = page.all("a")

    assert links
    for link in links:
        assert (link.get("href") or "").startswith("https://docs.aws.amazon.com/")
        assert set((link.get("rel") or "").split()) >= {"noopener", "noreferrer"}


def test_a_non_http_policy_url_is_shown_but_not_linked(
    make_result: Callable[..., Result], make_report: Callable[..., Report]
) -> None:
    result = make_result(policy=Policy("X1", "javascript:alert(1)", "text"))

    page = _Page(render_html(make_report((result,))))

    assert page.all("a") == []
    assert "javascript:alert(1)" in page.visible


def test_failures_come_before_passes_in_document_order(mixed_report: Report, page: _Page) -> None:
    statuses = [a["data-status"] for a in page.all("article")]
    html = render_html(mixed_report)
    positions = [html.index(f"<code>{r.id}</code>") for r in mixed_report.ordered_results()]

    # The model's reading order: unwaived by status rank, accepted (waived) failures last.
    assert statuses == ["fail", "error", "warn", "skip", "pass", "waived"]
    assert positions == sorted(positions)


def test_data_attributes_hold_only_enum_values(page: _Page) -> None:
    for _, attrs in page.tags:
        for name, value in attrs.items():
            if name == "data-status":
                assert value in STATES
            elif name == "data-severity":
                assert value in {s.value for s in Severity}
            else:
                assert not name.startswith("data-")


def test_every_result_is_visible_without_scripts(page: _Page) -> None:
    assert all("hidden" not in attrs for attrs in page.all("article"))
    (form,) = page.all("form")
    assert "hidden" in form  # the filters appear only when the script runs


def test_filters_offer_every_state_and_severity(page: _Page) -> None:
    boxes = page.all("input")

    assert [b["value"] for b in boxes if b["name"] == "status"] == list(STATES)
    assert [b["value"] for b in boxes if b["name"] == "severity"] == [s.value for s in Severity]


def test_target_facts_include_every_detail(page: _Page) -> None:
    visible = page.visible

    for label, value in [
        ("Target", "ami-0123456789abcdef0"),
        ("Instance type", "t3.micro"),
        ("Login user", "ec2-user"),
        ("Host key verification", "pinned from console output"),
        ("Volumes", "8, 16"),
        ("ENA support", "yes"),
    ]:
        assert f"{label}{value}" in visible


def test_verdict_banner_shows_the_word(page: _Page) -> None:
    (header,) = page.all("header")

    assert "verdict-fail" in (header.get("class") or "")
    assert "FAIL" in page.visible


def test_a_scan_that_could_not_complete_says_why_before_the_results(
    make_result: Callable[..., Result], make_report: Callable[..., Report]
) -> None:
    report = make_report(
        (make_result(status=Status.SKIP),),
        verdict=Verdict.ERROR,
        errors=("SSH connection refused <after 3 tries>",),
    )

    html = render_html(report)

    assert 'role="alert"' in html
    assert html.index("SSH connection refused &lt;after 3 tries&gt;") < html.index("<article")


def test_waived_results_show_reason_expiry_and_approver(page: _Page) -> None:
    assert "Waived: copied at release · expires 2099-01-01 · approved by alice" in page.visible


def test_evidence_is_collapsible_and_open_for_failures(page: _Page) -> None:
    details = page.all("details")

    assert details
    assert "open" in details[0]  # the first result is the failure
    assert "<script>alert(1)</script>" in page.visible


def test_control_characters_never_reach_the_page(
    make_result: Callable[..., Result], make_report: Callable[..., Report]
) -> None:
    hostile = "nul\x00 esc\x1b[0m c1\x85 surrogate\udcff"
    result = make_result(summary=hostile, evidence=(Evidence(hostile, hostile),))

    html = render_html(make_report((result,)))

    assert not any(ch in html for ch in "\x00\x1b\x85\udcff")
    assert "nul\ufffd esc\ufffd[0m" in html


def test_phase_timings_and_versions_are_shown(page: _Page) -> None:
    visible = page.visible

    assert "launch42.00 s" in visible
    assert "amiscan0.1.0" in visible
    assert "Check catalog2024.05" in visible
    assert "Report schema1" in visible


def test_page_adapts_to_print_and_narrow_screens(mixed_report: Report) -> None:
    html = render_html(mixed_report)

    assert "@media print" in html
    assert "@media (max-width: 640px)" in html
    assert "prefers-color-scheme: dark" in html


def test_the_template_ships_inside_the_package() -> None:
    template = importlib.resources.files("reports").joinpath("templates/report.html.j2")

    assert template.is_file()


def test_the_banner_names_each_check_that_could_not_be_judged_and_why(
    make_result: Callable[..., Result], make_report: Callable[..., Report]
) -> None:
    unjudged = (
        make_result("linux.accounts.passwords", Status.ERROR, summary="/etc/shadow unreadable"),
        make_result("linux.accounts.root-password", Status.ERROR, summary="/etc/shadow unreadable"),
        make_result("linux.os.supported", Status.ERROR, summary="no os-release"),
        make_result("linux.ssh.root-login", Status.PASS),
    )
    html = render_html(make_report(unjudged, verdict=Verdict.ERROR))
    banner = html[html.index("<header") : html.index("</header>")]

    assert "Could not judge" in banner
    assert (
        "Could not judge linux.accounts.passwords, linux.accounts.root-password: "
        "/etc/shadow unreadable"
    ) in banner
    assert "Could not judge linux.os.supported: no os-release" in banner
    assert "linux.ssh.root-login" not in banner
