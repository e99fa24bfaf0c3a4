//! The composed e-mails, parsed back with an independent MIME parser (mailparse), as a mail client
//! would read them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use chrono::{TimeZone, Utc};
use mailparse::{DispositionType, MailHeaderMap, ParsedMail, parse_mail};
use sluice_notifier::attachment::ATTACHMENT_CAP;
use sluice_notifier::{ComposeContext, Email, compose};
use sluice_proto::{
    ColumnStats, ErrorName, Notice, NotifyInput, ObjectRef, OutputRefs, ReasonCount, RowCounts,
    RunId,
};
use sluice_spec::config::{Config, Dataset};

const RUN: &str = "0123456789abcdef0123456789abcdef";

fn dataset(notify: &str) -> Dataset {
    let toml = format!(
        "[[dataset]]\nname = \"stocks\"\n[[dataset.columns]]\nname = \"date\"\ntype = \"date\"\n\
         [dataset.notify]\n{notify}\n"
    );
    Config::parse(Path::new("sluice.toml"), &toml)
        .unwrap_or_else(|e| panic!("{e}"))
        .datasets
        .remove(0)
}

fn everyone() -> Dataset {
    dataset(
        "from = \"pipeline@example.com\"\ninvalid_rows = [\"owner@example.com\", \"qa@example.com\"]\n\
         success = [\"team@example.com\"]\nfailure = [\"oncall@example.com\"]",
    )
}

fn input(key: &str, notice: Notice) -> NotifyInput {
    NotifyInput {
        run_id: RunId::parse(RUN).unwrap(),
        dataset: "stocks".into(),
        source: ObjectRef::new("sluice-landing", key),
        notice,
    }
}

fn s3(o: &ObjectRef) -> String {
    o.s3_uri()
}

fn ctx(invalid_rows_csv: Option<&Path>) -> ComposeContext<'_> {
    ComposeContext {
        invalid_rows_csv,
        uri_of: &s3,
        now: Utc.with_ymd_and_hms(2024, 3, 5, 14, 30, 0).unwrap(),
    }
}

fn invalid_notice(invalid: u64) -> Notice {
    Notice::InvalidRows {
        rows: RowCounts {
            total: invalid + 988,
            valid: 988,
            invalid,
        },
        top_reasons: vec![
            ReasonCount {
                reason: "volume: below the minimum 0".into(),
                rows: 8,
            },
            ReasonCount {
                reason: "date: \"2024-02-30\" is not a date".into(),
                rows: 4,
            },
        ],
        invalid: ObjectRef::new("sluice-work", format!("runs/{RUN}/invalid.csv")),
    }
}

fn compose_ok(ds: &Dataset, input: &NotifyInput, ctx: &ComposeContext) -> Email {
    compose(ds, input, ctx)
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("recipients are configured")
}

/// The leaf parts of a message, depth first.
fn leaves<'a>(mail: &'a ParsedMail<'a>) -> Vec<&'a ParsedMail<'a>> {
    if mail.subparts.is_empty() {
        vec![mail]
    } else {
        mail.subparts.iter().flat_map(leaves).collect()
    }
}

fn part<'a>(mail: &'a ParsedMail<'a>, mimetype: &str) -> &'a ParsedMail<'a> {
    leaves(mail)
        .into_iter()
        .find(|p| p.ctype.mimetype == mimetype)
        .unwrap_or_else(|| panic!("no {mimetype} part"))
}

fn header(mail: &ParsedMail<'_>, name: &str) -> String {
    mail.headers
        .get_first_value(name)
        .unwrap_or_else(|| panic!("no {name} header"))
}

/// Checks what every e-mail has, and returns (text, html).
fn check_common(email: &Email, to: &[&str], kind: &str) -> (String, String) {
    let mail = parse_mail(&email.raw).unwrap();
    assert_eq!(header(&mail, "From"), "Sluice <pipeline@example.com>");
    assert_eq!(email.from, "pipeline@example.com");
    let to_header = header(&mail, "To");
    for addr in to {
        assert!(to_header.contains(addr), "{to_header}");
    }
    assert_eq!(email.to, to);
    assert_eq!(header(&mail, "Subject"), email.subject);
    assert_eq!(header(&mail, "X-Sluice-Run-Id"), RUN);
    assert_eq!(header(&mail, "X-Sluice-Notice"), kind);
    assert_eq!(header(&mail, "Date"), "Tue, 05 Mar 2024 14:30:00 +0000");
    assert!(header(&mail, "Message-ID").starts_with(&format!("<{RUN}.")));
    assert_eq!(header(&mail, "MIME-Version"), "1.0");
    assert!(
        mail.ctype.mimetype.starts_with("multipart/"),
        "{}",
        mail.ctype.mimetype
    );

    // Bodies travel with CRLF line ends; compare with LF.
    let text = part(&mail, "text/plain")
        .get_body()
        .unwrap()
        .replace("\r\n", "\n");
    let html = part(&mail, "text/html")
        .get_body()
        .unwrap()
        .replace("\r\n", "\n");
    // Both parts sit in one multipart/alternative.
    let alternative = if mail.ctype.mimetype == "multipart/alternative" {
        &mail
    } else {
        &mail.subparts[0]
    };
    assert_eq!(alternative.ctype.mimetype, "multipart/alternative");
    assert_eq!(alternative.subparts.len(), 2);
    for body in [&text, &html] {
        assert!(body.contains(RUN), "the run id is in every body");
    }
    (text, html)
}

#[test]
fn invalid_rows_report_attaches_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "line,reasons,date,volume\n3,volume: below the minimum 0,2024-01-03,-5\n9,\"date: \"\"2024-02-30\"\" is not a date\",2024-02-30,10\n";
    let path = dir.path().join("invalid.csv");
    std::fs::write(&path, csv).unwrap();

    let email = compose_ok(
        &everyone(),
        &input("incoming/stocks/prices.csv", invalid_notice(12)),
        &ctx(Some(&path)),
    );
    assert_eq!(
        email.subject,
        "[sluice] stocks: 12 invalid rows in prices.csv"
    );
    let (text, html) = check_common(
        &email,
        &["owner@example.com", "qa@example.com"],
        "invalid_rows",
    );

    assert!(
        text.contains("12 of the 1,000 rows in prices.csv (dataset stocks) are invalid (1.2%)"),
        "{text}"
    );
    assert!(
        text.contains("\n     8  volume: below the minimum 0\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Attached: all 2 invalid rows (invalid-rows-{RUN}.csv)"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("s3://sluice-work/runs/{RUN}/invalid.csv")),
        "{text}"
    );
    assert!(html.contains("<td style=\"padding:3px 12px 3px 0;vertical-align:top;text-align:right;border-bottom:1px solid #eee\">8</td>"), "{html}");
    assert!(
        html.contains("date: &quot;2024-02-30&quot; is not a date"),
        "{html}"
    );

    let mail = parse_mail(&email.raw).unwrap();
    assert_eq!(mail.ctype.mimetype, "multipart/mixed");
    let attachment = part(&mail, "text/csv");
    let disposition = attachment.get_content_disposition();
    assert_eq!(disposition.disposition, DispositionType::Attachment);
    assert_eq!(
        disposition.params.get("filename").map(String::as_str),
        Some(format!("invalid-rows-{RUN}.csv").as_str())
    );
    assert_eq!(header(attachment, "Content-Transfer-Encoding"), "base64");
    assert_eq!(attachment.get_body_raw().unwrap(), csv.as_bytes());
}

#[test]
fn a_large_invalid_rows_file_is_cut_at_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("invalid.csv");
    let mut csv = String::from("line,reasons,date,note\n");
    let rows = 120_000u64;
    for i in 0..rows {
        let _ = writeln!(
            csv,
            "{},\"note: too long, by far\",2024-01-01,\"row {i} with some padding text\"",
            i + 2
        );
    }
    assert!(csv.len() as u64 > ATTACHMENT_CAP);
    std::fs::write(&path, &csv).unwrap();

    let email = compose_ok(
        &everyone(),
        &input("incoming/stocks/big.csv", invalid_notice(rows)),
        &ctx(Some(&path)),
    );
    let mail = parse_mail(&email.raw).unwrap();
    let attached = part(&mail, "text/csv").get_body_raw().unwrap();
    assert!(
        attached.len() as u64 <= ATTACHMENT_CAP,
        "{} bytes",
        attached.len()
    );
    assert!(
        attached.len() as u64 > ATTACHMENT_CAP - 200,
        "as many whole rows as fit"
    );
    assert!(
        csv.as_bytes().starts_with(&attached),
        "a prefix of the file, byte for byte"
    );
    assert!(attached.ends_with(b"\n"), "whole lines only");
    let attached_rows = attached.iter().filter(|&&b| b == b'\n').count() - 1;

    let text = part(&mail, "text/plain").get_body().unwrap();
    let expected = format!(
        "Attached: the first {} of 120,000 invalid rows",
        sluice_notifier::format::count(attached_rows as u64)
    );
    assert!(text.contains(&expected), "{expected}\n{text}");
    assert!(
        text.contains(&format!(
            "the full file is at s3://sluice-work/runs/{RUN}/invalid.csv"
        )),
        "{text}"
    );
    // Well under SES's 10 MB message limit even after base64.
    assert!(
        email.raw.len() < 8 * 1024 * 1024,
        "{} bytes",
        email.raw.len()
    );
}

#[test]
fn without_a_local_file_the_report_points_to_it() {
    let email = compose_ok(
        &everyone(),
        &input("incoming/stocks/prices.csv", invalid_notice(1)),
        &ctx(None),
    );
    assert_eq!(
        email.subject,
        "[sluice] stocks: 1 invalid row in prices.csv"
    );
    let (text, _) = check_common(
        &email,
        &["owner@example.com", "qa@example.com"],
        "invalid_rows",
    );
    assert!(
        text.contains("1 of the 989 rows in prices.csv (dataset stocks) is invalid"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "The invalid rows are at s3://sluice-work/runs/{RUN}/invalid.csv"
        )),
        "{text}"
    );
    let mail = parse_mail(&email.raw).unwrap();
    assert_eq!(mail.ctype.mimetype, "multipart/alternative");
    assert!(leaves(&mail).iter().all(|p| p.ctype.mimetype != "text/csv"));
}

fn success_notice(partitions: usize) -> Notice {
    let mut stats = BTreeMap::new();
    stats.insert(
        "high".to_string(),
        ColumnStats {
            count: 1200,
            mean: Some(152.341789),
            min: Some(120.5),
            max: Some(180.25),
            sum: 182810.1468,
            stddev: Some(12.3456),
        },
    );
    stats.insert(
        "volume".to_string(),
        ColumnStats {
            count: 1,
            mean: Some(1500000.0),
            min: Some(1500000.0),
            max: Some(1500000.0),
            sum: 1500000.0,
            stddev: None,
        },
    );
    Notice::Success {
        rows: RowCounts {
            total: 1234,
            valid: 1222,
            invalid: 12,
        },
        filtered_rows: 250,
        stats,
        outputs: OutputRefs {
            valid: ObjectRef::new("sluice-work", format!("runs/{RUN}/valid.csv")),
            invalid: ObjectRef::new("sluice-work", format!("runs/{RUN}/invalid.csv")),
            filtered: ObjectRef::new("sluice-work", format!("runs/{RUN}/filtered.csv")),
            stats: ObjectRef::new("sluice-work", format!("runs/{RUN}/stats.json")),
            plots: vec![ObjectRef::new(
                "sluice-work",
                format!("runs/{RUN}/plots/1-low-and-high.png"),
            )],
            partitions: (0..partitions)
                .map(|i| {
                    ObjectRef::new(
                        "sluice-curated",
                        format!("stocks/year=2024/month={:02}/part-{i}.csv", i % 12 + 1),
                    )
                })
                .collect(),
            partition_count: partitions as u64,
            partition_manifest: Some(ObjectRef::new(
                "sluice-work",
                format!("runs/{RUN}/partitions.json"),
            )),
            warehouse_table: None,
        },
    }
}

#[test]
fn success_summary_lists_rows_stats_and_outputs() {
    let email = compose_ok(
        &everyone(),
        &input("incoming/stocks/prices.csv", success_notice(25)),
        &ctx(None),
    );
    assert_eq!(
        email.subject,
        "[sluice] stocks: prices.csv SUCCEEDED (1,234 rows)"
    );
    let (text, html) = check_common(&email, &["team@example.com"], "success");

    assert!(
        text.contains("  total                          1,234"),
        "{text}"
    );
    assert!(
        text.contains("  filtered (kept by the window)    250  20.3%"),
        "{text}"
    );
    assert!(
        text.contains("  column  count       mean        min        max         sum   stddev\n"),
        "{text}"
    );
    assert!(
        text.contains("  high    1,200    152.342     120.50     180.25  182,810.15  12.3456\n"),
        "{text}"
    );
    assert!(
        text.contains("  volume      1  1,500,000  1,500,000  1,500,000   1,500,000        -\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Filtered rows:  s3://sluice-work/runs/{RUN}/filtered.csv"
        )),
        "{text}"
    );
    assert!(text.contains("1-low-and-high.png"));
    assert!(text.contains("Partitions (25):"), "{text}");
    assert!(
        text.contains("part-19.csv") && !text.contains("part-20.csv"),
        "at most 20 partitions listed"
    );
    assert!(text.contains("  - ... and 5 more"), "{text}");
    assert!(html.contains("<li>... and 5 more</li>"), "{html}");
    assert!(html.contains(">152.342</td>"), "{html}");
    let mail = parse_mail(&email.raw).unwrap();
    assert_eq!(mail.ctype.mimetype, "multipart/alternative");
}

#[test]
fn failure_alert_says_what_failed_and_what_to_do() {
    let notice = Notice::Failure {
        stage: sluice_proto::Stage::Validator,
        error: ErrorName::InvalidInput.as_str().into(),
        cause: "prices.csv: line 1: the header has no column \"date\"; add it".into(),
    };
    let email = compose_ok(
        &everyone(),
        &input("incoming/stocks/prices.csv", notice),
        &ctx(None),
    );
    assert_eq!(
        email.subject,
        "[sluice] stocks: prices.csv FAILED at validator"
    );
    let (text, html) = check_common(&email, &["oncall@example.com"], "failure");
    assert!(text.contains("Error:     Sluice.InvalidInput"), "{text}");
    assert!(
        text.contains("Cause:     prices.csv: line 1: the header has no column \"date\"; add it"),
        "{text}"
    );
    // The run's trace (its trace id is the run id's: a 32-hex run id is its own).
    assert!(
        text.contains("Trace id:  0123456789abcdef0123456789abcdef"),
        "{text}"
    );
    assert!(text.contains("fix the file and upload it again"), "{text}");
    assert!(html.contains("fix the file and upload it again"));
    assert!(
        html.contains("the header has no column &quot;date&quot;; add it"),
        "{html}"
    );

    let transient = Notice::Failure {
        stage: sluice_proto::Stage::Partitioner,
        error: "Sluice.Transient".into(),
        cause: "throttled".into(),
    };
    let email = compose_ok(
        &everyone(),
        &input("incoming/stocks/prices.csv", transient),
        &ctx(None),
    );
    let (text, _) = check_common(&email, &["oncall@example.com"], "failure");
    assert!(text.contains("outlasted every retry"), "{text}");
}

#[test]
fn no_recipients_means_no_email() {
    let only_failures = dataset("failure = [\"oncall@example.com\"]");
    let i = input("incoming/stocks/prices.csv", success_notice(0));
    assert_eq!(compose(&only_failures, &i, &ctx(None)).unwrap(), None);
    let i = input("incoming/stocks/prices.csv", invalid_notice(3));
    // Not even the attachment is read: the path does not exist.
    assert_eq!(
        compose(
            &only_failures,
            &i,
            &ctx(Some(Path::new("/nonexistent.csv")))
        )
        .unwrap(),
        None
    );
    let none = dataset("");
    let f = Notice::Failure {
        stage: sluice_proto::Stage::Validator,
        error: "Sluice.Internal".into(),
        cause: "bug".into(),
    };
    assert_eq!(
        compose(&none, &input("k.csv", f.clone()), &ctx(None)).unwrap(),
        None
    );
    // With recipients but no sender, the default sender is used.
    let email = compose_ok(&only_failures, &input("k.csv", f), &ctx(None));
    assert_eq!(email.from, "sluice@localhost");
    assert_eq!(
        header(&parse_mail(&email.raw).unwrap(), "From"),
        "Sluice <sluice@localhost>"
    );
}

#[test]
fn data_is_html_escaped() {
    let notice = Notice::InvalidRows {
        rows: RowCounts {
            total: 2,
            valid: 1,
            invalid: 1,
        },
        top_reasons: vec![ReasonCount {
            reason: "name: <script>alert('x')</script> & more".into(),
            rows: 1,
        }],
        invalid: ObjectRef::new("w", "runs/x/invalid.csv"),
    };
    let email = compose_ok(
        &everyone(),
        &input("incoming/<b>evil</b>&.csv", notice),
        &ctx(None),
    );
    let mail = parse_mail(&email.raw).unwrap();
    let html = part(&mail, "text/html").get_body().unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("<b>evil"),
        "{html}"
    );
    assert!(
        html.contains("name: &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more"),
        "{html}"
    );
    assert!(html.contains("&lt;b&gt;evil&lt;/b&gt;&amp;.csv"), "{html}");
    // The plain text part keeps the data as it is.
    let text = part(&mail, "text/plain").get_body().unwrap();
    assert!(text.contains("name: <script>alert('x')</script> & more"));

    let failure = Notice::Failure {
        stage: sluice_proto::Stage::Plotter,
        error: "Sluice.Internal".into(),
        cause: "<img src=x onerror=y>".into(),
    };
    let email = compose_ok(&everyone(), &input("a.csv", failure), &ctx(None));
    let html = part(&parse_mail(&email.raw).unwrap(), "text/html")
        .get_body()
        .unwrap();
    assert!(
        html.contains("&lt;img src=x onerror=y&gt;") && !html.contains("<img"),
        "{html}"
    );
}

#[test]
fn non_ascii_file_names_are_encoded_in_the_subject_and_survive() {
    let email = compose_ok(
        &everyone(),
        &input("incoming/stocks/prix-été-日本.csv", success_notice(0)),
        &ctx(None),
    );
    assert_eq!(
        email.subject,
        "[sluice] stocks: prix-été-日本.csv SUCCEEDED (1,234 rows)"
    );
    let mail = parse_mail(&email.raw).unwrap();
    let raw_subject = mail
        .headers
        .get_first_header("Subject")
        .unwrap()
        .get_value_raw();
    assert!(
        raw_subject.is_ascii(),
        "{}",
        String::from_utf8_lossy(raw_subject)
    );
    assert!(
        String::from_utf8_lossy(raw_subject).contains("=?utf-8?"),
        "RFC 2047 encoded-words"
    );
    assert_eq!(header(&mail, "Subject"), email.subject);
    // The whole message is 7-bit: headers encoded, bodies quoted-printable or base64.
    assert!(email.raw.is_ascii());
    assert!(
        part(&mail, "text/plain")
            .get_body()
            .unwrap()
            .contains("prix-été-日本.csv")
    );
}

#[test]
fn a_key_with_line_breaks_cannot_inject_headers() {
    let email = compose_ok(
        &everyone(),
        &input(
            "incoming/a\r\nBcc: victim@example.com\r\n.csv",
            success_notice(0),
        ),
        &ctx(None),
    );
    let mail = parse_mail(&email.raw).unwrap();
    assert!(mail.headers.get_first_value("Bcc").is_none());
    assert!(
        !email.subject.contains('\n') && !email.subject.contains('\r'),
        "{:?}",
        email.subject
    );
}

#[test]
fn addresses_lettre_refuses_are_invalid_input_naming_them() {
    // The spec parser only checks addresses loosely; this one passes it but is not an address.
    let ds = dataset("from = \"bad@@example.com\"\nfailure = [\"oncall@example.com\"]");
    let f = Notice::Failure {
        stage: sluice_proto::Stage::Validator,
        error: "Sluice.Internal".into(),
        cause: "bug".into(),
    };
    let e = compose(&ds, &input("a.csv", f.clone()), &ctx(None)).unwrap_err();
    assert_eq!(e.error, ErrorName::InvalidInput);
    assert!(
        e.cause.contains("\"bad@@example.com\"") && e.cause.contains("from"),
        "{}",
        e.cause
    );

    let ds = dataset("failure = [\"ok@example.com\", \"two@words@example.com\"]");
    let e = compose(&ds, &input("a.csv", f), &ctx(None)).unwrap_err();
    assert_eq!(e.error, ErrorName::InvalidInput);
    assert!(
        e.cause.contains("\"two@words@example.com\"") && e.cause.contains("failure"),
        "{}",
        e.cause
    );
}
