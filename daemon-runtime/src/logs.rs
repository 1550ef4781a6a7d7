//! Log files after the start: [`reopen_logs`] points stdout and stderr at their paths again, for log
//! rotation, even after chroot and the user switch.
//!
//! At start, before chroot, the runtime keeps an `O_PATH` fd of each log file's directory and the file's
//! name, both where the checked walk of the path ended (fds.rs `open_log`), and drops those the chroot
//! cannot reach; a reopen is an `openat` on it, never a path lookup from the (possibly chrooted) root, and the
//! new file replaces fd 1 or 2 with one `dup2`, which is atomic: a `write(2)` in flight on another thread
//! lands whole in the old file or whole in the new one.

use std::ffi::CString;
use std::io::Write as _;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::fcntl::{fcntl, openat, FcntlArg, OFlag};
use nix::sys::stat::{fchmod, fstat, Mode, SFlag};
use nix::unistd::{Gid, Uid};

use crate::error::{Error, Step};

/// The mode of a log file the runtime creates, whatever the umask.
const LOG_MODE: libc::mode_t = 0o640;

/// One log file, as it can be reopened.
#[derive(Debug)]
struct Target {
    /// The directory the checked walk of the path ended in, opened `O_PATH` before any chroot; `None` when
    /// it is outside the chroot (kept, it would be a way out of the jail).
    dir: Option<OwnedFd>,
    /// The file's name in it (after any symlink of the path was followed).
    name: CString,
    /// The path as configured, for messages.
    path: PathBuf,
    /// Who owned the file at start: a rotated file recreated with the same owner is accepted.
    owner: u32,
}

/// What [`reopen_logs`] works from; set once in the daemon, before the body runs.
#[derive(Debug)]
struct Logs {
    stdout: Option<Target>,
    /// `None` when stderr shares stdout's file (the same path) or is not a log file.
    stderr: Option<Target>,
    /// stderr follows stdout.
    shared: bool,
}

static LOGS: OnceLock<Logs> = OnceLock::new();

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
    log: crate::fds::LogFile,
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
    files: crate::fds::LogFiles,
    stdout: Option<&Path>,
    stderr: Option<&Path>,
) -> Result<Started, Error> {
    let shared = stdout.is_some() && stdout == stderr;
    let entry = |log: Option<crate::fds::LogFile>, path: Option<&Path>, step: Step| {
        let (Some(log), Some(path)) = (log, path) else {
            return Ok(None);
        };
        let stat = match fstat(&log.file) {
            Ok(stat) => stat,
            Err(errno) => {
                crate::fds::remove_created(&log);
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
                crate::fds::remove_created(&entry.log);
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

    /// The start succeeded: keep what [`reopen_logs`] needs (directories outside a chroot are closed).
    pub(crate) fn install(mut self) {
        let take = |entry: Option<Entry>| {
            let entry = entry.filter(|e| e.regular)?;
            let crate::fds::LogFile { dir, name, .. } = entry.log;
            Some(Target {
                dir: (!entry.outside).then_some(dir),
                name: CString::new(name.as_bytes()).ok()?,
                path: entry.path,
                owner: entry.owner,
            })
        };
        let logs = Logs {
            stdout: take(self.stdout.take()),
            stderr: take(self.stderr.take()),
            shared: self.shared,
        };
        if logs.stdout.is_none() && logs.stderr.is_none() {
            return;
        }
        // A second start in one process keeps the first daemon's log files.
        let _ = LOGS.set(logs);
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        for entry in self.entries() {
            crate::fds::remove_created(&entry.log);
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
/// Without log files (stdio on /dev/null, or in the foreground) it does nothing.
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
/// daemon_runtime::reopen_logs()?;
/// # Ok::<(), daemon_runtime::Error>(())
/// ```
pub fn reopen_logs() -> Result<(), Error> {
    reopen_all().map_err(|(target, why)| why.error(target))
}

/// Why a log file was not reopened. No allocation: [`reopen_all`] also runs in a signal handler.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    Os(Errno),
    Symlink,
    Fifo,
    NotRegular,
    Owner(u32),
    Links,
    OutsideChroot,
}

impl Refusal {
    fn error(self, target: &Target) -> Error {
        let refuse = |why: String| {
            Error::new(
                Step::ReopenLogs,
                Some(target.path.display().to_string()),
                None,
            )
            .with_detail(why)
        };
        match self {
            Refusal::Os(errno) => Error::at(Step::ReopenLogs, &target.path, errno),
            Refusal::Symlink => {
                refuse("it is a symbolic link, which a reopen never follows".into())
            }
            Refusal::Fifo => refuse("it is a FIFO without a reader".into()),
            Refusal::NotRegular => refuse("it is not a regular file".into()),
            Refusal::Owner(uid) => refuse(format!(
                "it belongs to uid {uid}, neither the daemon's user nor root"
            )),
            Refusal::Links => refuse(LINKS.into()),
            Refusal::OutsideChroot => refuse(OUTSIDE_CHROOT.into()),
        }
    }
}

const LINKS: &str =
    "it has more than one hard link (another name could be a file the daemon must not \
                     write to)";
const OUTSIDE_CHROOT: &str =
    "its directory is outside the chroot, and was not kept open (it would be a way \
                              out of the jail)";

/// The work of [`reopen_logs`], async-signal-safe: system calls on fds and C strings made at start, no
/// allocation, no lock (`OnceLock::get` is an atomic load).
fn reopen_all() -> Result<(), (&'static Target, Refusal)> {
    let Some(logs) = LOGS.get() else {
        return Ok(());
    };
    if let Some(target) = &logs.stdout {
        let file = reopen(target).map_err(|why| (target, why))?;
        swap(&file, 1).map_err(|why| (target, why))?;
        if logs.shared {
            swap(&file, 2).map_err(|why| (target, why))?;
        }
    }
    if let Some(target) = &logs.stderr {
        let file = reopen(target).map_err(|why| (target, why))?;
        swap(&file, 2).map_err(|why| (target, why))?;
    }
    Ok(())
}

fn swap(file: &OwnedFd, onto: RawFd) -> Result<(), Refusal> {
    // SAFETY: `file` is open; `onto` is 1 or 2, which dup2 replaces atomically. No Rust object owns 1 or 2
    // (std's handles borrow them by number), so replacing them is sound.
    let result = unsafe { libc::dup2(file.as_raw_fd(), onto) };
    Errno::result(result).map(drop).map_err(Refusal::Os)
}

fn reopen(target: &Target) -> Result<OwnedFd, Refusal> {
    // O_NONBLOCK: a FIFO planted at the path fails instead of blocking the caller.
    let flags = OFlag::O_WRONLY
        | OFlag::O_APPEND
        | OFlag::O_CLOEXEC
        | OFlag::O_NOFOLLOW
        | OFlag::O_NOCTTY
        | OFlag::O_NONBLOCK;
    let mode = Mode::from_bits_truncate(LOG_MODE);
    let dir = target.dir.as_ref().ok_or(Refusal::OutsideChroot)?;
    let (file, created) = match openat(
        dir,
        target.name.as_c_str(),
        flags | OFlag::O_CREAT | OFlag::O_EXCL,
        mode,
    ) {
        Ok(fd) => (fd, true),
        Err(Errno::EEXIST) => {
            let fd =
                openat(dir, target.name.as_c_str(), flags, mode).map_err(|errno| match errno {
                    Errno::ELOOP => Refusal::Symlink,
                    Errno::ENXIO => Refusal::Fifo,
                    errno => Refusal::Os(errno),
                })?;
            (fd, false)
        }
        Err(errno) => return Err(Refusal::Os(errno)),
    };
    let file = crate::fds::above_stdio(file).map_err(Refusal::Os)?;
    let stat = fstat(&file).map_err(Refusal::Os)?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(Refusal::NotRegular);
    }
    let euid = Uid::effective().as_raw();
    if ![euid, 0, target.owner].contains(&stat.st_uid) {
        return Err(Refusal::Owner(stat.st_uid));
    }
    // As at start (review F5): a second name could be any file of the daemon's user or root.
    if stat.st_nlink > 1 {
        return Err(Refusal::Links);
    }
    if created {
        // The umask may have taken bits off.
        fchmod(&file, mode).map_err(Refusal::Os)?;
    }
    // The file status flags are shared with fd 1 or 2: leave them as a log file's (blocking, append).
    fcntl(&file, FcntlArg::F_SETFL(OFlag::O_WRONLY | OFlag::O_APPEND)).map_err(Refusal::Os)?;
    Ok(file)
}

/// Signals of `reopen_logs_on` received so far: the number of the latest request.
static REQUESTS: AtomicU64 = AtomicU64::new(0);
/// The write end of the pipe that wakes the reopening thread (`-1` until it runs).
static WAKE: AtomicI32 = AtomicI32::new(-1);
/// The process that runs that thread: a child forked since has no such thread.
static THREAD_OWNER: AtomicU32 = AtomicU32::new(0);

/// Reopens the log files on `signal` (`SIGHUP`, `SIGUSR1` or `SIGUSR2`) from now on. The signal handler,
/// registered through signal-hook-registry (so the program's own subscriptions to the same signal,
/// [`signals()`](crate::signals), `tokio::signal`, `signal-hook`, still get it), only counts the signal and
/// wakes a thread of the runtime, which reopens the files and says how it went where the operator looks:
/// a failure as one line on stderr (still the old file) with the OS error's text, as `STATUS=` under
/// systemd, and in the record that `myapp reopen-logs` (and `reload`, when the signal is SIGHUP) waits
/// on. Called in the daemon, once its setup is done.
pub(crate) fn reopen_on(signal: crate::Signal) -> Result<(), Error> {
    let number = signal.number();
    let fail = |what: &str, errno: Option<i32>| {
        Error::new(Step::ReopenLogs, None, errno).with_detail(format!(
            "cannot {what} to reopen the log files on signal {number}"
        ))
    };
    let (wake_read, wake_write) =
        crate::fds::pipe().map_err(|errno| fail("create a pipe", Some(errno as i32)))?;
    // A full pipe means the thread has a wake-up pending already: the handler must never block.
    fcntl(&wake_write, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .map_err(|errno| fail("set up a pipe", Some(errno as i32)))?;
    let spawned = spawn_with_signals_blocked(move || reopen_thread(&wake_read))
        .map_err(|error| fail("start a thread", error.raw_os_error()))?;
    drop(spawned);
    // The write end lives as long as the process: the handler may run at any time.
    WAKE.store(wake_write.as_raw_fd(), Ordering::SeqCst);
    THREAD_OWNER.store(std::process::id(), Ordering::SeqCst);
    std::mem::forget(wake_write);
    crate::control::record::reopen_on(number);
    // SAFETY: the action is async-signal-safe: an atomic add, an atomic load and write(2) of one byte on a
    // non-blocking pipe that stays open. It takes no lock and allocates nothing.
    let registered = unsafe { signal_hook_registry::register(number, on_signal) };
    registered
        .map(drop)
        .map_err(|error| fail("handle the signal", error.raw_os_error()))
}

/// The handler of `reopen_logs_on`: counts the request and wakes the thread. In a child the daemon forked
/// (a worker), which has no such thread, it reopens the files itself, as `reopen_logs` does it: without
/// allocating or locking, so that it may run in a handler; a failure there is left unsaid.
fn on_signal() {
    if std::process::id() != THREAD_OWNER.load(Ordering::SeqCst) {
        let _ = reopen_all();
        return;
    }
    REQUESTS.fetch_add(1, Ordering::SeqCst);
    let fd = WAKE.load(Ordering::SeqCst);
    let byte = 1u8;
    // SAFETY: write(2) of one byte from a live local to the pipe's write end, which is never closed.
    // EAGAIN (a wake-up is pending already) is fine.
    unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
}

/// Starts `work` on a thread that blocks every signal, so that signals meant for the program are never
/// delivered to it (the thread inherits the mask it is started with).
fn spawn_with_signals_blocked(
    work: impl FnOnce() + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let all = nix::sys::signal::SigSet::all();
    let previous = all.thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_SETMASK);
    let spawned = std::thread::Builder::new()
        .name("reopen-logs".into())
        .spawn(work);
    if let Ok(previous) = previous {
        let _ = previous.thread_set_mask();
    }
    spawned
}

/// Waits for requests and answers each: the files are reopened once per wake-up, however many signals
/// came meanwhile (the answer carries the number of the latest one it covers).
fn reopen_thread(wake: &OwnedFd) {
    let mut buffer = [0u8; 64];
    loop {
        match nix::unistd::read(wake, &mut buffer) {
            Ok(0) => return,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
        let request = REQUESTS.load(Ordering::SeqCst);
        match reopen_logs() {
            Ok(()) => crate::control::record::reopen_done(request, Ok(())),
            Err(error) => {
                let text = error.to_string();
                // stderr is still the old file when its own reopen failed: where the operator looks.
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "{}: {text}",
                    crate::__private::program()
                );
                let _ = crate::notify::status(&text);
                crate::control::record::reopen_done(request, Err(&text));
            }
        }
    }
}
