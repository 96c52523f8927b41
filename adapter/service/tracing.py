"""OpenTelemetry traces when configured (``service.otlp_endpoint``): a span per request and per
determination. Without configuration the API's no-op tracer is used and costs nothing."""

from __future__ import annotations

from opentelemetry import trace

from adapter.errors import ConfigError

tracer = trace.get_tracer("imr-adapter")


def configure(endpoint: str | None) -> None:
    """Send spans to an OTLP/HTTP collector (needs ``pip install 'imr-fhir-adapter[otel]'``)."""
    if not endpoint:
        return
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ConfigError(
            "service.otlp_endpoint needs the OpenTelemetry SDK: pip install 'imr-fhir-adapter[otel]'"
        ) from exc
    provider = TracerProvider(resource=Resource.create({"service.name": "imr-adapter"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
