//! The launch path on live daemons: the intermediate process that shares the launcher's memory (x86-64
//! Linux), its fallback to two plain forks, its failures, the C library's state in the daemon, and the
//! program entry that does without /proc/self/status.

mod common;

use std::process::Command;

use common::{
    LiveDaemon, before_exec, check, fixture, has_strace, is_root, launch, scratch, skip, start,
    stat_fields, stderr_text, under_strace,
};

/// The daemon's session id and process-group id, from /proc.
fn session_and_group(daemon: &LiveDaemon) -> (i32, i32) {
    let fields = stat_fields(daemon.pid);
    // After the command: state, ppid, pgrp, session.
    (fields[3].parse().unwrap(), fields[2].parse().unwrap())
}

/// The first `clone(...)` line of a strace log and the pid it returned.
fn first_clone(log: &str) -> (&str, i32) {
    let line = log
        .lines()
        .find(|l| l.starts_with("clone(") || l.contains(" clone("))
        .unwrap_or_else(|| panic!("no clone in the trace:\n{log}"));
    let pid = line
        .rsplit_once("= ")
        .and_then(|(_, r)| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(-1);
    (line, pid)
}

/// The intermediate is created with `CLONE_VM|CLONE_VFORK` (no copy of the launcher), leads the new
/// session, and is not the daemon: the daemon is in its session and group, and leads neither.
#[test]
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn the_intermediate_shares_the_launchers_memory() {
    if !has_strace() {
        skip("needs strace(1) to see how the launcher creates the intermediate");
        return;
    }
    let (dir, out) = scratch("l-shared");
    let log = dir.join("strace.log");
    let launcher = fixture("fx_default", &out);
    let daemon = start(
        under_strace(&launcher, &log, &["-e", "trace=clone,clone3,fork,vfork"]),
        &out,
    );
    let trace = std::fs::read_to_string(&log).unwrap();
    let (line, intermediate) = first_clone(&trace);
    assert!(
        line.contains("CLONE_VM") && line.contains("CLONE_VFORK"),
        "the launcher's first clone: {line}"
    );
    assert!(intermediate > 0, "the intermediate's pid in {line}");
    assert_ne!(daemon.pid, intermediate);
    assert_eq!(
        session_and_group(&daemon),
        (intermediate, intermediate),
        "the daemon's session and group are the intermediate's"
    );
}

/// Where `clone` refuses `CLONE_VM|CLONE_VFORK` (EPERM, as a seccomp filter answers), the launcher forks
/// twice as before, and the daemon is the same: in a session and group it does not lead.
#[test]
fn a_refused_shared_clone_falls_back_to_two_forks() {
    if !has_strace() {
        skip("needs strace(1) to refuse the launcher's first clone");
        return;
    }
    let (dir, out) = scratch("l-fallback");
    let log = dir.join("strace.log");
    let launcher = fixture("fx_default", &out);
    let daemon = start(
        under_strace(
            &launcher,
            &log,
            &["-e", "trace=clone", "-e", "inject=clone:error=EPERM:when=1"],
        ),
        &out,
    );
    let trace = std::fs::read_to_string(&log).unwrap();
    let clones: Vec<&str> = trace.lines().filter(|l| l.contains("clone(")).collect();
    if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        assert!(
            clones.len() == 2
                && clones[0].contains("(INJECTED)")
                && !clones[1].contains("CLONE_VM"),
            "a refused shared clone, then a plain fork:\n{trace}"
        );
    }
    let (session, group) = session_and_group(&daemon);
    assert_eq!(session, group);
    assert_ne!(session, daemon.pid, "the daemon must not lead its session");
}

/// A `setsid` that fails in the intermediate reaches the launcher's terminal, naming the step and the OS
/// error; no daemon is left.
#[test]
fn a_failed_setsid_is_reported_and_leaves_nothing() {
    if !has_strace() {
        skip("needs strace(1) to make setsid fail in the intermediate");
        return;
    }
    let (dir, out) = scratch("l-setsid");
    let log = dir.join("strace.log");
    let launcher = fixture("fx_default", &out);
    let output = launch(under_strace(
        &launcher,
        &log,
        &[
            "-f",
            "-e",
            "trace=setsid",
            "-e",
            "inject=setsid:error=EPERM",
        ],
    ));
    let stderr = stderr_text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("fx_default: cannot create a new session")
            && stderr.contains("Operation not permitted"),
        "{stderr}"
    );
    // The daemon was never forked: no report, and strace (which follows every process) has exited.
    assert!(!out.exists(), "a daemon reported");
}

/// A uid no other process runs as, so that the launcher and the intermediate are its only processes.
const LONE_UID: u32 = 61_873;

/// A `fork` that fails in the intermediate (`RLIMIT_NPROC` reached: the launcher and the intermediate are
/// the user's two processes) reaches the launcher's terminal; no daemon is left.
#[test]
fn a_failed_fork_in_the_intermediate_is_reported() {
    if !is_root() {
        skip("needs root to run the launcher as a user of its own with RLIMIT_NPROC 2");
        return;
    }
    let (_dir, out) = scratch("l-nproc");
    let mut command = fixture("fx_default", &out);
    let limit = || {
        let nproc = libc::rlimit {
            rlim_cur: 2,
            rlim_max: 2,
        };
        // SAFETY: setrlimit, setgroups, setgid and setuid only read the values given; all are
        // async-signal-safe system calls.
        check(unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &raw const nproc) })?;
        // SAFETY: as above.
        check(unsafe { libc::setgroups(0, std::ptr::null()) })?;
        // SAFETY: as above.
        check(unsafe { libc::setgid(LONE_UID) })?;
        // SAFETY: as above.
        check(unsafe { libc::setuid(LONE_UID) })
    };
    // SAFETY: the closure makes only async-signal-safe system calls on constants.
    unsafe { before_exec(&mut command, limit) };
    let output = launch(command);
    let stderr = stderr_text(&output);
    assert!(!output.status.success(), "started with RLIMIT_NPROC 2");
    assert!(
        stderr.contains("fx_default: cannot fork") && stderr.contains("Resource temporarily"),
        "{stderr}"
    );
}

/// The daemon comes out of the C library's own `fork`: the thread id the C library holds is the daemon's
/// (a raw clone would leave the launcher's there, and `pthread_*` calls on the main thread would act on
/// whatever process reuses that pid), and the `pthread_atfork` child handlers ran. And its main thread has
/// the C library's rseq area registered when the launcher's had (a `CLONE_VM` intermediate passes none
/// on): `sched_getcpu()`, which reads that area, agrees with the kernel on every CPU. And its main thread has
/// the C library's rseq area registered when the launcher's had (a `CLONE_VM` intermediate passes none
/// on): `sched_getcpu()`, which reads that area, agrees with the kernel on every CPU.
#[test]
fn the_daemons_c_library_state_is_its_own() {
    let (_dir, out) = scratch("l-ids");
    let mut command = fixture("fx_builder", &out);
    command.args(["--atfork", "--then", "ids"]);
    let daemon = start(command, &out);
    let report = std::fs::read_to_string(&out).unwrap();
    let word = |name: &str| -> &str {
        report
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {name} in {report:?}"))
    };
    let field = |name: &str| -> i64 {
        word(name)
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number in {report:?}"))
    };
    assert_eq!(field("tid"), i64::from(daemon.pid), "{report}");
    assert_eq!(field("gettid"), i64::from(daemon.pid), "{report}");
    assert!(
        field("atfork") >= 1,
        "the atfork child handler never ran: {report}"
    );
    assert_eq!(
        word("rseq"),
        word("rseq_launcher"),
        "rseq registration: {report}"
    );
    assert_eq!(
        word("cpus"),
        "agree",
        "sched_getcpu() against getcpu(2): {report}"
    );
}

/// An intermediate that dies after its fork (here a `pthread_atfork` parent handler `_exit`s in it) leaves
/// the launcher nothing in the shared memory to go by: the daemon's report on the pipe decides, and the
/// start succeeds, as with two plain forks.
#[test]
fn an_intermediate_that_dies_after_its_fork_does_not_fail_a_started_daemon() {
    let (_dir, out) = scratch("l-parent-exit");
    let mut command = fixture("fx_builder", &out);
    command.arg("--atfork-parent-exit");
    let daemon = start(command, &out);
    assert!(daemon.alive());
}

/// The kernel's SigIgn/SigBlk masks of `pid` and its open fds, from /proc.
fn signals_and_fds(pid: i32) -> (u64, u64, Vec<i32>) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = |key: &str| {
        let value = status.lines().find_map(|l| l.strip_prefix(key)).unwrap();
        u64::from_str_radix(value.trim(), 16).unwrap()
    };
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    (mask("SigIgn:"), mask("SigBlk:"), fds)
}

/// At the program's entry (`#[daemon]` on `main`) the launch does without /proc/self/status when the fd
/// table is known to be small: a soft `RLIMIT_NOFILE` of at most 4096, or no fd open above 2. Otherwise
/// (a limit of 8192 and an inherited fd) it reads it. Either way the daemon ends up the same: the ignored
/// signals (the C library's reserved 32 and 33 among them) back at `SIG_DFL`, the inherited mask empty,
/// the inherited fd closed.
#[test]
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn the_program_entry_resets_the_same_with_or_without_proc_status() {
    if !has_strace() {
        skip("needs strace(1) to see whether the launcher reads /proc/self/status");
        return;
    }
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    // (soft = hard limit, an fd inherited at 1000, /proc/self/status read)
    for (limit, inherited, reads_status) in [
        (1024_u64, true, false),
        (8192, true, true),
        (8192, false, false),
    ] {
        if limit > hard {
            skip(&format!(
                "the hard RLIMIT_NOFILE is {hard}: the entry above 4096 fds is not tried"
            ));
            continue;
        }
        let (dir, out) = scratch("l-entry");
        let log = dir.join("strace.log");
        let launcher = fixture("fx_default", &out);
        let mut command = under_strace(&launcher, &log, &["-e", "trace=openat"]);
        let inherit = move || {
            // Hard = soft: strace raises its own soft limit to the hard one, and the launcher inherits it.
            let nofile = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            // SAFETY: setrlimit reads the value given; async-signal-safe.
            check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const nofile) })?;
            // Only what the test gives: the harness may pass its own inheritable fds (cargo's jobserver).
            // Marked close-on-exec rather than closed, so that std's exec-error pipe still works.
            // SAFETY: close_range only sets a flag on the fds above 2; async-signal-safe.
            check(unsafe { libc::close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as i32) })?;
            // An inherited fd (dup2 leaves it without close-on-exec), below the limit.
            if inherited {
                // SAFETY: dup2 of stdin onto a free number; no Rust object owns fd 1000.
                check(unsafe { libc::dup2(0, 1000) })?;
            }
            for signal in [libc::SIGHUP, 32, 33] {
                tests::ignore_raw(signal)?;
            }
            // SAFETY: sigset_t is plain data; sigemptyset and sigaddset initialize and fill it.
            let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            check(unsafe { libc::sigemptyset(&raw mut set) })?;
            // SAFETY: as above.
            check(unsafe { libc::sigaddset(&raw mut set, libc::SIGUSR1) })?;
            // SAFETY: `set` is initialized; a null old set asks for nothing back.
            check(unsafe {
                libc::sigprocmask(libc::SIG_BLOCK, &raw const set, std::ptr::null_mut())
            })
        };
        // SAFETY: the closure makes only async-signal-safe system calls on its own values.
        unsafe { before_exec(&mut command, inherit) };
        let daemon = start(command, &out);
        let read = std::fs::read_to_string(&log)
            .unwrap()
            .contains("\"/proc/self/status\"");
        assert_eq!(
            read, reads_status,
            "status read at a soft limit of {limit}, inherited fd: {inherited}"
        );
        let (ignored, blocked, fds) = signals_and_fds(daemon.pid);
        // Only SIGPIPE, which Rust's runtime ignores in every program it starts.
        assert_eq!(
            ignored,
            1 << (libc::SIGPIPE - 1),
            "SigIgn {ignored:x} at {limit}"
        );
        assert_eq!(blocked, 0, "SigBlk {blocked:x} at {limit}");
        assert_eq!(fds, [0, 1, 2], "open fds at {limit}");
    }
}

/// A seccomp filter for `pre_exec` that makes `unshare(2)` fail with EPERM, as Docker's default profile
/// does without `CAP_SYS_ADMIN`: one `prctl` with a program on the stack.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn refuse_unshare() -> std::io::Result<()> {
    const LOAD_NR: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS, offset 0: seccomp_data.nr
    const JUMP_EQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RETURN: u16 = 0x06; // BPF_RET | BPF_K
    const RET_ERRNO: u32 = 0x0005_0000;
    const RET_ALLOW: u32 = 0x7fff_0000;
    let filter = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let program = [
        filter(LOAD_NR, 0, 0, 0),
        filter(JUMP_EQ, 0, 1, libc::SYS_unshare as u32),
        filter(RETURN, 0, 0, RET_ERRNO | libc::EPERM as u32),
        filter(RETURN, 0, 0, RET_ALLOW),
    ];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integers only.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    // SAFETY: the kernel copies the filter program, valid for the call, from `fprog`.
    check(unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &raw const fprog,
            0,
            0,
        )
    })
}

/// A thread started before `main` (by a constructor) is refused at the program's entry even where
/// `unshare(2)` cannot count threads (a seccomp filter refuses it): then /proc/self/status is read, as
/// with a large fd table, and counts them. (Taking the unknown count on trust would fork away the thread
/// and whatever it held locked.)
#[test]
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn a_thread_started_before_main_is_refused_where_unshare_is_filtered() {
    let (_dir, out) = scratch("l-ctor-thread");
    let mut command = fixture("fx_ctor_thread", &out);
    let confine = || {
        // The entry's other condition for skipping /proc: a small fd table.
        let nofile = libc::rlimit {
            rlim_cur: 1024,
            rlim_max: 1024,
        };
        // SAFETY: setrlimit reads the value given; async-signal-safe.
        check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const nofile) })?;
        refuse_unshare()
    };
    // SAFETY: the closure makes only async-signal-safe system calls on values on its stack.
    unsafe { before_exec(&mut command, confine) };
    let output = launch(command);
    let stderr = stderr_text(&output);
    if output.status.success() {
        // Started (the bug): stop the daemon before failing.
        std::thread::sleep(std::time::Duration::from_millis(200));
        if let Ok(report) = std::fs::read_to_string(&out) {
            common::kill_and_wait(common::report_pid(&report));
        }
        panic!("a launcher with a second thread started a daemon");
    }
    assert!(
        stderr.contains("2 threads are running"),
        "the refusal names the count /proc gave: {stderr}"
    );
}

/// The newest glibc symbol version `binary` needs (`readelf -V`), as (major, minor).
fn newest_glibc_needed(binary: &str) -> Option<(u32, u32)> {
    let output = Command::new("readelf")
        .args(["-V", "--wide", binary])
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("GLIBC_"))
        .filter_map(|version| {
            let (major, minor) = version.split_once('.')?;
            Some((major.parse().ok()?, minor.split('.').next()?.parse().ok()?))
        })
        .max()
}

/// The runtime asks for glibc's rseq symbols at run time, not by a link-time reference: a program that
/// uses it loads on every glibc a plain Rust program built here loads on (a reference, even a weak one,
/// would add a hard requirement of glibc 2.35).
#[test]
fn a_daemon_needs_no_newer_glibc_than_a_plain_program() {
    let (Some(daemon), Some(plain)) = (
        newest_glibc_needed(common::exe("fx_default")),
        newest_glibc_needed(common::exe("bench_floor")),
    ) else {
        skip("needs readelf(1) and a glibc target to read the symbol versions");
        return;
    };
    assert!(
        daemon <= plain,
        "a #[daemon] program needs glibc {daemon:?}, a plain one {plain:?}"
    );
}
