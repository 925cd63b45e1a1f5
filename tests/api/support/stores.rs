//! The stores every store-independent test runs against: a SQLite file, and,
//! when `clickhouse-server` is installed, a ClickHouse server and a two-shard
//! ClickHouse cluster started by the tests themselves (temp directories,
//! free ports on loopback), each test in a database of its own. The cluster
//! is used twice: with each shard named (`--clickhouse-shard-url`, DDL sent to
//! each), and, when ZooKeeper is installed too (Debian's `zookeeper`), with
//! its DDL `ON CLUSTER` through ZooKeeper's queue, as production clusters do.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ghmetrics::config::{SqliteLocation, StoreLocation};
use ghmetrics::store::Store;

/// One store for one test; the SQLite file lives as long as this.
pub struct TestStore {
    pub name: &'static str,
    pub location: StoreLocation,
    _dir: Option<tempfile::TempDir>,
}

impl TestStore {
    pub fn sqlite() -> TestStore {
        let dir = tempfile::tempdir().unwrap();
        TestStore {
            name: "sqlite",
            location: StoreLocation::Sqlite(SqliteLocation::File(dir.path().join("events.db"))),
            _dir: Some(dir),
        }
    }

    /// Another handle on the same store, as another process would have.
    pub async fn open(&self) -> Store {
        Store::open(&self.location).await.unwrap()
    }

    /// [`TestStore::open`], then `events` stored as the global feed brings them.
    pub async fn open_with(&self, events: Vec<ghmetrics::core::event::Event>) -> Store {
        let store = self.open().await;
        store
            .insert_events(events, ghmetrics::store::Origin::GlobalFeed)
            .await
            .unwrap();
        store
    }

    /// Runs `sql` as an analyst would, on the SQLite file or the store's
    /// server (the cluster's first shard), returning the answer as
    /// tab-separated text.
    pub async fn sql(&self, sql: &str) -> String {
        match &self.location {
            StoreLocation::ClickHouse(settings) => {
                sql_on(settings.endpoint.port().unwrap(), sql).await
            }
            StoreLocation::Sqlite(SqliteLocation::File(path)) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                let mut statement = conn.prepare(sql).unwrap();
                let columns = statement.column_count();
                let mut rows = statement.query([]).unwrap();
                let mut text = String::new();
                while let Some(row) = rows.next().unwrap() {
                    let fields: Vec<String> = (0..columns)
                        .map(|i| match row.get_ref(i).unwrap() {
                            rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                            rusqlite::types::ValueRef::Text(t) => {
                                String::from_utf8_lossy(t).into_owned()
                            }
                            other => format!("{other:?}"),
                        })
                        .collect();
                    text += &fields.join("\t");
                    text.push('\n');
                }
                text
            }
            StoreLocation::Sqlite(SqliteLocation::Memory) => panic!("an in-memory store"),
        }
    }

    /// How an analyst names `table`: with the database on ClickHouse.
    pub fn table(&self, table: &str) -> String {
        match &self.location {
            StoreLocation::ClickHouse(settings) => format!("{}.{table}", settings.database),
            StoreLocation::Sqlite(_) => table.to_owned(),
        }
    }

    /// The database's name (ClickHouse).
    pub fn database(&self) -> String {
        match &self.location {
            StoreLocation::ClickHouse(settings) => settings.database.clone(),
            StoreLocation::Sqlite(_) => panic!("not a ClickHouse store"),
        }
    }

    /// The `--store` value (and cluster flags) for the binary.
    pub fn cli_args(&self) -> Vec<String> {
        match &self.location {
            StoreLocation::Sqlite(SqliteLocation::File(path)) => {
                vec!["--db".to_owned(), path.display().to_string()]
            }
            StoreLocation::Sqlite(SqliteLocation::Memory) => {
                vec!["--db".to_owned(), ":memory:".to_owned()]
            }
            StoreLocation::ClickHouse(settings) => {
                let mut args = vec![
                    "--store".to_owned(),
                    format!(
                        "clickhouse://{}:{}/{}",
                        settings.endpoint.host_str().unwrap(),
                        settings.endpoint.port().unwrap(),
                        settings.database
                    ),
                ];
                if let Some(cluster) = &settings.cluster {
                    args.extend(["--clickhouse-cluster".to_owned(), cluster.clone()]);
                    for shard in &settings.shard_endpoints {
                        args.extend(["--clickhouse-shard-url".to_owned(), shard.to_string()]);
                    }
                }
                args
            }
        }
    }
}

/// Runs `sql` on the ClickHouse server at `http_port`.
pub async fn sql_on(http_port: u16, sql: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{http_port}/"))
        .body(sql.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{sql}: {text}");
    text
}

/// Every store a test should pass on: SQLite always; ClickHouse (one server
/// and a two-shard cluster) when `clickhouse-server` is installed.
pub fn every_store() -> Vec<TestStore> {
    std::iter::once(TestStore::sqlite())
        .chain(clickhouse_stores())
        .collect()
}

/// The ClickHouse stores alone: a fresh database on the single server and
/// one on the cluster, twice with ZooKeeper (none when not installed).
pub fn clickhouse_stores() -> Vec<TestStore> {
    clickhouse()
        .map(|servers| {
            [
                Some(servers.single()),
                Some(servers.cluster()),
                servers.cluster_on_cluster(),
            ]
            .into_iter()
            .flatten()
            .collect()
        })
        .unwrap_or_default()
}

/// Three servers shared by the tests of this binary: one alone, two as the
/// shards of cluster `ghm_two`. Stopped when the test binary exits.
pub struct ClickHouseServers {
    single: Server,
    shards: [Server; 2],
    /// The shards' ZooKeeper, for `ON CLUSTER` DDL, when installed.
    keeper: Option<Server>,
}

struct Server {
    /// The HTTP port (ZooKeeper: its client port).
    http_port: u16,
    /// The shell that runs the server and stops it after this process.
    _watchdog: std::process::Child,
}

/// The name of the two-shard cluster in the servers' `remote_servers`.
pub const CLUSTER: &str = "ghm_two";

static SERVERS: OnceLock<Option<ClickHouseServers>> = OnceLock::new();
static NEXT_DATABASE: AtomicU32 = AtomicU32::new(0);

/// The shared servers, started on first use; `None` (said once) when
/// `clickhouse-server` is not installed.
pub fn clickhouse() -> Option<&'static ClickHouseServers> {
    SERVERS
        .get_or_init(|| {
            let found = find_binary("clickhouse-server");
            // CI sets this, so a broken install fails instead of skipping.
            if found.is_none() && std::env::var_os("GHMETRICS_REQUIRE_CLICKHOUSE").is_some() {
                panic!("GHMETRICS_REQUIRE_CLICKHOUSE is set but clickhouse-server is not installed");
            }
            let Some(binary) = found else {
                say("skipped: clickhouse-server not installed (the ClickHouse runs of the store tests)");
                return None;
            };
            let keeper = find_zookeeper();
            if keeper.is_none() {
                if std::env::var_os("GHMETRICS_REQUIRE_CLICKHOUSE").is_some() {
                    panic!("GHMETRICS_REQUIRE_CLICKHOUSE is set but ZooKeeper is not installed");
                }
                say("skipped: zookeeper not installed (the ON CLUSTER runs of the ClickHouse store tests)");
            }
            Some(ClickHouseServers::start(&binary, keeper))
        })
        .as_ref()
}

/// One line straight to stderr: the test harness would hide an eprintln.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// How to run ZooKeeper: `java` and Debian's `zookeeper` jar.
fn find_zookeeper() -> Option<(PathBuf, PathBuf)> {
    let jar = PathBuf::from("/usr/share/java/zookeeper.jar");
    Some((find_binary("java")?, jar.is_file().then_some(jar)?))
}

fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// `n` distinct free ports (all held until all are chosen).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

impl ClickHouseServers {
    fn start(binary: &Path, zookeeper: Option<(PathBuf, PathBuf)>) -> ClickHouseServers {
        let root = tempfile::Builder::new()
            .prefix("ghmetrics-clickhouse-")
            .tempdir()
            .unwrap()
            .keep();
        let ports = free_ports(10);
        let keeper = zookeeper.map(|(java, jar)| start_zookeeper(&java, &jar, &root, ports[9]));
        let keeper_port = keeper.as_ref().map(|k| k.http_port);
        let ports: Vec<[u16; 3]> = ports[..9].chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
        let shard_tcp = [ports[1][1], ports[2][1]];
        let servers: Vec<Server> = ports
            .iter()
            .enumerate()
            .map(|(i, &[http, tcp, interserver])| {
                let dir = root.join(format!("server-{i}"));
                let ports = [http, tcp, interserver];
                start_server(binary, &dir, &root, ports, shard_tcp, keeper_port)
            })
            .collect();
        for (i, server) in servers.iter().enumerate() {
            wait_until_up(server.http_port, &root.join(format!("server-{i}")));
        }
        let mut servers = servers.into_iter();
        ClickHouseServers {
            single: servers.next().unwrap(),
            shards: [servers.next().unwrap(), servers.next().unwrap()],
            keeper,
        }
    }

    /// A fresh database on the single server.
    pub fn single(&self) -> TestStore {
        let url = format!(
            "clickhouse://127.0.0.1:{}/{}",
            self.single.http_port,
            fresh_database()
        );
        TestStore {
            name: "clickhouse",
            location: StoreLocation::parse(&url, None).unwrap(),
            _dir: None,
        }
    }

    /// A fresh database on the two-shard cluster, reached through shard 1,
    /// with each shard named (DDL sent to each, no ZooKeeper needed).
    pub fn cluster(&self) -> TestStore {
        let mut store = self.cluster_through_shard_1("clickhouse cluster");
        if let StoreLocation::ClickHouse(settings) = &mut store.location {
            settings.shard_endpoints = self
                .shards
                .iter()
                .map(|s| {
                    format!("http://127.0.0.1:{}/", s.http_port)
                        .parse()
                        .unwrap()
                })
                .collect();
        }
        store
    }

    /// A fresh database on the two-shard cluster, reached through shard 1,
    /// its DDL `ON CLUSTER` through ZooKeeper (`None` without ZooKeeper).
    pub fn cluster_on_cluster(&self) -> Option<TestStore> {
        self.keeper.as_ref()?;
        Some(self.cluster_through_shard_1("clickhouse cluster, ON CLUSTER"))
    }

    fn cluster_through_shard_1(&self, name: &'static str) -> TestStore {
        let url = format!(
            "clickhouse://127.0.0.1:{}/{}",
            self.shards[0].http_port,
            fresh_database()
        );
        let mut location = StoreLocation::parse(&url, None).unwrap();
        if let StoreLocation::ClickHouse(settings) = &mut location {
            settings.cluster = Some(CLUSTER.to_owned());
        }
        TestStore {
            name,
            location,
            _dir: None,
        }
    }

    /// The HTTP ports of the two shards.
    pub fn shard_ports(&self) -> [u16; 2] {
        [self.shards[0].http_port, self.shards[1].http_port]
    }
}

fn fresh_database() -> String {
    format!(
        "t{}_{}",
        std::process::id(),
        NEXT_DATABASE.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes a minimal configuration and starts one server, watched by a shell
/// that stops it (and removes `root`) once this test process is gone.
fn start_server(
    binary: &Path,
    dir: &Path,
    root: &Path,
    [http, tcp, interserver]: [u16; 3],
    shard_tcp: [u16; 2],
    keeper_port: Option<u16>,
) -> Server {
    std::fs::create_dir_all(dir).unwrap();
    let d = dir.display();
    let keeper = keeper_port.map_or_else(String::new, |port| {
        format!(
            "<zookeeper><node><host>127.0.0.1</host><port>{port}</port></node></zookeeper>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>"
        )
    });
    let config = format!(
        r#"<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/error.log</errorlog></logger>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <interserver_http_port>{interserver}</interserver_http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
  {keeper}
  <remote_servers>
    <{CLUSTER}>
      <shard><replica><host>127.0.0.1</host><port>{s1}</port></replica></shard>
      <shard><replica><host>127.0.0.1</host><port>{s2}</port></replica></shard>
    </{CLUSTER}>
  </remote_servers>
</yandex>
"#,
        s1 = shard_tcp[0],
        s2 = shard_tcp[1],
    );
    let users = r#"<yandex>
  <profiles><default></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
"#;
    std::fs::write(dir.join("config.xml"), config).unwrap();
    std::fs::write(dir.join("users.xml"), users).unwrap();
    let command = format!(
        "'{binary}' --config-file='{d}/config.xml' >'{d}/stdout.log' 2>&1",
        binary = binary.display(),
    );
    watched(&command, root, http)
}

/// A standalone ZooKeeper on `port`, its data under `root`.
fn start_zookeeper(java: &Path, jar: &Path, root: &Path, port: u16) -> Server {
    let dir = root.join("zookeeper");
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display();
    std::fs::write(
        dir.join("zoo.cfg"),
        format!(
            "tickTime=500\ndataDir={d}/data\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n4lw.commands.whitelist=srvr\n"
        ),
    )
    .unwrap();
    let command = format!(
        "'{java}' -Xmx256m -cp '{jar}' org.apache.zookeeper.server.quorum.QuorumPeerMain \
         '{d}/zoo.cfg' >'{d}/stdout.log' 2>&1",
        java = java.display(),
        jar = jar.display(),
    );
    let server = watched(&command, root, port);
    let started = Instant::now();
    // `srvr` names the mode only once the server takes sessions (ClickHouse
    // 18.16 connecting before that fails its DDL queue, then crashes on the
    // first `ON CLUSTER` statement).
    while !four_letter_word(port, "srvr").contains("Mode: standalone") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "ZooKeeper on port {port} did not start in 30 s:\n{}",
            std::fs::read_to_string(dir.join("stdout.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// Runs `command` in the background, watched by a shell that stops it (and
/// removes `root`) once this test process is gone.
fn watched(command: &str, root: &Path, port: u16) -> Server {
    let script = format!(
        "{command} & server=$!
         while kill -0 {parent} 2>/dev/null && kill -0 $server 2>/dev/null; do sleep 0.5; done
         kill $server 2>/dev/null; wait $server; rm -rf '{root}'",
        parent = std::process::id(),
        root = root.display(),
    );
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Server {
        http_port: port,
        _watchdog: watchdog,
    }
}

/// ZooKeeper's answer to a four-letter command, or "" when it does not answer.
fn four_letter_word(port: u16, word: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut answer = String::new();
    if stream.write_all(word.as_bytes()).is_ok() {
        let _ = stream.read_to_string(&mut answer);
    }
    answer
}

fn wait_until_up(http_port: u16, dir: &Path) {
    let started = Instant::now();
    loop {
        if ping(http_port) {
            return;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let log = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            panic!(
                "clickhouse-server on port {http_port} did not start in 30 s:\n{}\n{}",
                log("error.log"),
                log("stdout.log")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether the server answers `GET /ping` with `Ok.`.
fn ping(http_port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", http_port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /ping HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
}

/// The active parts of `pr_counts` on all shards of a ClickHouse store, and
/// the number of shards.
pub async fn rollup_parts(store: &TestStore) -> (u64, u64) {
    let db = store.database();
    let (table, parts, shards) = match store.name {
        "clickhouse" => ("pr_counts", "system.parts".to_owned(), 1),
        _ => (
            "pr_counts_local",
            format!("cluster({CLUSTER}, system, parts)"),
            2,
        ),
    };
    let answer = store
        .sql(&format!(
            "SELECT count() FROM {parts} WHERE database = '{db}' AND table = '{table}' AND active"
        ))
        .await;
    (answer.trim().parse().unwrap(), shards)
}
