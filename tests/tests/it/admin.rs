//! The admin port of a service binary (`concord-issuer`, the others share the
//! code): `/healthz` answers, `/readyz` turns ready once the broker and the
//! registry answer and says what fails when the registry does not, `/metrics`
//! counts what the service did, and SIGTERM stops it cleanly — the gateway
//! binary too, with an SSE stream open.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use concord_tests::*;
use tokio_util::sync::CancellationToken;

/// The service process, killed if the test ends early (a failed assertion).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn get(url: &str) -> Option<(u16, String)> {
    let response = reqwest::get(url).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

/// Polls `url` until it answers `status`; returns the body.
async fn until(url: &str, status: u16, limit: Duration) -> String {
    let start = std::time::Instant::now();
    loop {
        let answer = get(url).await;
        if let Some((s, body)) = &answer {
            if *s == status {
                return body.clone();
            }
        }
        assert!(start.elapsed() < limit, "{url} did not answer {status} within {limit:?}: {answer:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_binary_serves_health_readiness_and_metrics_and_stops_on_sigterm() {
    let run = TestRun::new("admin").await;
    let port = free_port();
    let database = run.dir.join("ledger.sqlite");
    let holdings = concord_issuer::config::Holdings { chains: vec!["TRON".into()], assets: vec!["USDT".into()] };
    let wallet = sample_alert().indicators[0].value.clone();
    concord_issuer::store::put_wallet(&concord_issuer::store::open(&database, &holdings).unwrap(), "TRON", &wallet, "USDT", "5000.00")
        .unwrap();
    let config = run.dir.join("issuer.toml");
    std::fs::write(
        &config,
        format!(
            "hub = {:?}\nagency = {ISSUER:?}\ndatabase = {:?}\ntopic_suffix = {:?}\nadmin_listen = \"127.0.0.1:{port}\"\n\
             [policy]\nrequesters = [{ENFORCEMENT:?}]\nlegal_bases = [\"COURT_ORDER\"]\n[holdings]\nchains = [\"TRON\"]\nassets = [\"USDT\"]\n",
            root().join("config/concord.toml").display().to_string(),
            database.display().to_string(),
            run.suffix
        ),
    )
    .unwrap();
    let mut child = KillOnDrop(
        Command::new(binary("concord-issuer"))
            .arg(&config)
            .current_dir(root())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(run.dir.join("issuer.log")).unwrap())
            .spawn()
            .expect("the concord-issuer binary is built (make build)"),
    );
    let base = format!("http://127.0.0.1:{port}");

    assert_eq!(until(&format!("{base}/healthz"), 200, Duration::from_secs(30)).await, "ok\n");
    let ready = until(&format!("{base}/readyz"), 200, Duration::from_secs(30)).await;
    assert_eq!(ready, "ready\ndirectory: version 0, the topic read to its end\n");

    let issuer = run.identity(ISSUER);
    let request = sample_freeze_request("US-2026-0419");
    run.producer(ENFORCEMENT)
        .publish(&issuer.topics.inbox(&issuer.agency.id), request.request_id.as_bytes(), &valid(request.clone()))
        .await
        .unwrap();
    let mut text = String::new();
    wait_for("the request counted in /metrics", Duration::from_secs(60), || {
        text = std::thread::scope(|s| s.spawn(|| fetch_blocking(&format!("{base}/metrics"))).join().unwrap());
        // The execution is counted when done, the verified record once its transaction commits.
        text.lines().any(|l| l.starts_with("concord_targets_executed_total") && l.contains("status=\"FROZEN\"") && l.ends_with(" 1"))
            && text.contains("concord_records_verified_total{consumer=\"freeze\"} 1")
    })
    .await;
    assert!(text.contains("concord_records_verified_total{consumer=\"freeze\"} 1"), "{text}");
    assert!(text.contains("concord_records_consumed_total{consumer=\"freeze\"} 1"), "{text}");
    assert!(text.contains("# TYPE concord_records_rejected counter"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "OpenMetrics text ends with # EOF");

    // SIGTERM: the service stops its consumer, commits, and exits 0.
    stops_cleanly_on_sigterm(&mut child, &run.dir.join("issuer.log")).await;
}

/// Sends SIGTERM and asserts the process exits 0 within 20 s (its log in the message if not).
async fn stops_cleanly_on_sigterm(child: &mut KillOnDrop, log: &std::path::Path) {
    let status = Command::new("kill").arg("-TERM").arg(child.0.id().to_string()).status().unwrap();
    assert!(status.success());
    let start = std::time::Instant::now();
    let exit = loop {
        if let Some(exit) = child.0.try_wait().unwrap() {
            break exit;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no exit within 20 s of SIGTERM; log: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "exit after SIGTERM: {exit:?}; log: {}", std::fs::read_to_string(log).unwrap_or_default());
}

/// A blocking GET for use inside `wait_for`'s synchronous closure.
fn fetch_blocking(url: &str) -> String {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { get(url).await.map(|(_, body)| body).unwrap_or_default() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_says_the_registry_is_down_while_health_stays_up() {
    let dead = free_port(); // nothing listens here
    let mut hub = hub();
    hub.registry_url = format!("http://127.0.0.1:{dead}/apis/ccompat/v7");
    let identity = concord_runtime::identity::Identity::load(&hub, ISSUER).unwrap();
    let port = free_port();
    let shutdown = CancellationToken::new();
    let metrics = concord_runtime::metrics::Metrics::new();
    let server = concord_runtime::admin::start(&format!("127.0.0.1:{port}"), &identity, metrics, shutdown.clone(), Default::default())
        .await
        .unwrap()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(until(&format!("{base}/healthz"), 200, Duration::from_secs(10)).await, "ok\n");
    // The first probe runs at once; wait until it has answered.
    let body = until(&format!("{base}/readyz"), 503, Duration::from_secs(10)).await;
    let start = std::time::Instant::now();
    let mut body = body;
    while body.contains("not probed yet") && start.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        body = get(&format!("{base}/readyz")).await.unwrap().1;
    }
    assert!(body.starts_with("not ready: registry: "), "{body}");
    assert!(body.contains(&format!("127.0.0.1:{dead}")), "{body}");
    assert!(!body.contains("broker:"), "the broker answers: {body}");

    // A port already taken gives a clear error.
    let taken = concord_runtime::admin::start(
        &format!("127.0.0.1:{port}"),
        &identity,
        concord_runtime::metrics::Metrics::new(),
        shutdown.clone(),
        Default::default(),
    )
    .await;
    let message = taken.expect_err("the port is taken").to_string();
    assert!(message.starts_with(&format!("admin port 127.0.0.1:{port}:")) && message.contains("admin_listen"), "{message}");
    shutdown.cancel();
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_binary_counts_what_it_published_and_refused_and_stops_on_sigterm_with_a_stream_open() {
    let run = TestRun::new("admin-gw").await;
    let (port, https) = (free_port(), free_port());
    let config = run.dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "hub = {:?}\ndatabase = {:?}\ntopic_suffix = {:?}\nadmin_listen = \"127.0.0.1:{port}\"\nlisten = \"127.0.0.1:{https}\"\n",
            root().join("config/concord.toml").display().to_string(),
            run.dir.join("gateway.sqlite").display().to_string(),
            run.suffix
        ),
    )
    .unwrap();
    let mut child = KillOnDrop(
        Command::new(binary("concord-gateway"))
            .arg(&config)
            .current_dir(root())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(run.dir.join("gateway.log")).unwrap())
            .spawn()
            .expect("the concord-gateway binary is built (make build)"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let ready = until(&format!("{base}/readyz"), 200, Duration::from_secs(30)).await;
    assert_eq!(ready, "ready\ndirectory: version 0, the topic read to its end\n");

    let client = concord_tests::gateway_client::GatewayClient::new(
        format!("127.0.0.1:{https}").parse().unwrap(),
        &run.hub.pki_dir.join("ca.pem"),
        None,
    )
    .unwrap();
    let token = token_for(COMMITTEE, &["alerts:publish", "inbox:read"]);
    let posted = client.post_json("/v1/alerts", &token, &serde_json::to_value(sample_alert()).unwrap()).await.unwrap();
    assert_eq!(posted.status, 202, "{}", String::from_utf8_lossy(&posted.body));
    assert_eq!(client.send(reqwest::Method::GET, "/v1/events", Some("not.a.token"), &[], None).await.unwrap().status, 401);
    // A partner follows its stream while the gateway is told to stop.
    let mut stream = client.stream("/v1/events/stream", &token, &[]).await.unwrap();
    let first =
        tokio::time::timeout(Duration::from_secs(60), stream.next()).await.expect("the alert comes back over SSE").unwrap().unwrap();
    assert_eq!(first.event.as_deref(), Some("IndicatorAlert"));

    let text = get(&format!("{base}/metrics")).await.expect("metrics").1;
    assert!(text.contains("concord_gateway_published_total{type=\"IndicatorAlert\"} 1"), "{text}");
    assert!(text.contains("concord_gateway_refused_total{reason=\"token_malformed\"} 1"), "{text}");
    assert!(text.contains("concord_gateway_sse_streams_total 1"), "{text}");
    assert!(text.contains("concord_records_verified_total{consumer=\"events\"}"), "{text}");

    stops_cleanly_on_sigterm(&mut child, &run.dir.join("gateway.log")).await;
    assert!(
        tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("the stream ends").map_or(true, |e| e.is_none()),
        "the SSE stream ends with the gateway"
    );
}
