"""Results analysis: loading.py (results files), summary.py and series.py (figures), tables.py, plots.py.

Device records (feles/records.py): device_records.py (loading), fairness.py, device_stats.py,
selection_matrix.py, time_energy.py and work.py compute; comparison.py makes the report's table,
device_plots.py draws and report.py writes the HTML report.

Import the modules themselves: this package imports nothing, so the CLI can read the table formats
without loading matplotlib.
"""
