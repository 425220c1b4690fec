//! The side-by-side benchmark: switchboard against the in-memory chat servers teams would
//! otherwise run (Node `ws`, Socket.IO), each started in turn on this machine, with the same
//! load from this one generator. Run it through `ops/bench/run.sh`, which builds it, installs
//! the peers and prints the table; by hand:
//!
//! ```text
//! cargo run --release -p switchboard-edge --example bench -- \
//!     --switchboard target/release/switchboard --peers ops/bench/peers [--quick] [--set KEY=VALUE]...
//!     [--targets switchboard,switchboard-never,distributed,ws,socketio] [--steady-only] [--rates 1000,5000]
//!     [--seconds S] [--rooms N]
//!     [--storm CLIENTS [--storm-messages N]]   # only the reconnect storm (ops/reconnect-storm.sh)
//!     [--churn S [--workers N]]                 # only the memory churn
//!     [--fleet N [--edges E] [--clients C] [--hold-seconds S]]  # only idle connections, distributed
//! ```
//!
//! `--fleet N` holds N idle connections across `--edges` (6) `switchboard run --roles edge`
//! processes on tansu, opened by `--clients` (6) generator processes (this program with
//! `--hold`), for `--hold-seconds` (90, past the edge's idle timeout); see `bench/fleet.rs`.
//!
//! `--churn S` runs only the memory scenario instead, against switchboard: `--workers`
//! customers (64) open, post to and resolve short conversations for S seconds, and the
//! server's RSS is sampled every 10 s (stderr as it goes, a table on stdout at the end).
//!
//! Scenarios, per server: idle connections (resident memory per connection), steady chat at
//! fixed rates (open-loop: latency counts from each message's intended send time, so a
//! server that falls behind shows its queue), closed-loop maximum, a reconnect storm with
//! resume, history reads over HTTP, and fan-out of one conversation to many agents. Each
//! conversation has a customer sending and an agent subscribed, on their own connections.
//! The table (markdown, on stdout) gives each figure and the ratio switchboard ÷ peer.

mod bench {
    pub mod client;
    pub mod fleet;
    pub mod scenarios;
    pub mod stats;
    pub mod storm;
    pub mod target;
}

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use bench::scenarios::{self, Outcome, Pace};
use bench::stats::Latency;
use bench::target::{Programs, Server, Target};
use tokio::time::Instant;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The clock every intended send time is written in.
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// How much load, and for how long.
#[derive(Debug)]
struct Plan {
    /// Conversations of the chat scenarios (each: one customer, one agent).
    rooms: usize,
    /// Tenants they are spread over (the edge limits frames per tenant).
    tenants: usize,
    /// Messages per second of the steady scenarios, over all rooms.
    rates: Vec<u64>,
    seconds: f64,
    fanout_agents: usize,
    /// Messages per second into the fanned-out conversation.
    fanout_rate: f64,
    idle: usize,
    storm_rate: u64,
    history_workers: usize,
    /// Only the steady scenarios (for a profile).
    steady_only: bool,
    /// Only the reconnect storm of `ops/reconnect-storm.sh`, with this many clients.
    storm_clients: Option<usize>,
    /// Messages each customer of the storm sends before and again after the drop.
    storm_messages: u64,
    /// Only the short-conversation churn, for this many seconds, with this many customers.
    churn: Option<(f64, usize)>,
}

impl Plan {
    fn full() -> Self {
        // 1,000 rooms keep every connection at 10 messages/s at the top rate and 8 tenants
        // at 1,250/s: under the edge's default limits (20/s per connection, 5,000/s per
        // tenant), so those limits never shape what is measured.
        Self {
            rooms: 1_000,
            tenants: 8,
            rates: vec![1_000, 5_000, 10_000],
            seconds: 10.0,
            fanout_agents: 500,
            fanout_rate: 10.0,
            idle: 10_000,
            storm_rate: 1_000,
            history_workers: 16,
            steady_only: false,
            storm_clients: None,
            storm_messages: 5,
            churn: None,
        }
    }

    fn quick() -> Self {
        Self {
            rooms: 50,
            tenants: 2,
            rates: vec![500],
            seconds: 1.0,
            fanout_agents: 50,
            fanout_rate: 10.0,
            idle: 500,
            storm_rate: 250,
            history_workers: 4,
            steady_only: false,
            storm_clients: None,
            storm_messages: 5,
            churn: None,
        }
    }
}

/// One figure of one server.
#[derive(Debug)]
struct Figure {
    scenario: String,
    metric: &'static str,
    value: Option<f64>,
}

#[derive(Debug, Default)]
struct Figures(Vec<Figure>);

impl Figures {
    fn put(&mut self, scenario: &str, metric: &'static str, value: Option<f64>) {
        self.0.push(Figure {
            scenario: scenario.to_owned(),
            metric,
            value,
        });
    }

    fn get(&self, scenario: &str, metric: &str) -> Option<f64> {
        self.0
            .iter()
            .find(|f| f.scenario == scenario && f.metric == metric)
            .and_then(|f| f.value)
    }

    fn latency(&mut self, scenario: &str, latency: &Latency, p999: bool) {
        self.put(scenario, "p50 ms", latency.ms(0.5));
        self.put(scenario, "p99 ms", latency.ms(0.99));
        if p999 {
            self.put(scenario, "p99.9 ms", latency.ms(0.999));
        }
    }

    fn chat(&mut self, scenario: &str, o: &Outcome, cpu: bool) {
        self.put(scenario, "delivered/s", Some(o.per_second));
        self.latency(scenario, &o.latency, true);
        if cpu {
            self.put(scenario, "CPU s per 1k", Some(o.cpu_per_1k));
        }
        let lost = o.sent.saturating_sub(o.delivered) as f64;
        self.put(scenario, "not delivered", Some(lost));
        self.put(scenario, "refused", Some(o.refused as f64));
    }

    /// Records a scenario that could not run.
    fn failed(&mut self, scenario: &str, error: &Error) {
        eprintln!("  {scenario}: {error}");
        self.put(scenario, "failed", None);
    }
}

/// The reconnect storm alone, on `switchboard serve`: prints its figures as a markdown table
/// and fails when a client did not end with exactly its conversation's events.
async fn storm(programs: &Programs, clients: usize, messages: u64) -> Result<(), Error> {
    let server = std::sync::Arc::new(Server::start(&Target::Switchboard("always"), programs)?);
    eprintln!(
        "switchboard: pid {} at {}",
        server.pid, server.endpoint.edge
    );
    let started = std::time::Instant::now();
    let r = bench::storm::storm(server, clients, messages).await;
    let mib = |kib: u64| kib as f64 / 1024.0;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "| reconnect storm | value |\n| --- | ---: |")?;
    writeln!(
        stdout,
        "| clients (customer + agent per conversation) | {} |",
        r.clients
    )?;
    writeln!(stdout, "| messages acknowledged | {} |", r.acked)?;
    writeln!(
        stdout,
        "| clients not ending with exactly their events | {} |",
        r.wrong
    )?;
    writeln!(stdout, "| clients that failed to resume | {} |", r.failed)?;
    writeln!(
        stdout,
        "| resume p50 / p99 / max ms | {} / {} / {} |",
        number(r.resume.ms(0.5)),
        number(r.resume.ms(0.99)),
        number(r.resume.ms(1.0))
    )?;
    writeln!(
        stdout,
        "| serve RSS before clients, MiB | {:.1} |",
        mib(r.rss_baseline_kib)
    )?;
    writeln!(
        stdout,
        "| serve RSS peak with clients, MiB | {:.1} |",
        mib(r.rss_connected_kib)
    )?;
    writeln!(
        stdout,
        "| serve RSS 5 s after all left, MiB | {:.1} |",
        mib(r.rss_after_kib)
    )?;
    writeln!(
        stdout,
        "| run, s | {:.0} |",
        started.elapsed().as_secs_f64()
    )?;
    if let Some(problem) = &r.first_problem {
        eprintln!("first problem: {problem}");
    }
    if r.wrong + r.failed > 0 {
        return Err(format!(
            "{} clients ended wrong, {} failed to resume",
            r.wrong, r.failed
        )
        .into());
    }
    Ok(())
}

async fn measure(target: &Target, programs: &Programs, plan: &Plan) -> Result<Figures, Error> {
    let mut figures = Figures::default();
    let server = Server::start(target, programs)?;
    eprintln!(
        "{}: pid {} at {}",
        target.name(),
        server.pid,
        server.endpoint.edge
    );

    match scenarios::idle(&server, plan.idle).await {
        Ok(kib) => figures.put(
            &format!("idle {}", plan.idle),
            "RSS KiB per conn",
            Some(kib),
        ),
        Err(e) => figures.failed("idle", &e),
    }

    let mut rooms = scenarios::rooms(&server.endpoint, plan.rooms, 1, plan.tenants).await?;
    for &rate in &plan.rates {
        let per_room = rate as f64 / plan.rooms as f64;
        let (back, o) =
            scenarios::drive(&server, rooms, Pace::Open(per_room), plan.seconds, None).await;
        rooms = back;
        eprintln!("  steady {rate}/s: {o:?}", o = short(&o));
        figures.chat(&format!("steady {rate}/s"), &o, true);
    }
    if plan.steady_only {
        return Ok(figures);
    }

    let (back, o) = scenarios::drive(&server, rooms, Pace::Closed, plan.seconds, None).await;
    rooms = back;
    eprintln!("  closed loop: {:?}", short(&o));
    figures.chat(&format!("closed loop, {} convs", plan.rooms), &o, true);

    let per_room = plan.storm_rate as f64 / plan.rooms as f64;
    let (back, o) = scenarios::drive(
        &server,
        rooms,
        Pace::Open(per_room),
        plan.seconds,
        Some(plan.seconds / 2.0),
    )
    .await;
    rooms = back;
    eprintln!(
        "  reconnect storm: {:?} resume {:?}",
        short(&o),
        o.resume.ms(0.99)
    );
    let storm = format!("reconnect storm, {} agents", plan.rooms);
    figures.put(&storm, "resume p50 ms", o.resume.ms(0.5));
    figures.put(&storm, "resume p99 ms", o.resume.ms(0.99));
    figures.put(&storm, "resume max ms", o.resume.ms(1.0));
    let wrong = (o.gaps + o.duplicates + o.failed_reconnects) as f64;
    figures.put(&storm, "gaps+dups+failed", Some(wrong));

    let scenario = format!("history, {} readers", plan.history_workers);
    match scenarios::history(&server, &rooms, plan.history_workers, plan.seconds).await {
        Ok((per_second, latency)) => {
            figures.put(&scenario, "reads/s", Some(per_second));
            figures.latency(&scenario, &latency, true);
        }
        Err(e) => figures.failed(&scenario, &e),
    }
    drop(rooms);

    let scenario = format!("fan-out 1 → {}", plan.fanout_agents);
    match scenarios::rooms(&server.endpoint, 1, plan.fanout_agents, 1).await {
        Ok(room) => {
            let pace = Pace::Open(plan.fanout_rate);
            let (_, o) = scenarios::drive(&server, room, pace, plan.seconds, None).await;
            eprintln!("  fan-out: {:?}", short(&o));
            figures.put(&scenario, "deliveries/s", Some(o.per_second));
            figures.latency(&scenario, &o.latency, true);
        }
        Err(e) => figures.failed(&scenario, &e),
    }
    Ok(figures)
}

/// The counts of an outcome, for the progress lines.
fn short(o: &Outcome) -> (u64, u64, u64, Option<f64>) {
    (o.sent, o.delivered, o.refused, o.latency.ms(0.99))
}

/// The markdown table: one column per server, then switchboard ÷ each peer.
fn table(columns: &[(Target, Figures)]) -> String {
    let names: Vec<String> = columns.iter().map(|(t, _)| t.name()).collect();
    let ours: Vec<usize> = (0..columns.len())
        .filter(|&i| matches!(columns[i].0, Target::Switchboard(_)))
        .collect();
    let peers: Vec<usize> = (0..columns.len()).filter(|i| !ours.contains(i)).collect();
    let mut out = format!("| scenario | metric | {} |", names.join(" | "));
    let mut rule = String::from("| --- | --- |");
    rule.push_str(&" ---: |".repeat(names.len()));
    for &p in &peers {
        for &o in &ours {
            out.push_str(&format!(" {} ÷ {} |", names[o], names[p]));
            rule.push_str(" ---: |");
        }
    }
    out.push('\n');
    out.push_str(&rule);
    out.push('\n');
    // Every row any server has, in the order the scenarios ran.
    let mut rows: Vec<(&str, &str)> = Vec::new();
    for figure in columns.iter().flat_map(|(_, f)| &f.0) {
        let row = (figure.scenario.as_str(), figure.metric);
        if !rows.contains(&row) {
            rows.push(row);
        }
    }
    for (scenario, metric) in rows {
        let value = |c: usize| columns[c].1.get(scenario, metric);
        out.push_str(&format!("| {scenario} | {metric} |"));
        for c in 0..columns.len() {
            out.push_str(&format!(" {} |", number(value(c))));
        }
        for &p in &peers {
            for &o in &ours {
                let ratio = match (value(o), value(p)) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                    _ => "—".to_owned(),
                };
                out.push_str(&format!(" {ratio} |"));
            }
        }
        out.push('\n');
    }
    out
}

fn number(value: Option<f64>) -> String {
    match value {
        None => "—".to_owned(),
        Some(v) if v >= 100.0 || v == v.trunc() => format!("{v:.0}"),
        Some(v) if v >= 1.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.3}"),
    }
}

struct Args {
    programs: Programs,
    plan: Plan,
    targets: Vec<Target>,
    fleet: Option<bench::fleet::FleetPlan>,
}

/// A generator of the fleet (`--hold N --at ADDR,... --offset K --hold-seconds S`).
#[derive(Debug)]
struct Hold {
    n: usize,
    at: Vec<std::net::SocketAddr>,
    offset: usize,
    seconds: f64,
}

/// The arguments of a fleet generator, when these are they.
fn hold_args() -> Result<Option<Hold>, Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("--hold") {
        return Ok(None);
    }
    let mut hold = Hold {
        n: 0,
        at: Vec::new(),
        offset: 0,
        seconds: 0.0,
    };
    for pair in args.chunks(2) {
        let value = pair
            .get(1)
            .ok_or_else(|| format!("{} takes a value", pair[0]))?;
        match pair[0].as_str() {
            "--hold" => hold.n = value.parse()?,
            "--at" => hold.at = value.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--offset" => hold.offset = value.parse()?,
            "--hold-seconds" => hold.seconds = value.parse()?,
            other => return Err(format!("unknown argument {other} of --hold").into()),
        }
    }
    Ok(Some(hold))
}

fn args() -> Result<Args, Error> {
    let mut switchboard = None;
    let mut peers = None;
    let mut sets = Vec::new();
    let mut plan = Plan::full();
    let mut rates = None;
    let mut seconds = None;
    let mut rooms = None;
    let mut churn = None;
    let mut workers = 64;
    let mut fleet = None;
    let (mut edges, mut clients, mut hold_seconds) = (6, 6, 90.0);
    let mut targets = vec![
        Target::Switchboard("always"),
        Target::Switchboard("never"),
        Target::Ws,
        Target::SocketIo,
    ];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} takes a value"));
        match arg.as_str() {
            "--switchboard" => switchboard = Some(PathBuf::from(value()?)),
            "--peers" => peers = Some(PathBuf::from(value()?)),
            "--set" => sets.push(value()?),
            "--quick" => plan = Plan::quick(),
            "--steady-only" => plan.steady_only = true,
            "--storm" => plan.storm_clients = Some(value()?.parse()?),
            "--storm-messages" => plan.storm_messages = value()?.parse()?,
            "--rates" => {
                let list = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
                rates = Some(list);
            }
            "--seconds" => seconds = Some(value()?.parse()?),
            "--rooms" => rooms = Some(value()?.parse()?),
            "--churn" => churn = Some(value()?.parse()?),
            "--workers" => workers = value()?.parse()?,
            "--fleet" => fleet = Some(value()?.parse()?),
            "--edges" => edges = value()?.parse()?,
            "--clients" => clients = value()?.parse()?,
            "--hold-seconds" => hold_seconds = value()?.parse()?,
            "--targets" => {
                targets = value()?
                    .split(',')
                    .map(|t| match t {
                        "switchboard" => Ok(Target::Switchboard("always")),
                        "switchboard-never" => Ok(Target::Switchboard("never")),
                        "distributed" => Ok(Target::Distributed),
                        "ws" => Ok(Target::Ws),
                        "socketio" => Ok(Target::SocketIo),
                        other => Err(format!("unknown target {other}")),
                    })
                    .collect::<Result<_, _>>()?
            }
            other => {
                return Err(format!("unknown argument {other}; see the top of bench.rs").into());
            }
        }
    }
    plan.rates = rates.unwrap_or(plan.rates);
    plan.seconds = seconds.unwrap_or(plan.seconds);
    plan.rooms = rooms.unwrap_or(plan.rooms);
    plan.churn = churn.map(|seconds| (seconds, workers));
    Ok(Args {
        programs: Programs {
            switchboard: switchboard.ok_or("--switchboard PATH is required")?,
            peers: peers.ok_or("--peers DIR is required")?,
            switchboard_sets: sets,
        },
        plan,
        targets,
        fleet: fleet.map(|connections| bench::fleet::FleetPlan {
            connections,
            edges,
            clients,
            hold_seconds,
        }),
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    EPOCH.get_or_init(Instant::now);
    let limit = rlimit::increase_nofile_limit(u64::MAX)?;
    if let Some(hold) = hold_args()? {
        return bench::fleet::hold(&hold.at, hold.n, hold.offset, hold.seconds).await;
    }
    let args = args()?;
    if let Some(fleet) = args.fleet {
        eprintln!("open files limit {limit}; {fleet:?}");
        return bench::fleet::fleet(&args.programs, fleet).await;
    }
    let plan = args.plan;
    eprintln!("open files limit {limit}; {plan:?}");
    if let Some(clients) = plan.storm_clients {
        return storm(&args.programs, clients, plan.storm_messages).await;
    }
    if let Some((seconds, workers)) = plan.churn {
        return churn(&args.programs, &plan, seconds, workers).await;
    }
    let mut columns = Vec::new();
    for target in args.targets {
        let started = std::time::Instant::now();
        let figures = match measure(&target, &args.programs, &plan).await {
            Ok(figures) => figures,
            Err(e) => {
                eprintln!("{}: {e}", target.name());
                Figures::default()
            }
        };
        eprintln!(
            "{}: {:.0} s",
            target.name(),
            started.elapsed().as_secs_f64()
        );
        columns.push((target, figures));
    }
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "{}", table(&columns))?;
    Ok(())
}

/// The churn scenario against switchboard, and its RSS samples as a markdown table.
async fn churn(
    programs: &Programs,
    plan: &Plan,
    seconds: f64,
    workers: usize,
) -> Result<(), Error> {
    let target = Target::Switchboard("always");
    let server = Server::start(&target, programs)?;
    eprintln!(
        "{}: pid {} churn with {workers} customers",
        target.name(),
        server.pid
    );
    let sample = std::time::Duration::from_secs(10);
    let samples = scenarios::churn(&server, workers, plan.tenants, seconds, sample).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "| s | conversations resolved | RSS MiB |")?;
    writeln!(stdout, "| ---: | ---: | ---: |")?;
    for (at, resolved, rss) in samples {
        writeln!(
            stdout,
            "| {at:.0} | {resolved} | {:.1} |",
            rss as f64 / 1024.0
        )?;
    }
    Ok(())
}
