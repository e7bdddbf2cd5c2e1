"""`python -m scanner` runs the amiscan command line."""

from scanner.cli import main

if __name__ == "__main__":
    main(prog_name="amiscan")
