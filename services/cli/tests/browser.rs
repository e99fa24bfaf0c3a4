//! The web UI in a real browser: Debian's `chromium`, headless, driven through `chromedriver`
//! (WebDriver) by fantoccini. Nothing downloads a browser: scripts/test installs the two Debian
//! packages when they are missing, and says so.
//!
//! A user's path: open `/`, choose the dataset, pick a file, upload; the page moves to the run, which
//! reaches SUCCEEDED without a reload; the graph's states are coloured; the stats, the charts and the
//! invalid rows with their reasons are shown; a chart opens; the invalid rows download. The run page is
//! also checked on a phone-sized window (nothing wider than the screen) and for layout shift while the
//! run updates. The screenshot in the README is made here (`SLUICE_UPDATE_SCREENSHOT=1`).

mod gateway_util;

mod browser {
    use std::net::TcpListener;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use fantoccini::{Client, ClientBuilder, Locator};
    use serde_json::{Value, json};

    use super::gateway_util::{Server, repo};

    const CHROMIUM: &str = "/usr/bin/chromium";
    const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

    struct Driver {
        child: Child,
        port: u16,
    }

    impl Drop for Driver {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn start_driver() -> Driver {
        assert!(
            Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(),
            "{CHROMIUM} and {CHROMEDRIVER} are needed: apt-get install chromium chromium-driver (scripts/test does)"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Driver { child, port };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("chromedriver did not start on 127.0.0.1:{port}");
    }

    async fn browser(driver: &Driver, downloads: &Path, width: u32, height: u32) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         format!("--window-size={width},{height}"), "--hide-scrollbars", "--lang=en-US"],
                "prefs": {
                    "download.default_directory": downloads.to_str().unwrap(),
                    "download.prompt_for_download": false,
                },
            }),
        );
        ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("chromedriver starts chromium")
    }

    /// Waits until `script` (a JS expression) is truthy; its value.
    async fn until(c: &Client, what: &str, script: &str, secs: u64) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let v = c
                .execute(&format!("return ({script});"), vec![])
                .await
                .unwrap();
            let truthy =
                !matches!(v, Value::Null | Value::Bool(false)) && v != json!("") && v != json!(0);
            if truthy {
                return v;
            }
            if std::time::Instant::now() > deadline {
                let html = c.source().await.unwrap_or_default();
                panic!(
                    "{what}: not within {secs} s; the page:\n{}",
                    &html[..html.len().min(4000)]
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn screenshot_path() -> PathBuf {
        repo().join("docs/images/run-page.png")
    }

    /// A file the project has not seen: orders of a shop in 2025, some of them invalid.
    fn new_orders(dir: &Path) -> PathBuf {
        let mut text =
            String::from("order_id,customer_email,status,amount,quantity,order_date,paid\n");
        for i in 0..400u32 {
            let status = ["new", "paid", "shipped", "cancelled"][(i % 4) as usize];
            let amount = 5.0 + f64::from((i * 37) % 480) + f64::from(i % 100) / 100.0;
            let day = 1 + i % 28;
            let month = 1 + (i / 28) % 12;
            text.push_str(&format!(
                "ORD-{:06},buyer{i}@shop.example,{status},{amount:.2},{},2025-{month:02}-{day:02},{}\n",
                300000 + i,
                1 + i % 5,
                if i % 3 == 0 { "no" } else { "yes" }
            ));
        }
        // Invalid: a bad id, a bad e-mail, an unknown status.
        text.push_str("ORD-12,late@shop.example,paid,10.00,1,2025-06-01,yes\n");
        text.push_str("ORD-300999,nobody,paid,10.00,1,2025-06-02,yes\n");
        text.push_str("ORD-300998,x@shop.example,lost,10.00,1,2025-06-03,yes\n");
        let path = dir.join("shop-orders-2025.csv");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[tokio::test]
    #[ignore = "needs Debian's chromium and chromium-driver; scripts/test installs them and runs this"]
    async fn upload_watch_the_run_live_and_read_its_results_in_the_browser() {
        let driver = start_driver();
        let server = Server::up(None, &[], &[]);
        let work = tempfile::tempdir().unwrap();
        let downloads = work.path().join("downloads");
        std::fs::create_dir_all(&downloads).unwrap();
        let file = new_orders(work.path());
        let c = browser(&driver, &downloads, 1280, 1000).await;

        c.goto(&server.url("/")).await.unwrap();
        until(&c, "the runs list loads (live)", "document.querySelector('#runs tbody tr.empty td')?.textContent.includes('No runs yet')", 20).await;
        let select = c.find(Locator::Id("dataset")).await.unwrap();
        select.select_by_value("orders").await.unwrap();
        c.find(Locator::Id("file"))
            .await
            .unwrap()
            .send_keys(file.to_str().unwrap())
            .await
            .unwrap();
        c.find(Locator::Id("upload-button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let path = until(
            &c,
            "the page moves to the run",
            "location.pathname.startsWith('/runs/') && location.pathname",
            30,
        )
        .await;
        let run_id = path
            .as_str()
            .unwrap()
            .trim_start_matches("/runs/")
            .to_string();
        assert_eq!(run_id.len(), 32);
        // From here on, a reload would lose this marker.
        c.execute("window.__noReload = true; window.__shift = 0; new PerformanceObserver(l => { for (const e of l.getEntries()) if (!e.hadRecentInput) window.__shift += e.value; }).observe({type: 'layout-shift', buffered: true});", vec![]).await.unwrap();
        until(
            &c,
            "the run reaches SUCCEEDED",
            "document.body.dataset.status === 'SUCCEEDED'",
            120,
        )
        .await;
        assert_eq!(
            c.execute("return window.__noReload === true;", vec![])
                .await
                .unwrap(),
            json!(true),
            "no reload"
        );
        assert_eq!(
            c.find(Locator::Id("status"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
            "SUCCEEDED"
        );
        assert_eq!(
            c.find(Locator::Id("rows-invalid"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
            "3"
        );
        assert_eq!(
            c.find(Locator::Id("rows-total"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
            "403"
        );

        // The graph: what ran is green, what did not run is drawn as not reached.
        let class = |state: &str| {
            format!(
                "document.querySelector('#graph g.state[data-state=\"{state}\"]').getAttribute('class')"
            )
        };
        for state in [
            "Validate rows",
            "Filter and compute stats",
            "Partition rows",
            "Draw plots",
            "Send invalid-rows report",
            "Run succeeded",
        ] {
            let v = c
                .execute(&format!("return {};", class(state)), vec![])
                .await
                .unwrap();
            assert!(v.as_str().unwrap().contains("st-succeeded"), "{state}: {v}");
        }
        for state in ["Send failure alert", "Run failed", "Superseded"] {
            let v = c
                .execute(&format!("return {};", class(state)), vec![])
                .await
                .unwrap();
            assert!(v.as_str().unwrap().contains("not-reached"), "{state}: {v}");
        }
        // Coloured: the computed fill of a succeeded state is not the plain white of one not reached.
        let fills = c.execute(
            "const f = s => getComputedStyle(document.querySelector(`#graph g.state[data-state=\"${s}\"] rect`)).fill; return [f('Validate rows'), f('Run failed')];",
            vec![],
        ).await.unwrap();
        assert_ne!(fills[0], fills[1], "{fills}");

        // The stats table, the invalid rows with their reasons, the event history.
        let stats = until(
            &c,
            "the stats table",
            "[...document.querySelectorAll('#stats tbody th')].map(t => t.textContent)",
            10,
        )
        .await;
        assert_eq!(stats, json!(["amount", "quantity"]));
        let reasons = until(
            &c,
            "the invalid rows",
            "[...document.querySelectorAll('#invalid td.reason')].map(t => t.textContent)",
            20,
        )
        .await;
        let reasons: Vec<&str> = reasons
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(
            reasons.iter().any(|r| r.contains("order_id"))
                && reasons.iter().any(|r| r.contains("customer_email"))
                && reasons.iter().any(|r| r.contains("status")),
            "{reasons:?}"
        );
        let history = until(
            &c,
            "the event history",
            "document.querySelectorAll('#history tbody tr').length",
            10,
        )
        .await;
        assert!(history.as_u64().unwrap() > 20, "{history}");

        // The chart: drawn in its box, and it opens.
        let width = until(&c, "the chart loads", "document.querySelector('#charts img')?.complete && document.querySelector('#charts img').naturalWidth", 20).await;
        assert_eq!(width, json!(1200));
        let href = c
            .execute("return document.querySelector('#charts a').href;", vec![])
            .await
            .unwrap();
        c.execute("window.__chartHref = arguments[0];", vec![href.clone()])
            .await
            .unwrap();
        let shift = c
            .execute("return window.__shift;", vec![])
            .await
            .unwrap()
            .as_f64()
            .unwrap();
        assert!(
            shift < 0.1,
            "cumulative layout shift while the run updated: {shift}"
        );

        // The README's screenshot: the run page, finished.
        let png = c.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        let out = std::env::var_os("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        std::fs::write(out.join("run-page.png"), &png).unwrap();
        if std::env::var_os("SLUICE_UPDATE_SCREENSHOT").is_some() {
            std::fs::create_dir_all(screenshot_path().parent().unwrap()).unwrap();
            std::fs::write(screenshot_path(), &png).unwrap();
        }

        // Download the invalid rows (a click on the link; the file lands in the download folder).
        c.find(Locator::Css("#downloads a[data-output=\"invalid\"]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let saved = downloads.join("invalid.csv");
        for _ in 0..100 {
            if saved.is_file() && !downloads.join("invalid.csv.crdownload").exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let text = std::fs::read_to_string(&saved).expect("the invalid rows were downloaded");
        assert_eq!(text.lines().count(), 4, "a header and 3 rows:\n{text}");
        assert!(
            text.contains("ORD-12") && text.contains("nobody") && text.contains("lost"),
            "{text}"
        );

        // Open the chart.
        c.goto(href.as_str().unwrap()).await.unwrap();
        let ty = c
            .execute("return document.contentType;", vec![])
            .await
            .unwrap();
        assert_eq!(ty, json!("image/png"));

        // Back on the index, the run is in the list; a click on its row opens it (keyboard: its link).
        c.goto(&server.url("/")).await.unwrap();
        until(&c, "the run in the list", &format!("document.querySelector('#runs tr[data-run-id=\"{run_id}\"] .badge')?.textContent === 'SUCCEEDED'"), 20).await;
        let out = std::env::var_os("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        std::fs::write(out.join("index-page.png"), c.screenshot().await.unwrap()).unwrap();
        let first_focus = c
            .execute(
                "return document.querySelector('a, button, input, select').className;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            first_focus,
            json!("skip"),
            "the first thing the keyboard reaches skips to the content"
        );
        c.close().await.unwrap();

        // A phone: nothing is wider than the screen (the graph and tables scroll inside their boxes).
        let phone = browser(&driver, &downloads, 390, 844).await;
        let out = std::env::var_os("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        for path in ["/".to_string(), format!("/runs/{run_id}")] {
            phone.goto(&server.url(&path)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(800)).await;
            let overflow = phone
                .execute("return document.documentElement.scrollWidth - document.documentElement.clientWidth;", vec![])
                .await
                .unwrap();
            assert!(
                overflow.as_i64().unwrap() <= 0,
                "{path} is wider than a phone by {overflow} px"
            );
            let name = if path == "/" {
                "phone-index.png"
            } else {
                "phone-run.png"
            };
            std::fs::write(out.join(name), phone.screenshot().await.unwrap()).unwrap();
        }
        phone.close().await.unwrap();
    }

    /// A failing run: the graph shows the failing state caught and the alert path taken; the error is
    /// on the page.
    #[tokio::test]
    #[ignore = "needs Debian's chromium and chromium-driver; scripts/test installs them and runs this"]
    async fn a_failed_run_shows_where_it_failed() {
        let driver = start_driver();
        let server = Server::up(None, &[], &[]);
        let work = tempfile::tempdir().unwrap();
        let c = browser(&driver, work.path(), 1280, 1000).await;
        // A header that is not the dataset's: the validator refuses the whole file.
        let resp = reqwest::Client::new()
            .post(server.url("/api/uploads?dataset=stocks&filename=wrong-columns.csv"))
            .body("when,price\n2024-01-01,3\n")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202);
        let landed: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        c.goto(&server.url(&format!("/runs/{}", landed["run_id"].as_str().unwrap())))
            .await
            .unwrap();
        until(
            &c,
            "the run fails",
            "document.body.dataset.status === 'FAILED'",
            60,
        )
        .await;
        let error = c
            .find(Locator::Id("error"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(error.contains("validator"), "{error}");
        let status = |s: &str| {
            format!(
                "return document.querySelector('#graph g.state[data-state=\"{s}\"]').dataset.status;"
            )
        };
        assert_eq!(
            c.execute(&status("Validate rows"), vec![]).await.unwrap(),
            json!("caught")
        );
        assert_eq!(
            c.execute(&status("Send failure alert"), vec![])
                .await
                .unwrap(),
            json!("succeeded")
        );
        assert_eq!(
            c.execute(&status("Run failed"), vec![]).await.unwrap(),
            json!("failed")
        );
        assert_eq!(
            c.execute(&status("Partition rows"), vec![]).await.unwrap(),
            json!("not-reached")
        );
        let png = c.screenshot().await.unwrap();
        let out = std::env::var_os("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        std::fs::write(out.join("failed-run-page.png"), &png).unwrap();
        c.close().await.unwrap();
    }
}
