"""The HTML report in a real browser (headless Chromium): what a reviewer sees and can do, and
that nothing from the scanned image runs.

Skipped only where Chromium is absent; with AMISCAN_REQUIRE_BROWSER=1 (CI sets it) a missing
browser fails the test instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reports.html import render_html
from scanner.model import Evidence, Policy, Report, Result, Severity, Status, TargetInfo
from tests.browser import Chromium, Page, chromium, find_chromium

# What every payload below would do if it ever ran: both are checked after the page loads.
PWN = "window.__pwned = 1; document.title = 'pwned'"
PAYLOADS = {
    "script": f"<script>{PWN}</script>",
    "img": f'<img src=x onerror="{PWN}">',
    "svg": f'<svg onload="{PWN}"></svg>',
    "pre_breakout": f"</pre></details><script>{PWN}</script>",
    "attribute_breakout": f'" autofocus onfocus="{PWN}" x="',
    "details": f'<details open ontoggle="{PWN}">x</details>',
    "iframe": f"<iframe srcdoc='<script>{PWN}</script>'></iframe>",
    "link": f'<a href="javascript:{PWN}" id="pwn-link">click</a>',
    "template": "{{ 7*7 }}{% raw %}",
}
HOSTILE = "\n".join(PAYLOADS.values())

# Record every Content-Security-Policy violation from the first moment of the page: DevTools
# injects this before any of the page's own markup is parsed, and it is not subject to the CSP.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective);
});
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    executable = find_chromium()
    if executable is None:
        if os.environ.get("AMISCAN_REQUIRE_BROWSER") == "1":
            pytest.fail("AMISCAN_REQUIRE_BROWSER=1 but no chromium on PATH")
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    with chromium(executable, tmp_path_factory.mktemp("chromium-profile")) as running:
        yield running


def _hostile_report(
    make_result: Callable[..., Result], make_report: Callable[..., Report]
) -> Report:
    """A failing scan whose every guest-controlled string is an attempt to run code."""
    hostile_policy = Policy("S1", f"javascript:{PWN}", PAYLOADS["link"])
    results = (
        make_result(
            "linux.accounts.root-password",
            Status.PASS,
            Severity.CRITICAL,
            evidence=(Evidence("/etc/shadow:1", "root:*"),),
        ),
        make_result(
            "linux.ssh.password-authentication",
            Status.FAIL,
            Severity.CRITICAL,
            title=PAYLOADS["svg"],
            summary=f"PasswordAuthentication yes {PAYLOADS['script']}",
            evidence=(
                Evidence("/etc/ssh/sshd_config:65", "PasswordAuthentication yes"),
                Evidence(PAYLOADS["iframe"], HOSTILE),
            ),
            remediation=PAYLOADS["details"],
            policy=hostile_policy,
        ),
        make_result("linux.os.supported", Status.PASS, Severity.HIGH),
        make_result(
            "linux.secrets.shell-history",
            Status.FAIL,
            Severity.HIGH,
            summary=PAYLOADS["attribute_breakout"],
            evidence=(Evidence("/root/.bash_history", PAYLOADS["pre_breakout"]),),
        ),
        make_result("linux.ssh.host-keys", Status.WARN, Severity.MEDIUM, summary=PAYLOADS["img"]),
        make_result("linux.accounts.sudo", Status.SKIP, Severity.HIGH),
        make_result(
            "linux.cloud-init.clean",
            Status.FAIL,
            Severity.LOW,
            waived=True,
            waiver={"reason": PAYLOADS["img"], "expires": "2099-01-01", "approver": "alice"},
        ),
        make_result("linux.ssh.root-login", Status.PASS, Severity.CRITICAL),
    )
    return make_report(
        results,
        target=TargetInfo(
            "ami",
            f"ami-0123456789abcdef0{PAYLOADS['script']}",
            "linux",
            {"name": PAYLOADS["script"], "login_user": "ec2-user", "os": PAYLOADS["img"]},
        ),
        notes=(PAYLOADS["script"],),
    )


@pytest.fixture(scope="module")
def loaded(browser: Chromium, tmp_path_factory: pytest.TempPathFactory) -> Page:
    # Module-scoped fixtures cannot use the function-scoped report fixtures: build them here.
    from tests.reports.conftest import report, result

    html = render_html(_hostile_report(result, report))
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(html, encoding="utf-8")
    page = browser.new_page()
    page.send("Page.addScriptToEvaluateOnNewDocument", source=RECORD_VIOLATIONS)
    page.navigate(path.as_uri())
    return page


def _articles(page: Page) -> list[dict[str, Any]]:
    """Every result as laid out: status, severity, position, and whether it is shown."""
    articles: list[dict[str, Any]] = page.evaluate(
        """[...document.querySelectorAll("article[data-status]")].map((el) => {
            const r = el.getBoundingClientRect();
            return {status: el.dataset.status, severity: el.dataset.severity,
                    top: r.top + window.scrollY, shown: r.height > 0};
        })"""
    )
    return articles


def _settle(page: Page) -> None:
    """Let timers queued by the page (the reset handler defers its work) run."""
    page.evaluate("new Promise((resolve) => setTimeout(resolve, 50))")


def test_no_script_from_the_scanned_image_runs(loaded: Page) -> None:
    assert loaded.evaluate("window.__pwned") is None
    assert loaded.evaluate("document.title").startswith("amiscan FAIL: ami-0123456789abcdef0")
    assert loaded.evaluate("document.querySelectorAll('script').length") == 1
    for tag in ("img", "svg", "iframe", "#pwn-link", "details[ontoggle]", "[onfocus]"):
        assert loaded.evaluate(f"document.querySelectorAll({tag!r}).length") == 0, tag
    # Nothing even tried: the escaping held on its own, the CSP never had to step in.
    assert loaded.evaluate("window.__violations") == []


def test_hostile_strings_are_shown_as_text(loaded: Page) -> None:
    text = loaded.evaluate("document.body.innerText")

    assert PAYLOADS["script"] in text
    assert f"javascript:{PWN}" in text  # the policy URL is shown, not linked
    assert loaded.evaluate("[...document.links].every((a) => a.protocol === 'https:')")


def test_the_csp_would_stop_an_inline_handler_a_missed_escape_let_through(
    loaded: Page,
) -> None:
    loaded.evaluate(
        f"""(() => {{
            const el = document.createElement("button");
            el.id = "injected";
            el.textContent = "injected";
            el.setAttribute("onclick", {PWN!r});
            document.querySelector("main").prepend(el);
        }})()"""
    )
    loaded.click("#injected")

    assert loaded.evaluate("window.__pwned") is None
    assert "script-src-attr" in loaded.evaluate("window.__violations")
    loaded.evaluate("document.getElementById('injected').remove(); window.__violations = []")


def test_the_verdict_is_the_first_thing_on_screen(loaded: Page) -> None:
    banner = loaded.evaluate(
        """(() => {
            window.scrollTo(0, 0);
            const h = document.querySelector("header.verdict h1");
            const r = h.getBoundingClientRect();
            return {text: h.innerText, top: r.top, height: r.height,
                    viewport: window.innerHeight};
        })()"""
    )

    assert banner["text"] == "FAIL"
    assert 0 <= banner["top"] < banner["viewport"]
    assert banner["height"] > 0


def test_failures_are_laid_out_before_passes(loaded: Page) -> None:
    articles = sorted(_articles(loaded), key=lambda a: a["top"])
    statuses = [a["status"] for a in articles]

    assert statuses == ["fail", "fail", "warn", "skip", "pass", "pass", "pass", "waived"]
    assert [a["severity"] for a in articles[:2]] == ["critical", "high"]


def test_status_and_severity_filters_hide_and_show_results(loaded: Page) -> None:
    # The filter form is hidden unless its script runs: visible means the CSP hash is right.
    assert loaded.evaluate("document.getElementById('filters').offsetHeight") > 0
    assert all(a["shown"] for a in _articles(loaded))

    loaded.click('#filters input[name="status"][value="pass"]')
    shown = {a["status"] for a in _articles(loaded) if a["shown"]}
    assert shown == {"fail", "warn", "skip", "waived"}

    loaded.click('#filters input[name="severity"][value="critical"]')
    visible = [(a["status"], a["severity"]) for a in _articles(loaded) if a["shown"]]
    assert ("fail", "critical") not in visible
    assert ("fail", "high") in visible
    assert all(severity != "critical" for _, severity in visible)

    loaded.click('#filters input[name="status"][value="pass"]')
    statuses = [a["status"] for a in _articles(loaded) if a["shown"]]
    assert "pass" in statuses  # the high-severity pass is back; critical ones stay hidden
    assert all(a["severity"] != "critical" for a in _articles(loaded) if a["shown"])

    loaded.click('#filters button[type="reset"]')
    _settle(loaded)
    assert all(a["shown"] for a in _articles(loaded))


def test_the_page_fits_a_narrow_screen(browser: Chromium, loaded: Page) -> None:
    url = loaded.evaluate("location.href")
    phone = browser.new_page(width=375, height=812)
    phone.navigate(url)

    overflow = phone.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )

    assert overflow <= 0
    assert phone.evaluate("document.querySelector('header.verdict h1').innerText") == "FAIL"


def test_redacted_evidence_reaches_the_screen_masked(browser: Chromium, tmp_path: Path) -> None:
    from tests.reports.conftest import report, result

    secret = "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzXamplEKEY"
    html = render_html(
        report(
            (
                result(
                    "linux.secrets.aws-credentials",
                    Status.FAIL,
                    evidence=(Evidence("/root/.aws/credentials", secret),),
                ),
            )
        )
    )
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    page = browser.new_page()
    page.navigate(path.as_uri())

    text = page.evaluate("document.body.innerText")

    assert "wJalrXUtnFEMI" not in text
    assert "aws_secret_access_key = ********" in text


def test_printing_hides_the_filters_and_shows_collapsed_evidence(
    browser: Chromium, loaded: Page
) -> None:
    url = loaded.evaluate("location.href")
    page = browser.new_page()
    page.navigate(url)
    closed_evidence = """(() => {
        const closed = [...document.querySelectorAll("details.evidence:not([open]) pre")];
        return closed.length > 0 && closed.every((pre) => pre.checkVisibility());
    })()"""
    assert page.evaluate(closed_evidence) is False  # on screen, passes' evidence is folded

    page.send("Emulation.setEmulatedMedia", media="print")

    assert page.evaluate("document.getElementById('filters').offsetHeight") == 0
    assert page.evaluate(closed_evidence) is True
    assert page.send("Page.printToPDF")["data"]
