//! A stand-in for the part of GitHub's REST API that SignPath's GitHub connector calls, over plain HTTP on
//! loopback, one connection per request as `Connection: close` allows: `GET /repos/{owner}/{repo}/actions/runs/{id}`,
//! `GET /repos/{owner}/{repo}/actions/artifacts/{id}` and `.../artifacts/{id}/zip`, which answers 302 to a second
//! listener (another port, as GitHub's storage is another host) serving the bytes. Like GitHub, a run or artifact
//! asked for under a repository it is not in is 404, and every API call needs `Authorization: Bearer <token>`.
//! Every request is recorded with the `Authorization` it carried, so a test can tell where the token went.

#![allow(clippy::unwrap_used)] // test scaffolding: a failure here should stop the test loudly

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// A workflow run of a repository.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: u64,
    /// `owner/name`.
    pub repository: String,
    pub head_sha: String,
    pub head_branch: String,
}

/// An artifact a run uploaded: `bytes` as GitHub serves them (a ZIP, or the file itself for `archive: false`).
#[derive(Debug, Clone)]
pub struct Artifact {
    pub id: u64,
    pub name: String,
    pub run_id: u64,
    pub bytes: Vec<u8>,
}

/// One request the stand-in answered.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub authorization: Option<String>,
}

#[derive(Debug, Default)]
struct Content {
    runs: Vec<Run>,
    artifacts: Vec<Artifact>,
    seen: Vec<Seen>,
}

/// GitHub's API for one token.
#[derive(Debug)]
pub struct GithubApi {
    /// What `[github] api_url` names.
    pub api_url: String,
    /// The token the API accepts (`github-token`).
    pub token: String,
    content: Arc<Mutex<Content>>,
}

impl GithubApi {
    /// Serves until the test ends.
    pub fn start() -> Self {
        let api = TcpListener::bind("127.0.0.1:0").unwrap();
        let storage = TcpListener::bind("127.0.0.1:0").unwrap();
        let api_url = format!("http://{}", api.local_addr().unwrap());
        let storage_url = format!("http://{}", storage.local_addr().unwrap());
        let token = format!("ghs_{}", uuid::Uuid::new_v4().simple());
        let content = Arc::new(Mutex::new(Content::default()));
        let (api_content, expected) = (content.clone(), token.clone());
        std::thread::spawn(move || {
            for stream in api.incoming().flatten() {
                let (content, expected, storage_url) =
                    (api_content.clone(), expected.clone(), storage_url.clone());
                std::thread::spawn(move || serve_api(stream, &content, &expected, &storage_url));
            }
        });
        let storage_content = content.clone();
        std::thread::spawn(move || {
            for stream in storage.incoming().flatten() {
                let content = storage_content.clone();
                std::thread::spawn(move || serve_storage(stream, &content));
            }
        });
        Self {
            api_url,
            token,
            content,
        }
    }

    pub fn add_run(&self, run: Run) {
        self.content.lock().unwrap().runs.push(run);
    }

    pub fn add_artifact(&self, artifact: Artifact) {
        self.content.lock().unwrap().artifacts.push(artifact);
    }

    /// The requests answered so far, API and storage.
    pub fn seen(&self) -> Vec<Seen> {
        self.content.lock().unwrap().seen.clone()
    }
}

/// A ZIP archive of one file, as `actions/upload-artifact` makes an artifact of `path: <file>`.
pub fn zip_of(file_name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file(file_name, options).unwrap();
    zip.write_all(bytes).unwrap();
    zip.finish().unwrap().into_inner()
}

/// The files of a ZIP archive, by name.
pub fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut entry = zip.by_index(i).unwrap();
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut out).unwrap();
            (entry.name().to_owned(), out)
        })
        .collect()
}

/// The request line's path and the `Authorization` header; the rest of the head is read and dropped.
fn read_head(stream: &TcpStream) -> Option<(String, Option<String>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut authorization = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_owned());
            }
        }
    }
    Some((path, authorization))
}

fn answer(mut stream: TcpStream, status: &str, headers: &str, body: &[u8]) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(body);
}

fn json_answer(stream: TcpStream, status: &str, body: &Value) {
    answer(
        stream,
        status,
        "Content-Type: application/json\r\n",
        body.to_string().as_bytes(),
    );
}

fn serve_api(stream: TcpStream, content: &Mutex<Content>, token: &str, storage_url: &str) {
    let Some((path, authorization)) = read_head(&stream) else {
        return;
    };
    let mut content = content.lock().unwrap();
    content.seen.push(Seen {
        path: path.clone(),
        authorization: authorization.clone(),
    });
    if authorization.as_deref() != Some(&format!("Bearer {token}")) {
        return json_answer(stream, "401 Unauthorized", &json!({"message": "Bad credentials"}));
    }
    let not_found = json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"});
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["repos", owner, name, "actions", "runs", id] => {
            let repository = format!("{owner}/{name}");
            let run = content
                .runs
                .iter()
                .find(|r| r.id.to_string() == *id && r.repository.eq_ignore_ascii_case(&repository));
            match run {
                Some(run) => json_answer(stream, "200 OK", &run_json(run)),
                None => json_answer(stream, "404 Not Found", &not_found),
            }
        }
        ["repos", owner, name, "actions", "artifacts", id, rest @ ..] => {
            let repository = format!("{owner}/{name}");
            let artifact = content.artifacts.iter().find(|a| {
                a.id.to_string() == *id
                    && content
                        .runs
                        .iter()
                        .any(|r| r.id == a.run_id && r.repository.eq_ignore_ascii_case(&repository))
            });
            match (artifact, rest) {
                (Some(artifact), []) => json_answer(
                    stream,
                    "200 OK",
                    &json!({
                        "id": artifact.id, "node_id": "MDg6QXJ0aWZhY3Q=", "name": artifact.name,
                        "size_in_bytes": artifact.bytes.len(), "expired": false,
                        "archive_download_url": format!("/repos/{repository}/actions/artifacts/{}/zip", artifact.id),
                        "workflow_run": {"id": artifact.run_id, "head_sha": "0123abcd"},
                    }),
                ),
                (Some(artifact), ["zip"]) => answer(
                    stream,
                    "302 Found",
                    &format!("Location: {storage_url}/blob/{}?sig=signed-url\r\n", artifact.id),
                    b"",
                ),
                _ => json_answer(stream, "404 Not Found", &not_found),
            }
        }
        _ => json_answer(stream, "404 Not Found", &not_found),
    }
}

fn run_json(run: &Run) -> Value {
    let (owner, _) = run.repository.split_once('/').unwrap();
    json!({
        "id": run.id, "name": "release", "head_branch": run.head_branch, "head_sha": run.head_sha,
        "path": ".github/workflows/release.yml", "run_number": 7, "run_attempt": 1, "event": "push",
        "status": "in_progress",
        "html_url": format!("https://github.com/{}/actions/runs/{}", run.repository, run.id),
        "actor": {"login": "octocat", "id": 1},
        "repository": {"id": 4242, "full_name": run.repository, "owner": {"login": owner, "id": 42}},
    })
}

fn serve_storage(stream: TcpStream, content: &Mutex<Content>) {
    let Some((path, authorization)) = read_head(&stream) else {
        return;
    };
    let mut content = content.lock().unwrap();
    content.seen.push(Seen {
        path: path.clone(),
        authorization,
    });
    let id = path
        .strip_prefix("/blob/")
        .and_then(|rest| rest.split('?').next())
        .unwrap_or_default();
    match content.artifacts.iter().find(|a| a.id.to_string() == id) {
        Some(artifact) => answer(
            stream,
            "200 OK",
            "Content-Type: application/zip\r\n",
            &artifact.bytes.clone(),
        ),
        None => answer(stream, "404 Not Found", "", b""),
    }
}
