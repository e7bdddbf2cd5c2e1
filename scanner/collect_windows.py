"""The batched PowerShell collection script: every live Windows fact of a scan in ONE execution.

The Windows counterpart of `scanner.collect`. Each probe runs in a runspace of its own (so it can
see none of the script's variables, the marker included), inside try/catch, with a time limit
(`BeginInvoke` + `WaitOne`; a probe that overruns is stopped and abandoned, never awaited). Its
output is turned into text, cut at a size limit and emitted base64-encoded (UTF-8) on one marker
line with its status and error text. While probes run, the console is redirected to nothing, so a
probe that writes to [Console] directly cannot put a line of its own on standard output either.

Records (one line each, fields separated by one space, `-` for an empty field):

    <marker> ENV <key> <b64 value>
    <marker> PROBE <name> <ok|error|timeout> <elapsed ms> <output bytes> <b64 output> <b64 error>
    <marker> END

The stream is read by the rules of `scanner.records`, as the Linux one is: nothing after END
counts, nothing is overridden by a later record, and a malformed record spoils only its probe.
"""

from __future__ import annotations

import base64
import dataclasses
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from scanner.collect import OUTPUT_LIMIT, Collected, CollectionError
from scanner.facts.base import Fact, ProbeOutput
from scanner.records import (
    SAFE_NAME,
    RecordError,
    claim_probe,
    count_field,
    decode_field,
    read_records,
    repeated_session_record,
    spoil_probe,
)

__all__ = [
    "ERROR_LIMIT",
    "OUTPUT_LIMIT",
    "Collected",
    "CollectionError",
    "WindowsScript",
    "build_script",
    "parse_output",
]

ERROR_LIMIT = 65536
# Exit status a timed-out probe is given, as `timeout(1)` does on Linux.
TIMEOUT_RC = 124
# What each probe status of a record means as an exit status.
_STATUS_RC = {"ok": 0, "error": 1, "timeout": TIMEOUT_RC}

_PRELUDE = r"""
$ErrorActionPreference = 'Continue'
$ProgressPreference = 'SilentlyContinue'
$AmiscanMarker = '@MARKER@'
$AmiscanOutputLimit = @OUTPUT_LIMIT@
$AmiscanErrorLimit = @ERROR_LIMIT@
$AmiscanOut = [Console]::Out
[Console]::SetOut([System.IO.TextWriter]::Null)
[Console]::SetError([System.IO.TextWriter]::Null)

function Write-AmiscanRecord([string]$Kind, [string[]]$Fields) {
    $line = $AmiscanMarker + ' ' + $Kind
    if ($Fields.Count -gt 0) { $line = $line + ' ' + ($Fields -join ' ') }
    $AmiscanOut.WriteLine($line)
    $AmiscanOut.Flush()
}

function ConvertTo-AmiscanField([string]$Text, [int]$Limit) {
    if ([string]::IsNullOrEmpty($Text)) { return @('0', '-') }
    $bytes = [System.Text.Encoding]::UTF8.GetBytes($Text)
    $size = $bytes.Length
    if ($size -gt $Limit) { [Array]::Resize([ref]$bytes, $Limit) }
    return @([string]$size, [Convert]::ToBase64String($bytes))
}

function Write-AmiscanEnv([string]$Key, [string]$Value) {
    $field = ConvertTo-AmiscanField $Value 4096
    Write-AmiscanRecord 'ENV' @($Key, $field[1])
}

function ConvertTo-AmiscanText($Items) {
    $parts = @(foreach ($item in $Items) {
        if ($item -is [string]) { $item } else { ($item | Out-String -Width 4096).TrimEnd() }
    })
    return ($parts -join "`n")
}

function Invoke-AmiscanProbe([string]$Name, [int]$Seconds, [string]$Code) {
    $status = 'ok'; $output = ''; $errors = ''
    $clock = [System.Diagnostics.Stopwatch]::StartNew()
    $shell = $null
    try {
        $source = [System.Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($Code))
        $shell = [PowerShell]::Create()
        [void]$shell.AddScript("`$ErrorActionPreference = 'Stop'`n`$ProgressPreference = 'SilentlyContinue'`n" + $source)
        $handle = $shell.BeginInvoke()
        if ($handle.AsyncWaitHandle.WaitOne($Seconds * 1000)) {
            $output = ConvertTo-AmiscanText $shell.EndInvoke($handle)
            if ($shell.Streams.Error.Count -gt 0) {
                $errors = (@($shell.Streams.Error | ForEach-Object { $_.ToString() }) -join "`n")
            }
        } else {
            $status = 'timeout'
            $errors = "the probe did not finish within $Seconds s"
            # A stuck COM or WMI call can ignore Stop: ask, and move on without waiting.
            [void]$shell.BeginStop($null, $null)
            $shell = $null
        }
    } catch {
        $status = 'error'
        $inner = $_.Exception
        while ($inner.InnerException) { $inner = $inner.InnerException }
        $errors = [string]$inner.Message
    } finally {
        if ($shell -ne $null) { $shell.Dispose() }
    }
    $out = ConvertTo-AmiscanField $output $AmiscanOutputLimit
    $err = ConvertTo-AmiscanField $errors $AmiscanErrorLimit
    Write-AmiscanRecord 'PROBE' @($Name, $status, [string]$clock.ElapsedMilliseconds, $out[0], $out[1], $err[1])
}

$AmiscanIdentity = [System.Security.Principal.WindowsIdentity]::GetCurrent()
$AmiscanPrincipal = New-Object System.Security.Principal.WindowsPrincipal $AmiscanIdentity
Write-AmiscanEnv 'user' $AmiscanIdentity.Name
Write-AmiscanEnv 'elevated' ([string]$AmiscanPrincipal.IsInRole([System.Security.Principal.WindowsBuiltInRole]::Administrator))
Write-AmiscanEnv 'hostname' $env:COMPUTERNAME
Write-AmiscanEnv 'powershell' ([string]$PSVersionTable.PSVersion)
Write-AmiscanEnv 'now' ([string][DateTimeOffset]::UtcNow.ToUnixTimeSeconds())
"""

# Abandoned runspaces of timed-out probes would keep powershell.exe alive; exiting the process
# ends them once every record is out.
_EPILOGUE = r"""
Write-AmiscanRecord 'END' @()
$AmiscanOut.Flush()
[Environment]::Exit(0)
"""


@dataclass(frozen=True)
class WindowsScript:
    """A generated PowerShell script and the marker that delimits its records."""

    text: str
    marker: str
    probe_names: tuple[str, ...]


def _probe_call(name: str, timeout_s: float, script: str) -> str:
    # Base64 keeps every probe's text out of PowerShell's quoting rules.
    code = base64.b64encode(script.encode("utf-8")).decode("ascii")
    return f"Invoke-AmiscanProbe -Name '{name}' -Seconds {max(1, round(timeout_s))} -Code '{code}'"


def build_script(facts: Iterable[Fact[Any]]) -> WindowsScript:
    """The one PowerShell script that runs the probe of every given fact."""
    marker = "AMISCAN-" + secrets.token_hex(8)
    calls: list[str] = []
    names: list[str] = []
    for fact in facts:
        if fact.probe is None:
            continue
        if not SAFE_NAME.match(fact.name):
            raise ValueError(f"fact name {fact.name!r} is not safe as a probe name")
        if fact.patterns:
            raise ValueError(
                f"{fact.name}: a Windows fact reads files through its probe, not patterns"
            )
        calls.append(_probe_call(fact.name, fact.probe.timeout_s, fact.probe.script))
        names.append(fact.name)
    prelude = (
        _PRELUDE.replace("@MARKER@", marker)
        .replace("@OUTPUT_LIMIT@", str(OUTPUT_LIMIT))
        .replace("@ERROR_LIMIT@", str(ERROR_LIMIT))
    )
    text = "\n".join([prelude.strip(), *calls, _EPILOGUE.strip()]) + "\n"
    return WindowsScript(text=text, marker=marker, probe_names=tuple(names))


def parse_output(stdout: bytes, marker: str) -> Collected:
    """Turn the script's stdout into probe outputs and session facts.

    Lines that do not start with the marker are ignored (PowerShell's own noise, a banner). The
    record stream is read as the Linux one is (`scanner.records`): only records before END count
    (later ones are counted in `ignored_after_end`); a second END or a repeated ENV record marks
    the stream `forged`; a probe with two records errors, whichever came first; a malformed record
    spoils only its own probe (`probe_errors`) or session fact. The parser never raises.
    """
    collected = Collected()
    stream = read_records(stdout, marker, strip="\r ")
    collected.complete, collected.forged = stream.complete, stream.forged
    collected.ignored_after_end = stream.ignored_after_end
    seen_session: set[str] = set()
    for fields in stream.records:
        kind, args = fields[0], fields[1:]
        try:
            _apply(collected, kind, args, seen_session)
        except RecordError as exc:
            # A probe record whose name is unreadable leaves that probe without output (its fact
            # errors as unreached); a damaged session record leaves that session fact unknown; a
            # record of no known kind was about nothing that can be named.
            if kind == "PROBE" and args and SAFE_NAME.match(args[0]):
                spoil_probe(collected, args[0], str(exc))
    elevated = collected.env.get("elevated", "").lower() == "true"
    for name, output in list(collected.outputs.items()):
        collected.outputs[name] = dataclasses.replace(output, privileged=elevated)
    return collected


def _apply(collected: Collected, kind: str, args: list[str], seen: set[str]) -> None:
    if kind == "ENV" and args:
        repeated = repeated_session_record(seen, f"ENV {args[0]}")
        if repeated:
            collected.forged = repeated
            return
    if kind == "ENV" and len(args) == 2:
        collected.env[args[0]] = decode_field(args[1]).decode("utf-8", errors="replace")
    elif kind == "PROBE" and len(args) == 6:
        name = args[0]
        if not SAFE_NAME.match(name):
            raise RecordError("the probe name is not a name")
        if claim_probe(collected, name):
            collected.outputs[name] = _probe_output(*args)
    elif kind in ("ENV", "PROBE"):
        raise RecordError(f"{len(args)} fields")
    else:
        raise RecordError(f"unknown record kind {kind[:20]!r}")


def _probe_output(
    name: str, status: str, elapsed_ms: str, size: str, out: str, err: str
) -> ProbeOutput:
    if status not in _STATUS_RC:
        raise RecordError(f"unknown probe status {status[:20]!r}")
    count_field(elapsed_ms, "elapsed time")
    stdout = decode_field(out)
    return ProbeOutput(
        name,
        _STATUS_RC[status],
        stdout,
        decode_field(err),
        truncated=count_field(size, "output size") > len(stdout),
        timed_out=status == "timeout",
    )
