"""smm-scheduler: queue social media posts and publish them on a steady cadence."""

__version__ = "0.1.0"
