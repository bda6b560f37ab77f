//! Helpers shared by the integration tests: the repository root, files in temp folders, and
//! the real `userload` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (where Cargo.toml is).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes `text` to `dir/name` (creating folders), readable by its owner only.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

/// The `userload` binary to run in `dir` with `args`; no colours, no inherited config.
pub fn userload_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_userload"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("USERLOAD_CONFIG")
        .env_remove("USERLOAD_LOG")
        .env_remove("USERLOAD_LOG_LEVEL")
        .env_remove("USERLOAD_LOG_FORMAT")
        .env_remove("USERLOAD_LOG_FILE")
        .env_remove("AZURE_FEDERATED_TOKEN_FILE")
        .env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_TENANT_ID")
        .env_remove("IDENTITY_ENDPOINT")
        .env_remove("IDENTITY_HEADER")
        .env("NO_COLOR", "1");
    command
}

/// Runs the `userload` binary in `dir` with `args`; no colours, no inherited config.
pub fn userload(dir: &Path, args: &[&str]) -> Output {
    userload_command(dir, args).output().unwrap()
}

/// The JSON file `name` in `dir` (a run's `--report`), read whole.
pub fn json_file(dir: &Path, name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// What a finished command printed: (exit code, stdout, stderr).
pub fn outcome(output: &Output) -> (i32, String, String) {
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A synthetic tenant in the Graph simulator, an empty Snipe-IT simulator, and a folder
/// with a config that syncs one to the other with the Snipe-IT preset and its shipped
/// mapping (`state.db` beside it, disabled users created too).
pub struct SnipeItWorld {
    /// The tenant.
    pub graph: sim::graph::GraphSim,
    /// The asset system.
    pub snipe: sim::snipeit::SnipeItSim,
    /// The config's folder.
    pub dir: tempfile::TempDir,
}

impl SnipeItWorld {
    /// `users` synthetic users from `seed`; `source_lines` and `sync_lines` are added to
    /// `[source]` and `[sync]`.
    pub fn new(users: usize, seed: u64, source_lines: &str, sync_lines: &str) -> SnipeItWorld {
        use sim::graph as graph_sim;
        let graph =
            graph_sim::GraphSim::start(sim::tenant::Tenant::synthetic(users, seed)).unwrap();
        let snipe = sim::snipeit::SnipeIt::start().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = graph.url();
        let text = format!(
            "[source]\ntenant_id = {}\nclient_id = {}\nsecret = {}\nauthority = {url}\n\
             domain = {url}\n{source_lines}\n[target]\ntype = rest\npreset = snipeit\n\
             url = {}\ntoken = {}\n[sync]\nstate = state.db\ncreate_disabled = true\n\
             {sync_lines}\n",
            graph_sim::TENANT_ID,
            graph_sim::CLIENT_ID,
            graph_sim::SECRET,
            snipe.url(),
            sim::snipeit::TOKEN,
        );
        write(dir.path(), "userload.ini", &text);
        SnipeItWorld { graph, snipe, dir }
    }

    /// Runs `userload ARGS --config userload.ini`: exit code, stdout, stderr.
    pub fn userload(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = args.to_vec();
        all.extend(["--config", "userload.ini"]);
        outcome(&userload(self.dir.path(), &all))
    }
}
