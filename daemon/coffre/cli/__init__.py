"""The ``coffre`` command: one module per command group; ``main`` dispatches and imports
the heavy ones lazily.
"""
