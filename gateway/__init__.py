"""estate-gateway: the edge gateway of a residential estate's duty room."""

__version__ = "0.1.0"
