//! A real browser for the console's tests: Debian's Chromium, headless, driven over WebDriver
//! by its chromedriver (started here on a free port). `scripts/test` installs both when it can
//! and names them in `CONSOLE_CHROMIUM` and `CONSOLE_CHROMEDRIVER`, with the pinned axe-core it
//! provides in `CONSOLE_AXE_JS`. Without them a test says so and skips; under `CI=true` it fails
//! instead.
//!
//! Each [`Profile`] is a browser session with a fresh user-data directory: its own cookies, as
//! a second person (or the same person on a second device) would have.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tempfile::TempDir;

/// What the tests need from the machine, from `scripts/test`.
struct Tools {
    chromium: String,
    chromedriver: String,
    axe: PathBuf,
}

impl Tools {
    /// The tools, or `None` (after saying why) when they are missing outside CI.
    fn find() -> Option<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        match (
            var("CONSOLE_CHROMIUM"),
            var("CONSOLE_CHROMEDRIVER"),
            var("CONSOLE_AXE_JS"),
        ) {
            (Some(chromium), Some(chromedriver), Some(axe)) => Some(Self {
                chromium,
                chromedriver,
                axe: PathBuf::from(axe),
            }),
            _ => {
                let why = "CONSOLE_CHROMIUM, CONSOLE_CHROMEDRIVER and CONSOLE_AXE_JS are not set: \
                           run the browser suite through scripts/test, which installs Chromium \
                           and axe-core";
                assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
                eprintln!("SKIPPED (no browser): {why}");
                None
            }
        }
    }
}

/// A running chromedriver.
pub struct Browser {
    driver: Child,
    url: String,
    tools: Tools,
    axe_source: String,
    profiles: Vec<TempDir>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver, or `None` when the browser is missing (outside CI).
    pub fn start() -> Option<Self> {
        let tools = Tools::find()?;
        // Once in a while (seen on a loaded CI machine) chromedriver exits before it listens;
        // a second try has always worked.
        let (driver, port) = (0..3)
            .find_map(|_| start_driver(&tools.chromedriver))
            .expect("chromedriver did not start in three tries (its stderr is above)");
        let axe_source = std::fs::read_to_string(&tools.axe).expect("cannot read axe-core");
        Some(Self {
            driver,
            url: format!("http://127.0.0.1:{port}"),
            tools,
            axe_source,
            profiles: Vec::new(),
        })
    }

    /// A new browser session with an empty profile, at the desktop width, on the console at
    /// `base`.
    pub async fn profile(&mut self, base: &str) -> Profile {
        self.open(base, true).await
    }

    /// [`profile`](Self::profile), with JavaScript switched off for the pages.
    pub async fn profile_without_javascript(&mut self, base: &str) -> Profile {
        self.open(base, false).await
    }

    async fn open(&mut self, base: &str, javascript: bool) -> Profile {
        let dir = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": self.tools.chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-quic", "--window-size=1280,900",
                    format!("--user-data-dir={}", dir.path().display()),
                ],
                "prefs": {
                    "profile.managed_default_content_settings.javascript":
                        if javascript { 1 } else { 2 },
                },
            }),
        );
        capabilities.insert("goog:loggingPrefs".to_owned(), json!({ "browser": "ALL" }));
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("cannot open a browser session");
        self.profiles.push(dir);
        Profile {
            client,
            base: base.to_owned(),
            axe_source: self.axe_source.clone(),
        }
    }
}

/// One browser session on the console.
pub struct Profile {
    pub client: Client,
    base: String,
    axe_source: String,
}

/// The page widths the console must be readable at: a phone and a desktop.
pub const WIDTHS: [(u32, u32); 2] = [(390, 844), (1280, 900)];

impl Profile {
    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    /// The path and query of the page shown.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// What a person reads on the page.
    pub async fn text(&self) -> String {
        self.client
            .execute("return document.body.innerText", vec![])
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn heading(&self) -> String {
        self.client
            .find(Locator::Css("h1"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Types `value` into the field named `name`, replacing what it held.
    pub async fn fill(&self, name: &str, value: &str) {
        let field = self
            .client
            .find(Locator::Css(&format!(
                "[name=\"{name}\"]:not([type=hidden])"
            )))
            .await
            .unwrap_or_else(|_| panic!("no field {name}"));
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    pub async fn value(&self, name: &str) -> String {
        self.client
            .find(Locator::Css(&format!(
                "[name=\"{name}\"]:not([type=hidden])"
            )))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// Clicks the button whose visible text starts with `label` (the first one), and waits
    /// for the page it leads to.
    pub async fn press(&self, label: &str) {
        let xpath = format!("//button[starts-with(normalize-space(.), '{label}')]");
        let button = self
            .client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|_| panic!("no button {label:?}"));
        self.click_and_wait(button).await;
    }

    /// Clicks the link whose text is `text`, and waits for the page it leads to.
    pub async fn follow(&self, text: &str) {
        let xpath = format!("//a[normalize-space(.)='{text}']");
        let link = self
            .client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|_| panic!("no link {text:?}"));
        self.click_and_wait(link).await;
    }

    /// Clicks the element matching `css`, and waits for the page it leads to.
    pub async fn click(&self, css: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap();
        self.click_and_wait(element).await;
    }

    /// Clicks, then waits until another document has replaced this one and finished loading
    /// (a form post may come back to the same address, so the address cannot tell).
    async fn click_and_wait(&self, element: fantoccini::elements::Element) {
        let root = self.client.find(Locator::Css("html")).await.unwrap();
        element.click().await.unwrap();
        for _ in 0..200 {
            // The old document's root is gone once the new one is in.
            if root.tag_name().await.is_err() {
                let ready = self
                    .client
                    .execute("return document.readyState", vec![])
                    .await
                    .ok();
                if ready.as_ref().and_then(|state| state.as_str()) == Some("complete") {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the click led to no new page");
    }

    /// Saves the page as `name` at both widths under the test's target directory.
    pub async fn screenshots(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        for (width, height) in WIDTHS {
            self.client.set_window_size(width, height).await.unwrap();
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(dir.join(format!("{name}-{width}.png")), png).unwrap();
        }
        self.client.set_window_size(1280, 900).await.unwrap();
    }

    /// The serious and critical violations axe-core finds on the page, at both widths.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        let mut found = Vec::new();
        for (width, height) in WIDTHS {
            self.client.set_window_size(width, height).await.unwrap();
            // Run from WebDriver, which the page's CSP does not govern.
            self.client.execute(&self.axe_source, vec![]).await.unwrap();
            let violations = self
                .client
                .execute_async(
                    "const done = arguments[arguments.length - 1];
                     axe.run(document).then(result => done(result.violations
                         .filter(v => v.impact === 'serious' || v.impact === 'critical')
                         .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at '
                             + v.nodes.map(n => n.target.join(' ')).join(', '))));",
                    vec![],
                )
                .await
                .unwrap();
            for violation in violations.as_array().into_iter().flatten() {
                found.push(format!(
                    "{width} px: {}",
                    violation.as_str().unwrap_or_default()
                ));
            }
        }
        self.client.set_window_size(1280, 900).await.unwrap();
        found
    }

    /// What the browser logged about Content Security Policy since the last call.
    pub async fn csp_reports(&self) -> Vec<String> {
        let entries = self.client.issue_cmd(BrowserLog).await.unwrap();
        entries
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry["message"].as_str())
            .filter(|message| message.contains("Content Security Policy"))
            .map(ToOwned::to_owned)
            .collect()
    }

    /// What scripts of the page can read of its cookies.
    pub async fn document_cookie(&self) -> String {
        self.client
            .execute("return document.cookie", vec![])
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn wait_for_heading(&self, heading: &str) {
        for _ in 0..100 {
            if self.heading().await == heading {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "never saw the heading {heading:?}; the page says {}",
            self.text().await
        );
    }

    pub async fn close(self) {
        self.client.close().await.unwrap();
    }
}

/// chromedriver on a port it picks, and that port; `None` if it stopped before saying it.
fn start_driver(program: &str) -> Option<(Child, String)> {
    let mut driver = Command::new(program)
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot start chromedriver");
    let stdout = driver
        .stdout
        .take()
        .expect("chromedriver's stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let port = lines.by_ref().map_while(Result::ok).find_map(|line| {
        line.split("started successfully on port ")
            .nth(1)
            .map(|rest| rest.trim_end_matches('.').trim().to_owned())
    });
    let Some(port) = port else {
        let _ = driver.wait();
        return None;
    };
    // Keep reading, so that chromedriver never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Some((driver, port))
}

/// chromedriver's log of the page's console (the legacy `se/log` endpoint it still serves).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}
