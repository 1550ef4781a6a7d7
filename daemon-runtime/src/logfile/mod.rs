//! The log files: opened for appending without following a planted symlink ([`open`]), put on stdout and
//! stderr with stdin on the null device ([`stdio`]), and reopened after rotation, from the directory the
//! first open ended in, even after chroot and the user switch ([`reopen`]).

pub(crate) mod open;
pub(crate) mod reopen;
pub(crate) mod stdio;

pub(crate) use open::{OPEN_LOG, OpenLog};
