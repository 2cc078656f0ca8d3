"""The version of aifsdk, in a module of its own: code that needs it does not import the package face."""

__version__ = "0.2.0"
