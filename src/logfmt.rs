//! The text log format: each line the event's sentence, then only those of its fields the
//! sentence does not already say. Most events name their member, service and reason in the
//! sentence *and* carry them as fields for the JSON format (`--log-format json`), where
//! machines read them; printed twice, a text line was hard to read.
//!
//! By hand rather than `tracing-subscriber`'s default field formatter, which prints every
//! field after the message whatever the message says.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// Writes the message, then `name=value` for each field whose value the message lacks.
#[derive(Debug, Default)]
pub struct SentenceFirst;

#[derive(Default)]
struct Collect {
    message: String,
    fields: Vec<(&'static str, String)>,
}

impl Visit for Collect {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields.push((field.name(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields.push((field.name(), format!("{value:?}")));
        }
    }
}

impl<'writer> FormatFields<'writer> for SentenceFirst {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut collect = Collect::default();
        fields.record(&mut collect);
        let mut line = collect.message;
        for (name, value) in collect.fields {
            if value.is_empty() || line.contains(&value) {
                continue;
            }
            if !line.is_empty() {
                line.push(' ');
            }
            if value.contains(' ') {
                let _ = write!(line, "{name}={value:?}");
            } else {
                let _ = write!(line, "{name}={value}");
            }
        }
        writer.write_str(&line)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn a_text_line_says_each_fact_once() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(SentenceFirst)
            .with_writer(buffer.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let member = "127.0.0.11";
            tracing::info!(
                service = "www.svc.example.test.",
                member,
                from = "up",
                to = "down",
                reason = "connection refused",
                generation = 3,
                "member {member} of www.svc.example.test. is down: connection refused"
            );
        });
        let line = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf-8");
        // Each fact once: the fields the sentence says are left out, the rest follow it.
        assert_eq!(line.matches("127.0.0.11").count(), 1, "{line}");
        assert_eq!(line.matches("connection refused").count(), 1, "{line}");
        assert!(line.contains("generation=3"), "{line}");
        assert!(!line.contains("service="), "{line}");
        assert!(line.contains("from=up"), "{line}");
    }
}
