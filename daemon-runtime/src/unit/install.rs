//! `install` and `uninstall`: the unit as `/etc/systemd/system/NAME.service`, then `systemctl`.
//!
//! The path is judged on the opened descriptor, never followed: the directory must be root's and writable
//! by nobody else, and an existing file a regular root-owned file with one name and no write bit for others
//! (a symbolic link, a masked unit's `-> /dev/null`, is never replaced nor removed). The new file is written
//! beside it and renamed over it, so systemd never reads half a unit, and a failed install leaves nothing
//! new behind. `uninstall` removes the file only when it is exactly what `install` writes.

use std::io::{Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::process::Command;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};
use nix::unistd::{UnlinkatFlags, linkat, unlinkat};

/// Where units written by the administrator live.
const UNITS: &str = "/etc/systemd/system";
/// The largest unit file read back (a generated one is a few KiB).
const MAX_UNIT: u64 = 1 << 20;

/// Why an action could not be done: its LSB exit code and the message.
pub(crate) type Refusal = (u8, String);

/// Refuses where `install` cannot work: systemd is not PID 1 (it makes `/run/systemd/system` at boot, as
/// `sd_booted(3)` checks), or the caller is not root.
pub(crate) fn check_host(name: &str) -> Result<(), Refusal> {
    let booted = std::fs::symlink_metadata("/run/systemd/system").is_ok_and(|m| m.is_dir());
    if !booted {
        return Err((
            3,
            format!(
                "systemd is not running as PID 1 here (no /run/systemd/system), so there is nothing to install the unit into; `{name} unit` prints it"
            ),
        ));
    }
    if !nix::unistd::geteuid().is_root() {
        return Err((4, format!("only root can write units to {UNITS}")));
    }
    if name.is_empty()
        || name.starts_with('.')
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '.' | '-'))
    {
        return Err((
            1,
            format!(
                "{name:?} cannot name a unit (letters, digits, `:`, `_`, `.` and `-` only): rename the executable"
            ),
        ));
    }
    Ok(())
}

/// Writes `text` as `NAME.service` (replacing a different file only with `force`), reloads systemd, and
/// says how to start it. `exe` is the program the unit runs: with `force` it may be one others can
/// replace.
pub(crate) fn install(name: &str, exe: &str, text: &str, force: bool) -> Result<String, Refusal> {
    if !force {
        only_root_can_replace(name, exe)?;
    }
    let file = format!("{name}.service");
    let path = format!("{UNITS}/{file}");
    let dir = open_units()?;
    let contents = format!("{text}\n");
    let enable = format!("start it, and at every boot, with: systemctl enable --now {file}");
    match look(&dir, &file, &path)? {
        Some((found, _)) if found == contents.as_bytes() => {
            reload()?;
            return Ok(format!("{path} is installed already, unchanged; {enable}"));
        }
        Some(_) if !force => {
            return Err((
                1,
                format!(
                    "refusing to replace {path}: it differs from this program's unit (a hand-written unit, or another build's); `{name} install --force` replaces it"
                ),
            ));
        }
        Some(_) => write(&dir, &file, &path, &contents, true)?,
        None => write(&dir, &file, &path, &contents, false)?,
    }
    if let Err((code, why)) = reload() {
        // A new file systemd could not load is taken away again; a replaced one stays, and is said.
        if !force {
            let _ = unlinkat(&dir, file.as_str(), UnlinkatFlags::NoRemoveDir);
            return Err((code, format!("{why}; {path} was removed again")));
        }
        return Err((code, format!("{why}; {path} was replaced")));
    }
    Ok(format!("installed {path}; {enable}"))
}

/// Refuses an executable that another user than root could replace, through the file or any directory
/// above it: the unit runs it as root (or with what the keys grant) at every boot, so `sudo ./target/
/// release/app install` from a user's build tree would hand that user root. A directory writable by
/// others is accepted only with the sticky bit and root as owner (`/tmp`): then only root may rename or
/// remove root's entries in it.
fn only_root_can_replace(name: &str, exe: &str) -> Result<(), Refusal> {
    use std::os::unix::fs::MetadataExt as _;
    let mut path = Some(std::path::Path::new(exe));
    while let Some(at) = path {
        let meta = std::fs::symlink_metadata(at)
            .map_err(|e| (1, format!("cannot look at {}: {e}", at.display())))?;
        let sticky = meta.is_dir() && meta.mode() & 0o1000 != 0;
        let why = if meta.uid() != 0 {
            Some(format!("it is owned by uid {}", meta.uid()))
        } else if meta.mode() & 0o022 != 0 && !sticky {
            Some(format!(
                "it is writable by its group or others (mode {:o})",
                meta.mode() & 0o7777
            ))
        } else {
            None
        };
        if let Some(why) = why {
            return Err((
                1,
                format!(
                    "refusing to install a unit that runs {exe}: {} can be replaced by another user than root ({why}), and systemd would run it at every boot; put the executable where only root can write (/usr/local/bin, say), or `{name} install --force`",
                    at.display()
                ),
            ));
        }
        path = at.parent();
    }
    Ok(())
}

/// Stops and disables `NAME.service`, then removes its file, if the file is exactly what `install`
/// writes for this program.
pub(crate) fn uninstall(name: &str, text: &str) -> Result<String, Refusal> {
    let file = format!("{name}.service");
    let path = format!("{UNITS}/{file}");
    let dir = open_units()?;
    let Some((found, stat)) = look(&dir, &file, &path)? else {
        return Ok(format!("{file} is not installed ({path} does not exist)"));
    };
    if found != format!("{text}\n").as_bytes() {
        return Err((
            1,
            format!(
                "refusing to remove {path}: it is not what `{name} install` writes (edited, hand-written, or another build's)"
            ),
        ));
    }
    systemctl(&["disable", "--now", &file])?;
    // Removed only if the name still holds the file that was read: root's directory, but said anyway.
    let now = nix::sys::stat::fstatat(&dir, file.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| os("look at", &path, e))?;
    if (now.st_dev, now.st_ino) != (stat.st_dev, stat.st_ino) {
        return Err((
            1,
            format!("{path} changed while it was being removed; try again"),
        ));
    }
    unlinkat(&dir, file.as_str(), UnlinkatFlags::NoRemoveDir)
        .map_err(|e| os("remove", &path, e))?;
    reload()?;
    // Forget a failed state, if the unit left one (the unit is gone, so this may well say so).
    let _ = Command::new(systemctl_path())
        .args(["reset-failed", &file])
        .output();
    let drop_ins = format!("{path}.d");
    let left = if std::fs::symlink_metadata(&drop_ins).is_ok() {
        format!(" ({drop_ins} is left: install did not write it)")
    } else {
        String::new()
    };
    Ok(format!("stopped, disabled and removed {path}{left}"))
}

/// The units directory, opened and checked: a directory, root's, writable by nobody else.
fn open_units() -> Result<OwnedFd, Refusal> {
    let dir = nix::fcntl::open(
        UNITS,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| os("open", UNITS, e))?;
    let stat = fstat(&dir).map_err(|e| os("look at", UNITS, e))?;
    if stat.st_uid != 0 || stat.st_mode & 0o022 != 0 {
        return Err((
            1,
            format!(
                "refusing to write to {UNITS}: it is owned by uid {} with mode {:o}, not root's alone",
                stat.st_uid,
                stat.st_mode & 0o7777
            ),
        ));
    }
    Ok(dir)
}

/// The unit file's contents and identity, if there is one; refuses what it must not touch.
fn look(dir: &OwnedFd, file: &str, path: &str) -> Result<Option<(Vec<u8>, FileStat)>, Refusal> {
    let flags = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    let fd = match openat(dir, file, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(Errno::ELOOP) => {
            let target = nix::fcntl::readlinkat(dir, file)
                .map_or_else(|_| "?".to_string(), |t| t.to_string_lossy().into_owned());
            return Err((
                1,
                format!(
                    "refusing to touch {path}: it is a symbolic link (to {target}), a masked or linked unit; remove it first"
                ),
            ));
        }
        Err(errno) => return Err(os("open", path, errno)),
    };
    let stat = fstat(&fd).map_err(|e| os("look at", path, e))?;
    let refuse = |why: String| Err((1, format!("refusing to touch {path}: {why}")));
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return refuse("it is not a regular file".into());
    }
    if stat.st_uid != 0 {
        return refuse(format!("it is owned by uid {}, not root", stat.st_uid));
    }
    if stat.st_mode & 0o022 != 0 {
        return refuse(format!(
            "it is group- or world-writable (mode {:o})",
            stat.st_mode & 0o7777
        ));
    }
    if stat.st_nlink != 1 {
        return refuse(format!("it has {} hard links", stat.st_nlink));
    }
    let mut contents = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_UNIT + 1)
        .read_to_end(&mut contents)
        .map_err(|e| (1, format!("cannot read {path}: {e}")))?;
    Ok(Some((contents, stat)))
}

/// Writes `contents` beside `file` and moves it into place: over the old file with `replace`, else only
/// where no file is (`linkat` fails if one appeared meanwhile).
fn write(
    dir: &OwnedFd,
    file: &str,
    path: &str,
    contents: &str,
    replace: bool,
) -> Result<(), Refusal> {
    let temporary = format!(".{file}.{}.tmp", std::process::id());
    let mut handle = openat(
        dir,
        temporary.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map(std::fs::File::from)
    .map_err(|e| os("create", &format!("{UNITS}/{temporary}"), e))?;
    let errno = |e: std::io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    let written = (|| {
        // Readable by all, as units are, whatever the caller's umask.
        nix::sys::stat::fchmod(&handle, Mode::from_bits_truncate(0o644))?;
        handle.write_all(contents.as_bytes()).map_err(errno)?;
        handle.sync_all().map_err(errno)?;
        if replace {
            nix::fcntl::renameat(dir, temporary.as_str(), dir, file)
        } else {
            linkat(dir, temporary.as_str(), dir, file, AtFlags::empty())
        }
    })();
    if replace && written.is_ok() {
        return Ok(());
    }
    let _ = unlinkat(dir, temporary.as_str(), UnlinkatFlags::NoRemoveDir);
    match written {
        Ok(()) => Ok(()),
        Err(Errno::EEXIST) => Err((1, format!("{path} appeared meanwhile; try again"))),
        Err(errno) => Err(os("write", path, errno)),
    }
}

fn reload() -> Result<(), Refusal> {
    systemctl(&["daemon-reload"])
}

/// systemd's `systemctl`, by its absolute path: root's `PATH` is not the unit's to choose.
fn systemctl_path() -> &'static str {
    ["/usr/bin/systemctl", "/bin/systemctl"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .unwrap_or("/usr/bin/systemctl")
}

/// Runs `systemctl ARGS`; its own message when it fails.
fn systemctl(args: &[&str]) -> Result<(), Refusal> {
    let shown = format!("systemctl {}", args.join(" "));
    let output = Command::new(systemctl_path())
        .args(args)
        .output()
        .map_err(|e| (1, format!("cannot run {shown}: {e}")))?;
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr);
    Err((
        1,
        format!("{shown} failed ({}): {}", output.status, said.trim()),
    ))
}

fn os(what: &str, path: &str, errno: Errno) -> Refusal {
    (
        1,
        format!("cannot {what} {path}: {}", std::io::Error::from(errno)),
    )
}
