"""The daemon: the runtime that drives the machine, and its wiring to the
real adapters."""
