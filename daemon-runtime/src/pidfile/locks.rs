//! The kernel's table of file locks, `/proc/locks`, and how it names a file.

use std::os::fd::{AsRawFd, BorrowedFd};

#[cfg(all(test, feature = "control"))]
use nix::unistd::Pid;

#[cfg(feature = "control")]
pub(crate) const PATH: &str = "/proc/locks";

/// How `/proc/locks` (and the `lock:` lines of fdinfo) may name the file open as `fd`, whose `stat`
/// gave `dev` and `ino`: `MAJOR:MINOR:INODE`, device numbers in hex.
///
/// The kernel prints the device of the inode's superblock, which is not always `st_dev`: btrfs gives
/// each subvolume an anonymous device in `st_dev`, and overlayfs reports a layer's device for files
/// whose layers are on different file systems. The superblock's device is the `maj:min` of the file's
/// mount in `/proc/self/mountinfo` (found by the `mnt_id` of the descriptor's fdinfo), so both are
/// candidates; a device number names one file system only, so matching either is exact.
pub(crate) fn ids(fd: BorrowedFd<'_>, dev: u64, ino: u64) -> Vec<String> {
    let mut ids = vec![id(libc::major(dev), libc::minor(dev), ino)];
    if let Some((major, minor)) = mount_device(fd) {
        let other = id(major, minor, ino);
        if !ids.contains(&other) {
            ids.push(other);
        }
    }
    ids
}

fn id(major: u32, minor: u32, ino: u64) -> String {
    format!("{major:02x}:{minor:02x}:{ino}")
}

/// The `maj:min` (decimal) of the mount `fd` is on, from `/proc/self/mountinfo`.
fn mount_device(fd: BorrowedFd<'_>) -> Option<(u32, u32)> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    let mount = info
        .lines()
        .find_map(|line| line.strip_prefix("mnt_id:"))?
        .trim()
        .to_string();
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mount_device_in(&table, &mount)
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`: the mount id, its parent's, then
/// `maj:min`.
fn mount_device_in(table: &str, mount: &str) -> Option<(u32, u32)> {
    table.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        if fields.next()? != mount {
            return None;
        }
        let (major, minor) = fields.nth(1)?.split_once(':')?;
        Some((major.parse().ok()?, minor.parse().ok()?))
    })
}

#[cfg(all(test, feature = "control"))]
fn parse(line: &str, ids: &[String]) -> Option<Pid> {
    // A holder outside our pid namespace shows as 0 or -1.
    pid_field(line, ids)?
        .parse::<i32>()
        .ok()
        .filter(|pid| *pid > 0)
        .map(Pid::from_raw)
}

/// The pid field of a line that names an exclusive `flock` on the file named by one of `ids`, as this
/// procfs prints it (0 or -1 for a holder outside its pid namespace): from lines such as
/// `3: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF` (device numbers in hex; waiters are `->` lines).
#[cfg(feature = "control")]
pub(crate) fn pid_field<'a>(line: &'a str, ids: &[String]) -> Option<&'a str> {
    let mut fields = line.split_whitespace().skip(1);
    let [kind, _, mode, pid, file] = std::array::from_fn(|_| fields.next().unwrap_or(""));
    (kind == "FLOCK" && mode == "WRITE" && ids.iter().any(|id| id == file)).then_some(pid)
}

#[cfg(test)]
#[test]
fn the_superblocks_device_is_the_mounts() {
    let table = "22 1 8:2 / / rw - ext4 /dev/sda2 rw\n43 27 0:39 / /tmp/m rw,relatime - btrfs /dev/loop0 rw\n";
    assert_eq!(mount_device_in(table, "43"), Some((0, 39)));
    assert_eq!(mount_device_in(table, "22"), Some((8, 2)));
    assert_eq!(mount_device_in(table, "4"), None);
    // btrfs: stat says 0:28, /proc/locks 00:27 (0:39).
    assert_eq!(id(0, 39, 257), "00:27:257");
    #[cfg(feature = "control")]
    assert_eq!(
        parse(
            "3: FLOCK  ADVISORY  WRITE 18420 00:27:257 0 EOF",
            &[id(0, 28, 257), id(0, 39, 257)]
        ),
        Some(Pid::from_raw(18420))
    );
    // The descriptor of a real file: its mount is found, and st_dev is always a candidate.
    let file = std::fs::File::open("/proc/self/mountinfo").unwrap();
    let stat = nix::sys::stat::fstat(&file).unwrap();
    let ids = ids(std::os::fd::AsFd::as_fd(&file), stat.st_dev, stat.st_ino);
    assert_eq!(
        ids[0],
        id(
            libc::major(stat.st_dev),
            libc::minor(stat.st_dev),
            stat.st_ino
        )
    );
    assert!(mount_device(std::os::fd::AsFd::as_fd(&file)).is_some());
}

#[cfg(all(test, feature = "control"))]
#[test]
fn lines_of_proc_locks() {
    let want_ids = ["00:2a:77".to_string()];
    let want = &want_ids[..];
    assert_eq!(
        parse("1: FLOCK  ADVISORY  WRITE 4242 00:2a:77 0 EOF", want),
        Some(Pid::from_raw(4242))
    );
    assert_eq!(
        parse("1: FLOCK  ADVISORY  READ 4242 00:2a:77 0 EOF", want),
        None
    );
    assert_eq!(
        parse("1: -> FLOCK  ADVISORY  WRITE 99 00:2a:77 0 EOF", want),
        None
    );
    assert_eq!(
        parse("2: POSIX  ADVISORY  WRITE 4242 00:2a:77 0 EOF", want),
        None
    );
    assert_eq!(
        parse("2: FLOCK  ADVISORY  WRITE 4242 00:2a:770 0 EOF", want),
        None
    );
    assert_eq!(
        parse("2: FLOCK  ADVISORY  WRITE -1 00:2a:77 0 EOF", want),
        None
    );
    assert_eq!(parse("", want), None);
}
