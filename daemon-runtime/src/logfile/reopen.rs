//! Log files after the start: [`reopen`] points stdout and stderr at their paths again, for log rotation,
//! even after chroot and the user switch; [`on_signal`] does it on a signal and says how it went.
//!
//! At start, before chroot, the runtime keeps a descriptor of each log file's directory and the file's
//! name, both where the checked walk of the path ended (open.rs), and drops those the chroot cannot
//! reach; a reopen is an `openat` on it, never a path lookup from the (possibly chrooted) root, and the
//! new file replaces fd 1 or 2 with one `dup2`, which is atomic (sys/reopen.rs).

use std::ffi::CString;
use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, openat};
use nix::sys::stat::{Mode, SFlag, fstat};
use nix::unistd::{Gid, Uid};

use super::open::{LogFile, LogFiles, remove_created};
use crate::error::{Error, Step, program};
use crate::pidfile::record;
use crate::sys::reopen::{Refusal, Target, Targets, Which};
use crate::sys::signal::{register_reopen, reopen_outcome, spawn_deaf};
use crate::systemd::notify;

/// The paths of the log files [`reopen`] works on, as configured, for its messages.
static PATHS: OnceLock<(Option<PathBuf>, Option<PathBuf>)> = OnceLock::new();

/// How a log directory is kept: `O_PATH` where there is one (it grants no reading of the directory).
#[cfg(any(target_os = "linux", target_os = "android"))]
const DIR_FLAGS: OFlag = OFlag::O_PATH;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const DIR_FLAGS: OFlag = OFlag::O_RDONLY;

/// The log files of a start in progress (built right after they are opened): what a reopen will need, and
/// which files this start created. Dropped before [`Started::install`] (a failed start), it removes the
/// files it created, if their names still name them (review F15: a failed start leaves no file behind).
#[derive(Debug)]
pub(crate) struct Started {
    stdout: Option<Entry>,
    stderr: Option<Entry>,
    shared: bool,
}

#[derive(Debug)]
struct Entry {
    /// As opened: the file (closed once the start is done), its directory and name from the checked walk.
    log: LogFile,
    path: PathBuf,
    /// Who owns the file now.
    owner: u32,
    /// The file is a regular file (a device or a FIFO has nothing to rotate).
    regular: bool,
    /// The directory is out of reach from the chroot (see [`Started::confine`]).
    outside: bool,
    step: Step,
}

/// Called once stdout and stderr point at the log files.
pub(crate) fn remember(
    files: LogFiles,
    stdout: Option<&Path>,
    stderr: Option<&Path>,
) -> Result<Started, Error> {
    let shared = stdout.is_some() && stdout == stderr;
    let entry = |log: Option<LogFile>, path: Option<&Path>, step: Step| {
        let (Some(log), Some(path)) = (log, path) else {
            return Ok(None);
        };
        let stat = match fstat(&log.file) {
            Ok(stat) => stat,
            Err(errno) => {
                remove_created(&log);
                return Err(Error::at(step, path, errno));
            }
        };
        Ok(Some(Entry {
            regular: SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG,
            owner: stat.st_uid,
            log,
            path: path.to_path_buf(),
            outside: false,
            step,
        }))
    };
    let stdout_entry = entry(files.stdout, stdout, Step::Stdout);
    let stderr_entry = entry(files.stderr, stderr, Step::Stderr);
    let (stdout, stderr) = match (stdout_entry, stderr_entry) {
        (Ok(out), Ok(err)) => (out, err),
        (Ok(entry), Err(error)) | (Err(error), Ok(entry)) => {
            if let Some(entry) = entry {
                remove_created(&entry.log);
            }
            return Err(error);
        }
        (Err(error), Err(_)) => return Err(error),
    };
    Ok(Started {
        stdout,
        stderr,
        shared,
    })
}

impl Started {
    fn entries(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.stdout.iter_mut().chain(self.stderr.iter_mut())
    }

    /// Gives the files this start created to the daemon's user (`owner`, when one is set). Decided by the
    /// open itself (`O_CREAT|O_EXCL`), never by an earlier `stat`, so a file another process put at the
    /// path in between is never given away (review F10).
    pub(crate) fn give_to(&mut self, owner: Option<(Uid, Gid)>) -> Result<(), Error> {
        let Some((uid, gid)) = owner else {
            return Ok(());
        };
        let euid = Uid::effective().as_raw();
        for entry in self.entries() {
            if entry.log.created && entry.regular && entry.owner == euid {
                nix::unistd::fchown(&entry.log.file, Some(uid), Some(gid))
                    .map_err(|errno| Error::at(entry.step, &entry.path, errno))?;
                entry.owner = uid.as_raw();
            }
        }
        Ok(())
    }

    /// Called right after chroot: a log directory the jail cannot reach is not kept, since an fd of a
    /// directory outside the jail is a way out of it (`fchdir` then `..`: review F12). A reopen of that
    /// file is then refused; with `reopen_on` (the runtime reopens on a signal) the start fails, so that
    /// the operator learns it now rather than at the first rotation. A log directory inside the jail is
    /// kept: `..` from it stops at the jail's root.
    pub(crate) fn confine(&mut self, chroot: &Path, reopen_on: bool) -> Result<(), Error> {
        for entry in self.entries() {
            if !entry.regular {
                continue;
            }
            entry.outside = !inside_root(&entry.log.dir);
            if entry.outside && reopen_on {
                return Err(Error::new(
                    Step::ReopenLogs,
                    Some(entry.path.display().to_string()),
                    None,
                )
                .with_detail(format!(
                    "its directory is outside the chroot {}, and keeping it open to reopen the file \
                     would be a way out of the jail: put the log files inside the chroot, or rotate \
                     them with logrotate's copytruncate and no reopen_logs_on",
                    chroot.display()
                )));
            }
        }
        Ok(())
    }

    /// The start succeeded: keep what [`reopen`] needs (directories outside a chroot are closed).
    pub(crate) fn install(mut self) {
        let take = |entry: Option<Entry>| {
            let entry = entry.filter(|e| e.regular)?;
            let LogFile { dir, name, .. } = entry.log;
            let target = Target {
                dir: (!entry.outside).then_some(dir),
                name: CString::new(name.as_bytes()).ok()?,
                owner: entry.owner,
            };
            Some((target, entry.path))
        };
        let (stdout, stdout_path) = take(self.stdout.take()).unzip();
        let (stderr, stderr_path) = take(self.stderr.take()).unzip();
        if stdout.is_none() && stderr.is_none() {
            return;
        }
        // A second start in one process keeps the first daemon's log files.
        if PATHS.set((stdout_path, stderr_path)).is_ok() {
            crate::sys::reopen::install(Targets {
                stdout,
                stderr,
                shared: self.shared,
            });
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        for entry in self.entries() {
            remove_created(&entry.log);
        }
    }
}

/// Whether the directory `dir` is beneath this process's root: walks up with `..` until the root (same
/// inode as `/`) or the top of the file system tree (`..` is itself), whichever comes first.
fn inside_root(dir: &OwnedFd) -> bool {
    let Ok(root) = nix::sys::stat::stat("/") else {
        return false;
    };
    let same = |a: &nix::sys::stat::FileStat, b: &nix::sys::stat::FileStat| {
        a.st_dev == b.st_dev && a.st_ino == b.st_ino
    };
    let Ok(mut here) = fstat(dir) else {
        return false;
    };
    let mut current: Option<OwnedFd> = None;
    for _ in 0..4096 {
        if same(&here, &root) {
            return true;
        }
        let from = current.as_ref().unwrap_or(dir);
        let Ok(parent) = openat(
            from,
            "..",
            DIR_FLAGS | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) else {
            return false;
        };
        let Ok(up) = fstat(&parent) else {
            return false;
        };
        if same(&up, &here) {
            return false;
        }
        here = up;
        current = Some(parent);
    }
    false
}

/// Reopens the daemon's log files (the `stdout` and `stderr` paths) and puts them on fds 1 and 2: after
/// logrotate renamed them (its `create` mode), the daemon writes to the new files. A file that is gone is
/// created, mode 0o640, owned by the daemon's user.
///
/// Works after the user switch: the directories were opened at start (where the checked walk of the path
/// ended, so a symlinked path reopens where it led at start), and need only be writable by the daemon's
/// user (or the new file already there, as logrotate's `create MODE USER GROUP` leaves it). After chroot,
/// only for log directories inside the jail: one outside is not kept open, since its fd would be a way
/// out of the jail (with `reopen_logs_on`, such a start fails). Refuses a path that is a symbolic link
/// (never followed, whoever planted it), that is not a regular file, that has more than one hard link,
/// or that belongs to another user than the daemon's, root, or the old file's owner.
///
/// Safe to call from any thread and from a signal event, any number of times: it takes no lock, and each
/// fd is swapped with one `dup2`, so a line written with one `write(2)` goes whole to the old file or whole
/// to the new one (`log`/`tracing` subscribers and `println!` write a line at once; an `eprintln!` with
/// arguments may write it in pieces). Not for a raw signal handler: its error path allocates.
///
/// Without log files (stdio on /dev/null, or in the foreground) it does nothing; stdout or stderr on the
/// journal or syslog (`stderr = "journal"`) is left alone: a socket has nothing to rotate.
///
/// # Errors
///
/// [`Step::ReopenLogs`] with the path: the file cannot be opened or created (the daemon's user may not
/// write to the directory), or it is refused (see above). The files are reopened in turn, stdout first:
/// the fd of the file that failed stays as it was, but when stderr's fails, stdout has already moved to
/// its new file.
///
/// ```no_run
/// let _running = daemon_runtime::Daemon::new().stderr("/var/log/app/app.log").start()?;
/// // ... after logrotate moved /var/log/app/app.log away:
/// daemon_runtime::logs::reopen()?;
/// # Ok::<(), daemon_runtime::Error>(())
/// ```
pub fn reopen() -> Result<(), Error> {
    crate::sys::reopen::all().map_err(|(which, why)| refusal_error(which, why))
}

/// What a refusal of [`crate::sys::reopen::all`] means, with the path it is about.
fn refusal_error(which: Which, refusal: Refusal) -> Error {
    let (stdout, stderr) = PATHS
        .get()
        .map(|(o, e)| (o.as_deref(), e.as_deref()))
        .unwrap_or_default();
    let path = match which {
        Which::Stdout => stdout,
        Which::Stderr => stderr,
    }
    .unwrap_or(Path::new("?"));
    let refuse = |why: &str| {
        Error::new(Step::ReopenLogs, Some(path.display().to_string()), None).with_detail(why)
    };
    match refusal {
        Refusal::Os(errno) => Error::at(Step::ReopenLogs, path, errno),
        Refusal::Symlink => refuse("it is a symbolic link, which a reopen never follows"),
        Refusal::Fifo => refuse("it is a FIFO without a reader"),
        Refusal::NotRegular => refuse("it is not a regular file"),
        Refusal::Owner(uid) => refuse(&format!(
            "it belongs to uid {uid}, neither the daemon's user nor root"
        )),
        Refusal::Links => refuse(
            "it has more than one hard link (another name could be a file the daemon must not write to)",
        ),
        Refusal::OutsideChroot => refuse(
            "its directory is outside the chroot, and was not kept open (it would be a way out of the jail)",
        ),
    }
}

/// Reopens the log files on signal `number` (`SIGHUP`, `SIGUSR1` or `SIGUSR2`) from now on. The handler,
/// registered through signal-hook-registry (so the program's own subscriptions to the same signal,
/// `signals()`, `tokio::signal`, `signal-hook`, still get it), reopens the files and wakes a thread of the
/// runtime, which says how it went where the operator looks: a failure as one line on stderr (still the
/// old file) with the OS error's text, as `STATUS=` under systemd, and in the record that
/// `myapp reopen-logs` (and `reload`, when the signal is SIGHUP) waits on. A worker the daemon forked
/// reopens its own files in the handler, and reports nothing. Called in the daemon, once its setup is done.
pub(crate) fn on_signal(number: libc::c_int) -> Result<(), Error> {
    let fail = |what: &str, errno: Option<i32>| {
        Error::new(Step::ReopenLogs, None, errno).with_detail(format!(
            "cannot {what} to reopen the log files on signal {number}"
        ))
    };
    let (wake_read, wake_write) =
        crate::sys::fd::pipe().map_err(|errno| fail("create a pipe", Some(errno as i32)))?;
    // A full pipe means the thread has a wake-up pending already: the handler must never block.
    fcntl(&wake_write, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .map_err(|errno| fail("set up a pipe", Some(errno as i32)))?;
    spawn_deaf("reopen-logs", move || report(&wake_read))
        .map_err(|error| fail("start a thread", error.raw_os_error()))?;
    record::reopen_on(number);
    register_reopen(number, wake_write)
        .map(drop)
        .map_err(|error| fail("handle the signal", error.raw_os_error()))
}

/// Waits for the handler's wake-ups and reports the outcome of the latest reopen each time (the answer
/// carries the number of the latest signal it covers).
fn report(wake: &OwnedFd) {
    let mut buffer = [0u8; 64];
    loop {
        match nix::unistd::read(wake, &mut buffer) {
            Ok(0) => return,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
        let (request, outcome) = reopen_outcome();
        match outcome {
            Ok(()) => record::reopen_done(request, Ok(())),
            Err((which, why)) => {
                let text = refusal_error(which, why).to_string();
                // stderr is still the old file when its own reopen failed: where the operator looks.
                let _ = writeln!(std::io::stderr().lock(), "{}: {text}", program());
                let _ = notify::set_status(&text);
                record::reopen_done(request, Err(&text));
            }
        }
    }
}
