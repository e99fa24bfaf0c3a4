//! The two pages, rendered here with what does not change while a run goes on (the datasets, the state
//! machine graph, room for the charts the dataset draws); `assets/app.js` fills in and updates the
//! rest from the API and its event streams. Every asset is compiled into the binary (no CDN).

use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use sluice_proto::RunId;

use crate::Gateway;

const CSS: &str = include_str!("../assets/app.css");
const JS: &str = include_str!("../assets/app.js");
const ICON: &str = include_str!("../assets/icon.svg");

/// Text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    sluice_statemachine::svg::escape_xml(s)
}

fn page(gw: &Gateway, title: &str, body_attrs: &str, main: &str) -> String {
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="/assets/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/app.css">
<script src="/assets/app.js" defer></script>
</head>
<body {body_attrs}>
<a class="skip" href="#main">Skip to the content</a>
<header class="top"><a class="brand" href="/">Sluice</a><span class="mode">{mode}</span><span class="spec">{spec}</span></header>
<main id="main">
{main}
</main>
</body>
</html>
"##,
        title = esc(title),
        mode = esc(gw.mode),
        spec = esc(&gw.config.path.display().to_string()),
    )
}

pub(crate) async fn index(State(gw): State<Arc<Gateway>>) -> Html<String> {
    let mut options = String::from(r#"<option value="">Decide by the file name</option>"#);
    let mut datasets = String::new();
    let mut accept: Vec<String> = Vec::new();
    for ds in &gw.config.datasets {
        options.push_str(&format!(
            r#"<option value="{0}">{0}</option>"#,
            esc(ds.name.as_str())
        ));
        if let Some(ext) = ds.suffix.rsplit_once('.').map(|(_, e)| format!(".{e}"))
            && !accept.contains(&ext)
        {
            accept.push(ext);
        }
        let columns: Vec<String> = ds
            .columns
            .iter()
            .map(|c| {
                format!(
                    "{} <span class=\"type\">{}</span>",
                    esc(&c.name),
                    c.ty.as_str()
                )
            })
            .collect();
        datasets.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td><code>{}*{}</code></td><td>{}</td></tr>",
            esc(ds.name.as_str()),
            esc(&ds.prefix),
            esc(&ds.suffix),
            columns.join(", ")
        ));
    }
    let main = format!(
        r#"<section class="card upload" aria-labelledby="upload-title">
<h2 id="upload-title">Upload a file</h2>
<form id="upload-form" action="/api/uploads" method="post" enctype="multipart/form-data">
<div class="field"><label for="dataset">Dataset</label>
<select id="dataset" name="dataset">{options}</select></div>
<div class="field"><label for="file">File</label>
<input id="file" name="file" type="file" required accept="{accept}"></div>
<button type="submit" id="upload-button">Upload and run</button>
<p id="upload-status" class="status-text" role="status" aria-live="polite"></p>
</form>
</section>
<section class="card" aria-labelledby="runs-title">
<h2 id="runs-title">Runs <span class="live" id="runs-live" title="updates live">live</span></h2>
<div class="scroll"><table id="runs" class="runs">
<thead><tr><th scope="col">Status</th><th scope="col">Run</th><th scope="col">Dataset</th><th scope="col">File</th><th scope="col" class="num">Rows</th><th scope="col" class="num">Invalid</th><th scope="col">Started</th></tr></thead>
<tbody><tr class="empty"><td colspan="7">Loading…</td></tr></tbody>
</table></div>
</section>
<section class="card" aria-labelledby="datasets-title">
<h2 id="datasets-title">Datasets</h2>
<div class="scroll"><table class="datasets"><thead><tr><th scope="col">Name</th><th scope="col">Files</th><th scope="col">Columns</th></tr></thead>
<tbody>{datasets}</tbody></table></div>
</section>"#,
        accept = esc(&accept.join(",")),
    );
    Html(page(&gw, "Sluice", r#"data-page="index""#, &main))
}

pub(crate) async fn run(
    State(gw): State<Arc<Gateway>>,
    UrlPath(run_id): UrlPath<String>,
) -> Response {
    let known = match RunId::parse(&run_id) {
        Err(_) => None,
        Ok(id) => match gw.runs.get_run(&id).await {
            Ok(Some(run)) => Some(run),
            Ok(None) => gw.runner.pending(&id),
            Err(e) => {
                let main = format!(
                    "<h1>The run store did not answer</h1><p>{}: {}. Reload the page to try again.</p>",
                    esc(e.error.as_str()),
                    esc(&e.cause)
                );
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Html(page(&gw, "Sluice: store unavailable", "", &main)),
                )
                    .into_response();
            }
        },
    };
    let Some(run) = known else {
        let main = format!(
            "<h1>No run {}</h1><p>The run store has no run with this id. <a href=\"/\">See the runs</a>.</p>",
            esc(&run_id)
        );
        return (
            StatusCode::NOT_FOUND,
            Html(page(&gw, "Sluice: no such run", "", &main)),
        )
            .into_response();
    };
    let graph = match sluice_statemachine::StateMachine::parse(&gw.definition) {
        Ok(sm) => sluice_statemachine::svg::render_svg(&sm),
        Err(e) => format!(
            "<p>The definition does not parse: {}</p>",
            esc(&e.to_string())
        ),
    };
    // Room for each chart the dataset draws, so the page does not move when they appear.
    let plots = gw
        .config
        .dataset(run.dataset.as_str())
        .map(|d| d.plots.clone())
        .unwrap_or_default();
    let mut charts = String::new();
    for (n, plot) in plots.iter().enumerate() {
        charts.push_str(&format!(
            r#"<figure class="chart" data-plot="{n}"><div class="chart-box"><span class="placeholder">Not drawn yet</span></div><figcaption>{}</figcaption></figure>"#,
            esc(&plot.title)
        ));
    }
    if charts.is_empty() {
        charts.push_str(r#"<p class="muted">This dataset draws no charts.</p>"#);
    }
    let legend = [
        ("succeeded", "Succeeded"),
        ("running", "In progress"),
        ("retried", "Retried, then succeeded"),
        ("caught", "Failed, caught"),
        ("failed", "Failed"),
        ("cancelled", "Cancelled"),
        ("not-reached", "Not reached"),
    ]
    .iter()
    .map(|(class, label)| format!(r#"<li><span class="swatch st-{class}"></span>{label}</li>"#))
    .collect::<String>();
    let main = format!(
        r#"<nav class="crumbs"><a href="/">Runs</a> › <span>{short}</span></nav>
<h1>Run <code class="run-id">{id}</code></h1>
<section class="card summary" aria-labelledby="summary-title">
<h2 id="summary-title" class="visually-hidden">Summary</h2>
<p class="status-line"><span id="status" class="badge">{status}</span>
<span class="meta">dataset <strong id="dataset">{dataset}</strong></span>
<span class="meta">file <code id="source">{source}</code></span></p>
<p class="times"><span>started <time id="started"></time></span> <span>finished <time id="finished">–</time></span> <span>took <span id="took">–</span></span></p>
<p id="error" class="error" role="alert" hidden></p>
<dl class="counts" id="counts">
<div><dt>Rows</dt><dd id="rows-total">–</dd></div>
<div><dt>Valid</dt><dd id="rows-valid">–</dd></div>
<div><dt>Invalid</dt><dd id="rows-invalid">–</dd></div>
<div><dt>Kept by the filter</dt><dd id="rows-filtered">–</dd></div>
<div><dt>Loaded</dt><dd id="rows-loaded">–</dd></div>
</dl>
</section>
<section class="card" aria-labelledby="graph-title">
<h2 id="graph-title">State machine</h2>
<ul class="legend">{legend}</ul>
<div class="graph" id="graph">{graph}</div>
</section>
<section class="card" aria-labelledby="stats-title">
<h2 id="stats-title">Statistics</h2>
<div class="scroll"><table id="stats" class="stats"><thead><tr><th scope="col">Column</th><th scope="col" class="num">Count</th><th scope="col" class="num">Mean</th><th scope="col" class="num">Min</th><th scope="col" class="num">Max</th><th scope="col" class="num">Sum</th><th scope="col" class="num">Std dev</th></tr></thead><tbody><tr class="empty"><td colspan="7">Not computed yet</td></tr></tbody></table></div>
</section>
<section class="card" aria-labelledby="charts-title">
<h2 id="charts-title">Charts</h2>
<div class="charts" id="charts">{charts}</div>
</section>
<section class="card" aria-labelledby="invalid-title">
<h2 id="invalid-title">Invalid rows</h2>
<div class="scroll invalid-box"><table id="invalid" class="invalid"><tbody><tr class="empty"><td>None so far</td></tr></tbody></table></div>
<p id="invalid-more" class="muted" hidden></p>
</section>
<section class="card" aria-labelledby="downloads-title">
<h2 id="downloads-title">Downloads</h2>
<ul id="downloads" class="downloads"><li class="muted">Nothing to download yet</li></ul>
</section>
<section class="card" aria-labelledby="history-title">
<h2 id="history-title">Event history</h2>
<div class="scroll"><table id="history" class="history"><thead><tr><th scope="col" class="num">#</th><th scope="col">Type</th><th scope="col">State</th><th scope="col">Time</th><th scope="col">Detail</th></tr></thead><tbody></tbody></table></div>
</section>"#,
        short = esc(&run_id[..run_id.len().min(12)]),
        id = esc(&run_id),
        status = esc(run.status.as_str()),
        dataset = esc(run.dataset.as_str()),
        source = esc(&run.source.key),
    );
    Html(page(
        &gw,
        &format!("Sluice: run {}", &run_id[..run_id.len().min(12)]),
        &format!(r#"data-page="run" data-run-id="{}""#, esc(&run_id)),
        &main,
    ))
    .into_response()
}

pub(crate) async fn asset(UrlPath(name): UrlPath<String>) -> Response {
    let (body, ty) = match name.as_str() {
        "app.css" => (CSS, "text/css; charset=utf-8"),
        "app.js" => (JS, "text/javascript; charset=utf-8"),
        "icon.svg" => (ICON, "image/svg+xml"),
        _ => {
            return crate::ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no asset {name}"),
                "the assets are app.css, app.js and icon.svg",
            )
            .into_response();
        }
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(ty)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}
