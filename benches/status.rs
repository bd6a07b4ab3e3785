//! Recording one evaluation on the status board (/status and /metrics), as the controller
//! does after every notification: the steady state, where nothing changed since the last
//! evaluation, on a board holding 1000 groups. And building the `/status` document of
//! 10,000 groups, as a scrape does, with the board lock held for one chunk at a time.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use opergroupd::model::AdminState;
use opergroupd::status::{Board, DownlinkEval, Enforcement, GroupEval, Health, InputValue};

const LEAVES: usize = 1000;
const LEAVES_DOCUMENT: usize = 10_000;

fn config(leaves: usize) -> opergroupd::config::Config {
    let mut y = String::from("defaults:\n  username: admin\n  password: x\n  tls:\n    insecure: true\ntargets:\n");
    for i in 1..=leaves {
        y += &format!("  leaf{i}: {{ address: \"127.0.0.1:{}\" }}\n", 20000 + i);
    }
    y += "groups:\n";
    for i in 1..=leaves {
        y += &format!(
            "  leaf{i}-es1: {{ target: leaf{i}, uplinks: [\"ethernet-1/{{49..50}}\"], downlinks: [\"ethernet-1/1\"] }}\n"
        );
    }
    opergroupd::config::parse(&y, "bench").expect("bench config")
}

fn eval(now: Instant) -> GroupEval {
    let inputs = ["ethernet-1/49", "ethernet-1/50"]
        .iter()
        .map(|u| InputValue {
            path: opergroupd::srl_paths::oper_state(u).into(),
            value: Some(opergroupd::model::Scalar::Str("up".into())),
            received: Some(now),
        })
        .collect();
    GroupEval {
        at: now,
        health: Health::Healthy,
        reason: "2/2 uplinks up, required 1".into(),
        enforcement: Enforcement::Enforcing,
        downlinks: vec![DownlinkEval {
            name: "ethernet-1/1".into(),
            desired: Some(AdminState::Enable),
            observed: Some(AdminState::Enable),
        }],
        pending: None,
        inputs,
        decided: false,
        trigger: Some(now),
    }
}

fn bench(c: &mut Criterion) {
    let board = Board::from_config(&config(LEAVES), "bench", false);
    let now = Instant::now();
    for i in 1..=LEAVES {
        board.group_evaluated(&format!("leaf{i}-es1"), eval(now));
    }
    c.bench_function("Board::group_evaluated, nothing changed (1000 groups)", |b| {
        b.iter_batched(
            || eval(now),
            |e| board.group_evaluated(black_box("leaf500-es1"), e),
            criterion::BatchSize::SmallInput,
        )
    });
}

fn document(c: &mut Criterion) {
    let board = Board::from_config(&config(LEAVES_DOCUMENT), "bench", false);
    let now = Instant::now();
    for i in 1..=LEAVES_DOCUMENT {
        board.group_evaluated(&format!("leaf{i}-es1"), eval(now));
    }
    c.bench_function("Board::document (10000 groups)", |b| b.iter(|| black_box(board.document(now))));
    c.bench_function("Board::metrics_text (10000 groups)", |b| b.iter(|| black_box(board.metrics_text())));
    let mut fleet = config(LEAVES_DOCUMENT);
    fleet.histograms = opergroupd::config::HistogramScope::Fleet;
    let board = Board::from_config(&fleet, "bench", false);
    for i in 1..=LEAVES_DOCUMENT {
        board.group_evaluated(&format!("leaf{i}-es1"), eval(now));
    }
    c.bench_function("Board::metrics_text (10000 groups, histograms: fleet)", |b| {
        b.iter(|| black_box(board.metrics_text()))
    });
}

criterion_group!(benches, bench, document);
criterion_main!(benches);
