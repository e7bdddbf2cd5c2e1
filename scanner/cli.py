"""The `amiscan` command line.

Exit codes (DESIGN.md): 0 pass: every check that applies was judged and none failed; 1 at least
one unwaived fail; 2 bad usage or input; 3 could not judge: an unwaived error, or the scan could
not complete (the report is still written and names what could not be judged, and why).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from scanner import __version__
from scanner.aws.errors import AwsError
from scanner.baseline import Baseline, BaselineError, compare_with_baseline, load_baseline
from scanner.cancel import Cancel, signals_cancel
from scanner.config import Config, ConfigError, load_config
from scanner.model import Report, Severity, Verdict
from scanner.orchestrate import Outcome, scan_all
from scanner.registry import Check, RegistryError, load_checks, select_checks
from scanner.targets import ScanOptions, Target, TargetError, resolve_target
from scanner.targets.base import checks_for
from scanner.targets.winrm import WinRMSettings
from scanner.terminal import inert, markup, print_summary, progress_display
from scanner.waivers import apply_waivers

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3

log = logging.getLogger("amiscan")

# One printed message (an error, a note) at most this long: it may quote a hostile file.
MESSAGE_CHARS = 4000


def echo_err(message: str) -> None:
    """One line on stderr, made inert: messages quote guest and input-file strings."""
    click.echo(inert(message, MESSAGE_CHARS), err=True)


class UsageProblem(click.ClickException):
    """Bad input: one line on stderr, exit code 2."""

    exit_code = EXIT_USAGE

    def show(self, file: Any = None) -> None:
        echo_err(f"amiscan: error: {self.format_message()}")


class DefaultToScan(click.Group):
    """`amiscan TARGET …` means `amiscan scan TARGET …`; subcommands keep their names."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["scan", *args]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        """An unexpected exception is a bug, but never a traceback on the user's terminal: one
        line and exit 3 (-vv logs the traceback). Exit 1 would claim the image fails."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            # Before or after the scan proper (which handles its own signals): nothing was left
            # half done, but nothing was judged either. click would say "Aborted!" and exit 1,
            # the code that means the image fails.
            echo_err("amiscan: interrupted")
            sys.exit(EXIT_INCOMPLETE)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # the last line of defence: a bug, not a traceback
            log.debug("internal error", exc_info=True)
            echo_err(f"amiscan: internal error: {_describe_exception(exc)} (-vv shows the details)")
            sys.exit(EXIT_INCOMPLETE)


def _describe_exception(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _InertFormatter(logging.Formatter):
    """Log lines made inert (they quote guest strings); tracebacks only in debug logs (-vv)."""

    def __init__(self, fmt: str, tracebacks: bool) -> None:
        super().__init__(fmt)
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        if not self.tracebacks and (record.exc_info or record.exc_text or record.stack_info):
            record = logging.makeLogRecord(record.__dict__)
            record.exc_info = record.exc_text = record.stack_info = None
        return inert(super().format(record), MESSAGE_CHARS * 4, multiline=True)


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _InertFormatter("%(levelname)s %(name)s: %(message)s", tracebacks=verbose >= 2)
    )
    logging.basicConfig(level=level, handlers=[handler])
    if verbose < 3:
        logging.getLogger("paramiko").setLevel(logging.WARNING)


def _split_ids(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _catalog() -> dict[str, Check]:
    try:
        return load_checks()
    except RegistryError as exc:
        raise UsageProblem(str(exc)) from None


F = TypeVar("F", bound=Callable[..., Any])


def report_outputs(command: F) -> F:
    """The report-format options `scan` and `report` share."""
    options = [
        click.option(
            "--html",
            "html_path",
            default="amiscan-report.html",
            show_default=True,
            metavar="PATH",
            help="HTML report for reviewers.",
        ),
        click.option("--no-html", is_flag=True, help="Do not write the HTML report."),
        click.option(
            "--json", "json_path", metavar="PATH|-", help="JSON report ('-' for standard output)."
        ),
        click.option("--junit", "junit_path", metavar="PATH", help="JUnit XML report for CI."),
        click.option(
            "--sarif", "sarif_path", metavar="PATH", help="SARIF 2.1.0 report for code scanning."
        ),
        click.option(
            "--markdown",
            "markdown_path",
            metavar="PATH",
            help="Markdown summary for CI job summaries.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(cls=DefaultToScan, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="amiscan")
def main() -> None:
    """Will this AMI pass AWS Marketplace vetting? Scan it and find out why not.

    \b
    amiscan TARGET... [options]  scan; TARGET: ami-…, ssh://[user@]host[:port],
                                 winrm[s]://[user@]host[:port], local, dir:PATH
    amiscan checks [--json]      list the check catalog
    amiscan report FILE.json     re-render the reports of an earlier scan
    amiscan cleanup              delete what an interrupted scan left in AWS
    """


@main.command("scan")
@click.argument("targets", nargs=-1, required=True, metavar="TARGET...")
@report_outputs
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
    help="Seconds to wait for the login (ssh://: 15) or for the whole boot and login (ami-…: 600; Windows AMIs: 1200).",
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
    help="Fail only on failures of this severity or higher (default: any unwaived failure).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="Configuration and waivers (default: ./amiscan.toml, else [tool.amiscan] of "
    "./pyproject.toml).",
)
@click.option(
    "--baseline",
    "baseline_path",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="JSON report of the previous version: call out new failures, keep the login user.",
)
@click.option("--region", help="AWS Region of the AMI (default: the profile's or AWS_REGION).")
@click.option("--profile", help="AWS named profile (default: the standard credential chain).")
@click.option(
    "--instance-type", help="Instance type to launch (default: the smallest that fits the image)."
)
@click.option(
    "--subnet-id", help="Subnet to launch in (default: the default VPC's default subnet)."
)
@click.option(
    "--address",
    type=click.Choice(["public", "private"]),
    default="public",
    show_default=True,
    help="Reach the instance on its public address, or its private one (scanner inside the VPC).",
)
@click.option(
    "--allow-cidr",
    metavar="CIDR",
    help="Source range the security group admits (default: this machine's address, /32).",
)
@click.option(
    "--scan-port",
    type=click.IntRange(1, 65535),
    default=22,
    show_default=True,
    help="The SSH port Marketplace vetting connects to, judged on every target; for ami-… also "
    "the port amiscan reaches the instance on. An ssh:// URL's port is only how amiscan reaches "
    "the host (a port forward, NAT or jump host).",
)
@click.option(
    "--winrm-port",
    type=click.IntRange(1, 65535),
    default=5985,
    show_default=True,
    help="WinRM port of a Windows AMI's instance.",
)
@click.option("--key-name", help="Use this existing key pair (with -i) instead of a temporary one.")
@click.option(
    "--keep-instance",
    is_flag=True,
    help="Leave the instance running for debugging (prints how to clean up).",
)
@click.option(
    "--no-launch",
    is_flag=True,
    help="Launch nothing: judge the image attributes and, from the AMI's snapshots through the "
    "EBS direct APIs, every check that needs no running instance.",
)
@click.option(
    "--no-snapshot",
    is_flag=True,
    help="Never read the AMI's snapshots (with --no-launch: judge only the image attributes; "
    "with a launch: no offline results if the instance cannot be reached).",
)
@click.option("--poll-interval", type=click.FloatRange(min=0.05), default=2.0, hidden=True)
@click.option(
    "--host-key-wait",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="ami-… (Linux): when the console showed no host key fingerprints at login, how long to "
    "wait for them afterwards to verify the key (0: trust on first use, as the report says).",
)
@click.option(
    "--password-env",
    metavar="VAR",
    default="AMISCAN_WINRM_PASSWORD",
    show_default=True,
    help="Environment variable holding the WinRM password (winrm:// targets; never an argument).",
)
@click.option(
    "--winrm-insecure",
    is_flag=True,
    help="Do not validate the certificate of a winrms:// (HTTPS 5986) listener.",
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
    connect_timeout: float | None,
    collect_timeout: float,
    fail_on: str | None,
    config_path: Path | None,
    baseline_path: Path | None,
    region: str | None,
    profile: str | None,
    instance_type: str | None,
    subnet_id: str | None,
    address: str,
    allow_cidr: str | None,
    scan_port: int,
    winrm_port: int,
    key_name: str | None,
    keep_instance: bool,
    no_launch: bool,
    no_snapshot: bool,
    poll_interval: float,
    host_key_wait: float,
    password_env: str,
    winrm_insecure: bool,
    verbose: int,
) -> None:
    """Scan TARGET(s) and write the reports (one set per target).

    \b
    TARGET: ami-… (launch and scan an AMI; several are scanned concurrently),
            ssh://[user@]host[:port], winrm[s]://[user@]host[:port] (Windows),
            local, dir:PATH (an image root), disk:PATH (a raw, qcow2 or VMDK disk
            image; a plain existing file works too) or snapshot:snap-… (an EBS snapshot,
            read through the EBS direct APIs).
    """
    _setup_logging(verbose)
    if len(targets) > 1 and json_path == "-":
        raise UsageProblem("--json - writes one report; give a path when scanning several targets")
    # Configuration, waivers and the baseline are all read and validated before anything is
    # scanned: a typo must cost a second, not a launched instance.
    catalog = _catalog()
    config = _config(config_path, catalog)
    baseline = _baseline(baseline_path or config.baseline)
    user = user or config.user
    fail_on = fail_on or (config.fail_on.value if config.fail_on else None)
    only = only or config.checks
    skip = skip or config.skip
    if identity_file is not None and not identity_file.is_file():
        raise UsageProblem(f"identity file {identity_file} does not exist")
    options = ScanOptions(
        user=user,
        identity_file=identity_file,
        connect_timeout_s=connect_timeout,
        collect_timeout_s=collect_timeout,
        fail_on=Severity(fail_on) if fail_on else None,
        baseline_login_user=baseline.login_user if baseline else None,
        region=region or config.region,
        profile=profile or config.profile,
        instance_type=instance_type or config.instance_type,
        subnet_id=subnet_id or config.subnet_id,
        address=address,
        allow_cidr=allow_cidr,
        scan_port=scan_port,
        winrm_port=winrm_port,
        key_name=key_name,
        keep_instance=keep_instance,
        no_launch=no_launch,
        no_snapshot=no_snapshot,
        poll_interval_s=poll_interval,
        host_key_wait_s=host_key_wait,
    )
    try:
        winrm = WinRMSettings(password_env=password_env, validate_certificate=not winrm_insecure)
        resolved = [resolve_target(text, options, winrm) for text in dict.fromkeys(targets)]
        selected = select_checks(catalog, _split_ids(only), _split_ids(skip))
    except TargetError as exc:
        raise UsageProblem(str(exc)) from None
    except AwsError as exc:
        raise UsageProblem(str(exc)) from None
    except KeyError as exc:
        raise UsageProblem(f"unknown check id: {exc.args[0]} (see `amiscan checks`)") from None

    def applicable(target: Target) -> list[Check]:
        return checks_for(target, selected, image_only=no_launch and no_snapshot)

    to_stdout = json_path == "-"
    console = Console(stderr=to_stdout)
    errors = Console(stderr=True)
    with progress_display(errors) as progress:
        outcomes = scan_all(
            resolved,
            applicable,
            options,
            progress,
            on_signal=lambda: click.echo(
                "amiscan: interrupted; cleaning up what the scan created…", err=True
            ),
        )
    # The scans are over and cleaned up: a signal now must not cut a report in half. The first
    # one is noted and the reports are finished; a second exits at once.
    with signals_cancel(
        Cancel(),
        on_signal=lambda: echo_err("amiscan: interrupted; finishing the reports first…"),
    ):
        outputs = _outputs(html_path, no_html, json_path, junit_path, sarif_path, markdown_path)
        codes = _write_all(outcomes, config, baseline, options, console, verbose, outputs)
    sys.exit(combined_exit_code(codes))


def _write_all(
    outcomes: list[Outcome],
    config: Config,
    baseline: Baseline | None,
    options: ScanOptions,
    console: Console,
    verbose: int,
    outputs: dict[str, str | None],
) -> list[int]:
    """Judge each target's report against the config and baseline, write it (each target's
    files suffixed with its id when there are several), and print it; the exit codes."""
    codes = []
    for outcome in outcomes:
        report = judge_against(outcome.report, config, baseline, options.fail_on)
        suffix = _target_suffix(report.target.id) if len(outcomes) > 1 else ""
        render_failed = write_reports(
            report,
            {kind: _with_suffix(path, suffix) for kind, path in outputs.items()},
            optional=_default_html(click.get_current_context()),
        )
        print_summary(console, report, verbose=verbose > 0)
        # Notes are what a CI log reader must act on: an expired waiver, new failures since
        # the baseline, the --fail-on threshold.
        for note in report.notes:
            echo_err(f"amiscan: {report.target.id}: note: {note}")
        for error in report.errors:
            echo_err(f"amiscan: {report.target.id}: scan incomplete: {error}")
        codes.append(EXIT_USAGE if outcome.usage_error else exit_code(report))
        if render_failed:
            codes.append(EXIT_INCOMPLETE)
    return codes


def combined_exit_code(codes: list[int]) -> int:
    """Several targets, judged as one gate the way one target's checks are: bad input first,
    then a failing image (it would be rejected whatever else was judged), then could not judge."""
    for code in (EXIT_USAGE, EXIT_FAIL, EXIT_INCOMPLETE):
        if code in codes:
            return code
    return EXIT_PASS


def _target_suffix(target_id: str) -> str:
    return "-" + re.sub(r"[^A-Za-z0-9._-]+", "_", target_id).strip("_")


def _outputs(
    html: str,
    no_html: bool,
    json_path: str | None,
    junit: str | None,
    sarif: str | None,
    markdown: str | None,
) -> dict[str, str | None]:
    """Report format -> path as `report_outputs` options give them (None: not written)."""
    return {
        "html": None if no_html else html,
        "json": json_path,
        "junit": junit,
        "sarif": sarif,
        "markdown": markdown,
    }


def _with_suffix(path: str | None, suffix: str) -> str | None:
    """`report.json` → `report-ami-0abc.json` when several targets share one option."""
    if not path or path == "-" or not suffix:
        return path
    candidate = Path(path)
    return str(candidate.with_name(candidate.stem + suffix + candidate.suffix))


def _config(path: Path | None, catalog: dict[str, Check]) -> Config:
    try:
        return load_config(path, known_ids=catalog)
    except ConfigError as exc:
        raise UsageProblem(str(exc)) from None


def _baseline(path: Path | None) -> Baseline | None:
    if path is None:
        return None
    try:
        return load_baseline(path)
    except BaselineError as exc:
        raise UsageProblem(str(exc)) from None


def judge_against(
    report: Report, config: Config, baseline: Baseline | None, fail_on: Severity | None
) -> Report:
    """The scan's report compared with the baseline, with waivers applied and the verdict
    recomputed for them (a waiver's expiry is judged on today's date, UTC)."""
    if baseline is not None:
        report = compare_with_baseline(report, baseline)
    if fail_on is not None:
        report = replace(
            report,
            notes=(
                *report.notes,
                f"only unwaived failures of severity {fail_on.value} or higher fail the "
                f"verdict (--fail-on {fail_on.value})",
            ),
        )
    return apply_waivers(report, config.waivers, today=datetime.now(UTC).date(), fail_on=fail_on)


def exit_code(report: Report) -> int:
    if report.verdict is Verdict.ERROR:
        return EXIT_INCOMPLETE
    return EXIT_FAIL if report.verdict is Verdict.FAIL else EXIT_PASS


def write_reports(
    report: Report, outputs: dict[str, str | None], optional: frozenset[str] = frozenset()
) -> bool:
    """Write every requested format, each even when another failed; True if one could not be
    rendered (an internal error: the caller exits 3 unless a worse code applies).

    A path that cannot be written is exit 2 once all are written, unless its format is in
    `optional` (the HTML report at its default path): then it is a warning, so that
    `amiscan dir:… --json -` in a read-only directory still prints its JSON and exit code.
    """
    failures = []
    render_failed = False
    for kind, path in outputs.items():
        if not path:
            continue
        try:
            text = _renderer(kind)(report)
        except Exception as exc:  # one format's bug must not cost the others
            log.debug("rendering the %s report failed", kind, exc_info=True)
            echo_err(
                f"amiscan: error: the {kind} report was not written: internal error: "
                f"{_describe_exception(exc)}"
            )
            render_failed = True
            continue
        if path == "-":
            click.echo(text, nl=not text.endswith("\n"))
            continue
        try:
            Path(path).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        except OSError as exc:
            message = f"cannot write the {kind} report to {path}: {exc.strerror or exc}"
            if kind in optional:
                echo_err(f"amiscan: warning: {message}")
            else:
                failures.append(message)
    if failures:
        raise UsageProblem("; ".join(failures))
    return render_failed


def _renderer(kind: str) -> Callable[[Report], str]:
    """The renderer of one report format, imported only when that format is written (the HTML
    one loads jinja2 and its template; a `--no-html` scan never pays for it)."""
    if kind == "html":
        from reports import html

        return html.render_html
    if kind == "json":
        from reports import json_report

        return json_report.dumps
    if kind == "junit":
        from reports import junit

        return junit.render_junit
    if kind == "sarif":
        from reports import sarif

        return sarif.render_sarif
    from reports import markdown

    return markdown.render_markdown


def _default_html(ctx: click.Context) -> frozenset[str]:
    """{"html"} when --html was not given: failing to write the default file is only a warning."""
    source = ctx.get_parameter_source("html_path")
    return frozenset({"html"}) if source is click.core.ParameterSource.DEFAULT else frozenset()


@main.command("report")
@click.argument("source", metavar="RESULT.json", type=click.Path(path_type=Path))
@report_outputs
@click.option("-v", "--verbose", count=True, help="Show passing checks in the summary.")
def report_command(
    source: Path,
    html_path: str,
    no_html: bool,
    json_path: str | None,
    junit_path: str | None,
    sarif_path: str | None,
    markdown_path: str | None,
    verbose: int,
) -> None:
    """Re-render the reports of an earlier scan from its JSON report, without rescanning.

    The verdict is the one recorded in the JSON (exit code 0, 1 or 3 as for the scan); nothing
    is judged again.
    """
    from reports.json_report import ReportFormatError, loads, read_text

    try:
        report = loads(read_text(source))
    except FileNotFoundError:
        raise UsageProblem(f"{source}: no such file") from None
    except UnicodeDecodeError:
        raise UsageProblem(f"{source}: not an amiscan JSON report (not UTF-8)") from None
    except OSError as exc:
        raise UsageProblem(f"{source}: cannot read: {exc.strerror}") from None
    except ReportFormatError as exc:
        raise UsageProblem(f"{source}: {exc}") from None
    outputs = _outputs(html_path, no_html, json_path, junit_path, sarif_path, markdown_path)
    render_failed = write_reports(
        report, outputs, optional=_default_html(click.get_current_context())
    )
    print_summary(Console(stderr=json_path == "-"), report, verbose=verbose > 0)
    code = exit_code(report)
    sys.exit(combined_exit_code([code, EXIT_INCOMPLETE]) if render_failed else code)


@main.command("cleanup")
@click.option("--region", help="AWS Region to sweep (default: the profile's or AWS_REGION).")
@click.option("--profile", help="AWS named profile.")
@click.option(
    "--older-than",
    metavar="DURATION",
    help="Only what was created longer ago than this (30m, 2h, 1d).",
)
@click.option("--scan-id", help="Only what one scan created (its id is in the report).")
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@click.option("--poll-interval", type=click.FloatRange(min=0.05), default=2.0, hidden=True)
def cleanup_command(
    region: str | None,
    profile: str | None,
    older_than: str | None,
    scan_id: str | None,
    dry_run: bool,
    poll_interval: float,
) -> None:
    """Delete instances, security groups and key pairs that amiscan scans left behind (by tag)."""
    from scanner.aws.session import ec2_client, make_session
    from scanner.aws.sweep import parse_duration, sweep

    try:
        age = parse_duration(older_than) if older_than else None
    except ValueError as exc:
        raise UsageProblem(f"--older-than: {exc}") from None
    try:
        client = ec2_client(make_session(profile, region))
        result = sweep(
            client, older_than=age, scan_id=scan_id, dry_run=dry_run, poll_s=poll_interval
        )
    except AwsError as exc:
        if exc.usage:
            raise UsageProblem(str(exc)) from None
        echo_err(f"amiscan: cleanup failed: {exc}")
        sys.exit(EXIT_INCOMPLETE)
    verb = "would delete" if dry_run else "deleted"
    for leftover in result.found:
        if dry_run or leftover in result.deleted:
            created = leftover.created_at.isoformat() if leftover.created_at else "unknown time"
            click.echo(
                inert(
                    f"{verb} {leftover.kind} {leftover.id} (scan {leftover.scan_id}, "
                    f"created {created})",
                    MESSAGE_CHARS,
                )
            )
    for problem in result.problems:
        echo_err(f"amiscan: {problem}")
    if not result.found:
        click.echo("nothing to clean up")
    sys.exit(EXIT_INCOMPLETE if result.problems else EXIT_PASS)


@main.command("checks")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable catalog.")
def checks_command(as_json: bool) -> None:
    """List every check amiscan (and its installed plug-ins) can run."""
    catalog = _catalog()
    items = sorted(catalog.values(), key=lambda c: c.id)
    if as_json:
        click.echo(json.dumps([_describe(c) for c in items], indent=2))
        return
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("id", "severity", "policy", "title"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(
            markup(item.id), item.severity.value, markup(item.policy.id), markup(item.title)
        )
    Console().print(table)


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
