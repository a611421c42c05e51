//! The process table from `ps -Ao pid=,ppid=,command=`, where there is no `/proc` (macOS, the
//! BSDs): each process's parent and command line.

use std::collections::HashMap;

/// One process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    /// The command line as `ps` shows it: arguments joined by spaces (an argument's own spaces
    /// cannot be told from those between arguments).
    pub command: String,
}

/// Parse the output: `PID PPID COMMAND...` a line, right-aligned numbers, no header (the `=`
/// after each column name). Lines that do not start with two numbers are skipped.
pub fn parse(text: &str) -> Vec<Process> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let (pid, rest) = line.split_once(|c: char| c.is_ascii_whitespace())?;
            let rest = rest.trim_start();
            let (ppid, command) = rest
                .split_once(|c: char| c.is_ascii_whitespace())
                .unwrap_or((rest, ""));
            Some(Process {
                pid: pid.parse().ok()?,
                ppid: ppid.parse().ok()?,
                command: command.trim().to_string(),
            })
        })
        .collect()
}

/// Each process's parent.
pub fn parents(table: &[Process]) -> HashMap<u32, u32> {
    table.iter().map(|p| (p.pid, p.ppid)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Constructed, not recorded on a Mac: `ps -Ao pid=,ppid=,command=` as macOS's ps(1) lays it
    /// out (numbers right-aligned to the widest, the full command line last): launchd, PM2's
    /// daemon (it renames its process title), a Node app it started with a worker of its own, a
    /// command with spaces in its path, and a zombie shown with an empty command.
    const SAMPLE: &str = "    1     0 /sbin/launchd
  398     1 PM2 v6.0.14: God Daemon (/Users/ana/.pm2)
  412   398 node /Users/ana/shop/node_modules/.bin/vite --port 3000 --host 127.0.0.1
  415   412 /usr/local/bin/node /Users/ana/shop/worker.js
  517     1 /Applications/Visual Studio Code.app/Contents/MacOS/Electron
99999   517
";

    #[test]
    fn parses_pids_parents_and_commands() {
        let table = parse(SAMPLE);
        assert_eq!(table.len(), 6);
        assert_eq!(
            table[1],
            Process {
                pid: 398,
                ppid: 1,
                command: "PM2 v6.0.14: God Daemon (/Users/ana/.pm2)".into(),
            }
        );
        assert_eq!(
            table[4].command,
            "/Applications/Visual Studio Code.app/Contents/MacOS/Electron"
        );
        assert_eq!(table[5].command, "");
        let parents = parents(&table);
        assert_eq!(parents[&415], 412);
        assert_eq!(parents[&412], 398);
        assert_eq!(parents[&1], 0);
    }

    #[test]
    fn a_tree_from_ps_answers_descent() {
        let p = crate::model::Processes {
            parents: parents(&parse(SAMPLE)),
            ..crate::model::Processes::default()
        };
        assert!(p.descends(415, &[398].into()));
        assert!(!p.descends(517, &[398].into()));
    }

    #[test]
    fn lines_without_two_numbers_are_skipped() {
        assert!(parse("  PID  PPID COMMAND\n\nabc 1 x\n12\n").is_empty());
    }
}
