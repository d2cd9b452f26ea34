"""Reading Prometheus text exposition back: what `strata cache stats`, `strata bench` and
the end-to-end tests learn from a server's /metrics. The parsing is prometheus_client's
own, so anything our exporter writes (escaped labels, multiprocess mode) reads back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

Series = tuple[str, frozenset[tuple[str, str]]]
"""A sample's name (with its `_total`, `_count`… suffix) and its labels."""


def parse(text: str) -> dict[Series, float]:
    """Every sample of `text` as {(name, labels): value}."""
    values: dict[Series, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            # Summed, not overwritten: the same series twice must not lose a count.
            values[key] = values.get(key, 0.0) + float(sample.value)
    return values


@dataclass(frozen=True, slots=True)
class Scrape:
    """One reading of a /metrics page."""

    values: Mapping[Series, float]

    @classmethod
    def of(cls, text: str) -> Scrape:
        return cls(parse(text))

    def total(self, name: str, **labels: str) -> float | None:
        """The sum of every series of `name` whose labels include `labels`; None if absent."""
        wanted = set(labels.items())
        found = [v for (n, ls), v in self.values.items() if n == name and wanted <= ls]
        return sum(found) if found else None

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """{value of `label`: sum of the series of `name` carrying it}."""
        out: dict[str, float] = {}
        for (n, labels), value in self.values.items():
            found = dict(labels).get(label)
            if n == name and found is not None:
                out[found] = out.get(found, 0.0) + value
        return out
