//! Who the daemon becomes: the user and group to run as, resolved and given their supplementary groups
//! before any chroot (the group database lives outside the jail), the switch itself after it, and the
//! check that root cannot be regained.

use std::ffi::CString;
use std::path::Path;

use nix::unistd::{Gid, Group, Uid, User};

use crate::error::{Error, Step};
use crate::sys::user::{clear_groups, init_groups};

/// Who the daemon becomes.
#[derive(Debug, Default)]
pub(crate) struct Identity {
    uid: Option<Uid>,
    gid: Option<Gid>,
    /// The user's name, for initgroups(3); `None` when it has no passwd entry.
    name: Option<CString>,
}

/// [`Identity::resolve`], as the builder keeps it: set by `user()` and `group()`, so that a daemon that
/// keeps its identity does not link the user and group lookups.
pub(crate) type Resolve = fn(Option<&str>, Option<&str>) -> Result<Identity, Error>;

impl Identity {
    /// Looks up `user` and `group` (names or numeric ids). Without a group, the user's primary group.
    pub(crate) fn resolve(user: Option<&str>, group: Option<&str>) -> Result<Identity, Error> {
        let mut identity = Identity::default();
        if let Some(user) = user {
            let numeric = user.parse::<u32>().ok().map(Uid::from_raw);
            let entry = match numeric {
                Some(uid) => User::from_uid(uid),
                None => User::from_name(user),
            }
            .map_err(|errno| Error::os(Step::User, Some(user.to_string()), errno))?;
            match (entry, numeric) {
                (Some(entry), _) => {
                    identity.uid = Some(entry.uid);
                    identity.gid = Some(entry.gid);
                    identity.name = CString::new(entry.name).ok();
                }
                (None, Some(uid)) => identity.uid = Some(uid),
                (None, None) => {
                    return Err(Error::new(Step::User, Some(user.to_string()), None)
                        .with_detail("no such user"));
                }
            }
        }
        if let Some(group) = group {
            let gid = match group.parse::<u32>() {
                Ok(gid) => Gid::from_raw(gid),
                Err(_) => {
                    Group::from_name(group)
                        .map_err(|errno| Error::os(Step::Group, Some(group.to_string()), errno))?
                        .ok_or_else(|| {
                            Error::new(Step::Group, Some(group.to_string()), None)
                                .with_detail("no such group")
                        })?
                        .gid
                }
            };
            identity.gid = Some(gid);
        }
        if let (Some(uid), None) = (identity.uid, identity.gid) {
            return Err(Error::new(Step::Group, None, None).with_detail(format!(
                "user {uid} has no passwd entry, so it has no primary group: set the group too"
            )));
        }
        Ok(identity)
    }

    /// Refuses a switch this process cannot make, before the start touches any file: only root (or a
    /// process with `CAP_SETUID` and `CAP_SETGID`) changes its user, its group or its supplementary
    /// groups. `user` and `group` are the names as configured, for the message.
    pub(crate) fn check_possible(
        &self,
        user: Option<&str>,
        group: Option<&str>,
    ) -> Result<(), Error> {
        let Some((uid, gid)) = self.target() else {
            return Ok(());
        };
        if Uid::effective().is_root() || crate::caps::may_switch_ids() {
            return Ok(());
        }
        let running = format!("running as uid {}", Uid::effective());
        let (subject, what) = if uid == Uid::current() {
            let group = group.map_or_else(|| gid.to_string(), str::to_string);
            (format!("group {group}"), "group")
        } else {
            let user = user.map_or_else(|| uid.to_string(), str::to_string);
            (format!("user {user}"), "user")
        };
        Err(Error::new(Step::Switch, Some(subject), None)
            .with_detail(format!("only root can change {what} ({running})")))
    }

    /// Runs `step` with the daemon's effective group and user, then turns back into who we were: a step
    /// that must be checked with the daemon's permissions (entering its working directory) fails while
    /// we can still clean up (remove the pid file) as root. The saved set-user-ID keeps root regainable
    /// until [`switch`](Identity::switch).
    pub(crate) fn as_daemon_user<T>(
        &self,
        step: impl FnOnce() -> Result<T, Error>,
    ) -> Result<T, Error> {
        let Some((uid, gid)) = self.target() else {
            return step();
        };
        let (was_user, was_group) = (Uid::effective(), Gid::effective());
        nix::unistd::setegid(gid)
            .map_err(|errno| Error::os(Step::Setgid, Some(gid.to_string()), errno))?;
        if let Err(errno) = nix::unistd::seteuid(uid) {
            let _ = nix::unistd::setegid(was_group);
            return Err(Error::os(Step::Setuid, Some(uid.to_string()), errno));
        }
        let result = step();
        let back = nix::unistd::seteuid(was_user).and_then(|()| nix::unistd::setegid(was_group));
        back.map_err(|errno| Error::os(Step::Setuid, Some(was_user.to_string()), errno))?;
        result
    }

    /// The ids to switch to, or `None` when there is nothing to change (nothing asked, or an unprivileged
    /// process asking to stay who it is).
    fn target(&self) -> Option<(Uid, Gid)> {
        if self.uid.is_none() && self.gid.is_none() {
            return None;
        }
        let uid = self.uid.unwrap_or_else(Uid::current);
        let gid = self.gid.unwrap_or_else(Gid::current);
        let unchanged = uid == Uid::current() && gid == Gid::current();
        (Uid::effective().is_root() || !unchanged).then_some((uid, gid))
    }

    /// Sets the supplementary groups: the user's (initgroups reads the group database, so this runs before
    /// any chroot), or none when only a group is given.
    pub(crate) fn set_groups(&self) -> Result<(), Error> {
        let Some((uid, gid)) = self.target() else {
            return Ok(());
        };
        let result = match (&self.name, self.uid) {
            (Some(name), Some(_)) => init_groups(name, gid),
            _ => clear_groups(),
        };
        result.map_err(|errno| {
            let subject = match &self.name {
                Some(name) => name.to_string_lossy().into_owned(),
                None => uid.to_string(),
            };
            Error::os(Step::Groups, Some(subject), errno)
        })
    }

    /// The user and group asked for, looked up: the group is the user's primary one when only a user
    /// was asked; `None` for what was not asked.
    pub(crate) fn asked(&self) -> (Option<Uid>, Option<Gid>) {
        (self.uid, self.gid)
    }

    /// The user and group that files the runtime creates before the switch should belong to.
    pub(crate) fn owner(&self) -> Option<(Uid, Gid)> {
        self.target().filter(|(uid, _)| self.uid == Some(*uid))
    }

    /// Switches group, then user; then checks that root cannot be regained. Returns the ids switched to.
    pub(crate) fn switch(&self) -> Result<Option<(Uid, Gid)>, Error> {
        let Some((uid, gid)) = self.target() else {
            return Ok(None);
        };
        nix::unistd::setgid(gid)
            .map_err(|errno| Error::os(Step::Setgid, Some(gid.to_string()), errno))?;
        nix::unistd::setuid(uid)
            .map_err(|errno| Error::os(Step::Setuid, Some(uid.to_string()), errno))?;
        check_dropped(uid, gid)?;
        Ok(Some((uid, gid)))
    }
}

/// The process runs as `uid` and `gid`, and root cannot be regained (setuid(0) fails).
pub(crate) fn check_dropped(uid: Uid, gid: Gid) -> Result<(), Error> {
    let dropped = Uid::effective() == uid && Gid::effective() == gid;
    if !dropped || (!uid.is_root() && nix::unistd::setuid(Uid::from_raw(0)).is_ok()) {
        return Err(Error::new(Step::RegainRoot, Some(uid.to_string()), None));
    }
    Ok(())
}

/// chroot(2) into `path`, then into its root: a relative working directory must not resolve from outside.
pub(crate) fn chroot(path: &Path) -> Result<(), Error> {
    nix::unistd::chroot(path).map_err(|errno| Error::at(Step::Chroot, path, errno))?;
    nix::unistd::chdir("/").map_err(|errno| Error::at(Step::Chroot, path, errno))
}
