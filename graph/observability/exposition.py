"""Reading Prometheus samples back: what `strata cache stats`, `strata bench`, the end-to-end
tests (from a server's /metrics text) and the dashboard (from the registry /metrics renders)
learn from the metrics. The text is parsed by prometheus_client's own parser, so anything
our exporter writes (escaped labels, multiprocess mode) reads back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

Series = tuple[str, frozenset[tuple[str, str]]]
"""A sample's name (with its `_total`, `_count`… suffix) and its labels."""


def _collect(families: Iterable[Metric]) -> dict[Series, float]:
    values: dict[Series, float] = {}
    for family in families:
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue  # a timestamp, not a figure: adding two of them means nothing
            key = (sample.name, frozenset(sample.labels.items()))
            # Summed, not overwritten: the same series twice (several workers' gauges that
            # differ only by `pid`, once that label is gone) must not lose a count.
            values[key] = values.get(key, 0.0) + float(sample.value)
    return values


def parse(text: str) -> dict[Series, float]:
    """Every sample of `text` as {(name, labels): value}."""
    return _collect(text_string_to_metric_families(text))


@dataclass(frozen=True, slots=True)
class Scrape:
    """One reading of the metrics: a /metrics page, or a registry read in process."""

    values: Mapping[Series, float]

    @classmethod
    def of(cls, text: str) -> Scrape:
        return cls(parse(text))

    @classmethod
    def of_registry(cls, registry: CollectorRegistry) -> Scrape:
        return cls(_collect(registry.collect()))

    def total(self, name: str, **labels: str) -> float | None:
        """The sum of every series of `name` whose labels include `labels`; None if absent."""
        wanted = set(labels.items())
        found = [v for (n, ls), v in self.values.items() if n == name and wanted <= ls]
        return sum(found) if found else None

    def sum(self, name: str, **labels: str) -> float:
        """Like `total`, with 0 for a series that does not exist (yet)."""
        return self.total(name, **labels) or 0.0

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """{value of `label`: sum of the series of `name` carrying it}, sorted by value."""
        out: dict[str, float] = {}
        for (n, labels), value in self.values.items():
            found = dict(labels).get(label)
            if n == name and found is not None:
                out[found] = out.get(found, 0.0) + value
        return dict(sorted(out.items()))

    def buckets(self, name: str) -> list[tuple[float, float]]:
        """Cumulative (upper bound, count) of histogram `name`, all other labels added."""
        return sorted(
            (float(le), count) for le, count in self.by_label(f"{name}_bucket", "le").items()
        )
