"""The `amiscan` command line.

Exit codes (DESIGN.md): 0 no unwaived fail; 1 at least one unwaived fail; 2 bad usage or input;
3 the scan could not complete (the report is still written and says why).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from scanner import __version__
from scanner.model import Report, Severity, Verdict
from scanner.registry import Check, RegistryError, load_checks, select_checks
from scanner.run import ScanRun
from scanner.targets import ScanAborted, ScanOptions, TargetError, resolve_target
from scanner.terminal import print_summary, progress_display

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3

log = logging.getLogger("amiscan")


class UsageProblem(click.ClickException):
    """Bad input: one line on stderr, exit code 2."""

    exit_code = EXIT_USAGE

    def show(self, file: Any = None) -> None:
        click.echo(f"amiscan: error: {self.format_message()}", err=True)


class DefaultToScan(click.Group):
    """`amiscan TARGET …` means `amiscan scan TARGET …`; subcommands keep their names."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["scan", *args]
        return super().parse_args(ctx, args)


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if verbose < 3:
        logging.getLogger("paramiko").setLevel(logging.WARNING)


def _split_ids(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _catalog() -> dict[str, Check]:
    try:
        return load_checks()
    except RegistryError as exc:
        raise UsageProblem(str(exc)) from None


@click.group(cls=DefaultToScan, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="amiscan")
def main() -> None:
    """Will this AMI pass AWS Marketplace vetting? Scan it and find out why not.

    \b
    amiscan TARGET [options]     scan (TARGET: ssh://[user@]host[:port], local, dir:PATH)
    amiscan checks [--json]      list the check catalog
    """


@main.command("scan")
@click.argument("targets", nargs=-1, required=True, metavar="TARGET...")
@click.option(
    "--html",
    "html_path",
    default="amiscan-report.html",
    show_default=True,
    metavar="PATH",
    help="HTML report for reviewers.",
)
@click.option("--no-html", is_flag=True, help="Do not write the HTML report.")
@click.option(
    "--json", "json_path", metavar="PATH|-", help="JSON report ('-' for standard output)."
)
@click.option("--junit", "junit_path", metavar="PATH", help="JUnit XML report for CI.")
@click.option("--sarif", "sarif_path", metavar="PATH", help="SARIF 2.1.0 report for code scanning.")
@click.option(
    "--markdown", "markdown_path", metavar="PATH", help="Markdown summary for CI job summaries."
)
@click.option(
    "--checks",
    "only",
    multiple=True,
    metavar="ID,...",
    help="Run only these checks (or id prefixes).",
)
@click.option(
    "--skip", multiple=True, metavar="ID,...", help="Do not run these checks (or id prefixes)."
)
@click.option(
    "-i", "--identity-file", type=click.Path(path_type=Path), help="SSH private key to log in with."
)
@click.option(
    "--user", help="Login user (default: the URL's, else ec2-user, then distribution defaults)."
)
@click.option(
    "--connect-timeout",
    type=click.FloatRange(min=1),
    default=15.0,
    show_default=True,
    help="Seconds to wait for the connection and login.",
)
@click.option(
    "--timeout",
    "collect_timeout",
    type=click.FloatRange(min=5),
    default=600.0,
    show_default=True,
    help="Seconds the whole in-guest collection may take.",
)
@click.option(
    "--fail-on",
    type=click.Choice([s.value for s in Severity]),
    help="Fail only on failures of this severity or higher (default: any failure).",
)
@click.option("-v", "--verbose", count=True, help="Show passing checks; -vv for debug logs.")
def scan_command(
    targets: tuple[str, ...],
    html_path: str,
    no_html: bool,
    json_path: str | None,
    junit_path: str | None,
    sarif_path: str | None,
    markdown_path: str | None,
    only: tuple[str, ...],
    skip: tuple[str, ...],
    identity_file: Path | None,
    user: str | None,
    connect_timeout: float,
    collect_timeout: float,
    fail_on: str | None,
    verbose: int,
) -> None:
    """Scan TARGET and write the reports."""
    _setup_logging(verbose)
    if len(targets) > 1:
        raise UsageProblem("scan one target at a time")
    if identity_file is not None and not identity_file.is_file():
        raise UsageProblem(f"identity file {identity_file} does not exist")
    options = ScanOptions(
        user=user,
        identity_file=identity_file,
        connect_timeout_s=connect_timeout,
        collect_timeout_s=collect_timeout,
        fail_on=Severity(fail_on) if fail_on else None,
    )
    try:
        target = resolve_target(targets[0], options)
    except TargetError as exc:
        raise UsageProblem(str(exc)) from None
    catalog = _catalog()
    try:
        checks = select_checks(catalog, _split_ids(only), _split_ids(skip))
    except KeyError as exc:
        raise UsageProblem(f"unknown check id: {exc.args[0]} (see `amiscan checks`)") from None
    checks = [c for c in checks if c.platform.value in (target.platform, "image")]

    to_stdout = json_path == "-"
    console = Console(stderr=to_stdout)
    report = run_scan(target, checks, options, Console(stderr=True))
    outputs = {
        "html": None if no_html else html_path,
        "json": json_path,
        "junit": junit_path,
        "sarif": sarif_path,
        "markdown": markdown_path,
    }
    write_reports(report, outputs)
    print_summary(console, report, verbose=verbose > 0)
    for error in report.errors:
        click.echo(f"amiscan: scan incomplete: {error}", err=True)
    sys.exit(exit_code(report))


def run_scan(target: Any, checks: list[Check], options: ScanOptions, console: Console) -> Report:
    """Scan, turning every failure to complete into a recorded error (the report is written)."""
    with progress_display(console) as progress:
        run = ScanRun(target.kind, target.id, target.platform, checks, progress)
        try:
            target.scan(run, options)
        except ScanAborted as exc:
            run.fail_scan(str(exc))
        except KeyboardInterrupt:
            run.fail_scan("interrupted")
        return run.finish(options.fail_on)


def exit_code(report: Report) -> int:
    if report.verdict is Verdict.ERROR:
        return EXIT_INCOMPLETE
    return EXIT_FAIL if report.verdict is Verdict.FAIL else EXIT_PASS


def write_reports(report: Report, outputs: dict[str, str | None]) -> None:
    """Write every requested format; a path that cannot be written is exit 2 after the scan."""
    from reports import html, json_report, junit, markdown, sarif

    renderers = {
        "html": html.render_html,
        "json": json_report.dumps,
        "junit": junit.render_junit,
        "sarif": sarif.render_sarif,
        "markdown": markdown.render_markdown,
    }
    for kind, path in outputs.items():
        if not path:
            continue
        text = renderers[kind](report)
        if path == "-":
            click.echo(text)
            continue
        try:
            Path(path).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        except OSError as exc:
            raise UsageProblem(
                f"cannot write the {kind} report to {path}: {exc.strerror}"
            ) from None


@main.command("checks")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable catalog.")
def checks_command(as_json: bool) -> None:
    """List every check amiscan (and its installed plug-ins) can run."""
    catalog = _catalog()
    items = sorted(catalog.values(), key=lambda c: c.id)
    if as_json:
        click.echo(json.dumps([_describe(c) for c in items], indent=2))
        return
    console = Console()
    for item in items:
        console.print(
            f"[bold]{item.id}[/]  {item.severity.value:<8} {item.policy.id:<8} {item.title}"
        )


def _describe(item: Check) -> dict[str, Any]:
    return {
        "id": item.id,
        "title": item.title,
        "severity": item.severity.value,
        "platform": item.platform.value,
        "policy": {"id": item.policy.id, "url": item.policy.url, "text": item.policy.text},
        "rationale": item.rationale,
        "remediation": item.remediation,
        "needs": [fact.name for fact in item.needs],
        "source": item.source,
    }
