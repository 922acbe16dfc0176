"""The package version, in a module of its own so that nothing needs to import the package to
read it (the transport's User-Agent, hatch's build)."""

__version__ = "0.1.0"
