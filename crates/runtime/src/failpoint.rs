//! Fault injection for the crash tests: a named point in a service where the
//! process can be made to die as `kill -9` would kill it (`abort`: no
//! destructor runs, nothing is flushed, no transaction is finished), at the
//! exact step a random SIGKILL would rarely hit.
//!
//! `CONCORD_FAILPOINTS=review-decided:0.3,outbox-published:0.3` makes each
//! named point abort with that probability (1 when none is given). Unset — as
//! in every deployment — a point costs one look at a parsed-once empty list.

use std::sync::OnceLock;

fn points() -> &'static [(String, f64)] {
    static POINTS: OnceLock<Vec<(String, f64)>> = OnceLock::new();
    POINTS.get_or_init(|| parse(&std::env::var("CONCORD_FAILPOINTS").unwrap_or_default()))
}

fn parse(text: &str) -> Vec<(String, f64)> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once(':') {
            Some((name, chance)) => (name.to_owned(), chance.parse().unwrap_or(1.0)),
            None => (p.to_owned(), 1.0),
        })
        .collect()
}

/// Aborts the process here when `CONCORD_FAILPOINTS` names `point` (and its
/// chance comes up).
pub fn hit(point: &str) {
    let Some((_, chance)) = points().iter().find(|(name, _)| name == point) else { return };
    let mut byte = [0u8; 1];
    let roll = match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut byte) {
        Ok(()) => f64::from(byte[0]) / 256.0,
        Err(_) => 0.0,
    };
    if roll < *chance {
        eprintln!("failpoint {point}: aborting as kill -9 would");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn points_name_a_chance_or_always() {
        assert_eq!(
            super::parse(" review-decided:0.25, outbox-published ,"),
            vec![("review-decided".to_owned(), 0.25), ("outbox-published".to_owned(), 1.0)]
        );
        assert!(super::parse("").is_empty());
    }
}
