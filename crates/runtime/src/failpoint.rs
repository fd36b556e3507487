//! Fault injection for the crash tests: a named point in a service where the
//! process can be made to die as `kill -9` would kill it (`abort`: no
//! destructor runs, nothing is flushed, no transaction is finished), at the
//! exact step a random SIGKILL would rarely hit.
//!
//! `CONCORD_FAILPOINTS=review-decided:@5,outbox-published:0.3` makes the
//! first point abort the 5th time the process reaches it (so each life of a
//! restarted process makes four steps of progress, then dies at the fifth),
//! and the second with probability 0.3 each time (1 when no chance is given).
//! Unset — as in every deployment — a point costs one look at a parsed-once
//! empty list.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// When a point aborts.
#[derive(Debug, PartialEq)]
enum When {
    /// With this probability, each time.
    Chance(f64),
    /// The n-th time in this process.
    Nth(u64),
}

fn points() -> &'static [(String, When, AtomicU64)] {
    static POINTS: OnceLock<Vec<(String, When, AtomicU64)>> = OnceLock::new();
    POINTS.get_or_init(|| {
        parse(&std::env::var("CONCORD_FAILPOINTS").unwrap_or_default()).into_iter().map(|(n, w)| (n, w, AtomicU64::new(0))).collect()
    })
}

fn parse(text: &str) -> Vec<(String, When)> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once(':') {
            Some((name, nth)) if nth.starts_with('@') => (name.to_owned(), When::Nth(nth[1..].parse().unwrap_or(1))),
            Some((name, chance)) => (name.to_owned(), When::Chance(chance.parse().unwrap_or(1.0))),
            None => (p.to_owned(), When::Chance(1.0)),
        })
        .collect()
}

/// Aborts the process here when `CONCORD_FAILPOINTS` names `point` (and its
/// time has come).
pub fn hit(point: &str) {
    let Some((_, when, hits)) = points().iter().find(|(name, _, _)| name == point) else { return };
    let n = hits.fetch_add(1, Ordering::Relaxed) + 1;
    let abort = match when {
        When::Nth(nth) => n == *nth,
        When::Chance(chance) => {
            let mut byte = [0u8; 1];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut byte).is_ok() && f64::from(byte[0]) / 256.0 < *chance
        }
    };
    if abort {
        eprintln!("failpoint {point}: aborting as kill -9 would");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn points_name_a_chance_a_count_or_always() {
        use super::When::*;
        assert_eq!(
            super::parse(" review-decided:0.25, outbox-published ,x:@3"),
            vec![("review-decided".to_owned(), Chance(0.25)), ("outbox-published".to_owned(), Chance(1.0)), ("x".to_owned(), Nth(3)),]
        );
        assert!(super::parse("").is_empty());
    }
}
