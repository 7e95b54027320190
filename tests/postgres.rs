//! A PostgreSQL server for tests: [`database`] gives a fresh, empty database per call.
//!
//! Where the server comes from:
//! - `DATABASE_URL` set: that server. Each call creates a database of a unique name on
//!   it (`CREATE DATABASE`, through `psql`, which must be installed) and returns the URL
//!   with that name in place of the original database. Those databases are left behind;
//!   they are named `order_core_test_*`.
//! - Otherwise, one throwaway cluster per test process, started on the first call from
//!   the system's `initdb` and `pg_ctl` (on `PATH`, else the newest
//!   `/usr/lib/postgresql/<version>/bin`): a new folder under the temporary directory,
//!   `trust` authentication for the superuser `postgres`, listening on 127.0.0.1 at a
//!   port that was free a moment before (a new one is tried if it was taken meanwhile),
//!   its socket in that folder, and durability off (`fsync`, `synchronous_commit`,
//!   `full_page_writes`: nothing here outlives the process). PostgreSQL refuses to run
//!   as root: as root, `initdb` and `pg_ctl` run as the `postgres` user
//!   (`runuser -u postgres --`), in a folder owned by it.
//! - Neither PostgreSQL nor `DATABASE_URL`: the call panics and says how to install it.
//!   Never a silent skip.
//!
//! Cleanup: a test binary has no exit hook, and statics are never dropped, so before
//! `initdb` runs a detached watchdog is started (`setsid sh -c ...`, ignoring SIGINT,
//! SIGHUP and SIGTERM): it checks every second whether the test process is still alive
//! (`kill -0`) and, once it is gone, however it ended (success, panic, Ctrl-C, SIGKILL),
//! stops the cluster (`pg_ctl stop -m immediate`) and deletes the folder. The cluster
//! therefore outlives the process by at most about a second.
//!
//! One cluster per process: under `cargo test` that is one for the whole `integration`
//! binary; a runner with a process per test (nextest) starts one per test (about a
//! second each).
//!
//! This module uses the standard library only (it runs the PostgreSQL programs), so
//! the `tests` library needs no database driver.

use std::ffi::OsStr;
use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The URL of a new, empty database (not migrated), e.g.
/// `postgres://postgres@127.0.0.1:40123/order_core_test_4242_1700000000_7`.
///
/// Blocks the calling thread while it works (on the first call, while the cluster
/// starts, about a second; then a `CREATE DATABASE`, tens of milliseconds): call it
/// when a test sets up, not from tasks that must make progress meanwhile.
pub async fn database() -> String {
    database_blocking()
}

/// [`database`] for synchronous callers (tests that run `orderctl` as a process).
pub fn database_blocking() -> String {
    let server = match SERVER.get_or_init(Server::find) {
        Ok(server) => server,
        Err(problem) => panic!("{problem}"),
    };
    let name = unique_name();
    create_database(&server.psql, &server.admin_url, &name);
    with_database(&server.admin_url, &name)
}

/// How long the throwaway cluster took to start (`initdb` and `pg_ctl start`), or
/// `None` when the server is `DATABASE_URL`'s (or none was asked for yet).
pub fn cluster_startup() -> Option<Duration> {
    match SERVER.get() {
        Some(Ok(server)) => server.cluster.as_ref().map(|cluster| cluster.started_in),
        _ => None,
    }
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

/// Where databases are created.
#[derive(Debug)]
struct Server {
    /// A URL that may `CREATE DATABASE`.
    admin_url: String,
    psql: PathBuf,
    /// The throwaway cluster, when this process started one.
    cluster: Option<Cluster>,
}

#[derive(Debug)]
struct Cluster {
    started_in: Duration,
}

const INSTALL: &str = "Install PostgreSQL (Debian/Ubuntu: `apt-get install postgresql`; \
     Fedora: `dnf install postgresql-server`; macOS: `brew install postgresql`), or set \
     DATABASE_URL=postgres://USER:PASSWORD@HOST:PORT/DATABASE to a server where USER may \
     CREATE DATABASE.";

impl Server {
    fn find() -> Result<Server, String> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => {
                let psql = find_program("psql").ok_or_else(|| {
                    "DATABASE_URL is set, and creating a test database on it needs `psql`, \
                     which is not installed. Install the PostgreSQL client (Debian/Ubuntu: \
                     `apt-get install postgresql-client`)."
                        .to_owned()
                })?;
                Ok(Server {
                    admin_url: url,
                    psql,
                    cluster: None,
                })
            }
            _ => start_cluster(),
        }
    }
}

/// `initdb`, then `pg_ctl start` on a free port, as described in the module's
/// documentation.
fn start_cluster() -> Result<Server, String> {
    let started = Instant::now();
    let bin = find_bin_dir().ok_or_else(|| {
        format!(
            "These tests need PostgreSQL, and none was found: no `initdb` and `pg_ctl` on \
             PATH nor in /usr/lib/postgresql/<version>/bin. {INSTALL}"
        )
    })?;
    let psql = Some(bin.join("psql"))
        .filter(|psql| psql.is_file())
        .or_else(|| find_program("psql"))
        .ok_or_else(|| {
            format!(
                "found {} but no `psql` next to it. {INSTALL}",
                bin.display()
            )
        })?;
    let as_postgres = running_as_root();
    if as_postgres && !succeeds(Command::new("id").args(["-u", "postgres"])) {
        return Err(format!(
            "these tests run as root, and PostgreSQL refuses to run as root, but there is no \
             `postgres` user to run it as. Create one (`useradd --system postgres`), run the \
             tests as another user, or set DATABASE_URL. {INSTALL}"
        ));
    }

    let dir = std::env::temp_dir().join(format!(
        "order-core-pg-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |t| t.as_nanos())
    ));
    let data = dir.join("data");
    let sockets = dir.join("sockets");
    fs::create_dir_all(&sockets)
        .map_err(|e| format!("cannot create {}: {e}", sockets.display()))?;
    // From here on, whatever happens, the folder goes when the process does.
    start_watchdog(&dir, &bin.join("pg_ctl"), &data, as_postgres)?;
    if as_postgres {
        run(Command::new("chown")
            .args([OsStr::new("-R"), OsStr::new("postgres:")])
            .arg(&dir))?;
    }

    run(pg_command(&bin, "initdb", as_postgres, &dir)
        .arg("-D")
        .arg(&data)
        .args([
            "--username=postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]))?;

    let log = dir.join("server.log");
    let mut last_problem = String::new();
    for _ in 0..5 {
        let port = free_port()?;
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={} \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=500",
            sh_quote(&sockets.to_string_lossy())
        );
        let started_server = pg_command(&bin, "pg_ctl", as_postgres, &dir)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .output();
        match started_server {
            Ok(output) if output.status.success() => {
                let started_in = started.elapsed();
                eprintln!(
                    "tests::postgres: started a throwaway PostgreSQL cluster ({}) at \
                     127.0.0.1:{port} in {started_in:.2?}; folder {}",
                    bin.display(),
                    dir.display()
                );
                return Ok(Server {
                    admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                    psql,
                    cluster: Some(Cluster { started_in }),
                });
            }
            Ok(output) => {
                let log = fs::read_to_string(&log).unwrap_or_default();
                last_problem = format!("{}\n{log}", describe(&output));
                // The port was taken between our probe and the server's bind: try another.
                if !log.contains("could not bind") && !log.contains("already in use") {
                    break;
                }
            }
            Err(e) => return Err(format!("cannot run pg_ctl: {e}")),
        }
    }
    Err(format!(
        "the throwaway PostgreSQL cluster in {} did not start:\n{last_problem}",
        dir.display()
    ))
}

/// Starts the detached process that stops the cluster and deletes `dir` once this
/// process is gone.
fn start_watchdog(dir: &Path, pg_ctl: &Path, data: &Path, as_postgres: bool) -> Result<(), String> {
    let run_as = if as_postgres {
        "runuser -u postgres -- "
    } else {
        ""
    };
    let script = format!(
        "trap '' INT HUP TERM; \
         while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         {run_as}{pg_ctl} -D {data} stop -m immediate >/dev/null 2>&1; \
         rm -rf {dir}",
        pid = std::process::id(),
        pg_ctl = sh_quote(&pg_ctl.to_string_lossy()),
        data = sh_quote(&data.to_string_lossy()),
        dir = sh_quote(&dir.to_string_lossy()),
    );
    // In a session of its own where `setsid` exists, so that a signal to the test's
    // process group (Ctrl-C, a CI timeout) does not reach it; in the background either
    // way, so that this shell returns at once and the watchdog is adopted by init.
    let launcher = format!(
        "if command -v setsid >/dev/null 2>&1; then setsid sh -c {script} {quiet} & \
         else sh -c {script} {quiet} & fi",
        quiet = "</dev/null >/dev/null 2>&1",
        script = sh_quote(&script)
    );
    run(Command::new("sh").arg("-c").arg(launcher))
}

/// `bin/program`, as the `postgres` user when `as_postgres`, in `dir`.
fn pg_command(bin: &Path, program: &str, as_postgres: bool, dir: &Path) -> Command {
    let mut command = if as_postgres {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(bin.join(program));
        command
    } else {
        Command::new(bin.join(program))
    };
    command.current_dir(dir).stdin(Stdio::null());
    command
}

/// `CREATE DATABASE name` on the server at `admin_url`.
fn create_database(psql: &Path, admin_url: &str, name: &str) {
    let output = Command::new(psql)
        .args([
            "--no-psqlrc",
            "--quiet",
            "--set=ON_ERROR_STOP=1",
            "--dbname",
        ])
        .arg(admin_url)
        .arg("--command")
        .arg(format!("CREATE DATABASE \"{name}\""))
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .output();
    match output {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "cannot create the test database `{name}` on {}: {}",
            redact(admin_url),
            describe(&output)
        ),
        Err(e) => panic!("cannot run {}: {e}", psql.display()),
    }
}

/// `url` naming database `name` instead of its own; its query string is kept.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (location, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
    let authority = location.split('/').next().unwrap_or_default();
    format!("{scheme}://{authority}/{name}{query}")
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(start), Some(at)) if start < at => {
            let userinfo = &url[start + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..start + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// `order_core_test_<pid>_<seconds>_<n>`: unique on a shared server across runs and
/// processes.
fn unique_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "order_core_test_{}_{}_{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |t| t.as_secs()),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The folder holding `initdb` and `pg_ctl`: where `initdb` on PATH really lives (it
/// is often a symbolic link), else the newest `/usr/lib/postgresql/<version>/bin`.
fn find_bin_dir() -> Option<PathBuf> {
    let holds_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(initdb) = on_path("initdb") {
        let real = fs::canonicalize(&initdb).unwrap_or(initdb);
        if let Some(dir) = real.parent().filter(|dir| holds_both(dir)) {
            return Some(dir.to_path_buf());
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| holds_both(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// `program` on PATH, else in the newest `/usr/lib/postgresql/<version>/bin`.
fn find_program(program: &str) -> Option<PathBuf> {
    on_path(program).or_else(|| {
        let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let version = entry.file_name().to_str()?.parse().ok()?;
                Some((version, entry.path().join("bin").join(program)))
            })
            .filter(|(_, path)| path.is_file())
            .collect();
        found.sort();
        found.pop().map(|(_, path)| path)
    })
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Whether this process's effective user is root: from `/proc/self/status`, else
/// `id -u`.
fn running_as_root() -> bool {
    if let Ok(status) = fs::read_to_string("/proc/self/status")
        && let Some(uids) = status.lines().find_map(|line| line.strip_prefix("Uid:"))
    {
        // Real, effective, saved and file system user ids.
        return uids.split_whitespace().nth(1) == Some("0");
    }
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// A port on 127.0.0.1 that nobody listened on a moment ago.
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("cannot find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed: {}", describe(&output)))
    }
}

fn succeeds(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `text` as one POSIX shell word.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_another_database() {
        assert_eq!(
            with_database("postgres://u:p@db.example:5432/app?sslmode=require", "t1"),
            "postgres://u:p@db.example:5432/t1?sslmode=require"
        );
        assert_eq!(
            with_database("postgresql://localhost", "t2"),
            "postgresql://localhost/t2"
        );
        assert_eq!(with_database("postgres://u@h/", "t3"), "postgres://u@h/t3");
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("postgres://u:secret@h:1/d"),
            "postgres://u:***@h:1/d"
        );
        assert_eq!(redact("postgres://u@h/d"), "postgres://u@h/d");
    }

    #[test]
    fn shell_words_survive_quotes() {
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn names_are_unique() {
        assert_ne!(unique_name(), unique_name());
    }
}
