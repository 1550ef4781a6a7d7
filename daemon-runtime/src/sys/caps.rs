//! The capability system calls (Linux): `capget`, `capset`, and the `prctl` options that drop from the
//! bounding set and raise the ambient set. Sets are the kernel's 64-bit masks (capability `n` at bit `n`).

#[cfg(target_os = "linux")]
pub(crate) use linux::{Sets, ambient_clear, ambient_raise, bounding_drop, get, set};

#[cfg(target_os = "linux")]
mod linux {
    use nix::errno::Errno;

    const VERSION_3: u32 = 0x2008_0522;

    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }

    /// The three sets of the calling thread, as 64-bit masks.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub(crate) struct Sets {
        pub(crate) effective: u64,
        pub(crate) permitted: u64,
        pub(crate) inheritable: u64,
    }

    /// The kernel's two 32-bit words of a set, low first.
    fn split(set: u64) -> [u32; 2] {
        let bytes = set.to_le_bytes();
        let word =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        [word(0), word(4)]
    }

    /// `capget(2)` of the calling thread.
    pub(crate) fn get() -> Result<Sets, Errno> {
        let mut header = Header {
            version: VERSION_3,
            pid: 0,
        };
        let mut data = [Data::default(); 2];
        // SAFETY: capget(2) with a version-3 header writes two `Data` records, which `data` holds.
        let result = unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) };
        Errno::result(result)?;
        let join = |f: fn(&Data) -> u32| u64::from(f(&data[0])) | u64::from(f(&data[1])) << 32;
        Ok(Sets {
            effective: join(|d| d.effective),
            permitted: join(|d| d.permitted),
            inheritable: join(|d| d.inheritable),
        })
    }

    /// `capset(2)` of the calling thread.
    pub(crate) fn set(sets: Sets) -> Result<(), Errno> {
        let mut header = Header {
            version: VERSION_3,
            pid: 0,
        };
        let (e, p, i) = (
            split(sets.effective),
            split(sets.permitted),
            split(sets.inheritable),
        );
        let data = [
            Data {
                effective: e[0],
                permitted: p[0],
                inheritable: i[0],
            },
            Data {
                effective: e[1],
                permitted: p[1],
                inheritable: i[1],
            },
        ];
        // SAFETY: capset(2) with a version-3 header reads two `Data` records, which `data` holds.
        let result = unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) };
        Errno::result(result).map(drop)
    }

    fn prctl(option: libc::c_int, arg2: libc::c_ulong, arg3: libc::c_ulong) -> Result<(), Errno> {
        // SAFETY: the prctl(2) options used here (PR_CAPBSET_DROP, PR_CAP_AMBIENT) take integers only.
        let result =
            unsafe { libc::prctl(option, arg2, arg3, 0 as libc::c_ulong, 0 as libc::c_ulong) };
        Errno::result(result).map(drop)
    }

    /// Drops capability `number` from the bounding set (`PR_CAPBSET_DROP`); EINVAL past the kernel's last.
    pub(crate) fn bounding_drop(number: u32) -> Result<(), Errno> {
        prctl(libc::PR_CAPBSET_DROP, number.into(), 0)
    }

    /// Empties the ambient set.
    pub(crate) fn ambient_clear() -> Result<(), Errno> {
        prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
        )
    }

    /// Raises capability `number` in the ambient set.
    pub(crate) fn ambient_raise(number: u32) -> Result<(), Errno> {
        prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            number.into(),
        )
    }
}
