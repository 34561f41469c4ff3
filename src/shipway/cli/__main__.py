"""`python -m shipway.cli` runs the command line."""

from shipway.cli import main

main()
