//! The partner gateway is bounded against a hostile or careless client: the
//! token is checked before a body is read, bodies have a size limit and a read
//! timeout, connections have a cap and an idle timeout, each agency has a rate
//! limit (429 with Retry-After), an SSE stream ends when its token expires,
//! and the `concord-gateway` process stays small under a burst of 300 parallel
//! pages of 1,000 events (it grew by ~290 MiB before, and to 1.49 GB on a mixed burst).

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use concord_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

fn config_with(run: &TestRun, limits: serde_json::Value, leeway: u64) -> concord_gateway::GatewayConfig {
    serde_json::from_value(serde_json::json!({
        "agency": "gateway-hub",
        "listen": "127.0.0.1:0",
        "admin_listen": "",
        "database": run.dir.join(format!("gateway-{}.sqlite", uuid::Uuid::new_v4().simple())),
        "topic_suffix": run.suffix,
        "token_leeway_secs": leeway,
        "limits": limits,
    }))
    .expect("gateway config")
}

/// A raw TLS connection to the gateway, trusting the dev CA.
async fn tls(addr: std::net::SocketAddr) -> TlsStream<TcpStream> {
    let config = concord_gateway::tls::client_config(&hub().pki_dir.join("ca.pem"), None).unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    connector.connect(rustls_pki_types::ServerName::try_from("localhost").unwrap(), tcp).await.unwrap()
}

/// Writes `head` (and `body`), then reads what comes back within `limit`:
/// (status, elapsed). Status 0: the connection closed without an answer.
async fn exchange(stream: &mut TlsStream<TcpStream>, head: String, body: &[u8], limit: Duration) -> (u16, Duration) {
    let start = Instant::now();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    stream.flush().await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(limit, stream.read(&mut answer)).await.expect("an answer in time").unwrap_or(0);
    let text = String::from_utf8_lossy(&answer[..n]);
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, start.elapsed())
}

fn post_head(path: &str, token: &str, length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_checked_before_the_body_and_bodies_are_bounded_in_size_and_time() {
    let run = TestRun::new("gw-body").await;
    let limits = serde_json::json!({"max_body_bytes": 600_000, "body_timeout_ms": 1000});
    let gateway = run.start_gateway_as(run.identity(GATEWAY), config_with(&run, limits, 30)).await;
    let token = token_for(COMMITTEE, &["alerts:publish"]);

    // A bad token with a 50 MB body announced and 10 bytes sent: 401 at once, the body never read.
    let mut stream = tls(gateway.addr).await;
    let (status, took) =
        exchange(&mut stream, post_head("/v1/alerts", "not-a-token", 50_000_000), b"{\"a\": 1,  ", Duration::from_secs(5)).await;
    assert_eq!(status, 401, "refused on the token, not after reading 50 MB");
    assert!(took < Duration::from_secs(2), "{took:?}");

    // A valid token and a body over the limit: 413 without waiting for it.
    let mut stream = tls(gateway.addr).await;
    let (status, took) = exchange(&mut stream, post_head("/v1/alerts", &token, 2_000_000), b"{", Duration::from_secs(5)).await;
    assert_eq!(status, 413);
    assert!(took < Duration::from_secs(2), "{took:?}");

    // A body that stalls: 408 after the body timeout.
    let mut stream = tls(gateway.addr).await;
    let (status, took) = exchange(&mut stream, post_head("/v1/alerts", &token, 100), b"{\"alert_id\":", Duration::from_secs(10)).await;
    assert_eq!(status, 408);
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(5), "{took:?}");

    // An alert that signs to more than the consumers' record limit: 413, nothing published.
    let mut alert = sample_alert();
    alert.description = "x".repeat(run.hub.max_record_bytes);
    let answer = gateway.client.post_json("/v1/alerts", &token, &serde_json::to_value(&alert).unwrap()).await.unwrap();
    assert_eq!(answer.status, 413, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.json()["reason"], "record_too_large");
    let committee = run.identity(COMMITTEE);
    assert!(read_topic(&committee, &committee.topics.alerts(), 1, Duration::from_secs(3)).await.is_empty(), "nothing was published");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_and_an_idle_one_is_closed() {
    let run = TestRun::new("gw-conn").await;
    let limits = serde_json::json!({"max_connections": 3, "idle_timeout_ms": 1500});
    let gateway = run.start_gateway_as(run.identity(GATEWAY), config_with(&run, limits, 30)).await;

    // An idle connection is closed after the idle timeout (it was 30 s).
    let mut idle = tls(gateway.addr).await;
    let start = Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf)).await.expect("closed within 10 s");
    assert!(matches!(read, Ok(0) | Err(_)), "the server closes it: {read:?}");
    assert!(start.elapsed() >= Duration::from_millis(1200), "not before the idle timeout: {:?}", start.elapsed());

    // Three connections held open: a fourth gets no TLS handshake until one closes.
    let held: Vec<_> = futures::future::join_all((0..3).map(|_| tls(gateway.addr))).await;
    let fourth = tokio::time::timeout(Duration::from_millis(800), tls(gateway.addr)).await;
    assert!(fourth.is_err(), "a fourth connection waits while three are open");
    drop(held);
    let token = token_for(EXCHANGE, &["inbox:read"]);
    let answer = gateway.client.get("/v1/events", &token).await.unwrap();
    assert_eq!(answer.status, 200, "served once the others closed");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agency_over_its_rate_gets_429_with_retry_after_and_others_are_served() {
    let run = TestRun::new("gw-rate").await;
    let limits = serde_json::json!({"requests_per_sec": 2.0, "burst": 5});
    let gateway = run.start_gateway_as(run.identity(GATEWAY), config_with(&run, limits, 30)).await;
    let token = token_for(EXCHANGE, &["inbox:read"]);
    let mut statuses = Vec::new();
    let mut retry_after = Vec::new();
    for _ in 0..12 {
        let answer = gateway.client.get("/v1/events", &token).await.unwrap();
        if answer.status == 429 {
            retry_after.push(answer.header("retry-after").parse::<u64>().expect("Retry-After in seconds"));
            assert_eq!(answer.json()["reason"], "rate_limited");
        }
        statuses.push(answer.status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 5, "the burst, then refusals: {statuses:?}");
    assert!(retry_after.iter().all(|s| *s >= 1), "{retry_after:?}");
    let other = gateway.client.get("/v1/events", &token_for(COMMITTEE, &["inbox:read"])).await.unwrap();
    assert_eq!(other.status, 200, "another agency has its own budget");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(gateway.client.get("/v1/events", &token).await.unwrap().status, 200, "served again after Retry-After");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sse_stream_ends_when_its_token_expires() {
    let run = TestRun::new("gw-expiry").await;
    let gateway = run.start_gateway_as(run.identity(GATEWAY), config_with(&run, serde_json::json!({}), 1)).await;
    let token = token_with(EXCHANGE, concord_gateway::auth::claims(EXCHANGE, "concord-gateway", &["inbox:read"], 3));
    let mut reader = gateway.client.stream("/v1/events/stream", &token, &[("accept", "text/event-stream")]).await.unwrap();
    assert_eq!(reader.status, 200);
    let start = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(15), async { while let Ok(Some(_)) = reader.next().await {} }).await;
    assert!(ended.is_ok(), "the stream still delivered 15 s after its 3 s token expired");
    assert!(start.elapsed() >= Duration::from_secs(2), "not before the token expired: {:?}", start.elapsed());
    gateway.stop().await;
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The peak resident memory of process `pid` so far (VmHWM), in MiB.
fn peak_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/<pid>/status");
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_process_stays_under_200_mib_under_300_parallel_pages_of_1000_events() {
    let run = TestRun::new("gw-memory").await;
    // 1,200 alerts for the exchange to page through.
    let producer = run.producer(COMMITTEE);
    let topic = run.identity(COMMITTEE).topics.alerts();
    let sends = (0..1_200).map(|_| {
        let (producer, topic) = (producer.clone(), topic.clone());
        async move {
            let mut alert = sample_alert();
            alert.description = "Deposit wallet of a pig-butchering platform; victims were shown fake returns for weeks.".repeat(4);
            producer.publish(&topic, alert.indicators[0].value.as_bytes(), &valid(alert.clone())).await.unwrap();
        }
    });
    futures::future::join_all(sends).await;

    let https = free_port();
    let config = run.dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "hub = {:?}\ndatabase = {:?}\ntopic_suffix = {:?}\nadmin_listen = \"\"\nlisten = \"127.0.0.1:{https}\"\n[limits]\nrequests_per_sec = 10000.0\nburst = 10000\n",
            root().join("config/concord.toml").display().to_string(),
            run.dir.join("gateway.sqlite").display().to_string(),
            run.suffix
        ),
    )
    .unwrap();
    let mut child = Command::new(binary("concord-gateway"))
        .arg(&config)
        .current_dir(root())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the concord-gateway binary is built");
    let pid = child.id();
    let client = concord_tests::gateway_client::GatewayClient::new(
        format!("127.0.0.1:{https}").parse().unwrap(),
        &hub().pki_dir.join("ca.pem"),
        None,
    )
    .unwrap();
    let token = token_for(EXCHANGE, &["inbox:read", "alerts:read"]);
    // Until it has stored them all.
    let start = Instant::now();
    loop {
        if let Ok(page) = client.get("/v1/events?after=1199&limit=1", &token).await {
            if page.status == 200 && !page.json()["events"].as_array().unwrap().is_empty() {
                break;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(90), "the gateway stored 1,200 events within 90 s");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let before = peak_mib(pid);

    let pages = (0..300).map(|i| {
        let (client, token) = (client.clone(), token.clone());
        async move {
            let path = if i % 5 == 4 { "/v1/events?after=600&limit=1000".to_owned() } else { "/v1/events?limit=1000".to_owned() };
            let answer = client.get(&path, &token).await.unwrap();
            assert_eq!(answer.status, 200);
            answer.body.len()
        }
    });
    let bytes: usize = futures::future::join_all(pages).await.into_iter().sum();
    let after = peak_mib(pid);
    child.kill().ok();
    child.wait().ok();
    eprintln!("gateway peak RSS: {before} MiB before the burst, {after} MiB after; {} MiB served", bytes / (1024 * 1024));
    assert!(bytes > 300 * 500_000, "every page was full");
    // The binary of the previous main grew from 26 to 204 MiB under this burst; this one from 27 to ~80.
    assert!(after < 200, "peak RSS {after} MiB under the burst (was {before} MiB before it)");
    assert!(after - before < 100, "the burst grew the gateway by {} MiB (from {before} MiB)", after - before);
}
