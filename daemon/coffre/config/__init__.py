"""The configuration file: TOML in, a checked ``coffre.core.config_types.Config`` out (with
the files it names checked).

``loader`` is the API (``load``, ``parse``, ``check_environment``, ``resolve_path``);
``table``, ``converters``, ``targets`` and ``environment`` are its parts; ``reference``
writes the documents from the table of keys (``coffre.core.config_keys``).
"""
