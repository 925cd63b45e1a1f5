//! ClickHouse's HTTP interface: a statement in a POST body, an answer in
//! `TabSeparated`. reqwest is already here for GitHub, and this is all the
//! service needs: the official `clickhouse` crate speaks RowBinary, which
//! servers before 22.6 mishandle in places (and 18.16 cannot validate), for
//! a handful of statements whose answers are a few numbers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Url;

use crate::config::ClickHouseSettings;

/// Longest a statement may take before the request is given up: a metric
/// over 100 M events takes well under a second, a migration a few.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest answer read into memory (streamed answers excepted): the
/// service's answers are a few rows, so more means something is wrong.
const MAX_ANSWER_BYTES: usize = 16 << 20;
/// Largest statement text sent (an insert's lookup of 20,000 ids is ~260 KB;
/// the server's own default of 256 KiB is raised to this per request).
pub const MAX_QUERY_BYTES: usize = 32 << 20;

/// Failures of the ClickHouse store. Messages never hold the password.
#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error("cannot reach ClickHouse at {endpoint}: {message}")]
    Unreachable { endpoint: String, message: String },
    #[error("ClickHouse answered {status}: {message}")]
    Server { status: u16, message: String },
    #[error("unexpected answer from ClickHouse: {0}")]
    Answer(String),
    #[error("ClickHouse answer larger than the {MAX_ANSWER_BYTES}-byte bound")]
    TooLarge,
    #[error("migrating the ClickHouse schema: {0}")]
    Migration(String),
    #[error("{0}")]
    Busy(String),
}

impl ClickHouseError {
    /// The server could not be reached, or the lock not taken in time.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            ClickHouseError::Unreachable { .. } | ClickHouseError::Busy(_)
        )
    }

    /// The server's error code (`Code: 57, ...`), when it sent one.
    pub fn server_code(&self) -> Option<u32> {
        match self {
            ClickHouseError::Server { message, .. } => message
                .strip_prefix("Code: ")
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|code| code.parse().ok()),
            _ => None,
        }
    }
}

/// The environment variable naming a file to which every statement sent to
/// ClickHouse and its answer are appended (JSON lines): for replaying the
/// same statements on another ClickHouse release and comparing
/// (`tests/contract/chdb.sh`), or for seeing what the service asks.
pub const TRANSCRIPT_ENV: &str = "GHMETRICS_CLICKHOUSE_TRANSCRIPT";

/// One server's HTTP endpoint and the credentials for it.
#[derive(Clone)]
pub struct Endpoint {
    http: reqwest::Client,
    url: Url,
    user: String,
    password: Option<crate::config::Secret>,
    transcript: Option<Arc<Mutex<std::fs::File>>>,
    /// [`MAX_ANSWER_BYTES`], smaller in tests.
    max_answer_bytes: usize,
}

/// One line of a transcript.
#[derive(serde::Serialize)]
struct Exchange<'a> {
    sql: &'a str,
    /// An INSERT's rows.
    rows: Option<&'a str>,
    answer: &'a str,
}

impl Endpoint {
    pub fn new(settings: &ClickHouseSettings, url: Url) -> Endpoint {
        Endpoint {
            http: client(),
            url,
            user: settings.user.clone(),
            password: settings.password.clone(),
            max_answer_bytes: MAX_ANSWER_BYTES,
            transcript: std::env::var_os(TRANSCRIPT_ENV).and_then(|path| {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path);
                match file {
                    Ok(file) => Some(Arc::new(Mutex::new(file))),
                    Err(error) => {
                        tracing::warn!(%error, "cannot open the ClickHouse transcript");
                        None
                    }
                }
            }),
        }
    }

    /// Appends one exchange to the transcript, if there is one.
    fn record(&self, sql: &str, rows: Option<&[u8]>, answer: &str) {
        let Some(transcript) = &self.transcript else {
            return;
        };
        let exchange = Exchange {
            sql,
            rows: rows.map(|r| std::str::from_utf8(r).unwrap_or("")),
            answer,
        };
        if let Ok(mut line) = serde_json::to_vec(&exchange) {
            line.push(b'\n');
            let mut file = transcript.lock().unwrap_or_else(|e| e.into_inner());
            let _ = std::io::Write::write_all(&mut *file, &line);
        }
    }

    /// `host:port`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{}:{}",
            self.url.host_str().unwrap_or_default(),
            self.url.port_or_known_default().unwrap_or_default()
        )
    }

    /// Runs `sql` (with `body`, for an INSERT's rows) and returns the whole answer.
    pub async fn run(
        &self,
        sql: &str,
        settings: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<String, ClickHouseError> {
        let recorded = self.transcript.as_ref().and(body.clone());
        let mut response = self.send(sql, settings, body).await?;
        let mut answer = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.unreachable(&e))? {
            if answer.len() + chunk.len() > self.max_answer_bytes {
                return Err(ClickHouseError::TooLarge);
            }
            answer.extend_from_slice(&chunk);
        }
        let answer = String::from_utf8(answer)
            .map_err(|_| ClickHouseError::Answer("not UTF-8".to_owned()))?;
        self.record(sql, recorded.as_deref(), &answer);
        Ok(answer)
    }

    /// Runs `sql` and hands each line of the answer to `line` as it arrives,
    /// until `line` returns false. Memory holds one chunk and one line.
    pub async fn for_each_line(
        &self,
        sql: &str,
        mut line: impl FnMut(&str) -> Result<bool, ClickHouseError>,
    ) -> Result<(), ClickHouseError> {
        let mut response = self.send(sql, &[], None).await?;
        let mut pending: Vec<u8> = Vec::new();
        let mut recorded = self.transcript.as_ref().map(|_| String::new());
        while let Some(chunk) = response.chunk().await.map_err(|e| self.unreachable(&e))? {
            pending.extend_from_slice(&chunk);
            let mut start = 0;
            while let Some(end) = memchr::memchr(b'\n', &pending[start..]) {
                let text = std::str::from_utf8(&pending[start..start + end])
                    .map_err(|_| ClickHouseError::Answer("not UTF-8".to_owned()))?;
                if let Some(recorded) = &mut recorded {
                    recorded.push_str(text);
                    recorded.push('\n');
                }
                if !line(text)? {
                    return Ok(());
                }
                start += end + 1;
            }
            pending.drain(..start);
            if pending.len() > self.max_answer_bytes {
                return Err(ClickHouseError::TooLarge);
            }
        }
        if let Some(recorded) = recorded {
            self.record(sql, None, &recorded);
        }
        Ok(())
    }

    async fn send(
        &self,
        sql: &str,
        settings: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<reqwest::Response, ClickHouseError> {
        let mut url = self.url.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("max_query_size", &MAX_QUERY_BYTES.to_string());
            for (name, value) in settings {
                query.append_pair(name, value);
            }
            // An INSERT's rows follow the statement in the body; the statement
            // itself goes in the URL.
            if body.is_some() {
                query.append_pair("query", sql);
            }
        }
        let mut request = self.http.post(url).timeout(STATEMENT_TIMEOUT);
        request = match body {
            Some(rows) => request.body(rows),
            None => request.body(sql.to_owned()),
        };
        request = request.basic_auth(&self.user, self.password.as_ref().map(|p| p.expose()));
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let mut message: String = text.trim().chars().take(2000).collect();
        if let Some(password) = &self.password {
            message = message.replace(password.expose(), "***");
        }
        Err(ClickHouseError::Server {
            status: status.as_u16(),
            message,
        })
    }

    fn unreachable(&self, error: &reqwest::Error) -> ClickHouseError {
        ClickHouseError::Unreachable {
            endpoint: self.describe(),
            // The URL holds no credential (they go in a header); kept short.
            message: error.to_string().chars().take(500).collect(),
        }
    }
}

fn client() -> reqwest::Client {
    crate::core::tls::install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreLocation;

    /// A server on 127.0.0.1:0 that answers every request with 200 and
    /// `bytes` bytes of `fill` (no newline), streamed without a length.
    async fn oversized_server(bytes: usize, fill: u8) -> Endpoint {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    let head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
                    if socket.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = vec![fill; 1 << 20];
                    let mut sent = 0;
                    while sent < bytes {
                        if socket.write_all(&chunk).await.is_err() {
                            return;
                        }
                        sent += chunk.len();
                    }
                });
            }
        });
        let Ok(StoreLocation::ClickHouse(settings)) =
            StoreLocation::parse(&format!("clickhouse://127.0.0.1:{port}/db"), None)
        else {
            panic!("not a ClickHouse URL");
        };
        Endpoint {
            // The bound of 16 MiB, scaled down so that the test sends little.
            max_answer_bytes: 1 << 20,
            ..Endpoint::new(&settings, settings.endpoint.clone())
        }
    }

    /// A server answering more than the bound (a whole answer, or one line of
    /// a streamed one) is refused once past it, not read into memory.
    #[tokio::test]
    async fn answers_past_the_bound_are_refused() {
        let endpoint = oversized_server(3 << 20, b'7').await;
        let whole = endpoint.run("SELECT 1", &[], None).await;
        assert!(matches!(whole, Err(ClickHouseError::TooLarge)), "{whole:?}");
        let mut lines = 0;
        let streamed = endpoint
            .for_each_line("SELECT 1", |_| {
                lines += 1;
                Ok(true)
            })
            .await;
        assert!(
            matches!(streamed, Err(ClickHouseError::TooLarge)),
            "{streamed:?}"
        );
        assert_eq!(lines, 0);
    }

    #[test]
    fn server_codes_are_read_from_the_message() {
        let error = ClickHouseError::Server {
            status: 500,
            message: "Code: 57, e.displayText() = DB::Exception: Table already exists".to_owned(),
        };
        assert_eq!(error.server_code(), Some(57));
    }
}
