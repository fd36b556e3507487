//! What every Concord process shares: layered typed configuration, telemetry,
//! the shutdown tree, and the agency's identity (keys and certificates),
//! including the dev PKI that creates them.

pub mod admin;
pub mod config;
pub mod directory;
pub mod failpoint;
pub mod identity;
pub mod metrics;
pub mod pki;
pub mod service;
pub mod shutdown;
pub mod telemetry;

/// The files (not folders) directly in `dir`, sorted by name: the order a
/// service reads a drop folder in.
pub fn files_in(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut names: Vec<std::path::PathBuf> =
        std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    names.sort();
    Ok(names)
}
