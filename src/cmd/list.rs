//! `pm2-port list`: every app PM2 knows and every project of the registry, with conflicts.

use crate::model::Status;
use anyhow::Result;
use clap::Args;

use crate::inventory::{self, Row};
use crate::style::{self, Color, paint};
use crate::sys::pm2_bus::Note;
use crate::sys::world::{self, Context};

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print a JSON array on stdout
    #[arg(long)]
    pub json: bool,

    /// With --json: print the list as one JSON line now, then a line each time it changes, until
    /// stdin closes or a signal; never starts a PM2 daemon
    #[arg(long, requires = "json")]
    pub watch: bool,
}

pub fn run(ctx: &Context, args: &ListArgs) -> Result<()> {
    if args.watch {
        return watch(ctx);
    }
    let (world, _) = world::gather(ctx, &[])?;
    let files = crate::sys::world::read_files(&world);
    let rows = inventory::rows(&world, &files);
    if args.json {
        outln!("{}", serde_json::to_string(&rows)?)?;
        return Ok(());
    }
    if rows.is_empty() {
        outln!("no apps: PM2 knows none and no project is configured")?;
        return Ok(());
    }
    out!("{}", table(&rows, style::stdout_color()))?;
    Ok(())
}

/// `list --json --watch`: the stream of `crate::watch`, driven by PM2's bus and a poll of the
/// daemon's socket.
fn watch(ctx: &Context) -> Result<()> {
    use crate::sys::watch::{self as sys_watch, Wake};
    use crate::watch::{TIMING, Watch};
    use std::time::Instant;

    let wakeups = sys_watch::Wakeups::start(ctx, TIMING.poll)?;
    let mut state = Watch::new(TIMING, Instant::now());
    loop {
        if state.due() <= Instant::now() {
            let reading = sys_watch::read(ctx);
            for line in state.observed(Instant::now(), reading) {
                outln!("{}", serde_json::to_string(&line)?)?;
            }
            continue;
        }
        match wakeups.next(state.due()) {
            None => {}
            Some(Wake::Bus(Note::Event)) => state.on_event(Instant::now()),
            Some(Wake::Bus(Note::Connected)) => state.on_bus(true, Instant::now()),
            Some(Wake::Bus(Note::Disconnected)) => state.on_bus(false, Instant::now()),
            Some(Wake::Stop) => return Ok(()),
        }
    }
}

fn cells(r: &Row) -> [String; 6] {
    [
        r.name.clone(),
        r.port.map_or("-".into(), |p| p.to_string()),
        r.status.to_string(),
        r.cwd
            .as_ref()
            .map_or("-".into(), |c| c.display().to_string()),
        r.sources.join(","),
        if r.conflicts.is_empty() {
            String::new()
        } else {
            format!("conflicts with {}", r.conflicts.join(", "))
        },
    ]
}

/// The aligned table; colour marks status and conflicts.
fn table(rows: &[Row], color: bool) -> String {
    let header = ["NAME", "PORT", "STATUS", "CWD", "SOURCES", ""].map(String::from);
    let body: Vec<[String; 6]> = rows.iter().map(cells).collect();
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&body) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for (i, row) in std::iter::once(&header).chain(&body).enumerate() {
        let data = i.checked_sub(1).map(|j| &rows[j]);
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(col, (cell, w))| {
                let padded = format!("{cell:<w$}");
                let c = match (data, col) {
                    (None, _) => Some(Color::Bold),
                    (Some(r), 2) => match r.status {
                        Status::Online => Some(Color::Green),
                        Status::Errored => Some(Color::Red),
                        Status::Stopped | Status::Saved | Status::DumpOnly | Status::NotStarted => {
                            Some(Color::Yellow)
                        }
                        _ => None,
                    },
                    (Some(r), 1 | 5) if !r.conflicts.is_empty() => Some(Color::Red),
                    (Some(_), 3 | 4) => Some(Color::Dim),
                    _ => None,
                };
                c.map_or(padded.clone(), |c| paint(&padded, c, color))
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_without_colour_and_marked_with_it() {
        let rows = vec![
            Row {
                name: "shop".into(),
                port: Some(3000),
                status: Status::Online,
                cwd: Some("/srv/shop".into()),
                sources: vec!["pm2", "registry"],
                conflicts: vec!["x".into()],
                project: None,
            },
            Row {
                name: "x".into(),
                port: Some(3000),
                status: Status::Stopped,
                cwd: None,
                sources: vec!["pm2"],
                conflicts: vec!["shop".into()],
                project: None,
            },
        ];
        assert_eq!(
            table(&rows, false),
            "NAME  PORT  STATUS   CWD        SOURCES\n\
             shop  3000  online   /srv/shop  pm2,registry  conflicts with x\n\
             x     3000  stopped  -          pm2           conflicts with shop\n"
        );
        assert!(table(&rows, true).contains("\x1b[31m3000\x1b[0m"));
    }
}
