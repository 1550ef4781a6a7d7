//! Where stdout or stderr goes: a file, the journal or syslog ([`Output`]), and syslog's facilities
//! ([`Facility`]). The names are the attribute's (`stderr = "journal"`, `"syslog:local0"`); the macro
//! checks them at compile time, [`Output::check`] for values that come from the builder.

use std::path::{Path, PathBuf};

/// Where the daemon's stdout or stderr goes: [`Daemon::stdout`](crate::Daemon::stdout) and
/// [`Daemon::stderr`](crate::Daemon::stderr) take one (or anything that converts into one).
///
/// A string is read as the attribute reads it: `"journal"`, `"syslog"` and `"syslog:FACILITY"` name a
/// sink, anything else is a path (which must be absolute). A [`Path`] or [`PathBuf`] is always a path.
///
/// ```
/// use daemon_runtime::logs::{Facility, Output};
///
/// assert_eq!(Output::from("journal"), Output::Journal);
/// assert_eq!(Output::from("syslog"), Output::Syslog(Facility::Daemon));
/// assert_eq!(Output::from("syslog:local3"), Output::Syslog(Facility::Local3));
/// assert_eq!(Output::from("/var/log/app.log"), Output::File("/var/log/app.log".into()));
/// // A path is a path, even one named like a sink (and refused by `start`, being relative).
/// assert_eq!(Output::from(std::path::Path::new("journal")), Output::File("journal".into()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Output {
    /// Appended to this file (created 0o640), reopened after rotation (see [`logs`](crate::logs)).
    File(PathBuf),
    /// A stream connection to journald (`/run/systemd/journal/stdout`), as systemd gives its services:
    /// each line is an entry tagged with the program's name, at `info` for stdout and `err` for stderr
    /// unless it starts with an sd-daemon(3) level prefix (`<4>`).
    Journal,
    /// Datagrams to the local syslog socket (`/dev/log`) in RFC 3164 framing, with the program's name and
    /// pid, at this facility; the severity is `info` for stdout and `err` for stderr unless the line starts
    /// with an sd-daemon(3) level prefix.
    Syslog(Facility),
}

impl Output {
    /// The sink a string names, the attribute's way: `None` for a path or a name that is not a sink.
    fn sink(name: &str) -> Option<Output> {
        match name {
            "journal" => Some(Output::Journal),
            "syslog" => Some(Output::Syslog(Facility::Daemon)),
            _ => {
                let facility = name.strip_prefix("syslog:")?;
                Facility::ALL
                    .iter()
                    .find(|f| f.name() == facility)
                    .map(|f| Output::Syslog(*f))
            }
        }
    }

    /// The file's path, for a file.
    pub(crate) fn file(&self) -> Option<&Path> {
        match self {
            Output::File(path) => Some(path),
            _ => None,
        }
    }

    /// Names the sink for messages: "the journal", "syslog (daemon)".
    #[cfg(feature = "control")]
    pub(crate) fn describe(&self) -> String {
        match self {
            Output::File(path) => path.display().to_string(),
            Output::Journal => "the journal".to_string(),
            Output::Syslog(facility) => format!("syslog ({})", facility.name()),
        }
    }

    /// What `start` refuses, as the attribute does at compile time: an empty or relative path (a word
    /// close to a sink's name gets a did-you-mean).
    pub(crate) fn check(&self, key: &str) -> Result<(), String> {
        let Output::File(path) = self else {
            return Ok(());
        };
        if path.as_os_str().is_empty() {
            return Err(format!("{key} is an empty path"));
        }
        if path.is_absolute() {
            return Ok(());
        }
        let written = path.to_string_lossy();
        let hint = match suggestion(&written) {
            Some(near) => format!(" (did you mean \"{near}\"?)"),
            None => String::new(),
        };
        Err(format!(
            "{key} {} is neither an absolute path nor a sink{hint}: give an absolute path (a relative \
             one would be taken from the launcher's directory, not the daemon's), \"journal\", \"syslog\" \
             or \"syslog:FACILITY\"",
            path.display()
        ))
    }
}

/// The sink names closest to a word that is not one: `jurnal` -> `journal`, `syslog:daemn` ->
/// `syslog:daemon`.
fn suggestion(written: &str) -> Option<String> {
    let mut names = vec!["journal".to_string(), "syslog".to_string()];
    if written.contains(':') {
        names.extend(Facility::ALL.iter().map(|f| format!("syslog:{}", f.name())));
    }
    names
        .into_iter()
        .map(|name| (crate::spelling::edit_distance(written, &name), name))
        .filter(|(d, name)| *d <= name.len().max(3) / 3)
        .min()
        .map(|(_, name)| name)
}

impl From<&str> for Output {
    fn from(text: &str) -> Output {
        Output::sink(text).unwrap_or_else(|| Output::File(PathBuf::from(text)))
    }
}

impl From<String> for Output {
    fn from(text: String) -> Output {
        Output::from(text.as_str())
    }
}

impl From<&String> for Output {
    fn from(text: &String) -> Output {
        Output::from(text.as_str())
    }
}

impl From<PathBuf> for Output {
    fn from(path: PathBuf) -> Output {
        Output::File(path)
    }
}

impl From<&Path> for Output {
    fn from(path: &Path) -> Output {
        Output::File(path.to_path_buf())
    }
}

impl From<&PathBuf> for Output {
    fn from(path: &PathBuf) -> Output {
        Output::File(path.clone())
    }
}

/// A syslog facility, as syslog(3) names them (`"syslog:local0"`). `daemon` is the default: the facility
/// for system daemons without one of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // syslog(3)'s names
pub enum Facility {
    Kern,
    User,
    Mail,
    Daemon,
    Auth,
    Syslog,
    Lpr,
    News,
    Uucp,
    Cron,
    Authpriv,
    Ftp,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl Facility {
    /// Every facility, in syslog(3)'s order.
    pub const ALL: [Facility; 20] = [
        Facility::Kern,
        Facility::User,
        Facility::Mail,
        Facility::Daemon,
        Facility::Auth,
        Facility::Syslog,
        Facility::Lpr,
        Facility::News,
        Facility::Uucp,
        Facility::Cron,
        Facility::Authpriv,
        Facility::Ftp,
        Facility::Local0,
        Facility::Local1,
        Facility::Local2,
        Facility::Local3,
        Facility::Local4,
        Facility::Local5,
        Facility::Local6,
        Facility::Local7,
    ];

    /// Its name in syslog(3) without `LOG_`, lower case: `daemon`, `local0`.
    pub fn name(self) -> &'static str {
        match self {
            Facility::Kern => "kern",
            Facility::User => "user",
            Facility::Mail => "mail",
            Facility::Daemon => "daemon",
            Facility::Auth => "auth",
            Facility::Syslog => "syslog",
            Facility::Lpr => "lpr",
            Facility::News => "news",
            Facility::Uucp => "uucp",
            Facility::Cron => "cron",
            Facility::Authpriv => "authpriv",
            Facility::Ftp => "ftp",
            Facility::Local0 => "local0",
            Facility::Local1 => "local1",
            Facility::Local2 => "local2",
            Facility::Local3 => "local3",
            Facility::Local4 => "local4",
            Facility::Local5 => "local5",
            Facility::Local6 => "local6",
            Facility::Local7 => "local7",
        }
    }

    /// Its number, as in RFC 3164 (`daemon` is 3, `local0` 16): the priority is `number * 8 + severity`.
    pub fn code(self) -> u8 {
        match self {
            Facility::Kern => 0,
            Facility::User => 1,
            Facility::Mail => 2,
            Facility::Daemon => 3,
            Facility::Auth => 4,
            Facility::Syslog => 5,
            Facility::Lpr => 6,
            Facility::News => 7,
            Facility::Uucp => 8,
            Facility::Cron => 9,
            Facility::Authpriv => 10,
            Facility::Ftp => 11,
            Facility::Local0 => 16,
            Facility::Local1 => 17,
            Facility::Local2 => 18,
            Facility::Local3 => 19,
            Facility::Local4 => 20,
            Facility::Local5 => 21,
            Facility::Local6 => 22,
            Facility::Local7 => 23,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_as_the_attribute_reads_them() {
        for facility in Facility::ALL {
            let name = format!("syslog:{}", facility.name());
            assert_eq!(Output::from(name.as_str()), Output::Syslog(facility));
        }
        assert_eq!(
            Output::from("syslog:nope"),
            Output::File("syslog:nope".into())
        );
    }

    #[test]
    fn a_misspelt_sink_is_refused_with_a_suggestion() {
        let refusal = Output::from("jurnal").check("stderr").unwrap_err();
        assert!(refusal.contains("did you mean \"journal\"?"), "{refusal}");
        let refusal = Output::from("syslog:daemn").check("stdout").unwrap_err();
        assert!(
            refusal.contains("did you mean \"syslog:daemon\"?"),
            "{refusal}"
        );
        let refusal = Output::from("logs/app.log").check("stdout").unwrap_err();
        assert!(!refusal.contains("did you mean"), "{refusal}");
        assert_eq!(Output::from("/var/log/app.log").check("stdout"), Ok(()));
    }
}
