//! Issue 8: every bad input the launcher meets is refused before anything changes, and nothing is lost.
//! One test per item, on live daemons started from fixtures; root-only setups are made and undone here.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{ChildGuard, has_strace, launch, scratch, skip, start, stderr_text, under_strace};
use common::{NOBODY, is_root};

fn builder(out: &Path, args: &[&str]) -> Command {
    let mut command = common::fixture("fx_builder", out);
    command.args(args);
    command
}

fn with_pid_file(out: &Path, pid_file: &Path) -> Command {
    builder(out, &["--pid-file", pid_file.to_str().unwrap()])
}

fn lock_of(pid_file: &Path) -> PathBuf {
    PathBuf::from(format!("{}.lock", pid_file.display()))
}

/// What a test compares before and after a refused start: type and mode, owner, size, content.
fn snapshot(path: &Path) -> (u32, u32, u64, Option<Vec<u8>>) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    let content = meta.is_file().then(|| std::fs::read(path).unwrap());
    (meta.mode(), meta.uid(), meta.len(), content)
}

/// A refused start: exit 1, the expected message, the object untouched, no lock file and no daemon left.
fn assert_refused(out: &Path, pid_file: &Path, expected: &str) {
    let before = std::fs::symlink_metadata(pid_file)
        .ok()
        .map(|_| snapshot(pid_file));
    let output = launch(with_pid_file(out, pid_file));
    assert_eq!(output.status.code(), Some(1), "{}", stderr_text(&output));
    assert_eq!(stderr_text(&output), expected);
    if let Some(before) = before {
        assert_eq!(
            snapshot(pid_file),
            before,
            "{} was changed",
            pid_file.display()
        );
    }
    assert!(!lock_of(pid_file).exists(), "the lock file was left behind");
    assert!(!out.exists(), "a daemon ran");
}

/// Item 1: a pid file that names a device or a FIFO is refused on the opened fd (opened without blocking)
/// and left exactly as it was: before, its mode became 0644.
#[test]
fn item01_a_pid_file_that_is_not_a_regular_file_is_refused_and_left_alone() {
    let (dir, out) = scratch("h-nonregular");
    let fifo = dir.join("fifo.pid");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o666)).unwrap();
    let expected = |path: &Path, what: &str| {
        format!(
            "fx_builder: cannot use pid file {}: it is {what}, not a regular file; it was left as it is\n",
            path.display()
        )
    };
    assert_refused(&out, &fifo, &expected(&fifo, "a FIFO"));
    let subdir = dir.join("dir.pid");
    std::fs::create_dir(&subdir).unwrap();
    assert_refused(&out, &subdir, &expected(&subdir, "a directory"));
    // Not even opened for I/O (opening a FIFO wakes its other end; a tape rewinds): looked at with O_PATH.
    if has_strace() {
        let trace = dir.join("trace");
        let launcher = with_pid_file(&out, &fifo);
        let mut command = under_strace(&launcher, &trace, &["-f", "-e", "trace=open,openat"]);
        command.stdin(Stdio::null());
        assert_eq!(launch(command).status.code(), Some(1));
        let trace = std::fs::read_to_string(&trace).unwrap();
        let opens: Vec<&str> = trace.lines().filter(|l| l.contains("fifo.pid\"")).collect();
        assert!(opens.iter().any(|l| l.contains("O_PATH")), "{trace}");
        assert!(
            opens
                .iter()
                .all(|l| l.contains("O_PATH") || l.contains("O_EXCL")),
            "{opens:#?}"
        );
    } else {
        skip("the no-open check needs strace(1)");
    }
    if !is_root() {
        skip("the null device case needs root for mknod");
        return;
    }
    // A copy of /dev/null (char 1:3), as `pid_file = "/dev/null"` would name, without risking the real one.
    let null = dir.join("null.pid");
    nix::sys::stat::mknod(
        &null,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    std::fs::set_permissions(&null, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_refused(&out, &null, &expected(&null, "a character device"));
}

/// Item 2: a pid file owned by another user, or writable by its group or others, is refused with why,
/// and left as it was; so is one with a second hard link (writing it would change the other name too).
#[test]
fn item02_a_pid_file_another_user_could_write_is_refused() {
    let (dir, out) = scratch("h-owner");
    let writable = dir.join("group-writable.pid");
    std::fs::write(&writable, "1\n").unwrap();
    std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o664)).unwrap();
    assert_refused(
        &out,
        &writable,
        &format!(
            "fx_builder: cannot use pid file {}: mode 0o664: it is group- or world-writable, so another user \
             could rewrite it\n",
            writable.display()
        ),
    );
    let linked = dir.join("linked.pid");
    let other = dir.join("other-name");
    std::fs::write(&linked, "1\n").unwrap();
    std::fs::hard_link(&linked, &other).unwrap();
    assert_refused(
        &out,
        &linked,
        &format!(
            "fx_builder: cannot use pid file {}: it has 2 hard links, so writing it would change another \
             file too\n",
            linked.display()
        ),
    );
    if !is_root() {
        skip("the other-owner case needs root to chown a file to nobody");
        return;
    }
    let planted = dir.join("planted.pid");
    std::fs::write(&planted, "1\n").unwrap();
    std::os::unix::fs::chown(&planted, Some(NOBODY), Some(NOBODY)).unwrap();
    assert_refused(
        &out,
        &planted,
        &format!(
            "fx_builder: cannot use pid file {}: it is owned by uid {NOBODY}, not by root, so that user could \
             rewrite it\n",
            planted.display()
        ),
    );
}

/// Runs `flock -s FILE` as nobody and returns once it holds the shared lock (or failed to take it).
fn shared_lock_as_nobody(file: &Path) -> (ChildGuard, String) {
    let mut child = Command::new("flock")
        .args(["-s", "-n"])
        .arg(file)
        .args(["-c", "echo locked; exec sleep 30"])
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("flock(1)");
    let mut line = String::new();
    let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
    (ChildGuard(child), line)
}

/// Item 3: a user who can only read the pid file cannot block a start (before: a shared flock on it made
/// every start fail with "already running (pid 1)"), nor lock the lock file; and the lock survives the pid
/// file being unlinked (as systemd does for a failed unit's PIDFile=): a second start is still refused,
/// naming the pid that holds the lock.
#[test]
fn item03_the_lock_cannot_be_blocked_by_a_reader_and_survives_an_unlinked_pid_file() {
    let (dir, out) = scratch("h-lock");
    let pid_file = dir.join("app.pid");
    if is_root() {
        std::fs::write(&pid_file, "1\n").unwrap();
        std::fs::set_permissions(&pid_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (_reader, line) = shared_lock_as_nobody(&pid_file);
        assert_eq!(
            line, "locked\n",
            "nobody could not take a shared lock on the readable pid file"
        );
        let daemon = start(with_pid_file(&out, &pid_file), &out);
        let lock = lock_of(&pid_file);
        let meta = std::fs::metadata(&lock).unwrap();
        assert_eq!(
            (meta.mode() & 0o777, meta.uid()),
            (0o600, 0),
            "the lock file is root's, 0600"
        );
        assert_eq!(std::fs::metadata(&pid_file).unwrap().mode() & 0o777, 0o644);
        let (_blocker, line) = shared_lock_as_nobody(&lock);
        assert_eq!(line, "", "nobody could open the lock file");
        drop(daemon);
        std::fs::remove_file(&out).unwrap();
    } else {
        skip("the read-only attacker case needs root to act as nobody");
    }
    let first = start(with_pid_file(&out, &pid_file), &out);
    std::fs::remove_file(&pid_file).unwrap();
    let output = launch(with_pid_file(&dir.join("second-report"), &pid_file));
    assert_eq!(
        stderr_text(&output),
        format!(
            "fx_builder: already running (pid {}): {} is locked by the running daemon\n",
            first.pid,
            lock_of(&pid_file).display()
        )
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(!pid_file.exists(), "the refused start created a pid file");
    assert!(!dir.join("second-report").exists(), "a second daemon ran");
    assert!(first.alive());
}

/// Item 8: a pid file that cannot be written whole fails the start with the reason and the path, and
/// leaves neither file behind. A tiny `RLIMIT_FSIZE` (before: SIGXFSZ killed the daemon, leaving two digits
/// of its pid and "exited before it was ready"), and a full file system (before: an empty pid file stayed).
#[test]
fn item08_a_pid_file_that_cannot_be_written_fails_the_start_and_is_removed() {
    let (dir, out) = scratch("h-fsize");
    let pid_file = dir.join("app.pid");
    for limit in [2, 0] {
        let mut command = with_pid_file(&out, &pid_file);
        let child = move || {
            let rlimit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            // SAFETY: setrlimit reads the struct, valid for the call.
            common::check(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &raw const rlimit) })
        };
        // SAFETY: `child` only makes async-signal-safe calls (setrlimit) and allocates nothing.
        unsafe { common::before_exec(&mut command, child) };
        let output = launch(command);
        let stderr = stderr_text(&output);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        let prefix = format!("fx_builder: cannot use pid file {}: ", pid_file.display());
        assert!(stderr.starts_with(&prefix), "{stderr}");
        assert!(
            stderr.ends_with("File too large (os error 27)\n"),
            "{stderr}"
        );
        assert!(
            !pid_file.exists(),
            "RLIMIT_FSIZE {limit}: the pid file was left behind"
        );
        assert!(
            !lock_of(&pid_file).exists(),
            "RLIMIT_FSIZE {limit}: the lock file was left behind"
        );
        assert!(!out.exists());
    }
    // A limit the pid fits in but the record does not: the daemon starts and runs (its record is cut;
    // the refactor once retried the rest of the write and died of SIGXFSZ).
    {
        let mut command = with_pid_file(&out, &pid_file);
        let child = || {
            let rlimit = libc::rlimit {
                rlim_cur: 16,
                rlim_max: 16,
            };
            // SAFETY: setrlimit reads the struct, valid for the call.
            common::check(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &raw const rlimit) })
        };
        // SAFETY: `child` only makes async-signal-safe calls (setrlimit) and allocates nothing.
        unsafe { common::before_exec(&mut command, child) };
        let daemon = common::start(command, &out);
        assert!(daemon.alive(), "a small RLIMIT_FSIZE killed the daemon");
        assert!(std::fs::metadata(lock_of(&pid_file)).unwrap().len() <= 16);
        drop(daemon);
        let _ = std::fs::remove_file(&out);
        let _ = std::fs::remove_file(&pid_file);
        let _ = std::fs::remove_file(lock_of(&pid_file));
    }
    if !is_root() {
        skip("the full file system case needs root for unshare -m and a tmpfs");
        return;
    }
    // A one-page tmpfs, full, in a private mount namespace that ends with the script.
    let mount = dir.join("full");
    std::fs::create_dir(&mount).unwrap();
    let script = r#"mount -t tmpfs -o size=4k tmpfs "$1" || exit 99
head -c 4096 /dev/zero > "$1/fill" 2>/dev/null
dir=$1; shift
"$@"; echo "rc=$?"; ls -A "$dir""#;
    let mut command = Command::new("unshare");
    command
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&mount)
        .arg(common::exe("fx_builder"))
        .args(["--pid-file", mount.join("app.pid").to_str().unwrap()])
        .env("FIXTURE_OUT", &out)
        .env("FIXTURE_LIFE", "30")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("DAEMON_FOREGROUND")
        .stdin(Stdio::null());
    let output = launch(command);
    assert_eq!(
        stderr_text(&output),
        format!(
            "fx_builder: cannot use pid file {}: No space left on device (os error 28)\n",
            mount.join("app.pid").display()
        )
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "rc=1\nfill\n",
        "files were left behind"
    );
    assert!(!out.exists());
}

/// Item 9: a refused start never reads the holder's pid file (before: it re-read all of it every 2 ms for
/// 2 s, 3.7 GiB for a 256 MiB file, then named no pid): it names the holder from the kernel's lock table.
#[test]
fn item09_a_refused_start_names_the_holder_without_reading_the_pid_file() {
    let (dir, out) = scratch("h-huge");
    let pid_file = dir.join("app.pid");
    let first = start(with_pid_file(&out, &pid_file), &out);
    // 256 MiB (sparse) after the pid.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&pid_file)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let output = launch(with_pid_file(&dir.join("second-report"), &pid_file));
    assert_eq!(
        stderr_text(&output),
        format!(
            "fx_builder: already running (pid {}): {} is locked by the running daemon\n",
            first.pid,
            lock_of(&pid_file).display()
        )
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        std::fs::metadata(&pid_file).unwrap().len(),
        256 << 20,
        "the holder's file was changed"
    );
}

/// Item 4: in a sticky world-writable directory, a log file that is a symlink planted by another user is
/// refused (the kernel's `fs.protected_symlinks` rule, applied even where the sysctl is 0); a link owned by
/// the directory's owner, and links elsewhere, keep working.
#[test]
fn item04_a_log_symlink_planted_in_a_sticky_directory_is_not_followed() {
    if !is_root() {
        skip("needs root to own a symlink as nobody");
        return;
    }
    let (dir, out) = scratch("h-symlink");
    let public = dir.join("pub");
    std::fs::create_dir(&public).unwrap();
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let secret = dir.join("secret");
    std::fs::write(&secret, "root only\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let planted = public.join("app.log");
    std::os::unix::fs::symlink(&secret, &planted).unwrap();
    std::os::unix::fs::lchown(&planted, Some(NOBODY), Some(NOBODY)).unwrap();
    for key in ["--stdout", "--stderr"] {
        let output = launch(builder(
            &out,
            &[key, planted.to_str().unwrap(), "--then", "print"],
        ));
        let which = &key[2..];
        assert_eq!(
            stderr_text(&output),
            format!(
                "fx_builder: cannot open {which} file {}: it is a symbolic link owned by uid {NOBODY} in {}, a \
                 sticky world-writable directory owned by uid 0: following it would let that user choose the \
                 file written (the fs.protected_symlinks rule): Permission denied (os error 13)\n",
                planted.display(),
                public.display()
            )
        );
        assert_eq!(output.status.code(), Some(1));
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "root only\n");
        assert!(!out.exists());
    }
    // A permitted link (the directory owner's) that leads to the planted one is refused too.
    let chain = public.join("chain.log");
    std::os::unix::fs::symlink(&planted, &chain).unwrap();
    let output = launch(builder(&out, &["--stdout", chain.to_str().unwrap()]));
    assert_eq!(
        stderr_text(&output),
        format!(
            "fx_builder: cannot open stdout file {}: it leads to {}, which is a symbolic link owned by uid \
             {NOBODY} in {}, a sticky world-writable directory owned by uid 0: following it would let that \
             user choose the file written (the fs.protected_symlinks rule): Permission denied (os error 13)\n",
            chain.display(),
            planted.display(),
            public.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "root only\n");
    // So is a planted link to a directory on the way (`/tmp/app -> /etc/cron.d` for `/tmp/app/app.log`).
    let elsewhere_dir = dir.join("elsewhere-dir");
    std::fs::create_dir(&elsewhere_dir).unwrap();
    let dir_link = public.join("app");
    std::os::unix::fs::symlink(&elsewhere_dir, &dir_link).unwrap();
    std::os::unix::fs::lchown(&dir_link, Some(NOBODY), Some(NOBODY)).unwrap();
    let through = dir_link.join("app.log");
    let output = launch(builder(&out, &["--stderr", through.to_str().unwrap()]));
    assert_eq!(
        stderr_text(&output),
        format!(
            "fx_builder: cannot open stderr file {}: it leads to {}, which is a symbolic link owned by uid \
             {NOBODY} in {}, a sticky world-writable directory owned by uid 0: following it would let that \
             user choose the file written (the fs.protected_symlinks rule): Permission denied (os error 13)\n",
            through.display(),
            dir_link.display(),
            public.display()
        )
    );
    assert_eq!(
        std::fs::read_dir(&elsewhere_dir).unwrap().count(),
        0,
        "a file was created through the link"
    );
    // Another user's file there (not a link) is refused too: a FIFO would hold the start, a regular file
    // would let that user read the log. Neither is changed.
    let fifo = public.join("fifo.log");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622)).unwrap();
    std::os::unix::fs::lchown(&fifo, Some(NOBODY), Some(NOBODY)).unwrap();
    let theirs = public.join("theirs.log");
    std::fs::write(&theirs, "theirs\n").unwrap();
    std::os::unix::fs::lchown(&theirs, Some(NOBODY), Some(NOBODY)).unwrap();
    let cases = [
        (
            &fifo,
            "it is a FIFO that nobody reads: No such device or address (os error 6)".to_string(),
        ),
        (
            &theirs,
            format!(
                "it belongs to uid {NOBODY} in {}, a sticky world-writable directory owned by uid 0: that \
                 user could read the log or hold the start (the fs.protected_regular rule): Permission \
                 denied (os error 13)",
                public.display()
            ),
        ),
    ];
    for (file, why) in cases {
        let output = launch(builder(&out, &["--stdout", file.to_str().unwrap()]));
        assert_eq!(
            stderr_text(&output),
            format!(
                "fx_builder: cannot open stdout file {}: {why}\n",
                file.display()
            )
        );
        assert_eq!(output.status.code(), Some(1));
    }
    assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "theirs\n");
    // The directory owner's link is followed, and so is another user's link outside a sticky directory.
    let target = dir.join("target.log");
    let owned = public.join("owned.log");
    std::os::unix::fs::symlink("../target.log", &owned).unwrap();
    let elsewhere = dir.join("elsewhere.log");
    std::os::unix::fs::symlink(&target, &elsewhere).unwrap();
    std::os::unix::fs::lchown(&elsewhere, Some(NOBODY), Some(NOBODY)).unwrap();
    // Also through `..`.
    let dotted = public.join("../pub/owned.log");
    for link in [&owned, &elsewhere, &dotted] {
        let mut command = builder(
            &out,
            &["--stdout", link.to_str().unwrap(), "--then", "print"],
        );
        command.current_dir(dir.path());
        let daemon = start(command, &out);
        let line = format!("stdout line from {}\n", daemon.pid);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !std::fs::read_to_string(&target)
            .unwrap_or_default()
            .contains(&line)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{} was not followed",
                link.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        drop(daemon);
        std::fs::remove_file(&out).unwrap();
    }
}

/// Runs `command` as `unshare -m sh -c SCRIPT sh ARGS... -- LAUNCHER...`: the script sets up a private
/// mount namespace (gone when its last process ends) and then runs the launcher with `"$@"`.
fn in_mount_namespace(script: &str, args: &[&Path], launcher: &Command) -> Command {
    let mut unshare_args: Vec<&std::ffi::OsStr> =
        ["-m", "--propagation", "private", "sh", "-c", script, "sh"]
            .into_iter()
            .map(std::ffi::OsStr::new)
            .collect();
    unshare_args.extend(args.iter().map(|path| path.as_os_str()));
    let mut command = common::run_under("unshare", unshare_args, launcher);
    command.stdin(Stdio::null());
    command
}

/// Item 5: /dev/null is checked to be the null device (1:3): a regular file or another device mounted over
/// it is refused with ENODEV (before: the daemon wrote its output into the file from offset 0).
#[test]
fn item05_dev_null_must_be_the_null_device() {
    if !is_root() {
        skip(
            "needs root for a private mount namespace (unshare -m) and a bind mount over /dev/null",
        );
        return;
    }
    let (dir, out) = scratch("h-devnull");
    let file = dir.join("not-null");
    std::fs::write(&file, "original\n").unwrap();
    let cases = [
        (
            file.as_path(),
            "it is not a character device (a file mounted or left over it?), so not the null device",
        ),
        (
            Path::new("/dev/zero"),
            "it is the character device 1:5, not the null device 1:3",
        ),
    ];
    for (source, why) in cases {
        let script = r#"mount --bind "$1" /dev/null || exit 99; shift; exec "$@""#;
        let launcher = builder(&out, &["--then", "print"]);
        let output = launch(in_mount_namespace(script, &[source], &launcher));
        if let Ok(report) = std::fs::read_to_string(&out) {
            common::kill_and_wait(common::report_pid(&report));
        }
        assert_eq!(
            stderr_text(&output),
            format!("fx_builder: cannot open /dev/null: {why}: No such device (os error 19)\n")
        );
        assert_eq!(output.status.code(), Some(1));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "original\n");
    }
}

/// Item 6: the working directory is entered with the daemon's ids, after the chroot: a `user = "nobody"`
/// daemon whose workdir only root may enter fails the start (before: exit 0, and a daemon that could not
/// read its own working directory); its pid file and lock file are removed.
#[test]
fn item06_the_workdir_is_entered_as_the_daemons_user() {
    if !is_root() {
        skip("needs root to run the daemon as nobody");
        return;
    }
    let (dir, _) = scratch("h-workdir");
    let reports = dir.join("reports");
    std::fs::create_dir(&reports).unwrap();
    std::fs::set_permissions(&reports, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = reports.join("report");
    let private = dir.join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let pid_file = dir.join("app.pid");
    let args = [
        "--user",
        "nobody",
        "--workdir",
        private.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
    ];
    let output = launch(builder(&out, &args));
    if let Ok(report) = std::fs::read_to_string(&out) {
        common::kill_and_wait(common::report_pid(&report));
    }
    assert_eq!(
        stderr_text(&output),
        format!(
            "fx_builder: cannot change directory to {}: Permission denied (os error 13)\n",
            private.display()
        )
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(!pid_file.exists(), "the pid file was left behind");
    assert!(
        !lock_of(&pid_file).exists(),
        "the lock file was left behind"
    );
    // A workdir nobody may enter works. The lock file stays root's (issue 18.4: no other process of
    // nobody's may hold it or write the daemon's answers); nobody controls its daemon through it anyway.
    let open = dir.join("open");
    std::fs::create_dir(&open).unwrap();
    let args = [
        "--user",
        "nobody",
        "--workdir",
        open.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
    ];
    let daemon = start(builder(&out, &args), &out);
    assert_eq!(std::fs::read_link(daemon.proc("cwd")).unwrap(), open);
    assert_eq!(daemon.status("Uid")[1], NOBODY.to_string());
    let lock = std::fs::metadata(lock_of(&pid_file)).unwrap();
    assert_eq!((lock.uid(), lock.mode() & 0o777), (0, 0o600));
    assert_eq!(std::fs::metadata(&pid_file).unwrap().uid(), 0);
    // Killed, it leaves both files: the next start takes them over.
    let first = daemon.pid;
    drop(daemon);
    std::fs::remove_file(&out).unwrap();
    assert!(lock_of(&pid_file).exists());
    let daemon = start(builder(&out, &args), &out);
    assert_ne!(daemon.pid, first);
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        format!("{}\n", daemon.pid)
    );
}

/// Item 7: a daemon whose program set SIGPIPE back to `SIG_DFL` survives reporting to a launcher that has
/// gone (before: `ready()` killed it with SIGPIPE), and `ready()` does not fail.
#[test]
fn item07_reporting_to_a_gone_launcher_never_kills_the_daemon() {
    let (_dir, out) = scratch("h-sigpipe");
    let mut launcher = builder(&out, &["--manual", "--then", "sigpipe-ready"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn launcher");
    let daemon = common::LiveDaemon::new(common::report_pid(&common::wait_for_report(&out)));
    // The launcher waits for `ready()`: end it, so that the pipe's read end is gone.
    launcher.kill().unwrap();
    launcher.wait().unwrap();
    std::fs::write(format!("{}.go", out.display()), "").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let report = loop {
        let report = std::fs::read_to_string(&out).unwrap_or_default();
        if report.contains("ready=") || !daemon.alive() {
            break report;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no report after ready()"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert!(
        daemon.alive(),
        "the daemon died reporting to a gone launcher"
    );
    assert_eq!(report, format!("{} ready=Ok(())\n", daemon.pid));
    assert_eq!(
        daemon.status("SigBlk"),
        ["0000000000000000"],
        "the signal mask was restored"
    );
}

/// Item 10: a path over 1500 bytes is shown cut, with a mark saying so; a program started with an empty
/// argv[0] (`exec -a ''`) names itself by its executable's file name (before: `: message`).
#[test]
fn item10_messages_mark_a_cut_path_and_always_name_the_program() {
    let (dir, out) = scratch("h-messages");
    let long = (0..8).fold(dir.join("missing"), |path, _| path.join("d".repeat(200)));
    let pid_file = long.join("app.pid");
    let output = launch(with_pid_file(&out, &pid_file));
    let stderr = stderr_text(&output);
    let path = pid_file.display().to_string();
    let cut = path.len() - 1500;
    assert_eq!(
        stderr,
        format!(
            "fx_builder: cannot use pid file {} [… {cut} more bytes cut]: No such file or directory (os error 2)\n",
            &path[..1500]
        )
    );
    let mut command = common::fixture("fx_missing_workdir", &out);
    command.arg0("");
    let output = launch(command);
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_text(&output);
    assert!(
        stderr.starts_with("fx_missing_workdir: cannot change directory to "),
        "{stderr}"
    );
}

/// Item 11: passing a CLI flag straight to `foreground()` is safe: `foreground(false)` is "no
/// preference", so under systemd's `NOTIFY_SOCKET` the process stays in the foreground and sends READY=1
/// (before: it forked and systemd never heard READY=1); forking there takes the explicit `force_fork()`.
#[test]
fn item11_foreground_false_is_no_preference_and_forcing_a_fork_is_explicit() {
    let (dir, out) = scratch("h-foreground");
    let path = dir.join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut command = builder(&out, &["--foreground-flag", "0"]);
    command.env("NOTIFY_SOCKET", &path).stdout(Stdio::null());
    let child = ChildGuard(command.spawn().unwrap());
    let report = common::wait_for_report(&out);
    let mut message = [0u8; 64];
    let n = socket
        .recv(&mut message)
        .expect("READY=1 on the notify socket");
    assert_eq!(&message[..n], b"READY=1");
    assert_eq!(
        common::report_pid(&report),
        child.0.id() as i32,
        "it forked"
    );
    drop(child);
    std::fs::remove_file(&out).unwrap();
    let mut command = builder(&out, &["--force-fork"]);
    command.env("NOTIFY_SOCKET", &path);
    let daemon = start(command, &out);
    assert_ne!(
        Some(daemon.pid),
        daemon.launcher,
        "force_fork() forks under NOTIFY_SOCKET"
    );
}

/// Item 12: a ready record that arrives as the deadline passes is still read (before: the deadline was
/// checked before a last read, and the launcher stopped a daemon that was ready). strace makes the
/// launcher's wait return "timed out" 1.5 s late, past the 1 s deadline, when the record is long there.
#[test]
fn item12_a_record_there_at_the_deadline_is_not_missed() {
    if !has_strace() {
        skip("needs strace(1) to delay the launcher's poll past its deadline");
        return;
    }
    let (_dir, out) = scratch("h-deadline");
    let launcher = builder(&out, &["--timeout-secs", "1"]);
    // poll #1 is std's check of fds 0-2 at start-up; #2 is the launcher's wait for the record.
    let command = under_strace(
        &launcher,
        Path::new("/dev/null"),
        &[
            "-e",
            "trace=poll",
            "-e",
            "inject=poll:retval=0:delay_exit=1500000:when=2",
        ],
    );
    let daemon = start(command, &out);
    assert!(daemon.alive());
}

/// Review F8: a root start that switches to a user refuses a pid file that user owns (and leaves it as it
/// was): the pid file is read as root by scripts, so the daemon's user must not be able to rewrite it.
#[test]
fn a_pid_file_owned_by_the_daemons_user_is_refused() {
    if !is_root() {
        skip("a pid file owned by nobody needs root to chown it");
        return;
    }
    let (dir, out) = scratch("h-user-pid");
    let planted = dir.join("app.pid");
    std::fs::write(&planted, "1\n").unwrap();
    std::os::unix::fs::chown(&planted, Some(NOBODY), Some(NOBODY)).unwrap();
    let output = launch(builder(
        &out,
        &["--pid-file", planted.to_str().unwrap(), "--user", "nobody"],
    ));
    if output.status.success() {
        // Started (the bug): stop the daemon, whose pid root wrote into nobody's file.
        std::thread::sleep(std::time::Duration::from_millis(200));
        if let Some(pid) = std::fs::read_to_string(&planted)
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            common::kill_and_wait(pid);
        }
        panic!("a root start accepted a pid file owned by the daemon's user");
    }
    assert!(
        stderr_text(&output).contains(&format!(
            "it is owned by uid {NOBODY}, not by root, so that user could rewrite it"
        )),
        "{}",
        stderr_text(&output)
    );
    assert_eq!(std::fs::read_to_string(&planted).unwrap(), "1\n");
    assert!(!lock_of(&planted).exists(), "the lock file was left behind");
}
