"""Hydra launcher plugin: ``--multirun hydra/launcher=aifsdk`` submits a sweep through aifsdk.

Hydra finds it through the ``hydra_plugins`` namespace package (shipped in the aifsdk wheel).
"""
