//! Choosing every app's port at once, so that no app of the project is moved by another.

use std::path::PathBuf;

use anyhow::Result;

use super::Request;
use super::inputs::Inputs;
use crate::model::{Holder, World};
use crate::ports::{self, Choice, Wish, Wished};

/// Each app's port, and the port it had. Ports the apps already have (or were asked for) are
/// settled for every app first, then preferred ports, then the lowest free ones: adding an app, or
/// reordering `[[apps]]`, never moves another app off its port.
pub(super) fn choose_ports(
    req: &Request,
    inputs: &Inputs,
    names: &[String],
    own: &[PathBuf],
    world: &World,
) -> Result<Vec<(Choice, Option<u16>)>> {
    let single = inputs.apps.len() == 1;
    let current: Vec<Option<u16>> = names
        .iter()
        .map(|n| inputs.existing.as_ref().and_then(|e| e.port_of(n, single)))
        .collect();
    let targeted = |name: &String| req.only.as_ref().is_none_or(|o| o == name);
    // What each app may not take besides its siblings' ports: the port `bump` moves it off.
    let avoid: Vec<Option<(u16, Holder)>> = names
        .iter()
        .zip(&current)
        .map(|(n, c)| {
            c.filter(|_| req.bump && targeted(n))
                .map(|p| (p, Holder::Current))
        })
        .collect();
    let mut chosen: Vec<Option<Choice>> = vec![None; names.len()];
    let mut passed: Vec<Vec<(u16, Holder)>> = vec![Vec::new(); names.len()];
    let mut taken: Vec<(u16, Holder)> = Vec::new();
    let reserved = |taken: &[(u16, Holder)], i: usize| -> Vec<(u16, Holder)> {
        taken.iter().cloned().chain(avoid[i].clone()).collect()
    };
    // First the ports the apps have (or were asked for), then their preferred ports.
    for preferred_stage in [false, true] {
        for (i, name) in names.iter().enumerate() {
            if chosen[i].is_some() {
                continue;
            }
            let bump = req.bump && targeted(name);
            let wish = if preferred_stage {
                Wish {
                    preferred: inputs.apps[i].preferred.filter(|_| !bump),
                    ..Wish::default()
                }
            } else {
                Wish {
                    requested: req.port.filter(|_| targeted(name)),
                    current: current[i].filter(|_| !bump),
                    preferred: None,
                }
            };
            match ports::wished(world, own, &wish, &reserved(&taken, i))? {
                Wished::Got(mut c) => {
                    c.passed_over.splice(0..0, std::mem::take(&mut passed[i]));
                    taken.push((c.port, Holder::Sibling { name: name.clone() }));
                    chosen[i] = Some(c);
                }
                Wished::PassedOver(p) => passed[i].extend(p),
            }
        }
    }
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let choice = match chosen[i].take() {
            Some(c) => c,
            None => {
                let c = ports::lowest(
                    world,
                    own,
                    inputs.range,
                    &reserved(&taken, i),
                    std::mem::take(&mut passed[i]),
                )?;
                taken.push((c.port, Holder::Sibling { name: name.clone() }));
                c
            }
        };
        out.push((choice, current[i]));
    }
    Ok(out)
}
