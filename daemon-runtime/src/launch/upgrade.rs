//! In the new daemon of an upgrade (`myapp upgrade`): what the old daemon handed over, named in
//! `DAEMON_UPGRADE` (see `handshake::Handover`) and inherited as descriptors: the lock's open file, the
//! pipe to report on, and the listening sockets, which the program then gets from `listen::tcp_listener`
//! as if systemd had passed them.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Step};
use crate::handshake::{Handover, Reporter, UPGRADE_ENV};
use crate::sys::env::SingleThread;
use crate::sys::fd::{Kind, adopt_inherited};
use crate::sys::io::int_option;
use crate::systemd::listen;

/// Whether this process was started by `upgrade` (as its new daemon).
static UPGRADING: AtomicBool = AtomicBool::new(false);

/// Whether this process was started by `upgrade`: its failures are `upgrade`'s to report, not systemd's
/// (the old daemon, the service's main process, still serves).
pub(crate) fn upgrading() -> bool {
    UPGRADING.load(Ordering::Relaxed)
}

/// What the daemon being upgraded handed over.
pub(crate) struct Successor {
    /// The daemon this one replaces, which still serves until this one is ready.
    pub(crate) predecessor: u32,
    /// The lock's open file (the same the old daemon holds the lock through).
    pub(crate) lock: OwnedFd,
    /// Where `upgrade` waits for this daemon's pid, readiness or error.
    pub(crate) report: Reporter,
}

/// Takes over what `DAEMON_UPGRADE` names, if it is set, and removes the variable where the process runs
/// one thread (`alone`). Returns the successor's parts and the descriptors to keep open.
pub(crate) fn take_env(
    alone: Option<&SingleThread>,
) -> Result<(Option<Successor>, Vec<RawFd>), Error> {
    let Some(value) = std::env::var_os(UPGRADE_ENV) else {
        return Ok((None, Vec::new()));
    };
    UPGRADING.store(true, Ordering::Relaxed);
    if let Some(alone) = alone {
        alone.remove_var(UPGRADE_ENV);
    }
    let refuse = |why: String| {
        Err(Error::new(Step::Config, Some(UPGRADE_ENV.to_string()), None).with_detail(why))
    };
    let Some(handover) = value.to_str().and_then(Handover::parse) else {
        return refuse(format!(
            "{UPGRADE_ENV}={} is not what `upgrade` writes",
            value.to_string_lossy()
        ));
    };
    let adopt = |fd: RawFd, kind: Kind| {
        adopt_inherited(fd, |found| found == kind).ok_or_else(|| {
            Error::new(Step::Config, Some(UPGRADE_ENV.to_string()), None)
                .with_detail(format!("the upgrade handed over no usable descriptor {fd}"))
        })
    };
    let lock = adopt(handover.lock, Kind::Other)?;
    let report = adopt(handover.report, Kind::SocketOrFifo)?;
    let mut kept = vec![lock.as_raw_fd(), report.as_raw_fd()];
    for (name, fd) in handover.listens {
        let socket = adopt(fd, Kind::SocketOrFifo)?;
        if int_option(fd, libc::SO_ACCEPTCONN).ok() != Some(1) {
            return refuse(format!(
                "the upgrade handed over descriptor {fd} as {name:?}, which is not a listening socket"
            ));
        }
        kept.push(fd);
        listen::handed_over(name, socket);
    }
    let successor = Successor {
        predecessor: handover.predecessor,
        lock,
        report: Reporter::new(report),
    };
    Ok((Some(successor), kept))
}
