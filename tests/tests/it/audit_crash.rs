//! Group commit of the audit log (issue #28, item 1): the auditor writes the
//! leaves of one pass in one SQLite transaction, and nothing it tells anyone
//! — the log's size, a signed checkpoint — covers a leaf before that
//! transaction is on disk. Attacked with the real `concord-audit` binary:
//! it aborts, as kill -9 would, after appending a group and before
//! committing it, at random on half its groups, and is restarted each time,
//! while 400 alerts arrive in bursts and it publishes a checkpoint every
//! second. Afterwards its log holds each alert exactly once, its root is
//! the root a rebuild from offset zero gives, and no checkpoint — local or
//! published on the checkpoints topic — vouches for more than it holds or
//! for a different root.

use std::time::{Duration, Instant};

use concord_audit::store::AuditLog;
use concord_audit::{AuditConfig, Auditor};
use concord_tests::*;
use tokio_util::sync::CancellationToken;

const ALERTS: usize = 400;

fn count(db: &std::path::Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_killed_between_appending_a_group_and_committing_it_loses_and_doubles_nothing() {
    let run = TestRun::new("audit-crash").await;
    let db = run.dir.join("audit.sqlite");
    let config = run.dir.join("audit.toml");
    std::fs::write(
        &config,
        format!(
            "hub = {:?}\nagency = {AUDITOR:?}\ndatabase = {:?}\ntopic_suffix = {:?}\nadmin_listen = \"\"\n\
             checkpoint_interval_secs = 1\nordering_grace_ms = 200\ncatch_up_quiet_ms = 500\n",
            root().join("config/concord.toml").display().to_string(),
            db.display().to_string(),
            run.suffix,
        ),
    )
    .unwrap();
    let log_file = run.dir.join("audit.log");
    let mut auditor = Holder::start_with("concord-audit", config, log_file.clone(), &[("CONCORD_FAILPOINTS", "audit-group-appended:0.5")]);

    let identity = run.identity(AUDITOR);
    let alerts = identity.topics.alerts();
    let producer = run.producer(COMMITTEE);
    for burst in 0..20 {
        for i in 0..ALERTS / 20 {
            let mut alert = sample_alert();
            alert.description = format!("Audit crash test alert {burst}/{i}.");
            let key = alert.alert_id.clone();
            producer.publish(&alerts, key.as_bytes(), &valid(alert)).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        auditor.keep_running();
    }
    let in_log = format!("SELECT count(*) FROM leaves WHERE topic = '{alerts}'");
    let start = Instant::now();
    while count(&db, &in_log) < ALERTS as i64 {
        assert!(start.elapsed() < Duration::from_secs(120), "the log holds {} of {ALERTS} alerts after 120 s", count(&db, &in_log));
        auditor.keep_running();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A few more seconds: checkpoints of the full log, and more aborts among them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let tail = auditor.stop();
    let aborts = std::fs::read_to_string(&log_file).unwrap().matches("failpoint audit-group-appended: aborting").count();
    assert!(aborts >= 3, "the auditor was aborted between append and commit {aborts} times; log:\n{tail}");

    let log = AuditLog::open(&db, AUDITOR).unwrap();
    let size = log.size();
    assert_eq!(count(&db, &in_log), ALERTS as i64, "each alert once");
    assert_eq!(
        count(&db, &format!("SELECT count(DISTINCT partition || ':' || offset) FROM leaves WHERE topic = '{alerts}'")),
        ALERTS as i64
    );
    assert_eq!(count(&db, "SELECT count(*) FROM leaves") as u64, size, "the rows on disk are the leaves the log counts");
    assert_eq!(count(&db, "SELECT max(idx) + 1 FROM leaves") as u64, size, "indices without a gap");

    // No checkpoint, kept or published, vouches for a leaf the log lost.
    let published = concord_audit::published_checkpoints(&identity).await.unwrap();
    assert!(!published.is_empty(), "the auditor published checkpoints");
    let report = log.check(&identity.directory.current(), &published).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.covered > 0 && report.covered <= size, "checkpoints cover {} of {size}", report.covered);

    // The same log from offset zero, by an auditor that never crashed.
    let config = AuditConfig {
        service: concord_runtime::service::ServiceHeader {
            topic_suffix: Some(run.suffix.clone()),
            ..service_header(AUDITOR, run.dir.join("rebuilt.sqlite"))
        },
        checkpoint_interval_secs: 0,
        ordering_grace_ms: 200,
        catch_up_quiet_ms: 500,
    };
    let mut rebuilt = Auditor::new(run.identity(AUDITOR), &config).unwrap();
    let watch = rebuilt.size_watch();
    let stop = CancellationToken::new();
    let task = {
        let stop = stop.clone();
        tokio::spawn(async move {
            rebuilt.run(stop).await.unwrap();
            rebuilt
        })
    };
    let start = Instant::now();
    while watch.load(std::sync::atomic::Ordering::SeqCst) < size {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the rebuild reached {} of {size}",
            watch.load(std::sync::atomic::Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    let rebuilt = task.await.unwrap();
    assert_eq!(rebuilt.log().root(size).unwrap(), log.root(size).unwrap(), "the crashed log's root is the rebuilt one's");
}
