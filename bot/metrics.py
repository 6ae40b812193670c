"""Prometheus metrics, on a registry of the bot's own (several bots can live in one test process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.commands = Counter(
            "easel_commands_total", "Application commands run, by name.", ["command"], registry=self.registry
        )
        self.errors = Counter(
            "easel_command_errors_total",
            "Errors answered by the command tree, by kind.",
            ["command", "kind"],
            registry=self.registry,
        )
        self.first_response = Histogram(
            "easel_first_response_seconds",
            "Time from receiving an interaction to its first response.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0),
            registry=self.registry,
        )
        self.jobs = Counter(
            "easel_jobs_total",
            "Jobs that reached a final state, by provider, feature and state.",
            ["provider", "feature", "state"],
            registry=self.registry,
        )
        self.jobs_in_flight = Gauge("easel_jobs_in_flight", "Jobs not yet finished.", registry=self.registry)
        self.provider_requests = Counter(
            "easel_provider_requests_total",
            "HTTP requests to providers, by provider and outcome.",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self.data_dir_bytes = Gauge(
            "easel_data_dir_bytes",
            "Disk used by the data folder (database, inputs, results), measured every few minutes.",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
