"""tests/powershell.py itself: the grammar check finds broken PowerShell, the lint finds 6/7-only.

Each rule of the lint has an example it must flag, and look-alikes that Windows PowerShell 5.1
accepts must stay unflagged, so that a lint that finds nothing cannot pass for a clean script.
"""

from __future__ import annotations

import pytest

from tests.powershell import (
    PS7_CMDLETS,
    PS7_PARAMETERS,
    PS7_VARIABLES,
    RULES,
    ps51_findings,
    report,
    syntax_errors,
)

# Valid Windows PowerShell 5.1, in the style of amiscan's probes.
PS51_SCRIPT = r"""
function Get-Thing([string]$Path, [int]$Limit = 10) {
    if (-not (Test-Path -LiteralPath $Path -PathType Leaf)) { return $null }
    $reader = New-Object System.IO.StreamReader $Path
    try {
        $buffer = New-Object char[] 4096
        $count = $reader.ReadBlock($buffer, 0, $buffer.Length)
        return (New-Object string ($buffer, 0, $count))
    } catch [System.IO.IOException] {
        throw
    } finally { $reader.Close() }
}
$text = @'
literal ?? text && more
'@
$rows = @(Get-CimInstance -ClassName Win32_Service | Where-Object { $_.State -eq 'Running' } | ForEach-Object {
    [ordered]@{ name = [string]$_.Name; ok = $? }
})
switch -Regex ($text) {
    '^l' { 'starts with l' }
    default { 'other' }
}
foreach ($row in $rows) { '{0}: {1}' -f $row.name, "$($row.ok)`n" }
ConvertTo-Json -Compress -Depth 4 -InputObject ([ordered]@{ rows = $rows; text = $text })
"""


def test_windows_powershell_51_parses_without_error_nodes() -> None:
    assert syntax_errors(PS51_SCRIPT) == []


def test_windows_powershell_51_has_no_lint_findings() -> None:
    assert ps51_findings(PS51_SCRIPT) == []


def test_an_unclosed_brace_is_a_syntax_error() -> None:
    assert syntax_errors("function f {\n    $x = 1\n")


def test_a_stray_closing_parenthesis_is_a_syntax_error_on_its_line() -> None:
    errors = syntax_errors("$a = 1\n$b = (2 + 3))\n$c = 4\n")
    assert errors and errors[0].line == 2


def test_an_unclosed_string_is_a_syntax_error() -> None:
    assert syntax_errors("$a = 'never closed\n$b = 1\n")


def test_a_pipeline_continued_by_a_pipe_at_the_start_of_the_next_line_is_a_syntax_error() -> None:
    # PowerShell 7 continues the pipeline; 5.1 refuses an empty pipe element. The grammar
    # reports the command it expected before the `|` as MISSING, in a token it does not list.
    errors = syntax_errors("Get-Process\n    | Where-Object CPU\n")
    assert [e.message.split(":")[0] for e in errors] == ["MISSING command_name_token1"]


def test_the_report_names_line_and_column_and_shows_the_lines_around_with_a_caret() -> None:
    text = "$a = 1\n$b = $a ?? 2\n$c = 3\n"
    (finding,) = ps51_findings(text)
    assert (finding.line, finding.column) == (2, 9)
    assert report(text, [finding]).splitlines() == [
        "line 2, column 9: the null-coalescing operator ?? is PowerShell 7.0 [null-coalescing]",
        "      1 | $a = 1",
        "      2 | $b = $a ?? 2",
        "        |         ^",
        "      3 | $c = 3",
    ]


def test_the_report_shows_a_window_of_a_long_line_around_the_column() -> None:
    text = "$x = '" + "A" * 5000 + "' ; $y = $x ?? 1\n"
    rendered = report(text, ps51_findings(text))
    source_line, caret = rendered.splitlines()[1:3]
    assert len(source_line) < 120
    assert source_line[caret.index("^")] == "?"


# Each example is flagged under its rule on line 3 (after two lines of 5.1).
PS7_EXAMPLES = [
    ("$name = $env:USERNAME ?? 'unknown'", "null-coalescing"),
    ("$cache ??= @{}", "null-coalescing-assignment"),
    ("${service}?.Status", "null-conditional"),
    ("${list}?[0]", "null-conditional"),
    ("$label = $count -gt 0 ? 'found' : 'empty'", "ternary"),
    ("Test-Path $p && Write-Output 'there'", "pipeline-chain"),
    ("Test-Path $p || Write-Output 'missing'", "pipeline-chain"),
    ("1..3 | ForEach-Object -Parallel { $_ }", "ps7-parameter"),
    ("1..3 | % -Parallel { $_ } -ThrottleLimit 2", "ps7-parameter"),
    ("$json | ConvertFrom-Json -AsHashtable", "ps7-parameter"),
    ("$json | ConvertFrom-Json -Depth 10", "ps7-parameter"),
    ("$json | ConvertFrom-Json -Dep 10", "ps7-parameter"),
    ("Get-Error -Newest 1", "ps7-cmdlet"),
    ("$PSStyle.Reset", "ps7-variable"),
    ("$names | Join-String -Separator ','", "ps7-cmdlet"),
    ("Test-Json -Json $text", "ps7-cmdlet"),
    ("Invoke-WebRequest -Uri $uri -SkipCertificateCheck", "ps7-parameter"),
    ("Invoke-RestMethod -Uri $uri -SkipHeaderValidation", "ps7-parameter"),
    ("iwr $uri -SkipCert", "ps7-parameter"),
    ("irm $uri -SkipHeaderValidation:$true", "ps7-parameter"),
    ("ConvertFrom-SecureString $secure -AsPlainText", "ps7-parameter"),
    ("Remove-Alias -Name ll", "ps7-cmdlet"),
    ("(Get-Uptime).TotalSeconds", "ps7-cmdlet"),
    ("& 'Get-Uptime'", "ps7-cmdlet"),
    ("Microsoft.PowerShell.Utility\\Join-String", "ps7-cmdlet"),
    ('"up $(Get-Uptime)"', "ps7-cmdlet"),
    ("function Close-It { process { $_ } clean { 'bye' } }", "clean-block"),
    ("if ($IsWindows) { 'windows' }", "ps7-variable"),
    ("$IsLinux", "ps7-variable"),
    ("$global:IsMacOS", "ps7-variable"),
    ('"running on Windows: $IsWindows"', "ps7-variable"),
    ("'a'..'z'", "char-range"),
    ('"`u{2713} done"', "escape"),
    ('"`e[1mbold"', "escape"),
    ("Start-Sleep 10 &", "background"),
    ("$small = 1u", "numeric-suffix"),
    ("$big = 10n", "numeric-suffix"),
    ("[semver]'1.2.3'", "semver"),
    ("'x' | Out-File x.txt -Encoding utf8NoBOM", "ps7-parameter"),
    ("Split-Path $path -LeafBase", "ps7-parameter"),
    ("Get-ChildItem C:\\ -Recurse -FollowSymlink", "ps7-parameter"),
    ("Get-Process | Sort-Object CPU -Top 5", "ps7-parameter"),
    ("Import-Module NetSecurity -UseWindowsPowerShell", "ps7-parameter"),
]


@pytest.mark.parametrize(("source", "rule"), PS7_EXAMPLES)
def test_a_powershell_7_construct_is_flagged_under_its_rule_on_its_line(
    source: str, rule: str
) -> None:
    text = "$a = 1\n# a comment\n" + source + "\n$z = 2\n"
    assert (rule, 3) in [(f.rule, f.line) for f in ps51_findings(text)]


def test_every_lint_rule_has_an_example_it_flags() -> None:
    assert {rule for _, rule in PS7_EXAMPLES} == RULES


@pytest.mark.parametrize("cmdlet", sorted(PS7_CMDLETS))
def test_every_listed_cmdlet_is_flagged(cmdlet: str) -> None:
    assert [f.rule for f in ps51_findings(f"$x | {cmdlet.lower()} -Verbose")] == ["ps7-cmdlet"]


@pytest.mark.parametrize(
    ("cmdlet", "parameter"),
    [(c, p) for c, parameters in sorted(PS7_PARAMETERS.items()) for p in parameters],
)
def test_every_listed_parameter_is_flagged(cmdlet: str, parameter: str) -> None:
    findings = ps51_findings(f"$x | {cmdlet} -{parameter.upper()} 1")
    assert [f.rule for f in findings] == ["ps7-parameter"]


@pytest.mark.parametrize("variable", sorted(PS7_VARIABLES))
def test_every_listed_variable_is_flagged(variable: str) -> None:
    assert [f.rule for f in ps51_findings(f"$v = ${{{variable}}}")] == ["ps7-variable"]


# Windows PowerShell 5.1 that looks like something the lint flags.
PS51_LOOKALIKES = [
    "'a ?? b && c || d'",
    '$quoted = "ok? ${name}?.x && clean { }"',
    "# $x ?? 1 && clean { }\n$a = 1",
    "<# a ?. b || c\nclean { } #>\n$a = 1",
    "$h = @'\n$a ?? b && `e\n'@",
    '$h = @"\n$(1) ok? `n\n"@',
    "Get-Process | ? { $_.CPU }",
    "Get-Process | ?{$_.CPU}",
    "if ($?) { 'ok' }",
    "$a? = 1; $a?",
    "Get-ChildItem a??.txt",
    "$env:IsWindows",
    '"`$IsWindows"',
    "$IsWindowsServer = $true",
    "cmd /c dir 2>&1",
    "& $command -Flag",
    ". $script",
    "1..3",
    "'1'..'3'",
    "Get-Process | ForEach-Object -Process { $_ } -End { 'done' }",
    "Get-Process | % -Begin { 1 } -Process { 2 }",
    "Get-Process | ForEach-Object -pv item { $item }",
    "Invoke-WebRequest -UseBasicParsing -TimeoutSec 5 -Uri $uri -Method Get",
    "Invoke-RestMethod -Uri $uri -MaximumRedirection 0 -Credential $c",
    "Write-Host 'Done?'",
    "$x = 10kb + 1l + 0x1F + 1.5d",
    '"`n`t`$ `u"',
    "'`e`u{41}'",
    "$clean = { 1 }",
    "function clean { 1 }",
    "cleanup { 1 }",
    "Invoke-Clean { 1 }",
    "$json | ConvertFrom-Json",
    "$json | ConvertFrom-Json -Debug",
    "$obj | ConvertTo-Json -Depth 5 -Compress",
    "Split-Path -Leaf $path",
    "Get-ChildItem -Force -Filter *.xml",
    "Get-Content x -Encoding UTF8",
    "$a = 'x' -replace 'a?', 'b'",
    "[ValidatePattern('^a?$')][string]$v = 'a'",
    "[version]'1.2.3'",
]


@pytest.mark.parametrize("source", PS51_LOOKALIKES)
def test_windows_powershell_51_lookalikes_are_not_flagged(source: str) -> None:
    assert ps51_findings(source) == []
