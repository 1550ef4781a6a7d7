//! `commands = true`: the program's first argument names an action, which runs instead of the start.

use std::fmt::Write as _;

use super::outcome::print_line;
use super::{Action, Outcome, ServiceManager, action::misspelt_action, args::consume_action};
use crate::config::Config;
use crate::error::program;

/// Acts on the first argument. Returns to start the daemon (no argument, `start`, `restart` after its
/// stop, or a word that is not an action); exits the process otherwise.
pub(crate) fn run(config: &Config) {
    let mut args = std::env::args_os().skip(1);
    let Some(word) = args.next() else { return };
    let Some(word) = word.to_str() else { return };
    let action = match word.parse::<Action>() {
        Ok(action) => action,
        Err(_) if matches!(word, "help" | "--help" | "-h") => {
            print_line(&help());
            std::process::exit(0)
        }
        Err(_) => {
            // A word that is nearly an action is a typo, not an argument for the program: starting
            // the daemon on `myapp stauts` would be the wrong answer to the question asked.
            if let Some(near) = misspelt_action(word) {
                let program = program();
                eprintln!(
                    "{program}: unknown action `{word}`: did you mean `{near}`? (`{program} help` lists the actions)"
                );
                std::process::exit(2);
            }
            return;
        }
    };
    consume_action();
    match action {
        Action::Start => {}
        // Started by `upgrade` (a daemon started with `restart`, upgraded with its own arguments): the
        // daemon to stop is the one this process takes over from.
        Action::Restart if crate::handshake::upgrade_requested() => {}
        Action::Restart => {
            let stopped = super::stop(config);
            if !stopped.success() {
                stopped.into_restart().exit();
            }
        }
        Action::Status => {
            let outcome = super::status(config);
            if args.next().is_some_and(|a| a == "--json") {
                print_line(&outcome.to_json());
                std::process::exit(i32::from(outcome.code()));
            }
            outcome.exit();
        }
        Action::Stop => super::stop(config).exit(),
        Action::Reload => super::reload(config).exit(),
        Action::ReopenLogs => super::reopen_logs(config).exit(),
        Action::Upgrade => {
            // `upgrade ARGS...` or `upgrade -- ARGS...` (`upgrade --`: none); bare `upgrade`: the running
            // daemon's own.
            let mut args: Vec<std::ffi::OsString> = args.collect();
            let explicit = !args.is_empty();
            if args.first().is_some_and(|a| a == "--") {
                args.remove(0);
            }
            super::upgrade(config, explicit.then_some(args)).exit()
        }
        Action::Unit => {
            let manager = match args.next() {
                None => ServiceManager::native(),
                Some(word) => word
                    .to_str()
                    .unwrap_or("")
                    .parse::<ServiceManager>()
                    .unwrap_or_else(|why: String| usage(action, &why)),
            };
            no_more(action, args);
            super::service::unit(config, manager).exit();
        }
        Action::Install => {
            let force = match args.next() {
                None => false,
                Some(word) if word == "--force" => true,
                Some(word) => usage(
                    action,
                    &format!(
                        "unknown argument {:?}: install takes only --force",
                        word.to_string_lossy()
                    ),
                ),
            };
            no_more(action, args);
            super::service::install(config, force).exit();
        }
        Action::Uninstall => {
            no_more(action, args);
            super::service::uninstall(config).exit();
        }
    }
}

/// Refuses arguments after an action that takes no more.
fn no_more(action: Action, mut args: impl Iterator<Item = std::ffi::OsString>) {
    if let Some(extra) = args.next() {
        usage(
            action,
            &format!(
                "unexpected argument {:?} after `{action}`",
                extra.to_string_lossy()
            ),
        );
    }
}

/// A bad command line for `action`: exit 2, as LSB says of an invalid argument.
fn usage(action: Action, why: &str) -> ! {
    Outcome::new(action, 2, why).exit()
}

/// What `help` (`--help`, `-h`) prints.
fn help() -> String {
    let program = program();
    let mut text = format!(
        "Usage: {program} [ACTION] [ARGUMENTS...]\n\nThe first argument may be an action on the daemon; \
         any other first argument goes to the program, which then starts the daemon.\n\nActions and \
         their exit codes:\n"
    );
    for action in Action::ALL {
        let _ = writeln!(text, "  {:<11} {}", action.as_str(), action.summary());
    }
    let _ = write!(text, "  {:<11} this text", "help");
    text
}
