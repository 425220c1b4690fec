//! Idle connections by the hundred thousand, in the distributed shape: one `ingest,router`
//! process and several `switchboard run --roles edge` processes on a tansu broker, the
//! connections spread over the edges and over several generator processes (each process,
//! server or client, may hold at most 20,000 open files here). The generators are this
//! program again, started with `--hold`: each opens its share of customer connections round
//! robin over the edges, answers the server's pings while it holds them, and says how many
//! are still open at the end. The edges' RSS is read before the clients come and once all are
//! connected; the table says the RSS per connection beyond each edge's baseline.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::client::{Who, connect};
use super::scenarios::source;
use super::stats::rss_kib;
use super::target::distributed::Cluster;
use super::target::{Endpoint, Programs};
use crate::Error;

/// Connections one generator opens at once.
const CONNECTING: usize = 64;

/// How many connections, over how many processes, held for how long.
#[derive(Clone, Copy, Debug)]
pub struct FleetPlan {
    pub connections: usize,
    pub edges: usize,
    pub clients: usize,
    pub hold_seconds: f64,
}

/// Starts the deployment and the generators, and prints the figures as a markdown table.
pub async fn fleet(programs: &Programs, plan: FleetPlan) -> Result<(), Error> {
    let cluster = Cluster::start()?;
    let mut nodes = Nodes(Vec::new(), cluster);
    let mut ingest = nodes.1.run(programs, "ingest-1", "ingest,router", &[])?;
    let commands = format!("http://{}", ingest.take("commands  gRPC")?);
    ingest.wait_ready()?;
    nodes.0.push(ingest.child);
    let mut edges = Vec::new();
    for e in 0..plan.edges {
        let mut edge = nodes.1.run(
            programs,
            &format!("edge-{e}"),
            "edge",
            &[format!("ingest.endpoints=[\"{commands}\"]")],
        )?;
        let at = edge.take("widget")?;
        edge.wait_ready()?;
        edges.push((edge.child.id(), at));
        nodes.0.push(edge.child);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let baseline: Vec<u64> = edges.iter().map(|(pid, _)| rss_kib(*pid)).collect();
    let at = edges
        .iter()
        .map(|(_, at)| at.to_string())
        .collect::<Vec<_>>()
        .join(",");
    eprintln!("fleet: {} edges at {at}", plan.edges);

    let started = Instant::now();
    let share = plan.connections.div_ceil(plan.clients);
    let mut generators = Vec::new();
    for c in 0..plan.clients {
        let offset = c * share;
        let n = share.min(plan.connections.saturating_sub(offset));
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--hold", &n.to_string(), "--at", &at])
            .args(["--offset", &offset.to_string()])
            .args(["--hold-seconds", &plan.hold_seconds.to_string()])
            .stdout(Stdio::piped())
            .spawn()?;
        let lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        generators.push((child, lines));
    }
    // Each generator's first line: `connected <ok> failed <n>`.
    let (mut connected, mut failed) = (0, 0);
    for (_, lines) in &mut generators {
        let line = lines.next().ok_or("a generator ended early")??;
        let words: Vec<&str> = line.split_whitespace().collect();
        connected += words.get(1).ok_or("no count")?.parse::<usize>()?;
        failed += words.get(3).ok_or("no count")?.parse::<usize>()?;
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    eprintln!("fleet: {connected} connected, {failed} failed in {connect_seconds:.0} s");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let held: Vec<u64> = edges.iter().map(|(pid, _)| rss_kib(*pid)).collect();
    let mut still_open = 0;
    for (mut child, mut lines) in generators {
        let line = lines.next().ok_or("a generator ended early")??;
        still_open += line
            .split_whitespace()
            .nth(1)
            .ok_or("no count")?
            .parse::<usize>()?;
        child.wait()?;
    }
    let after: Vec<u64> = edges.iter().map(|(pid, _)| rss_kib(*pid)).collect();

    let mib = |kib: u64| kib as f64 / 1024.0;
    let (base, peak): (u64, u64) = (baseline.iter().sum(), held.iter().sum());
    let per_conn = peak.saturating_sub(base) as f64 / connected.max(1) as f64;
    let mut out = std::io::stdout().lock();
    writeln!(out, "| {} idle connections | value |", plan.connections)?;
    writeln!(out, "| --- | ---: |")?;
    writeln!(
        out,
        "| edge processes / generator processes | {} / {} |",
        plan.edges, plan.clients
    )?;
    writeln!(out, "| connected / failed | {connected} / {failed} |")?;
    writeln!(out, "| connecting took, s | {connect_seconds:.0} |")?;
    writeln!(
        out,
        "| still open after {:.0} s | {still_open} |",
        plan.hold_seconds
    )?;
    writeln!(out, "| edges' RSS before clients, MiB | {:.1} |", mib(base))?;
    writeln!(
        out,
        "| edges' RSS with every client, MiB | {:.1} |",
        mib(peak)
    )?;
    writeln!(
        out,
        "| edges' RSS at the end of the hold, MiB | {:.1} |",
        mib(after.iter().sum())
    )?;
    writeln!(
        out,
        "| RSS per connection beyond the baseline, KiB | {per_conn:.2} |"
    )?;
    for (e, (b, h)) in baseline.iter().zip(&held).enumerate() {
        writeln!(
            out,
            "| edge {e}: RSS before / with clients, MiB | {:.1} / {:.1} |",
            mib(*b),
            mib(*h)
        )?;
    }
    Ok(())
}

/// The deployment's processes, killed (edges first, the broker last) when dropped.
#[derive(Debug)]
struct Nodes(Vec<Child>, Cluster);

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in self.0.iter_mut().rev().chain(self.1.others.iter_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One generator: opens connections `offset..offset + n` (the `i`-th to edge `i % edges`,
/// from the source address of `i`), prints `connected <ok> failed <n>`, holds them for
/// `seconds` answering pings, then prints `open <n>`: how many the server kept.
pub async fn hold(at: &[SocketAddr], n: usize, offset: usize, seconds: f64) -> Result<(), Error> {
    let endpoints: Vec<Endpoint> = at
        .iter()
        .map(|&a| Endpoint::switchboard(a, None, a))
        .collect();
    let open = Arc::new(AtomicUsize::new(0));
    let endpoints = &endpoints;
    let results: Vec<Result<(), Error>> = futures_util::stream::iter(offset..offset + n)
        .map(|i| {
            let open = open.clone();
            async move {
                let who = Who {
                    tenant: format!("fleet{}", i % 8),
                    role: "customer",
                    subject: format!("idle-{i}"),
                };
                let mut conn = connect(&endpoints[i % endpoints.len()], &who, source(i)).await?;
                open.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    // Reading answers the pings; an error is the connection's end.
                    while conn.recv().await.is_ok() {}
                    open.fetch_sub(1, Ordering::Relaxed);
                });
                Ok(())
            }
        })
        .buffer_unordered(CONNECTING)
        .collect()
        .await;
    let failed = results.iter().filter(|r| r.is_err()).count();
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        eprintln!("hold: first failure: {e}");
    }
    writeln!(
        std::io::stdout(),
        "connected {} failed {failed}",
        n - failed
    )?;
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    writeln!(std::io::stdout(), "open {}", open.load(Ordering::Relaxed))?;
    Ok(())
}
