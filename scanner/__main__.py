"""`python -m scanner`: the `amiscan` command."""

from scanner.cli import main

main(prog_name="amiscan")
