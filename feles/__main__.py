"""`python -m feles` is the `feles` command."""

from feles.cli import app

app(prog_name="feles")
