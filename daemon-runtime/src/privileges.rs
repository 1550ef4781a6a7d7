//! Privileges: the user and group to run as (resolved before any chroot), chroot, and the drop itself.

use std::ffi::CString;
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::{Gid, Group, Uid, User};

use crate::error::{Error, Step};

/// Who the daemon becomes, resolved while /etc/passwd and /etc/group are still reachable.
#[derive(Debug, Default)]
pub(crate) struct Identity {
    uid: Option<Uid>,
    gid: Option<Gid>,
    /// The user's name, for initgroups(3); `None` when it has no passwd entry.
    name: Option<CString>,
}

impl Identity {
    /// Looks up `user` and `group` (names or numeric ids). Without a group, the user's primary group.
    pub(crate) fn resolve(user: Option<&str>, group: Option<&str>) -> Result<Identity, Error> {
        let mut identity = Identity::default();
        if let Some(user) = user {
            let entry = match user.parse::<u32>() {
                Ok(uid) => User::from_uid(Uid::from_raw(uid)),
                Err(_) => User::from_name(user),
            }
            .map_err(|errno| Error::os(Step::User, Some(user.to_string()), errno))?;
            match entry {
                Some(entry) => {
                    identity.uid = Some(entry.uid);
                    identity.gid = Some(entry.gid);
                    identity.name = CString::new(entry.name).ok();
                }
                None => match user.parse::<u32>() {
                    Ok(uid) => identity.uid = Some(Uid::from_raw(uid)),
                    Err(_) => {
                        return Err(Error::new(Step::User, Some(user.to_string()), None)
                            .with_detail("no such user"))
                    }
                },
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

    /// Whether there is anything to change.
    pub(crate) fn is_empty(&self) -> bool {
        self.uid.is_none() && self.gid.is_none()
    }

    /// Sets the supplementary groups (the user's, or none), then the group, then the user; then checks that
    /// root cannot be regained.
    pub(crate) fn apply(&self) -> Result<(), Error> {
        if self.is_empty() {
            return Ok(());
        }
        let gid = self.gid.unwrap_or_else(Gid::current);
        let uid = self.uid.unwrap_or_else(Uid::current);
        // An unprivileged process that asks to stay who it is has nothing to drop.
        if !Uid::effective().is_root() && uid == Uid::current() && gid == Gid::current() {
            return Ok(());
        }
        let groups = match (&self.name, self.uid) {
            (Some(name), Some(_)) => nix::unistd::initgroups(name, gid),
            _ => nix::unistd::setgroups(&[]),
        };
        let subject = || match &self.name {
            Some(name) => name.to_string_lossy().into_owned(),
            None => uid.to_string(),
        };
        groups.map_err(|errno| Error::os(Step::Groups, Some(subject()), errno))?;
        nix::unistd::setgid(gid)
            .map_err(|errno| Error::os(Step::Setgid, Some(gid.to_string()), errno))?;
        nix::unistd::setuid(uid)
            .map_err(|errno| Error::os(Step::Setuid, Some(uid.to_string()), errno))?;
        if !uid.is_root() && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
            return Err(Error::new(Step::RegainRoot, Some(uid.to_string()), None));
        }
        if !uid.is_root() && Uid::effective() != uid {
            return Err(Error::new(
                Step::RegainRoot,
                Some(uid.to_string()),
                Some(Errno::EPERM as i32),
            ));
        }
        Ok(())
    }
}

/// chroot(2) into `path`.
pub(crate) fn chroot(path: &Path) -> Result<(), Error> {
    nix::unistd::chroot(path).map_err(|errno| Error::at(Step::Chroot, path, errno))
}
