//! Headless Chromium for the tests of the approvers' web page, driven through chromedriver with the W3C WebDriver
//! protocol. The handful of commands the tests need (new session, navigate, find, type, click, page source) are
//! plain JSON over HTTP on loopback, sent with the tests' reqwest. A WebDriver crate (fantoccini) was tried, but its
//! TLS feature switches rustls to aws-lc for the whole workspace, which our clients deliberately do not use.

#![allow(clippy::unwrap_used)] // test scaffolding: a failure here should stop the test loudly

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::gateway::free_port;
use crate::tools;

/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

#[derive(Debug)]
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session that accepts the test gateway's TLS certificate.
    pub fn start() -> Self {
        let chromedriver = tools::tool("chromedriver");
        let chromium = tools::tool("chromium");
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .no_proxy()
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while http
            .get(format!("{base}/status"))
            .send()
            .ok()
            .and_then(|r| r.json::<Value>().ok())
            .and_then(|v| v["value"]["ready"].as_bool())
            != Some(true)
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "acceptInsecureCerts": true,
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
                },
            }}}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        Self {
            driver,
            base,
            session,
            http,
        }
    }

    fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method.clone(), &url);
        if method != reqwest::Method::GET {
            request = request.json(&body);
        }
        let response: Value = request.send().unwrap().json().unwrap();
        assert!(
            response["value"].get("error").is_none(),
            "WebDriver {path}: {response}"
        );
        response["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", json!({ "url": url }));
    }

    fn find(&self, css: &str) -> String {
        let found = self.command(
            reqwest::Method::POST,
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        found[ELEMENT].as_str().unwrap().to_owned()
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        );
    }

    pub fn click(&self, css: &str) {
        let element = self.find(css);
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            json!({}),
        );
    }

    /// The current page's HTML once it contains `text` (a click's navigation may still be under way); panics
    /// with the page after 20 s.
    pub fn wait_for(&self, text: &str) -> String {
        self.wait_until(&format!("the page shows {text:?}"), |page| page.contains(text))
    }

    /// The current page's HTML once `ready` holds for it; panics with `what` and the page after 20 s.
    pub fn wait_until(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let page = self.source();
            if ready(&page) {
                return page;
            }
            assert!(Instant::now() < deadline, "never: {what}\n{page}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The current page's HTML.
    pub fn source(&self) -> String {
        self.command(reqwest::Method::GET, "/source", Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
