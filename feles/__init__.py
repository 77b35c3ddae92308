"""FELES: a FEderated LEarning Simulator with heterogeneous, unreliable simulated devices."""

__version__ = "0.1.0"
