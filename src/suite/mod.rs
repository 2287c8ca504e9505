//! Suites are data: TOML files that say what to build, which ops to race and
//! for how long. The shipped ones are embedded in the binary; users load their
//! own by path.

mod embedded;

use crate::model::{LinkKind, OpKind, OpTarget};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

pub use embedded::EMBEDDED;

/// Why a suite could not be loaded. Every variant renders as one line that
/// names the file, the line when known, and the field.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("unknown suite `{0}` (try `ifstress list`, or give a path to a .toml file)")]
    Unknown(String),
    /// The reason is text, not a source error: the CLI prints the chain,
    /// and the OS error would appear twice.
    #[error("{file}: cannot read: {reason}")]
    Read { file: String, reason: String },
    #[error("{file}:{line}: {field}: {message}")]
    Invalid {
        file: String,
        line: usize,
        field: String,
        message: String,
    },
}

/// A loaded and validated suite.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    pub name: String,
    pub description: String,
    /// Bug references the suite aims at (PR numbers, reviews).
    #[serde(default)]
    pub targets: Vec<String>,
    /// Default run length, in human form ("30s", "24h").
    #[serde(default = "default_duration")]
    pub duration: String,
    pub topology: Topology,
    #[serde(rename = "loop")]
    pub loops: Vec<LoopSpec>,
    #[serde(default)]
    pub checks: Checks,
}

fn default_duration() -> String {
    "60s".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Stacks that live the whole run, besides the home stack.
    #[serde(default)]
    pub stacks: usize,
    /// Stacks that stack-create/stack-remove make and remove again.
    #[serde(default)]
    pub churn_stacks: usize,
    pub links: Vec<LinkSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    pub kind: LinkKind,
    pub count: usize,
    /// When the kernel lacks this kind, skip it (visibly) instead of refusing to run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

/// A group of identical worker threads, each running a weighted mix of ops.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoopSpec {
    pub name: String,
    pub workers: usize,
    /// Op kind -> relative weight.
    pub ops: BTreeMap<OpKind, u32>,
    /// Cap per worker, ops per second; none means as fast as the kernel goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u32>,
    /// How ops and targets are chosen.
    #[serde(default, skip_serializing_if = "Order::is_random")]
    pub order: Order,
    /// Only links of these kinds are the loop's targets (member ops still
    /// pick their members among all pair ends); empty: every kind. A loop
    /// can so race one kind's own path (ng_eiface shutdown against its
    /// moves) without the other kinds diluting it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<LinkKind>,
}

/// `random` races: every worker draws ops by weight and targets from the whole
/// pool, so workers collide on purpose. `cycle` measures: each worker walks its
/// own share of the links and issues the mix on each in lifecycle order
/// (create before destroy, move before move-back, add before del; a weight
/// repeats an op), so ops succeed and workers do not meet on a link. `ifstress
/// bench` uses it to measure throughput without counting collisions.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    #[default]
    Random,
    Cycle,
}

impl Order {
    fn is_random(&self) -> bool {
        *self == Order::Random
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Checks {
    /// Scan the kernel message buffer for panics, warnings, LORs.
    #[serde(default = "yes")]
    pub kernel_log: bool,
    /// After teardown, anything tagged that is still present is a finding.
    #[serde(default = "yes")]
    pub leftovers: bool,
    /// An op that has not returned after this long is a hang finding.
    #[serde(default = "default_hang")]
    pub hang_after: String,
    /// A stack the run removed that is still alive after this long is a
    /// dying-stack finding (a VNET jail stuck DYING, a namespace held).
    #[serde(default = "default_grace")]
    pub dying_grace: String,
    /// Let go of tun-open's descriptors without destroying the interfaces
    /// their devfs clones made, leaving those to the stack's removal: the
    /// D51525 scenario (on FreeBSD kernels without that fix the jail then
    /// stays DYING until reboot). Otherwise every such interface is destroyed
    /// when its descriptor is let go, so no run leaves jails behind. Linux
    /// ties a tun's interface to its descriptor either way.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub leave_tun_clones: bool,
}

fn default_grace() -> String {
    "30s".into()
}

fn yes() -> bool {
    true
}
fn default_hang() -> String {
    "120s".into()
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            kernel_log: true,
            leftovers: true,
            hang_after: default_hang(),
            dying_grace: default_grace(),
            leave_tun_clones: false,
        }
    }
}

/// Parse a human duration ("30s", "90m", "24h", "1h30m").
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration `{s}`: {e} (examples: 30s, 90m, 24h)"))?;
    if d.is_zero() {
        return Err(format!("invalid duration `{s}`: must be longer than zero"));
    }
    if d > crate::model::MAX_DURATION {
        return Err(format!(
            "invalid duration `{s}`: longer than ifstress takes (366 days)"
        ));
    }
    Ok(d)
}

impl Suite {
    pub fn duration(&self) -> Duration {
        parse_duration(&self.duration).expect("validated at load")
    }

    pub fn dying_grace(&self) -> Duration {
        parse_duration(&self.checks.dying_grace).expect("validated at load")
    }

    pub fn hang_after(&self) -> Duration {
        parse_duration(&self.checks.hang_after).expect("validated at load")
    }

    /// Worker threads over every loop, before `--workers`.
    pub fn total_workers(&self) -> usize {
        self.loops.iter().map(|l| l.workers).sum()
    }

    /// Every op kind any loop uses.
    pub fn op_kinds(&self) -> Vec<OpKind> {
        let mut v: Vec<OpKind> = self
            .loops
            .iter()
            .flat_map(|l| l.ops.keys().copied())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    pub fn has_kind(&self, kind: LinkKind) -> bool {
        self.topology.links.iter().any(|l| l.kind == kind)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a suite always serialises")
    }

    /// Drop link kinds the kernel lacks (only optional ones reach here), and
    /// the ops left with nothing to act on. Returns what was dropped, for the
    /// run to say so.
    pub fn without_kinds(&self, missing: &[LinkKind]) -> (Suite, Vec<String>) {
        let mut s = self.clone();
        let mut notes = Vec::new();
        s.topology.links.retain(|l| !missing.contains(&l.kind));
        for lp in &mut s.loops {
            let before: Vec<OpKind> = lp.ops.keys().copied().collect();
            lp.ops
                .retain(|op, _| loop_op_has_targets(&s.topology, &lp.kinds, *op));
            for op in before {
                if !lp.ops.contains_key(&op) {
                    notes.push(format!(
                        "loop `{}`: op {op} has no target left, dropped",
                        lp.name
                    ));
                }
            }
        }
        s.loops.retain(|l| !l.ops.is_empty());
        (s, notes)
    }
}

/// Could the planner find something for this op to act on, in a loop
/// limited to `kinds` (empty: every kind)?
pub fn loop_op_has_targets(t: &Topology, kinds: &[LinkKind], op: OpKind) -> bool {
    if kinds.is_empty() {
        return op_has_targets(t, op);
    }
    let mut mine = t.clone();
    mine.links
        .retain(|l| kinds.contains(&l.kind) && l.count > 0);
    if mine.links.is_empty() {
        // Even stack ops act on one of the loop's links (stack-create moves
        // one in).
        return false;
    }
    match op {
        // The master is the loop's; the member is any pair end.
        OpKind::MemberAdd | OpKind::MemberDel => {
            mine.links
                .iter()
                .any(|l| l.kind.has_members() && l.count > 0)
                && t.links
                    .iter()
                    .any(|l| l.kind == LinkKind::Pair && l.count > 0)
        }
        _ => op_has_targets(&mine, op),
    }
}

/// Could the planner find something for this op to act on?
pub fn op_has_targets(t: &Topology, op: OpKind) -> bool {
    let has = |k: LinkKind| t.links.iter().any(|l| l.kind == k && l.count > 0);
    let any_link = t.links.iter().any(|l| l.count > 0);
    match op {
        OpKind::StackCreate | OpKind::StackRemove => t.churn_stacks > 0,
        OpKind::TunOpen => has(LinkKind::Tun) || has(LinkKind::Tap),
        OpKind::MemberAdd | OpKind::MemberDel => {
            (has(LinkKind::Bridge) || has(LinkKind::Lagg)) && has(LinkKind::Pair)
        }
        OpKind::Move => any_link && t.stacks + t.churn_stacks > 0,
        _ => {
            debug_assert!(matches!(
                op.target(),
                OpTarget::AnyLink | OpTarget::Creatable
            ));
            any_link
        }
    }
}

/// Where a suite's text came from, for error messages.
fn find_line(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// Parse and validate a suite's TOML text; `file` is only used in messages.
pub fn parse(text: &str, file: &str) -> Result<Suite, SuiteError> {
    let invalid = |line: usize, field: String, message: String| SuiteError::Invalid {
        file: file.to_string(),
        line,
        field,
        message,
    };
    let de = toml::Deserializer::parse(text).map_err(|e| {
        let line = e.span().map(|s| find_line(text, s.start)).unwrap_or(1);
        invalid(
            line,
            "(syntax)".into(),
            e.message().trim().replace('\n', " "),
        )
    })?;
    let suite: Suite = serde_path_to_error::deserialize(de).map_err(|e| {
        // serde_path_to_error marks an unknown map key as `.?`; the key is in the message.
        let field = e.path().to_string().trim_end_matches(".?").to_string();
        let inner = e.into_inner();
        let line = inner.span().map(|s| find_line(text, s.start)).unwrap_or(1);
        invalid(line, field, inner.message().trim().replace('\n', " "))
    })?;
    validate(&suite).map_err(|(field, message)| invalid(locate(text, &field), field, message))?;
    Ok(suite)
}

/// Best-effort line of a field path like `loop[2].workers`: the line of the
/// n-th `[[loop]]` header, then the key inside it.
fn locate(text: &str, field: &str) -> usize {
    let (table, rest) = match field.split_once('[') {
        Some((t, r)) => (t, r),
        None => {
            let key = field.split('.').next_back().unwrap_or(field);
            // `topology.stacks`, `checks.dying_grace`: the key inside its
            // table's `[topology]` section, or the table's own line when it
            // is written inline; a top-level key before any section.
            return match field.rsplit_once('.') {
                Some((t, _)) => section_line(text, t, key),
                None => line_of_key(text, 0, key),
            }
            .unwrap_or(1);
        }
    };
    let header = match table {
        "loop" => "[[loop]]",
        "topology.links" => {
            // Usually inline: `links = [ { kind = ..., count = ... }, ... ]`.
            if header_offset(text, "[[topology.links]]", 0).is_none() {
                return section_line(text, "topology", "links").unwrap_or(1);
            }
            "[[topology.links]]"
        }
        _ => return 1,
    };
    let idx: usize = rest
        .split(']')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let Some(start) = header_offset(text, header, idx) else {
        return 1;
    };
    let key = rest.split('.').nth(1).unwrap_or("");
    line_of_key(text, start, key).unwrap_or_else(|| find_line(text, start))
}

/// The line of `key` in the `[table]` section, else of `table = ...`
/// (an inline table) at the top level.
fn section_line(text: &str, table: &str, key: &str) -> Option<usize> {
    match header_offset(text, &format!("[{table}]"), 0) {
        Some(off) => line_of_key(text, off, key).or(Some(find_line(text, off))),
        None => line_of_key(text, 0, table),
    }
}

/// The byte offset of the `nth` line (from 0) that is `header` alone.
fn header_offset(text: &str, header: &str, nth: usize) -> Option<usize> {
    let mut off = 0;
    let mut seen = 0;
    for line in text.split_inclusive('\n') {
        if line.trim() == header {
            if seen == nth {
                return Some(off);
            }
            seen += 1;
        }
        off += line.len();
    }
    None
}

fn line_of_key(text: &str, from: usize, key: &str) -> Option<usize> {
    if key.is_empty() {
        return None;
    }
    let mut off = from;
    for (i, line) in text[from..].split_inclusive('\n').enumerate() {
        let t = line.trim_start();
        if i > 0 && t.starts_with('[') {
            return None;
        }
        if t.starts_with(key) && t[key.len()..].trim_start().starts_with('=') {
            return Some(find_line(text, off));
        }
        off += line.len();
    }
    None
}

/// Semantic checks serde cannot express. Errors are (field path, message).
fn validate(s: &Suite) -> Result<(), (String, String)> {
    let err = |f: &str, m: String| Err((f.to_string(), m));
    // The name reaches generated shell (`show --shell`, repro.sh), reports
    // and file names: a safe set at load, not quoting at every use.
    crate::model::safe_name(&s.name).map_err(|m| ("name".to_string(), m))?;
    parse_duration(&s.duration).map_err(|m| ("duration".to_string(), m))?;
    parse_duration(&s.checks.hang_after).map_err(|m| ("checks.hang_after".to_string(), m))?;
    parse_duration(&s.checks.dying_grace).map_err(|m| ("checks.dying_grace".to_string(), m))?;
    let t = &s.topology;
    if t.stacks > 64 {
        return err("topology.stacks", format!("{} is more than 64", t.stacks));
    }
    if t.churn_stacks > 64 {
        return err(
            "topology.churn_stacks",
            format!("{} is more than 64", t.churn_stacks),
        );
    }
    if t.links.is_empty() {
        return err("topology.links", "a suite needs at least one link".into());
    }
    let mut total = 0;
    for (i, l) in t.links.iter().enumerate() {
        if l.count == 0 || l.count > 999 {
            return err(
                &format!("topology.links[{i}].count"),
                format!("{} is outside 1..=999", l.count),
            );
        }
        if l.kind.needs_parent() && !s.has_kind(LinkKind::Pair) {
            return err(
                &format!("topology.links[{i}].kind"),
                format!("{} links sit on a pair end; add a `pair` entry", l.kind),
            );
        }
        total += l.count * if l.kind == LinkKind::Pair { 2 } else { 1 };
    }
    if total > 4096 {
        return err("topology.links", format!("{total} links is more than 4096"));
    }
    if s.loops.is_empty() {
        return err("loop", "a suite needs at least one [[loop]]".into());
    }
    let workers: usize = s.loops.iter().map(|l| l.workers.min(MAX_WORKERS)).sum();
    if workers > MAX_WORKERS {
        return err(
            "loop",
            format!("{workers} workers over all loops is more than {MAX_WORKERS}"),
        );
    }
    for (i, lp) in s.loops.iter().enumerate() {
        crate::model::safe_name(&lp.name).map_err(|m| (format!("loop[{i}].name"), m))?;
        if lp.workers == 0 || lp.workers > 256 {
            return err(
                &format!("loop[{i}].workers"),
                format!("{} is outside 1..=256", lp.workers),
            );
        }
        if lp.ops.is_empty() {
            return err(&format!("loop[{i}].ops"), "names no op".into());
        }
        if lp.rate == Some(0) {
            return err(&format!("loop[{i}].rate"), "must be above zero".into());
        }
        if let Some(k) = lp.kinds.iter().find(|k| !s.has_kind(**k)) {
            return err(
                &format!("loop[{i}].kinds"),
                format!("no `{k}` link in topology.links"),
            );
        }
        let steps: u64 = lp.ops.values().map(|w| *w as u64).sum();
        if lp.order == Order::Cycle && steps > MAX_CYCLE_STEPS {
            return err(
                &format!("loop[{i}].ops"),
                format!(
                    "a cycle of {steps} steps is more than {MAX_CYCLE_STEPS} (in `cycle` order the weights are repeat counts, and every worker holds the cycle)"
                ),
            );
        }
        for (op, w) in &lp.ops {
            if *w == 0 {
                return err(&format!("loop[{i}].ops"), format!("weight of {op} is zero"));
            }
            if *w > MAX_WEIGHT {
                return err(
                    &format!("loop[{i}].ops"),
                    format!("weight of {op} is {w}, more than {MAX_WEIGHT}"),
                );
            }
            if !loop_op_has_targets(t, &lp.kinds, *op) {
                let within = if lp.kinds.is_empty() {
                    String::new()
                } else {
                    " among the loop's kinds".to_string()
                };
                return err(
                    &format!("loop[{i}].ops"),
                    format!("{op} has nothing to act on{within}: {}", needs(*op)),
                );
            }
        }
    }
    Ok(())
}

/// The most worker threads a run starts, over every loop and after
/// `--workers`: each is an OS thread with its own sockets per stack, and
/// past this many a run spends its time on thread and descriptor failures
/// (10,240 threads took 1.29 GB and failed with `os error -1`).
pub const MAX_WORKERS: usize = 1024;

/// The largest op weight: weights are relative, and with every op kind at
/// this bound their sum still fits the planner's u32 draw.
pub const MAX_WEIGHT: u32 = 1_000_000;
const _: () = assert!(OpKind::ALL.len() as u64 * MAX_WEIGHT as u64 <= u32::MAX as u64);
/// The longest cycle of a `cycle`-order loop (its weights are repeat
/// counts, expanded per worker).
pub const MAX_CYCLE_STEPS: u64 = 4096;

fn needs(op: OpKind) -> &'static str {
    match op {
        OpKind::StackCreate | OpKind::StackRemove => "set topology.churn_stacks",
        OpKind::TunOpen => "add a tun or tap link",
        OpKind::MemberAdd | OpKind::MemberDel => "add a bridge or lagg and a pair",
        OpKind::Move => "set topology.stacks or churn_stacks",
        _ => "add a link",
    }
}

/// The largest suite file read: the embedded suites are under 4 KiB, and a
/// suite names at most 4096 links and a few dozen loops.
pub const MAX_SUITE_BYTES: u64 = 1 << 20;

/// Load a suite by embedded name or by path (anything with a `/` or ending in `.toml`).
pub fn load(name_or_path: &str) -> Result<Suite, SuiteError> {
    if name_or_path.contains('/') || name_or_path.ends_with(".toml") {
        let text = crate::bounded::read_text(
            std::path::Path::new(name_or_path),
            MAX_SUITE_BYTES,
            "a suite",
        )
        .map_err(|reason| SuiteError::Read {
            file: name_or_path.to_string(),
            reason,
        })?;
        return parse(&text, name_or_path);
    }
    let (_, text) = EMBEDDED
        .iter()
        .find(|(n, _)| *n == name_or_path)
        .ok_or_else(|| SuiteError::Unknown(name_or_path.to_string()))?;
    parse(text, &format!("suites/{name_or_path}.toml"))
}

#[cfg(test)]
mod tests;
