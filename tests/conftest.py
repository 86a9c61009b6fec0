"""Settings shared by the whole suite."""

from __future__ import annotations

from hypothesis import settings

# Hypothesis fails an example slower than 200 ms by default: a timing assertion, which a
# busy CI machine trips without any bug. Speed is measured in benchmarks/, not here.
settings.register_profile("coffre", deadline=None, print_blob=True)
settings.load_profile("coffre")
