//! A real systemd booted as PID 1 of a container, for the tests that need one:
//! `systemd-nspawn --directory=/ --volatile=yes --register=no --keep-unit --private-network --boot`,
//! driven with `systemctl`/`journalctl` through `nsenter` into the container's PID 1.
//!
//! The host's `/` is the image (`--volatile=yes`: a tmpfs root with the host's /usr read-only), and the
//! workspace and its target directory are bound read-only at the same paths, so the project's binaries and
//! unit files are visible inside. One container at a time (a lock), each in its own cgroup (one directory
//! per cgroup hierarchy, created here and removed on drop), so that teardown leaves no cgroup behind.
//! Dropping the container powers it off (SIGTERM to systemd-nspawn, which halts the container), kills
//! what is left if that takes too long, and removes the cgroups.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Numbers the containers of this process, for unique names.
static NEXT_NAME: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// One container at a time: each boots a whole systemd.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub(crate) struct Container {
    nspawn: Child,
    /// The container's PID 1 (systemd), as the host sees it.
    pub(crate) init: i32,
    name: String,
    cgroups: Vec<PathBuf>,
    log: PathBuf,
    _lock: MutexGuard<'static, ()>,
}

/// Why a container cannot boot here, or the running container.
pub(crate) fn boot() -> Result<Container, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("booting systemd in systemd-nspawn needs root".into());
    }
    let nspawn = which("systemd-nspawn")
        .ok_or("systemd-nspawn is not installed (package systemd-container)")?;
    let nsenter = which("nsenter").ok_or("nsenter is not installed (package util-linux)")?;
    let _ = nsenter;
    if !Path::new("/usr/lib/systemd/systemd").exists()
        && !Path::new("/lib/systemd/systemd").exists()
    {
        return Err("systemd is not installed".into());
    }
    if Path::new("/run/systemd/system").exists() {
        // Under a running systemd, --keep-unit and the cgroups belong to it; these tests boot their own.
        return Err(
            "the host runs systemd already; these tests boot a container on hosts without it"
                .into(),
        );
    }
    let lock = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let n = NEXT_NAME.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("daemon-rt-{}-{n}", std::process::id());
    let cgroups = make_cgroups(&name)?;
    let log = std::env::temp_dir().join(format!("{name}.nspawn.log"));
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    // The cgroup.procs files are opened here; the child writes "0" (itself) into each before exec.
    let procs: Vec<std::fs::File> = cgroups
        .iter()
        .map(|c| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(c.join("cgroup.procs"))
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot open a cgroup.procs file: {e}"))?;
    let fds: Vec<i32> = procs.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
    let mut command = Command::new(nspawn);
    command
        .args([
            "--quiet",
            "--directory=/",
            "--volatile=yes",
            "--register=no",
            "--keep-unit",
            "--private-network",
            "--console=passive",
            // nspawn's own system call filter refuses pidfd_getfd (systemd 252), which `upgrade`
            // needs; a host's systemd filters nothing unless a unit asks.
            "--system-call-filter=pidfd_getfd",
            &format!("--machine={name}"),
        ])
        .args(binds().iter().map(|p| format!("--bind-ro={}", p.display())))
        // systemd in a container takes kernel-command-line options as arguments.
        .args(["--boot", "--", "systemd.firstboot=off"])
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file);
    let join_cgroups = move || {
        for fd in &fds {
            // SAFETY: writes one byte from a static buffer to an fd opened above (async-signal-safe).
            if unsafe { libc::write(*fd, b"0".as_ptr().cast(), 1) } != 1 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: the hook only calls write(2), which is async-signal-safe, and allocates nothing (the fd
    // list was built before the fork).
    unsafe { command.pre_exec(join_cgroups) };
    let child = command
        .spawn()
        .map_err(|e| format!("cannot run systemd-nspawn: {e}"))?;
    drop(procs);
    let mut container = Container {
        init: 0,
        nspawn: child,
        name,
        cgroups,
        log,
        _lock: lock,
    };
    container.wait_for_boot()?;
    Ok(container)
}

impl Container {
    /// Finds the container's PID 1 and waits until its systemd has finished booting.
    fn wait_for_boot(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(90);
        let nspawn = self.nspawn.id() as i32;
        while self.init == 0 {
            if let Ok(Some(status)) = self.nspawn.try_wait() {
                return Err(format!(
                    "systemd-nspawn exited ({status}) before booting: {}",
                    self.log_tail()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the container's systemd did not start: {}",
                    self.log_tail()
                ));
            }
            self.init = children(nspawn)
                .into_iter()
                .find(|pid| comm(*pid).as_deref() == Some("systemd"))
                .unwrap_or(0);
            std::thread::sleep(Duration::from_millis(50));
        }
        // systemctl needs PID 1's private socket; it fails until that exists.
        loop {
            let output = self.sh("systemctl is-system-running --wait");
            let state = String::from_utf8_lossy(&output.stdout).trim().to_string();
            if state == "running" || state == "degraded" {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the container did not finish booting (state {state:?}): {}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `nsenter` into every namespace of the container's PID 1, running `program args`, bounded in time.
    pub(crate) fn command(&self, program: &str) -> Command {
        let mut command = Command::new("timeout");
        command
            .args([
                "120",
                "nsenter",
                "--target",
                &self.init.to_string(),
                "--all",
                "--",
            ])
            .arg(program)
            .stdin(Stdio::null());
        command
    }

    /// Runs `script` with /bin/sh inside the container.
    pub(crate) fn sh(&self, script: &str) -> Output {
        self.command("/bin/sh")
            .args(["-c", script])
            .output()
            .expect("run nsenter")
    }

    /// Runs `script` inside the container and returns its stdout; panics with its stderr if it failed.
    pub(crate) fn ok(&self, script: &str) -> String {
        let output = self.sh(script);
        assert!(
            output.status.success(),
            "in the container: {script}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Writes `text` to `path` inside the container (a tmpfs: /run/systemd/system for units).
    pub(crate) fn write(&self, path: &str, text: &str) {
        let mut child = self
            .command("/bin/sh")
            .args(["-c", "mkdir -p \"$(dirname \"$0\")\" && cat > \"$0\"", path])
            .stdin(Stdio::piped())
            .spawn()
            .expect("run nsenter");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        assert!(
            child.wait().unwrap().success(),
            "cannot write {path} in the container"
        );
    }

    /// A property of a unit, e.g. `show("echo.service", "MainPID")`.
    pub(crate) fn show(&self, unit: &str, property: &str) -> String {
        self.ok(&format!(
            "systemctl show --property={property} --value {unit}"
        ))
        .trim()
        .to_string()
    }

    /// The journal of `unit` (this boot), with systemd's own messages about it.
    pub(crate) fn journal(&self, unit: &str) -> String {
        self.ok(&format!(
            "journalctl --no-pager --boot --output=cat --unit={unit}"
        ))
    }

    /// Waits up to `within` for `check` to hold; whether it did.
    pub(crate) fn eventually(
        &self,
        within: Duration,
        mut check: impl FnMut(&Container) -> bool,
    ) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if check(self) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let nspawn = nix::unistd::Pid::from_raw(self.nspawn.id() as i32);
        // systemd-nspawn answers SIGTERM by asking the container's systemd to power off.
        let _ = nix::sys::signal::kill(nspawn, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(self.nspawn.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !matches!(self.nspawn.try_wait(), Ok(Some(_))) {
            // Killing the container's PID 1 kills every process of its pid namespace.
            if self.init > 0 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(self.init),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = self.nspawn.kill();
            let _ = self.nspawn.wait();
        }
        // The cgroups empty once their last process is reaped; remove the deepest first.
        for cgroup in &self.cgroups {
            let deadline = Instant::now() + Duration::from_secs(10);
            while remove_tree(cgroup).is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = std::fs::remove_dir(format!("/run/systemd/nspawn/propagate/{}", self.name));
        let _ = std::fs::remove_file(&self.log);
    }
}

/// What a container leaves on the host while it runs: its name (in mount paths) and its cgroups.
pub(crate) struct Traces {
    name: String,
    cgroups: Vec<PathBuf>,
}

impl Traces {
    /// What is still there: cgroup directories, and mounts whose paths name the container.
    pub(crate) fn left(&self) -> Vec<String> {
        let mut left: Vec<String> = self
            .cgroups
            .iter()
            .filter(|c| c.exists())
            .map(|c| c.display().to_string())
            .collect();
        let inside = format!("/{}/", self.name);
        let last = format!("/{}", self.name);
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        left.extend(
            mountinfo
                .lines()
                .filter(|l| {
                    l.split_whitespace()
                        .any(|f| f.contains(&inside) || f.ends_with(&last))
                })
                .map(str::to_string),
        );
        left
    }
}

impl Container {
    /// What to look for once it is gone.
    pub(crate) fn traces(&self) -> Traces {
        Traces {
            name: self.name.clone(),
            cgroups: self.cgroups.clone(),
        }
    }
}

fn remove_tree(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)?.flatten() {
        if entry.file_type()?.is_dir() {
            remove_tree(&entry.path())?;
        }
    }
    std::fs::remove_dir(dir)
}

/// The cgroup hierarchies systemd uses (the unified one, and the named `systemd` one on hybrid hosts):
/// (mount point, this process's cgroup in it).
fn cgroup_hierarchies() -> Vec<(PathBuf, String)> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let path_of = |controllers: &str| {
        own.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, c, path) = (parts.next()?, parts.next()?, parts.next()?);
            (c == controllers).then(|| path.to_string())
        })
    };
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount = left.split_whitespace().nth(4).unwrap_or("");
        let mut right = right.split_whitespace();
        let fstype = right.next().unwrap_or("");
        let options = right.nth(1).unwrap_or("");
        let controllers = match fstype {
            "cgroup2" => "",
            "cgroup" if options.split(',').any(|o| o == "name=systemd") => "name=systemd",
            _ => continue,
        };
        if let Some(path) = path_of(controllers) {
            found.push((PathBuf::from(mount), path));
        }
    }
    found
}

/// A fresh cgroup named `name` under this process's cgroup in each hierarchy.
fn make_cgroups(name: &str) -> Result<Vec<PathBuf>, String> {
    let hierarchies = cgroup_hierarchies();
    if hierarchies.is_empty() {
        return Err("no cgroup2 or name=systemd cgroup hierarchy is mounted".into());
    }
    let mut made: Vec<PathBuf> = Vec::new();
    for (mount, path) in hierarchies {
        let dir = mount.join(path.trim_start_matches('/')).join(name);
        if let Err(error) = std::fs::create_dir(&dir) {
            for dir in &made {
                let _ = remove_tree(dir);
            }
            return Err(format!("cannot create cgroup {}: {error}", dir.display()));
        }
        made.push(dir);
    }
    Ok(made)
}

/// Directories to bind read-only into the container: the workspace and the target directory (the
/// fixtures' and the examples' binaries).
fn binds() -> Vec<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let mut binds = vec![workspace.clone()];
    if let Some(target) = target_dir()
        && !target.starts_with(&workspace)
    {
        binds.push(target);
    }
    binds
}

/// The target directory: the fixtures live in `<target>/<profile>/`.
pub(crate) fn target_dir() -> Option<PathBuf> {
    Path::new(env!("CARGO_BIN_EXE_fx_systemd"))
        .parent()?
        .parent()
        .map(Path::to_path_buf)
}

/// The path of an example's binary (built by `cargo test --workspace`, or `cargo build --examples`).
pub(crate) fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_fx_systemd"))
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

fn children(pid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .map(|r| r.1.split_whitespace().nth(1).map(str::to_string))
                })
                .flatten()
                .and_then(|ppid| ppid.parse::<i32>().ok())
                == Some(pid)
        })
        .collect()
}

fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_string())
}
