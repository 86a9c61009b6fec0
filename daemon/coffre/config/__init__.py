"""The configuration file: TOML in, a checked ``coffre.core.config_types.Config`` out (with
the files it names checked).
"""
