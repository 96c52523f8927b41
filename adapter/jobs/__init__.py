"""The jobs the commands run, each one path whoever starts it (the CLI, the benchmarks, the demo): letters
pushed to a FHIR server, cases pulled back, a server's conformance checked, a letter or FHIR request
determined, and the demo end to end. ``adapter.exchange`` is only the HTTP client they talk through."""
