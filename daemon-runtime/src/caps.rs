//! Capabilities kept across the user switch (Linux): the bounding set loses every other capability while
//! the process is still root, `PR_SET_KEEPCAPS` carries the permitted set over `setuid`, and `capset`
//! then leaves exactly the kept ones permitted and effective (inheritable and ambient too when asked).
//!
//! Plain `libc` system calls rather than the `caps` crate: the runtime needs five calls in a fixed order
//! (bounding drop, keepcaps, capset, ambient raise, a read-back), its own error type, and a name table
//! the macro checks at compile time; `caps` would add a dependency (and `thiserror`) for that.

use crate::error::{Error, Step};

/// The capability names the kernel knows, indexed by number (`CAP_CHOWN` is 0), lower case without the
/// `cap_` prefix. The macro keeps the same table (tests/ui checks every name compiles).
pub(crate) const NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// A set of capabilities as the kernel's 64-bit mask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CapSet(pub(crate) u64);

impl CapSet {
    /// Parses names (`"net_bind_service"`, or `"cap_net_bind_service"`, any case).
    pub(crate) fn parse<S: AsRef<str>>(names: &[S]) -> Result<CapSet, Error> {
        let mut set = 0u64;
        for name in names {
            let name = name.as_ref();
            let lower = name.to_ascii_lowercase();
            let bare = lower.strip_prefix("cap_").unwrap_or(&lower);
            let Some(number) = NAMES.iter().position(|n| *n == bare) else {
                return Err(Error::new(Step::Config, None, None).with_detail(format!(
                    "unknown capability {name:?} in keep_caps (expected names such as \"net_bind_service\", see capabilities(7))"
                )));
            };
            set |= 1 << number;
        }
        Ok(CapSet(set))
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn contains(self, number: u32) -> bool {
        number < 64 && self.0 & (1 << number) != 0
    }

    /// The names in the set, for messages.
    fn names(self) -> String {
        let names: Vec<&str> = (0..64u32)
            .filter(|n| self.contains(*n))
            .map(|n| NAMES.get(n as usize).copied().unwrap_or("?"))
            .collect();
        names.join(",")
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use nix::errno::Errno;

    use super::CapSet;
    use crate::error::{Error, Step};
    use crate::sys::caps::{self as sys, Sets};

    fn error(what: &str, kept: CapSet, errno: Errno) -> Error {
        Error::os(Step::Capabilities, Some(kept.names()), errno).with_detail(what.to_string())
    }

    /// Before the switch, as root: every capability but the kept ones leaves the bounding set (so that
    /// no setuid or file-capability program the daemon runs can give them back), and `PR_SET_KEEPCAPS`
    /// keeps the permitted set across `setuid`.
    pub(crate) fn before_switch(keep: CapSet) -> Result<(), Error> {
        for number in 0..64u32 {
            if keep.contains(number) {
                continue;
            }
            match sys::bounding_drop(number) {
                Ok(()) => {}
                // Past the kernel's last capability.
                Err(Errno::EINVAL) => break,
                Err(errno) => {
                    return Err(error(
                        "dropping the others from the bounding set",
                        keep,
                        errno,
                    ));
                }
            }
        }
        nix::sys::prctl::set_keepcaps(true).map_err(|errno| error("PR_SET_KEEPCAPS", keep, errno))
    }

    /// After `setuid`: permitted and effective hold exactly `keep`; inheritable and ambient hold `keep`
    /// when `ambient`, else nothing. Then reads the sets back to prove it.
    pub(crate) fn after_switch(keep: CapSet, ambient: bool) -> Result<(), Error> {
        nix::sys::prctl::set_keepcaps(false)
            .map_err(|errno| error("PR_SET_KEEPCAPS", keep, errno))?;
        let inheritable = if ambient { keep } else { CapSet(0) };
        let wanted = Sets {
            effective: keep.0,
            permitted: keep.0,
            inheritable: inheritable.0,
        };
        sys::set(wanted).map_err(|errno| error("capset", keep, errno))?;
        sys::ambient_clear().map_err(|errno| error("clearing the ambient set", keep, errno))?;
        if ambient {
            for number in (0..64u32).filter(|n| keep.contains(*n)) {
                sys::ambient_raise(number)
                    .map_err(|errno| error("raising the ambient set", keep, errno))?;
            }
        }
        let actual = sys::get().map_err(|errno| error("capget", keep, errno))?;
        if actual != wanted {
            return Err(
                Error::new(Step::Capabilities, Some(keep.names()), None).with_detail(format!(
                    "the kernel left permitted {:#x}, effective {:#x}",
                    actual.permitted, actual.effective
                )),
            );
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
pub(crate) use linux::{after_switch, before_switch};

/// Whether this (unprivileged) process may still change its ids: `CAP_SETUID` and `CAP_SETGID` are in
/// its effective set (a capability-aware service manager may grant them without root).
#[cfg(target_os = "linux")]
pub(crate) fn may_switch_ids() -> bool {
    // capabilities(7): CAP_SETGID is 6, CAP_SETUID 7 (the indices of "setgid" and "setuid" in `NAMES`).
    let needed = 1 << 6 | 1 << 7;
    crate::sys::caps::get().is_ok_and(|sets| sets.effective & needed == needed)
}

/// Elsewhere only root changes its ids.
#[cfg(not(target_os = "linux"))]
pub(crate) fn may_switch_ids() -> bool {
    false
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn before_switch(keep: CapSet) -> Result<(), Error> {
    Err(Error::new(Step::Capabilities, Some(keep.names()), None)
        .with_detail("capabilities are a Linux feature"))
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn after_switch(_keep: CapSet, _ambient: bool) -> Result<(), Error> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_to_kernel_numbers() {
        assert_eq!(
            CapSet::parse(&["net_bind_service"]).unwrap(),
            CapSet(1 << 10)
        );
        assert_eq!(
            CapSet::parse(&["CAP_NET_RAW", "chown"]).unwrap(),
            CapSet(1 << 13 | 1)
        );
        assert_eq!(
            CapSet::parse(&["checkpoint_restore"]).unwrap(),
            CapSet(1 << 40)
        );
        let error = CapSet::parse(&["net_bind"]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("unknown capability \"net_bind\"")
        );
        assert_eq!(
            CapSet(1 << 10 | 1 << 13).names(),
            "net_bind_service,net_raw"
        );
    }
}
