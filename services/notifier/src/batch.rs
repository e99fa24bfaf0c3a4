//! The batch's e-mails (`[batch.notify]`): the success summary (members, rows loaded, analytics row
//! counts, exports) and the failure alert (the batch, the step, the member, the cause).

use std::str::FromStr;

use lettre::Address;
use lettre::message::{Mailbox, Mailboxes};
use sluice_proto::{BatchNotifyInput, ObjectRef, StageError};
use sluice_spec::config::Batch;

use crate::doc::{Column, Doc, one_line};
use crate::format::{count, rows};
use crate::notices::{Content, Run, advice};
use crate::{ComposeContext, DEFAULT_FROM, Email, Kind, build_message};

/// The batch run's e-mail, or None when `[batch.notify]` names nobody for how it ended.
pub fn compose_batch(
    batch: &Batch,
    input: &BatchNotifyInput,
    ctx: &ComposeContext,
) -> Result<Option<Email>, StageError> {
    let failure = input.failure();
    let (kind, recipients) = match failure {
        Some(_) => (Kind::Failure, &batch.notify.failure),
        None => (Kind::Success, &batch.notify.success),
    };
    if recipients.is_empty() {
        return Ok(None);
    }
    let address = |key: &str, a: &str| {
        Address::from_str(a.trim()).map_err(|e| {
            StageError::invalid_input(format!(
                "batch {:?}: the [batch.notify] {key} address {a:?} is not a valid e-mail address ({e})",
                batch.name
            ))
        })
    };
    let from_text = batch.notify.from.as_deref().unwrap_or(DEFAULT_FROM);
    let from = address("from", from_text)?;
    let mut to = Mailboxes::new();
    for r in recipients {
        to.push(Mailbox::new(None, address(kind.as_str(), r)?));
    }
    let name = one_line(&batch.name);
    let mut doc = Doc::default();
    let subject = match &failure {
        Some(f) => {
            let step = one_line(&f.step);
            let member = f
                .dataset
                .as_ref()
                .map(|d| format!(" ({})", d.as_str()))
                .unwrap_or_default();
            let after = if f.step == "export" {
                "The analytics tables were replaced by this run; its exports are incomplete."
            } else {
                "Nothing after that step ran: the analytics tables and exports are those of the last good run."
            };
            doc.para(format!(
                "Batch {name} (period {}) FAILED at the {step} step{member}. {after}",
                input.period
            ));
            let mut fields = vec![
                ("Batch".into(), name.clone()),
                ("Step".into(), step.clone()),
            ];
            if let Some(d) = &f.dataset {
                fields.push(("Member".into(), d.as_str().to_string()));
                if let Some(m) = input.members.iter().find(|m| &m.dataset == d) {
                    fields.push(("File".into(), (ctx.uri_of)(&m.source)));
                }
            }
            fields.push(("Error".into(), f.error.clone()));
            fields.push(("Cause".into(), f.cause.clone()));
            doc.fields(fields);
            doc.heading("What to do next");
            doc.para(advice(&f.error));
            format!(
                "[sluice] batch {name} {}: FAILED at {step}{member}",
                input.period
            )
        }
        None => {
            let loaded: u64 = input.members.iter().filter_map(|m| m.loaded_rows).sum();
            doc.para(format!(
                "Batch {name} (period {}, as of {}) succeeded: {} loaded from {} files, {} analytics tables written.",
                input.period,
                input.as_of,
                rows(loaded),
                input.members.len(),
                input.analytics.len()
            ));
            format!(
                "[sluice] batch {name} {}: {} loaded, {} analytics",
                input.period,
                rows(loaded),
                input.analytics.len()
            )
        }
    };
    doc.heading("Members");
    doc.table(
        vec![
            Column::text("Dataset"),
            Column::text("File"),
            Column::number("Rows"),
            Column::number("Invalid"),
            Column::number("Loaded"),
            Column::text("Table"),
        ],
        input
            .members
            .iter()
            .map(|m| {
                vec![
                    m.dataset.as_str().to_string(),
                    (ctx.uri_of)(&m.source),
                    m.rows.map(|r| count(r.total)).unwrap_or_default(),
                    m.rows.map(|r| count(r.invalid)).unwrap_or_default(),
                    m.loaded_rows.map(count).unwrap_or_else(|| "-".into()),
                    m.table.clone().unwrap_or_else(|| {
                        m.failed
                            .as_ref()
                            .map(|f| format!("failed at {}", f.step))
                            .unwrap_or_default()
                    }),
                ]
            })
            .collect(),
    );
    if !input.analytics.is_empty() {
        doc.heading("Analytics");
        doc.table(
            vec![
                Column::text("Query"),
                Column::text("Table"),
                Column::number("Rows"),
                Column::text("Export"),
            ],
            input
                .analytics
                .iter()
                .map(|a| {
                    let export = input
                        .exports
                        .iter()
                        .find(|e| e.name == a.name)
                        .map(|e| (ctx.uri_of)(&e.object))
                        .unwrap_or_default();
                    vec![a.name.clone(), a.table.clone(), count(a.rows), export]
                })
                .collect(),
        );
    }
    doc.fields(vec![
        ("Batch".into(), name.clone()),
        ("Period".into(), input.period.clone()),
        ("Run id".into(), input.run_id.to_string()),
    ]);
    doc.footer(format!(
        "Sent by Sluice at {} for batch run {}.",
        ctx.now.format("%Y-%m-%d %H:%M:%S UTC"),
        input.run_id
    ));
    let content = Content {
        kind,
        subject: subject.clone(),
        doc,
        attachment: None,
    };
    let source = ObjectRef::new("", "");
    let run = Run {
        dataset: &batch.name,
        run_id: &input.run_id,
        source: &source,
        ctx,
    };
    let message = build_message(&from, to, &run, content)?;
    Ok(Some(Email {
        from: from.to_string(),
        to: recipients.to_vec(),
        subject,
        raw: message.formatted(),
    }))
}
