//! The MongoDB side of the process-level harness: the MongoDB-wire server `secantusdb`
//! (`tests/py/.venv/bin/secantusd-py`, in memory) and the CRUD-compatible test service
//! (`tests/py/crud_server.py`) that stores into it. Both stop on `Drop`; a missing component
//! fails the test loudly (`scripts/install-deps` installs them).

use std::time::Duration;

use super::{repo, Proc};

fn venv_bin(name: &str) -> std::path::PathBuf {
    let bin = repo().join("tests/py/.venv/bin").join(name);
    assert!(
        bin.is_file(),
        "{} is missing: run scripts/install-deps",
        bin.display()
    );
    bin
}

/// One in-memory secantusdb server on 127.0.0.1.
pub struct Mongo {
    pub port: u16,
    pub proc: Proc,
}

impl Mongo {
    /// On a port the OS picks (read from its "listening on" log line).
    pub fn start() -> Self {
        Self::spawn(0, ":memory:")
    }

    /// On `port` (a test that needs the port before the server exists).
    pub fn start_on(port: u16) -> Self {
        Self::spawn(port, ":memory:")
    }

    /// On `port`, its data in the folder `storage` (absolute), kept when it stops: started
    /// again on the same folder, it has what it had (a fault test's restart).
    pub fn start_in(storage: &std::path::Path, port: u16) -> Self {
        Self::spawn(port, storage.to_str().unwrap())
    }

    fn spawn(port: u16, storage: &str) -> Self {
        let mut cmd = std::process::Command::new(venv_bin("secantusd-py"));
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--storage-path", storage, "--log-level", "INFO"]);
        let mut proc = Proc::spawn("secantusdb", &mut cmd);
        let log = proc.log.clone();
        let port = proc.ready("its port in the log", || {
            let log = log.lock().unwrap();
            log.iter().find_map(|l| {
                let rest = l.split("listening on 127.0.0.1:").nth(1)?;
                rest.trim().parse::<u16>().ok()
            })
        });
        Self { port, proc }
    }

    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/", self.port)
    }

    /// A `mongodb` client for checking what idgate wrote.
    pub async fn client(&self) -> mongodb::Client {
        let mut options = mongodb::options::ClientOptions::parse(self.uri())
            .await
            .unwrap();
        options.server_selection_timeout = Some(Duration::from_secs(5));
        mongodb::Client::with_options(options).unwrap()
    }
}

/// The CRUD-compatible test service, over collection `users` of database `database`.
pub struct CrudFake {
    /// The collection URL, e.g. `http://127.0.0.1:PORT/users`.
    pub url: String,
    pub proc: Proc,
}

impl CrudFake {
    /// Every request must carry `header` (`name:value`), else 401.
    pub fn start(mongo: &Mongo, database: &str, header: &str) -> Self {
        let mut cmd = std::process::Command::new(venv_bin("python"));
        cmd.arg(repo().join("tests/py/crud_server.py"))
            .args(["--mongo-uri", &mongo.uri(), "--database", database])
            .args(["--port", "0", "--require-header", header]);
        let mut proc = Proc::spawn("crud", &mut cmd);
        let line = proc.first_stdout_line();
        let v: serde_json::Value = serde_json::from_str(&line).expect("crud fake prints JSON");
        let url = v["url"].as_str().expect("url").to_owned();
        Self { url, proc }
    }
}

impl CrudFake {
    /// Like [`CrudFake::start`], with more of the fake's options (`--schema-fields …`,
    /// `--identity-index none`, …).
    pub fn start_with_args(mongo: &Mongo, database: &str, header: &str, args: &[&str]) -> Self {
        let mut cmd = std::process::Command::new(venv_bin("python"));
        cmd.arg(repo().join("tests/py/crud_server.py"))
            .args(["--mongo-uri", &mongo.uri(), "--database", database])
            .args(["--port", "0", "--require-header", header])
            .args(args);
        let mut proc = Proc::spawn("crud", &mut cmd);
        let line = proc.first_stdout_line();
        let v: serde_json::Value = serde_json::from_str(&line).expect("crud fake prints JSON");
        let url = v["url"].as_str().expect("url").to_owned();
        Self { url, proc }
    }
}

/// A users document as Mia's authentication service and CRUD service leave it (CRUD-service
/// fields, `__STATE__`, `createdAt` of `created_ms`), for identity `realm`/`provider`/`sub`.
pub fn mia_user_doc(
    id: mongodb::bson::oid::ObjectId,
    (realm, provider, sub): (&str, &str, &str),
    state: &str,
    created_ms: i64,
    groups: &[&str],
) -> mongodb::bson::Document {
    let at = mongodb::bson::DateTime::from_millis(created_ms);
    mongodb::bson::doc! {
        "_id": id,
        "realm": realm,
        "providerId": provider,
        "providerUserId": sub,
        "name": sub,
        "groups": groups,
        "__STATE__": state,
        "creatorId": "public",
        "updaterId": "public",
        "createdAt": at,
        "updatedAt": at,
    }
}
