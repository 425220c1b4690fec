//! Trace context across processes: the W3C `traceparent` of a `tracing` span, carried in a
//! record's headers (and, by the services, in gRPC metadata and HTTP headers), and read back as
//! the remote parent of the span that handles the record on the other side.
//!
//! The span's trace and span ids are OpenTelemetry's, kept by `tracing-opentelemetry`'s layer.
//! Without that layer (OTLP export off, the default) the services' spans are disabled: no
//! context is made, no header is written and none is parsed.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::record::Header;

/// The header (and metadata key) that carries the trace context, as the W3C names it.
pub const TRACEPARENT: &str = "traceparent";

/// The span's context as a `traceparent` value, `None` when the span is disabled or has no
/// trace (no OpenTelemetry layer is installed).
pub fn traceparent(span: &Span) -> Option<String> {
    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| format(&span_context))
}

/// The span's context as a record header, for [`crate::NewRecord::headers`].
pub fn header(span: &Span) -> Option<Header> {
    traceparent(span).map(|value| Header::new(TRACEPARENT, value))
}

/// Makes the context in `traceparent` (a header's or metadata's value) the parent of `span`.
/// Call it before the span is entered or recorded; a missing or malformed value leaves the
/// span a root of its own trace.
pub fn set_parent(span: &Span, traceparent: Option<&[u8]>) {
    if span.is_disabled() {
        return;
    }
    let Some(parent) = traceparent.and_then(parse) else {
        return;
    };
    let context = opentelemetry::Context::new().with_remote_span_context(parent);
    if let Err(error) = span.set_parent(context) {
        tracing::debug!(%error, "the remote trace parent was not set");
    }
}

/// `00-<trace id>-<span id>-<flags>`, lowercase hex.
fn format(context: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    )
}

/// A `traceparent` value by the W3C's rules: version `00` is exactly four fields; a later
/// version may add fields after the fourth; `ff`, all-zero ids and anything but lowercase hex
/// are refused.
fn parse(value: &[u8]) -> Option<SpanContext> {
    let value = std::str::from_utf8(value).ok()?;
    let hex = |field: &str, len: usize| {
        field.len() == len
            && field
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let mut fields = value.splitn(5, '-');
    let (version, trace, span, flags) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    let rest = fields.next();
    if !hex(version, 2) || version == "ff" || (version == "00" && rest.is_some()) {
        return None;
    }
    if !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
        return None;
    }
    let trace = TraceId::from_hex(trace).ok()?;
    let span = SpanId::from_hex(span).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let context = SpanContext::new(
        trace,
        span,
        TraceFlags::new(flags & TraceFlags::SAMPLED.to_u8()),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TracerProvider;
    use tracing_subscriber::layer::SubscriberExt;

    const VALUE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_traceparent_reads_back_as_it_was_written() {
        let context = parse(VALUE.as_bytes()).expect("a valid traceparent");
        assert_eq!(
            context.trace_id(),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
        assert!(context.is_sampled() && context.is_remote());
        assert_eq!(format(&context), VALUE);
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(parse(bad.as_bytes()).is_none(), "{bad:?} was accepted");
        }
        // A later version may carry more fields; the first four are read.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more";
        let context = parse(later.as_bytes()).expect("a later version is read");
        assert!(!context.is_sampled());
    }

    #[test]
    fn without_the_opentelemetry_layer_nothing_is_propagated() {
        let subscriber = tracing_subscriber::registry();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("edge.frame");
            assert!(traceparent(&span).is_none());
            assert!(header(&Span::none()).is_none());
        });
    }

    #[test]
    fn a_span_continues_the_trace_of_the_header_it_was_given() {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let sender = tracing::info_span!("ingest.write");
            let header = header(&sender).expect("a traced span has a header");
            assert_eq!(header.name, TRACEPARENT);
            let sent = parse(&header.value).unwrap();

            let receiver = tracing::info_span!("projector.fold");
            set_parent(&receiver, Some(&header.value));
            let received = parse(traceparent(&receiver).unwrap().as_bytes()).unwrap();
            assert_eq!(received.trace_id(), sent.trace_id());
            assert_ne!(received.span_id(), sent.span_id());

            // A malformed header starts a trace of its own.
            let orphan = tracing::info_span!("projector.fold");
            set_parent(&orphan, Some(b"00-garbage"));
            let own = parse(traceparent(&orphan).unwrap().as_bytes()).unwrap();
            assert_ne!(own.trace_id(), sent.trace_id());
        });
    }
}
