"""PowerShell source, as the tests can check it without PowerShell: a grammar and a 5.1 lint.

No PowerShell runs on the test machine, so the scripts amiscan sends to Windows are checked here
in two ways:

- `syntax_errors`: the ERROR and MISSING nodes of the tree-sitter PowerShell grammar.
- `ps51_findings`: syntax, cmdlets, parameters and variables that PowerShell 6 or 7 has and
  Windows PowerShell 5.1 (the PowerShell Windows Server ships) has not. Sources: the PowerShell
  docs' "What's New in PowerShell Core 6.0 / 6.1 / 6.2" and "What's New in PowerShell 7.0"
  pages, "Release history of modules and cmdlets" (cmdlets up to 7.5) and
  about_Functions_Advanced_Methods (the `clean` block, 7.3); `$PSStyle` came with 7.2.

The lint reads the syntax tree where the grammar has a node for the construct (commands and their
parameters, variables, pipeline chains, ranges, type names, expandable strings) and otherwise
matches tokens in the source with strings and comments blanked out (`??`, `?.`, `?[`, the
ternary `?`, which the grammar does not know and turns into ERROR nodes; the `clean` block; the
trailing `&`; numeric suffixes).

The grammar is stricter than PowerShell in a few places, where `syntax_errors` reports what
PowerShell accepts: an empty script block (`{ }`); several switch clauses on one line without `;`
between them; a statement that starts with a command named like a keyword (`ForEach-Object {...}`
at the start of a statement; after a `|` it is fine); a `?` in a variable name (`$a?`); a script
that is only `param(...)`, only a comment, or empty. Write around these rather than weaken the
check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import tree_sitter_powershell
from tree_sitter import Language, Node, Parser, Tree

_LANGUAGE = Language(tree_sitter_powershell.language())


def parse(source: str) -> Tree:
    """The tree-sitter syntax tree of a PowerShell script."""
    return Parser(_LANGUAGE).parse(source.encode("utf-8"))


@dataclass(frozen=True)
class Finding:
    """One problem in a script: which rule, why, and where (1-based line and column)."""

    rule: str
    message: str
    line: int
    column: int


class _Source:
    """A script with its tree, and byte offsets turned into lines and columns."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.data = text.encode("utf-8")
        self.tree = parse(text)

    def finding(self, rule: str, message: str, offset: int) -> Finding:
        line_start = self.data.rfind(b"\n", 0, offset) + 1
        column = len(self.data[line_start:offset].decode("utf-8", errors="replace")) + 1
        return Finding(rule, message, self.data.count(b"\n", 0, offset) + 1, column)

    def text_of(self, node: Node) -> str:
        return self.data[node.start_byte : node.end_byte].decode("utf-8", errors="replace")

    def nodes(self) -> Iterator[Node]:
        """Every node, parents before children, in source order."""
        stack = [self.tree.root_node]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))


# --- syntax errors ------------------------------------------------------------------------------


def syntax_errors(source: str) -> list[Finding]:
    """The grammar's ERROR and MISSING nodes (an ERROR's inner errors are not repeated)."""
    src = _Source(source)
    found: list[Finding] = []
    stack = [src.tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error:
            found.append(
                src.finding("syntax", "ERROR: the grammar cannot parse this", node.start_byte)
            )
            continue
        if node.is_missing:
            found.append(
                src.finding("syntax", f"MISSING {node.type}: expected here", node.start_byte)
            )
            continue
        inner = [c for c in node.children if c.has_error]
        if inner:
            stack.extend(reversed(inner))
        elif node.has_error:
            # The error is in a token the bindings do not list as a child; the s-expression has it.
            missing = re.search(r'\(MISSING "?([^")]*)', str(node))
            what = f"MISSING {missing.group(1)}: expected here" if missing else "ERROR"
            found.append(src.finding("syntax", f"{what} (in {node.type})", node.start_byte))
    return sorted(found, key=lambda f: (f.line, f.column))


# --- what Windows PowerShell 5.1 lacks ----------------------------------------------------------

# The rules `ps51_findings` reports under.
RULES = frozenset(
    {
        "null-coalescing",  # ?? (7.0)
        "null-coalescing-assignment",  # ??= (7.0)
        "null-conditional",  # ${a}?.b and ${a}?[0] (7.0)
        "ternary",  # a ? b : c (7.0)
        "pipeline-chain",  # && and || (7.0)
        "clean-block",  # clean { } in a function (7.3)
        "ps7-cmdlet",  # PS7_CMDLETS
        "ps7-parameter",  # PS7_PARAMETERS, and -Encoding utf8NoBOM
        "ps7-variable",  # PS7_VARIABLES
        "char-range",  # 'a'..'z' (6.0)
        "escape",  # `u{...} and `e in expandable strings (6.0)
        "background",  # a pipeline ending in & (6.0)
        "numeric-suffix",  # 1u, 1s, 1y, 10n ... (6.2)
        "semver",  # [semver] (6.0)
    }
)

# Cmdlets that Windows PowerShell 5.1 does not ship, and the version that brought them.
PS7_CMDLETS: dict[str, str] = {
    "ConvertFrom-CliXml": "7.5",
    "ConvertTo-CliXml": "7.5",
    "ConvertFrom-Markdown": "6.1",
    "Disable-ExperimentalFeature": "6.2",
    "Enable-ExperimentalFeature": "6.2",
    "Get-Error": "7.0",
    "Get-ExperimentalFeature": "6.2",
    "Get-MarkdownOption": "6.1",
    "Get-SecureRandom": "7.4",
    "Get-Uptime": "6.0",
    "Join-String": "6.2",
    "Remove-Alias": "6.0",
    "Remove-Service": "6.0",
    "Set-MarkdownOption": "6.1",
    "Show-Markdown": "6.1",
    "Start-ThreadJob": "6.x (the ThreadJob module, not shipped with 5.1)",
    "Switch-Process": "7.5",
    "Test-Json": "6.1",
}

_WEB_CMDLETS = {
    "SkipCertificateCheck": "6.0",
    "SkipHeaderValidation": "6.0",
    "Authentication": "6.0",
    "Token": "6.0",
    "AllowUnencryptedAuthentication": "6.0",
    "SslProtocol": "6.0",
    "NoProxy": "6.0",
    "CustomMethod": "6.0",
    "Form": "6.1",
}

# Parameters that 5.1's version of a cmdlet does not have (ConvertTo-Json -Depth is 5.1's own).
PS7_PARAMETERS: dict[str, dict[str, str]] = {
    "ConvertFrom-Json": {"AsHashtable": "6.0", "Depth": "6.2"},
    "ConvertTo-Json": {"EscapeHandling": "6.2"},
    "ConvertFrom-SecureString": {"AsPlainText": "7.0"},
    "ForEach-Object": {"Parallel": "7.0", "ThrottleLimit": "7.0", "AsJob": "7.0"},
    "Invoke-WebRequest": {**_WEB_CMDLETS, "Resume": "6.1"},
    "Invoke-RestMethod": {
        **_WEB_CMDLETS,
        "FollowRelLink": "6.0",
        "MaximumFollowRelLink": "6.0",
        "ResponseHeadersVariable": "6.0",
    },
    "Split-Path": {"Extension": "6.0", "LeafBase": "6.0"},
    "Sort-Object": {"Top": "6.0", "Bottom": "6.0", "Stable": "6.2"},
    "Out-String": {"NoNewline": "6.0"},
    "Get-ChildItem": {"FollowSymlink": "6.0"},
    "Get-Module": {"SkipEditionCheck": "6.1"},
    "Import-Module": {"UseWindowsPowerShell": "7.0"},
    "Enter-PSSession": {"HostName": "6.0"},
    "New-PSSession": {"HostName": "6.0"},
    "Invoke-Command": {"HostName": "6.0"},
    "Start-Transcript": {"UseMinimalHeader": "6.2"},
    "Get-Culture": {"Name": "6.2", "NoUserOverrides": "6.2", "ListAvailable": "6.2"},
    "Format-Hex": {"Offset": "6.2", "Count": "6.2"},
    "Get-Credential": {"Title": "6.0"},
    "Get-Verb": {"Group": "6.0"},
    "ConvertTo-Html": {"Meta": "6.0", "Charset": "6.0", "Transitional": "6.0"},
}

# PowerShell accepts any unambiguous prefix of a parameter name: a prefix that 5.1's own
# parameters (or the common parameters) share is not flagged. Only the 5.1 parameters that share
# a prefix with a 6/7-only one are listed.
_PS51_PARAMETERS: dict[str, tuple[str, ...]] = {
    "ForEach-Object": ("Process", "ArgumentList"),
    "Invoke-WebRequest": (
        "Credential",
        "Certificate",
        "CertificateThumbprint",
        "ContentType",
        "MaximumRedirection",
        "Method",
        "TimeoutSec",
        "TransferEncoding",
        "SessionVariable",
    ),
    "Split-Path": ("Leaf", "LiteralPath"),
    "Get-ChildItem": ("Filter", "Force", "File"),
    "Invoke-Command": ("HideComputerName",),
    "ConvertTo-Html": ("CssUri", "Title"),
}
_PS51_PARAMETERS["Invoke-RestMethod"] = _PS51_PARAMETERS["Invoke-WebRequest"]
_COMMON_PARAMETERS = (
    "Verbose", "Debug", "ErrorAction", "WarningAction", "InformationAction", "ErrorVariable",
    "WarningVariable", "InformationVariable", "OutVariable", "OutBuffer", "PipelineVariable",
    "WhatIf", "Confirm",
)  # fmt: skip

# 5.1's aliases of the cmdlets above.
_ALIASES = {
    "%": "ForEach-Object",
    "foreach": "ForEach-Object",
    "iwr": "Invoke-WebRequest",
    "curl": "Invoke-WebRequest",
    "wget": "Invoke-WebRequest",
    "irm": "Invoke-RestMethod",
    "sort": "Sort-Object",
    "gci": "Get-ChildItem",
    "ls": "Get-ChildItem",
    "dir": "Get-ChildItem",
    "gmo": "Get-Module",
    "ipmo": "Import-Module",
    "etsn": "Enter-PSSession",
    "nsn": "New-PSSession",
    "icm": "Invoke-Command",
}

# Automatic variables that 5.1 does not set.
PS7_VARIABLES = {"IsWindows": "6.0", "IsLinux": "6.0", "IsMacOS": "6.0", "PSStyle": "7.2"}

# -Encoding values 5.1 refuses (its UTF8 writes a BOM).
_PS7_ENCODINGS = {"utf8nobom": "6.0"}

_CANONICAL = {name.lower(): name for name in [*PS7_CMDLETS, *PS7_PARAMETERS]}
_CANONICAL.update(_ALIASES)

_STRINGS_AND_COMMENTS = frozenset(
    {
        "comment",
        "string_literal",
        "expandable_string_literal",
        "expandable_here_string_literal",
        "verbatim_string_characters",
        "verbatim_here_string_characters",
    }
)
# Everything in which a `?` is not an operator: names, bare-word arguments, parameters.
_NOT_OPERATORS = _STRINGS_AND_COMMENTS | {
    "command_name",
    "path_command_name_token",
    "generic_token",
    "command_parameter",
}
# `$name` (where `?` and `:` belong to the name, as `$?`, `$a?`, `$env:X`) and `${name}`.
_VARIABLE = re.compile(rb"\$(?:\{[^}]*\}|[\w?:]+)")

_QUESTION_OPERATORS = {
    b"??=": ("null-coalescing-assignment", "the null-coalescing assignment operator ??="),
    b"??": ("null-coalescing", "the null-coalescing operator ??"),
    b"?.": ("null-conditional", "the null-conditional member access ?."),
    b"?[": ("null-conditional", "the null-conditional index ?[]"),
    b"?": ("ternary", "the ternary operator ? :"),
}
_QUESTION = re.compile(rb"\?\?=|\?\?|\?\.|\?\[|\?")
_CHAIN = re.compile(rb"&&|\|\|")
_CLEAN = re.compile(rb"(?<![\w$.:-])clean\s*\{", re.IGNORECASE)
_DEFINES = re.compile(rb"(?:function|filter|workflow)\s+$", re.IGNORECASE)
_BACKGROUND = re.compile(rb"(?<![&\w`>])&[ \t]*(?=\r?$|;|\}|\))", re.MULTILINE)
_NUMERIC_SUFFIX = re.compile(
    rb"(?<![\w$.\[-])\d+(?:\.\d+)?(?:uy|us|ul|y|s|u|n)(?:kb|mb|gb|tb|pb)?(?![\w.])", re.IGNORECASE
)
_ESCAPE = re.compile(r"(?<!`)(?:``)*`(u\{[0-9A-Fa-f]{1,6}\}|e)")
_CHAR = re.compile(r"'[^'0-9]'|\"[^\"0-9`$]\"")


def ps51_findings(source: str) -> list[Finding]:
    """Everything in the script that Windows PowerShell 5.1 cannot parse or does not have."""
    src = _Source(source)
    found: dict[tuple[str, int], Finding] = {}

    def add(rule: str, message: str, offset: int) -> None:
        found.setdefault((rule, offset), src.finding(rule, message, offset))

    for node in src.nodes():
        for rule, message, offset in _tree_findings(src, node):
            add(rule, message, offset)
    for rule, message, offset in _token_findings(src):
        add(rule, message, offset)
    return sorted(found.values(), key=lambda f: (f.line, f.column, f.rule))


def _tree_findings(src: _Source, node: Node) -> Iterator[tuple[str, str, int]]:
    kind = node.type
    if kind == "command":
        yield from _command_findings(src, node)
    elif kind == "pipeline_chain_tail":
        operator = src.text_of(node).strip()
        yield (
            "pipeline-chain",
            f"the pipeline chain operator {operator} is PowerShell 7.0",
            node.start_byte,
        )
    elif kind == "variable":
        name = re.sub(r"^\$\{?|\}$", "", src.text_of(node))
        name = re.sub(r"^(?:global|script|local|private):", "", name, flags=re.IGNORECASE)
        for variable, version in PS7_VARIABLES.items():
            if name.lower() == variable.lower():
                yield (
                    "ps7-variable",
                    f"${variable} is set from PowerShell {version}",
                    node.start_byte,
                )
    elif kind == "range_expression" and any(c.type == ".." for c in node.children):
        for operand in node.named_children:
            if _CHAR.fullmatch(src.text_of(operand).strip()):
                yield "char-range", "a character range 'a'..'z' is PowerShell 6.0", node.start_byte
                break
    elif kind == "type_name" and src.text_of(node).lower() in {
        "semver",
        "system.management.automation.semanticversion",
    }:
        yield "semver", "SemanticVersion ([semver]) is PowerShell 6.0", node.start_byte
    elif kind in {"expandable_string_literal", "expandable_here_string_literal"}:
        text = src.text_of(node)
        for match in _ESCAPE.finditer(text):
            escape = match.group(1)
            offset = node.start_byte + len(text[: match.start(1) - 1].encode("utf-8"))
            if escape == "e":
                yield "escape", "the escape `e (ESC) is PowerShell 6.0; 5.1 reads an e", offset
            else:
                yield "escape", f"the escape `{escape} is PowerShell 6.0", offset


def _command_findings(src: _Source, node: Node) -> Iterator[tuple[str, str, int]]:
    name_node = node.child_by_field_name("command_name")
    if name_node is None:
        return
    written = src.text_of(name_node).strip("'\"").rsplit("\\", 1)[-1]
    name = _CANONICAL.get(written.lower(), written)
    if name in PS7_CMDLETS:
        yield "ps7-cmdlet", f"{name} is PowerShell {PS7_CMDLETS[name]}", name_node.start_byte
    elements = node.child_by_field_name("command_elements")
    if elements is None:
        return
    arguments = [c for c in elements.named_children if c.type != "command_argument_sep"]
    for index, element in enumerate(arguments):
        if element.type != "command_parameter":
            continue
        given = src.text_of(element).lstrip("-").split(":", 1)[0]
        parameter = _ps7_parameter(name, given)
        if parameter is not None:
            version = PS7_PARAMETERS[name][parameter]
            yield (
                "ps7-parameter",
                f"{name} -{parameter} is PowerShell {version}",
                element.start_byte,
            )
        value = arguments[index + 1] if index + 1 < len(arguments) else None
        if len(given) >= 3 and "encoding".startswith(given.lower()) and value is not None:
            encoding = src.text_of(value).strip("'\"").lower()
            if encoding in _PS7_ENCODINGS:
                yield (
                    "ps7-parameter",
                    f"-Encoding {encoding} is PowerShell {_PS7_ENCODINGS[encoding]}",
                    value.start_byte,
                )


def _ps7_parameter(command: str, given: str) -> str | None:
    """The 6/7-only parameter of the command that `given` names (a prefix is enough)."""
    new = PS7_PARAMETERS.get(command)
    written = given.lower()
    if not new or not written:
        return None
    old = (*_PS51_PARAMETERS.get(command, ()), *_COMMON_PARAMETERS)
    if any(p.lower().startswith(written) for p in old):
        return None
    return next((p for p in new if p.lower().startswith(written)), None)


def _token_findings(src: _Source) -> Iterator[tuple[str, str, int]]:
    code = _blank(src, _STRINGS_AND_COMMENTS)
    operators = _VARIABLE.sub(lambda m: b" " * len(m.group()), _blank(src, _NOT_OPERATORS))
    for match in _QUESTION.finditer(operators):
        rule, what = _QUESTION_OPERATORS[match.group()]
        yield rule, f"{what} is PowerShell 7.0", match.start()
    for match in _CHAIN.finditer(operators):
        operator = match.group().decode()
        yield (
            "pipeline-chain",
            f"the pipeline chain operator {operator} is PowerShell 7.0",
            match.start(),
        )
    for match in _CLEAN.finditer(code):
        if not _DEFINES.search(code, 0, match.start()):
            yield "clean-block", "the clean { } block is PowerShell 7.3", match.start()
    for match in _BACKGROUND.finditer(code):
        yield "background", "a trailing & (run as a job) is PowerShell 6.0", match.start()
    for match in _NUMERIC_SUFFIX.finditer(code):
        yield (
            "numeric-suffix",
            f"the number {match.group().decode()} is PowerShell 6.2",
            match.start(),
        )


def _blank(src: _Source, hidden: frozenset[str]) -> bytes:
    """The source with the given nodes blanked (newlines kept), except `$( )` inside strings."""
    out = bytearray(src.data)
    stack: list[tuple[Node, bool]] = [(src.tree.root_node, False)]
    while stack:
        node, inside = stack.pop()
        if node.type in hidden:
            inside = True
            for i in range(node.start_byte, node.end_byte):
                if out[i] not in b"\r\n":
                    out[i] = 0x20
        elif inside and node.type == "sub_expression":
            inside = False
            out[node.start_byte : node.end_byte] = src.data[node.start_byte : node.end_byte]
        stack.extend((child, inside) for child in reversed(node.children))
    return bytes(out)


# --- reporting ----------------------------------------------------------------------------------


def report(source: str, findings: Sequence[Finding], width: int = 100) -> str:
    """Each finding with its line and column, the lines around it and a caret under it."""
    lines = source.split("\n")
    parts: list[str] = []
    for item in findings:
        parts.append(f"line {item.line}, column {item.column}: {item.message} [{item.rule}]")
        # A long line (a base64 probe call) is shown as a window around the column.
        long = len(lines[item.line - 1]) > width if item.line <= len(lines) else False
        first = max(0, item.column - 1 - width // 2) if long else 0
        for number in range(max(1, item.line - 1), min(len(lines), item.line + 1) + 1):
            text = lines[number - 1][first : first + width]
            parts.append(f"  {number:>5} | {text}")
            if number == item.line:
                parts.append("        | " + " " * (item.column - 1 - first) + "^")
    return "\n".join(parts)
