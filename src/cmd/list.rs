//! `pm2-port list`: every app PM2 knows and every project of the registry, with conflicts.

use anyhow::Result;

use crate::cli::ListArgs;
use crate::inventory;
use crate::world::{self, Context};

pub fn run(ctx: &Context, args: &ListArgs) -> Result<()> {
    let (world, _) = world::gather(ctx, None, false)?;
    let files = inventory::read_files(&world);
    let rows = inventory::rows(&world, &files);
    if args.json {
        println!("{}", serde_json::to_string(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no apps: PM2 knows none and no project is configured");
        return Ok(());
    }
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.port.map_or("-".into(), |p| p.to_string()),
                r.status.clone(),
                r.cwd
                    .as_ref()
                    .map_or("-".into(), |c| c.display().to_string()),
                r.sources.join(","),
                r.conflicts.join(","),
            ]
        })
        .collect();
    let header = ["NAME", "PORT", "STATUS", "CWD", "SOURCES", "CONFLICTS"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&table) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    Ok(())
}
