#![deny(warnings)]

// The sinks the `stdout` and `stderr` keys name, with every syslog facility: each expands to the
// runtime's `Output` and `Facility` (a name the runtime lacked would not compile). These `main`s are never
// called: running them would connect to the journal and syslog.
macro_rules! daemons {
    ($($module:ident: $stdout:literal, $stderr:literal;)*) => {
        $(
            mod $module {
                #[daemon_runtime::daemon(stdout = $stdout, stderr = $stderr)]
                pub fn main() {}
            }
        )*
        fn main() {
            $(let _: fn() = $module::main;)*
        }
    };
}

daemons! {
    journal: "journal", "journal";
    syslog: "syslog", "syslog";
    mixed: "/var/log/app.out", "journal";
    kern: "syslog:kern", "syslog:user";
    mail: "syslog:mail", "syslog:daemon";
    auth: "syslog:auth", "syslog:syslog";
    lpr: "syslog:lpr", "syslog:news";
    uucp: "syslog:uucp", "syslog:cron";
    authpriv: "syslog:authpriv", "syslog:ftp";
    local01: "syslog:local0", "syslog:local1";
    local23: "syslog:local2", "syslog:local3";
    local45: "syslog:local4", "syslog:local5";
    local67: "syslog:local6", "syslog:local7";
}
