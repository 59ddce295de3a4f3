"""modelctl: the model lifecycle CLI of this monorepo."""

__version__ = "0.1.0"
