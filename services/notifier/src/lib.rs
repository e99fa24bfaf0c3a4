//! The notifier stage: the three e-mails Sluice sends, as ready-to-send RFC 5322 messages.
//!
//! - the invalid rows report: how many rows were refused and why, with the rows attached as CSV;
//! - the success summary: row counts, a statistics table and where every output is;
//! - the failure alert: which stage failed, the error and its cause, and what to do next.
//!
//! Each message has a plain-text and an HTML part saying the same thing (both rendered from one
//! [`doc::Doc`]), is built with lettre, and carries the run id in its body and in an
//! `X-Sluice-Run-Id` header. Sending is not done here: the mailer port (SES, or an outbox folder
//! embedded) takes [`Email::raw`] as it is.

use std::path::Path;
use std::str::FromStr;

use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, Mailboxes, MultiPart, SinglePart};
use lettre::{Address, Message};
use sluice_proto::{Notice, NotifyInput, ObjectRef, StageError};
use sluice_spec::config::Dataset;

pub mod attachment;
pub mod batch;
pub mod doc;
pub mod format;
pub mod notices;

use notices::{Content, Run};

/// The sender when the dataset names none (`[dataset.notify] from`).
pub const DEFAULT_FROM: &str = "sluice@localhost";

/// One composed e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    /// RFC 5322 message, ready for SES SendEmail Raw or an .eml file
    pub raw: Vec<u8>,
}

/// What the notifier needs besides the notice itself.
pub struct ComposeContext<'a> {
    /// The invalid rows CSV on local disk (for Notice::InvalidRows), attached to the report.
    pub invalid_rows_csv: Option<&'a Path>,
    /// How users reach an object: "s3://bucket/key" in AWS mode, a file:// URI embedded.
    pub uri_of: &'a dyn Fn(&ObjectRef) -> String,
    pub now: chrono::DateTime<chrono::Utc>,
}

/// The kind of a notice, as the spec's `[dataset.notify]` keys name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    InvalidRows,
    Success,
    Failure,
}

impl Kind {
    pub fn of(notice: &Notice) -> Kind {
        match notice {
            Notice::InvalidRows { .. } => Kind::InvalidRows,
            Notice::Success { .. } => Kind::Success,
            Notice::Failure { .. } => Kind::Failure,
        }
    }

    /// The `[dataset.notify]` key listing this kind's recipients.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::InvalidRows => "invalid_rows",
            Kind::Success => "success",
            Kind::Failure => "failure",
        }
    }

    fn recipients(self, ds: &Dataset) -> &[String] {
        match self {
            Kind::InvalidRows => &ds.notify.invalid_rows,
            Kind::Success => &ds.notify.success,
            Kind::Failure => &ds.notify.failure,
        }
    }
}

/// Builds the e-mail for a notice, or None when the dataset names no recipients for that kind
/// (ds.notify.invalid_rows / success / failure). From: ds.notify.from, or "sluice@localhost" when absent.
pub fn compose(
    ds: &Dataset,
    input: &NotifyInput,
    ctx: &ComposeContext,
) -> Result<Option<Email>, StageError> {
    let kind = Kind::of(&input.notice);
    let recipients = kind.recipients(ds);
    if recipients.is_empty() {
        return Ok(None);
    }
    // Addresses first: a bad one is the spec's fault and should fail before any file is read.
    let from_text = ds.notify.from.as_deref().unwrap_or(DEFAULT_FROM);
    let from = parse_address(ds, "from", from_text)?;
    let mut to = Mailboxes::new();
    for r in recipients {
        to.push(Mailbox::new(None, parse_address(ds, kind.as_str(), r)?));
    }

    let run = Run {
        dataset: ds.name.as_str(),
        run_id: &input.run_id,
        source: &input.source,
        ctx,
    };
    let content = match &input.notice {
        Notice::InvalidRows {
            rows,
            top_reasons,
            invalid,
        } => notices::invalid_rows(&run, rows, top_reasons, invalid)?,
        Notice::Success {
            rows,
            filtered_rows,
            stats,
            outputs,
        } => notices::success(
            &run,
            rows,
            *filtered_rows,
            stats,
            &outputs.to_uris(ctx.uri_of),
        ),
        Notice::Failure {
            stage,
            error,
            cause,
        } => notices::failure(&run, stage.as_str(), error.as_str(), cause),
    };
    let subject = content.subject.clone();
    let message = build_message(&from, to, &run, content)?;
    Ok(Some(Email {
        from: from.to_string(),
        to: recipients.to_vec(),
        subject,
        raw: message.formatted(),
    }))
}

/// The alert sent when a dead-letter queue receives messages: which queue, how many, what to do.
pub fn compose_dead_letters(
    from: &str,
    to: &[String],
    queue: &str,
    redrive_as: &str,
    depth: u64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Email, StageError> {
    let subject = format!("[sluice] {depth} message(s) in dead-letter queue {queue}");
    let text = format!(
        "Dead-letter queue {queue} holds {depth} message(s): tasks or events that failed \
         max_receive_count deliveries (a worker that kept crashing, or a message nobody can read).\n\n\
         See what they are about:   sluice dlq list\n\
         Once the cause is fixed:   sluice dlq redrive {redrive_as}\n\n\
         This alert is sent once when the queue starts to fill, and again only after it was emptied.\n"
    );
    plain_email(from, to, subject, text, now, "dead-letter alert")
}

/// The alert sent when a `[[source]]` starts failing (once, not every tick), and the note when it
/// answers again.
pub fn compose_source_alert(
    from: &str,
    to: &[String],
    source: &str,
    url: &str,
    failing: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Email, StageError> {
    let (subject, text) = match failing {
        Some(cause) => (
            format!("[sluice] source {source} is failing"),
            format!(
                "Source {source} ({url}) could not be polled: {cause}\n\nSluice keeps polling it on its cadence; \
                 this alert is sent once, and a note follows when it answers again.\n\nTry it now: sluice poll {source}\n"
            ),
        ),
        None => (
            format!("[sluice] source {source} answers again"),
            format!("Source {source} ({url}) answered again; its data lands as usual.\n"),
        ),
    };
    plain_email(from, to, subject, text, now, "source alert")
}

/// A plain-text message from Sluice (the operational alerts).
fn plain_email(
    from: &str,
    to: &[String],
    subject: String,
    text: String,
    now: chrono::DateTime<chrono::Utc>,
    what: &str,
) -> Result<Email, StageError> {
    let address = |a: &str| {
        Address::from_str(a.trim()).map_err(|e| {
            StageError::invalid_input(format!("{a:?} is not a valid e-mail address ({e})"))
        })
    };
    let from_address = address(from)?;
    let mut mailboxes = Mailboxes::new();
    for r in to {
        mailboxes.push(Mailbox::new(None, address(r)?));
    }
    let message = Message::builder()
        .from(Mailbox::new(Some("Sluice".to_string()), from_address))
        .mailbox(lettre::message::header::To::from(mailboxes))
        .subject(subject.clone())
        .date(now.into())
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_string(),
        ))
        .body(text)
        .map_err(|e| StageError::internal(format!("the {what} does not build: {e}")))?;
    Ok(Email {
        from: from.to_string(),
        to: to.to_vec(),
        subject,
        raw: message.formatted(),
    })
}

fn parse_address(ds: &Dataset, key: &str, address: &str) -> Result<Address, StageError> {
    Address::from_str(address.trim()).map_err(|e| {
        StageError::invalid_input(format!(
            "dataset {:?}: the [dataset.notify] {key} address {address:?} is not a valid e-mail address \
             ({e}): fix it in the dataset spec and upload the file again",
            ds.name
        ))
    })
}

fn build_message(
    from: &Address,
    to: Mailboxes,
    run: &Run<'_>,
    content: Content,
) -> Result<Message, StageError> {
    let kind = content.kind.as_str();
    let header = |name: &'static str, value: String| {
        HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
    };
    let builder = Message::builder()
        .from(Mailbox::new(Some("Sluice".to_string()), from.clone()))
        .mailbox(lettre::message::header::To::from(to))
        .subject(content.subject.clone())
        .date(run.ctx.now.into())
        // Stable per run and kind: a notice sent twice (a retried task) reads as one message.
        .message_id(Some(format!(
            "<{}.{}@{}>",
            run.run_id,
            kind.replace('_', "-"),
            from.domain()
        )))
        .raw_header(header("X-Sluice-Run-Id", run.run_id.to_string()))
        .raw_header(header("X-Sluice-Dataset", run.dataset.to_string()))
        .raw_header(header("X-Sluice-Notice", kind.to_string()))
        // RFC 3834: tells vacation responders and ticket systems not to answer a machine.
        .raw_header(header("Auto-Submitted", "auto-generated".to_string()));
    let body = MultiPart::alternative_plain_html(
        content.doc.to_text(),
        content.doc.to_html(&content.subject),
    );
    let message = match content.attachment {
        None => builder.multipart(body),
        Some(csv) => {
            let content_type = ContentType::parse("text/csv; charset=utf-8").map_err(|e| {
                StageError::internal(format!("the text/csv content type does not parse: {e}"))
            })?;
            // Base64 keeps the bytes exactly: no line-ending rewrites, no line-length limits, and
            // rows from the original file may hold any bytes at all.
            let encoded = Body::new_with_encoding(csv.bytes, ContentTransferEncoding::Base64)
                .map_err(|_| {
                    StageError::internal(
                        "lettre refused to base64-encode the invalid rows attachment",
                    )
                })?;
            let part: SinglePart = Attachment::new(csv.file_name).body(encoded, content_type);
            builder.multipart(MultiPart::mixed().multipart(body).singlepart(part))
        }
    };
    message.map_err(|e| StageError::internal(format!("cannot build the {kind} e-mail: {e}")))
}
