//! Network namespaces and veth pairs, made and removed with iproute2.
//!
//! Every object lives in a namespace named `vnp-…` that this module
//! creates: the fabric's own namespace holds one end of every veth pair,
//! the endpoints' namespaces the other. The host's namespace, routes and
//! interfaces are never named in a command. A lock file records the
//! running instance; a run that finds the lock of a dead one removes what
//! that one left (its processes, then its namespaces) before it starts.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every namespace a live run makes starts with this.
pub const PREFIX: &str = "vnp-";

/// The namespace holding the fabric's ends of the veth pairs.
pub const FABRIC: &str = "vnp-fabric";

/// Where a run keeps its lock, pid files and state.
pub const RUN_DIR: &str = "/run/vnetplane";

/// Why the namespaces could not be made or entered.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("`{program}` could not be started: {source} (is it installed?)")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("another live run (pid {0}) holds the namespaces: stop it first")]
    Busy(u32),
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("entering namespace {name}: {source}")]
    Enter { name: String, source: nix::Error },
}

/// Runs a command to completion; its standard error names the failure.
pub fn run(program: &str, args: &[&str]) -> Result<String, NetnsError> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| NetnsError::Spawn {
            program: program.to_string(),
            source,
        })?;
    if !out.status.success() {
        return Err(NetnsError::Command {
            command: format!("{program} {}", args.join(" ")),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip -n NS ARGS...`.
pub fn ip_in(ns: &str, args: &[&str]) -> Result<(), NetnsError> {
    let mut a = vec!["-n", ns];
    a.extend_from_slice(args);
    run("ip", &a).map(drop)
}

/// `ip netns exec NS PROGRAM ARGS...`.
pub fn exec_in(ns: &str, program: &str, args: &[&str]) -> Result<String, NetnsError> {
    let mut a = vec!["netns", "exec", ns, program];
    a.extend_from_slice(args);
    run("ip", &a)
}

/// The namespaces named `vnp-…` that exist now.
pub fn ours() -> Result<Vec<String>, NetnsError> {
    Ok(run("ip", &["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(PREFIX))
        .map(str::to_string)
        .collect())
}

/// Kills every process inside namespace `ns`, then deletes it (its veth
/// ends, and so their peers, go with it).
pub fn remove(ns: &str) {
    if let Ok(pids) = run("ip", &["netns", "pids", ns]) {
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    let _ = run("ip", &["netns", "del", ns]);
}

/// Removes what earlier runs left: every `vnp-` namespace and the
/// processes in them. Returns the namespaces removed.
pub fn remove_leftovers() -> Result<Vec<String>, NetnsError> {
    let found = ours()?;
    for ns in &found {
        remove(ns);
    }
    Ok(found)
}

/// Whether process `pid` is alive.
fn alive(pid: u32) -> bool {
    i32::try_from(pid).is_ok_and(|p| {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok()
            && !std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
    })
}

/// The lock of a live run: taken when no live run holds it; removed on drop.
pub struct Lock {
    path: PathBuf,
}

impl Lock {
    /// Takes the lock. A lock left by a dead run is taken over (the
    /// caller then removes that run's leftovers).
    pub fn take() -> Result<Lock, NetnsError> {
        let dir = Path::new(RUN_DIR);
        let file_err = |path: &Path, source| NetnsError::File {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
        let path = dir.join("live.pid");
        // Created only if absent: of two runs starting together, one wins.
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write as _;
                    writeln!(f, "{}", std::process::id()).map_err(|e| file_err(&path, e))?;
                    return Ok(Lock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    if let Some(pid) = holder
                        && pid != std::process::id()
                        && alive(pid)
                    {
                        return Err(NetnsError::Busy(pid));
                    }
                    // A dead run's lock: taken over.
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => return Err(file_err(&path, e)),
            }
        }
        Err(file_err(
            &path,
            std::io::Error::other("another run took the lock meanwhile"),
        ))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Moves the calling thread into namespace `name` (threads it starts
/// afterwards are born there; sockets it opens stay there).
pub fn enter(name: &str) -> Result<(), NetnsError> {
    let path = format!("/run/netns/{name}");
    let f = File::open(&path).map_err(|source| NetnsError::File { path, source })?;
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Enter {
        name: name.to_string(),
        source,
    })
}

/// Runs `f` with the calling thread in namespace `name`, then returns
/// it to the namespace it was in.
pub fn within<T>(name: &str, f: impl FnOnce() -> T) -> Result<T, NetnsError> {
    let path = "/proc/thread-self/ns/net";
    let back = File::open(path).map_err(|source| NetnsError::File {
        path: path.into(),
        source,
    })?;
    enter(name)?;
    let out = f();
    nix::sched::setns(back, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|source| {
        NetnsError::Enter {
            name: "the starting namespace".into(),
            source,
        }
    })?;
    Ok(out)
}

/// A namespace name for an object: `vnp-` and its name when that is a
/// plain word that fits, else `vnp-` and a kind letter and index.
pub fn name_for(kind: char, index: usize, name: &str) -> String {
    let plain = !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if plain {
        format!("{PREFIX}{name}")
    } else {
        format!("{PREFIX}{kind}{index}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_words_or_an_index() {
        assert_eq!(name_for('n', 3, "spoke11-vm"), "vnp-spoke11-vm");
        assert_eq!(name_for('n', 3, "has space"), "vnp-n3");
        assert_eq!(name_for('n', 3, "../x"), "vnp-n3");
        assert_eq!(name_for('s', 0, &"x".repeat(41)), "vnp-s0");
    }
}
