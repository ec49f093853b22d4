"""Gatewise: an AI gateway that secures, governs, routes, meters and observes AI traffic."""

__version__ = "0.1.0"
