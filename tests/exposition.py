"""Reading a Prometheus exposition (what coffre's exporter serves) as series to assert on."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

#: One exposition: (series name, labels) -> value.
Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Series:
    """Every sample of the exposition ``text``, by name and labels."""
    found: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(series: Series, name: str, **labels: str) -> float:
    """The value of the series ``name`` with exactly ``labels``; AssertionError if none."""
    key = (name, frozenset(labels.items()))
    if key not in series:
        raise AssertionError(f"no series {name}{labels}")
    return series[key]
