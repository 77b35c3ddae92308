"""Results analysis: loading.py (results files), summary.py and series.py (figures), tables.py, plots.py.

Import the modules themselves: this package imports nothing, so the CLI can read the table formats
without loading matplotlib.
"""
