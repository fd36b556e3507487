//! `concord consume`: the real verifying consumer as one agency, printing each
//! verified event and each rejection (which goes to the dead-letter topic).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use concord_kafka::{Handler, HandlerError, Intake, SignedProducer, VerifiedConsumer};
use concord_protocol::VerifiedEvent;

#[derive(Args)]
pub(crate) struct ConsumeArgs {
    /// The agency that consumes.
    #[arg(long = "as")]
    agency: String,
    /// alerts, inbox (the agency's own) or a full topic name.
    #[arg(long, default_value = "alerts")]
    topic: String,
    /// Consumer group purpose; the group is `concord.<agency>.<purpose>`.
    #[arg(long, default_value = "cli")]
    group: String,
    /// Stop once this many records were handled or rejected.
    #[arg(long)]
    expect: Option<u64>,
    /// Stop once no record has arrived for this many seconds (after the first one).
    #[arg(long)]
    idle_secs: Option<u64>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

struct Printer;

impl Handler for Printer {
    async fn handle(&self, event: VerifiedEvent, redelivery: bool) -> Result<(), HandlerError> {
        println!(
            "✔ verified {}@{}  from {}  {}  id={}{}",
            event.partition,
            event.offset,
            event.sender,
            event.message_type().short_name(),
            event.id,
            if redelivery { "  (redelivery)" } else { "" }
        );
        Ok(())
    }
}

pub(crate) async fn run(hub: &crate::Hub, args: ConsumeArgs) -> anyhow::Result<()> {
    let shutdown = concord_runtime::shutdown::on_signal();
    let identity = hub.following(&args.agency, &shutdown).await?;
    let state_dir = &identity.hub.state_dir;
    let topic = match args.topic.as_str() {
        "alerts" => identity.topics.alerts(),
        "inbox" => identity.topics.inbox(&identity.agency.id),
        other => other.to_owned(),
    };
    std::fs::create_dir_all(state_dir)?;
    let dlq = SignedProducer::new(&identity.kafka, identity.signer.clone(), identity.codec.clone())?;
    let consumer = VerifiedConsumer::new(
        Intake {
            settings: &identity.kafka,
            signer: identity.signer.clone(),
            group: &identity.group(&args.group),
            topics: std::slice::from_ref(&topic),
            verifier: identity.verifier(),
            dead_letter_topic: identity.topics.dead_letter(),
            seen_path: &state_dir.join(format!("{}-{}-seen.sqlite", identity.agency.id, identity.group(&args.group))),
        },
        dlq.raw(),
    )?;
    let stats = consumer.stats();
    let task = tokio::spawn(consumer.run(Printer, shutdown.clone()));
    println!("consume {topic} as {} (rejections go to {})", identity.agency.id, identity.topics.dead_letter());
    let start = Instant::now();
    let mut reported = 0;
    let (mut last_count, mut last_change) = (0, Instant::now());
    while !shutdown.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let consumed = stats.consumed.load(Ordering::Relaxed);
        if consumed != last_count {
            (last_count, last_change) = (consumed, Instant::now());
        }
        let idle =
            args.idle_secs.is_some_and(|s| consumed > 0 && stats.settled() == consumed && last_change.elapsed() > Duration::from_secs(s));
        let rejected = stats.rejected.lock().expect("stats lock").clone();
        let total: u64 = rejected.values().sum();
        if total > reported {
            reported = total;
            println!("✘ rejected so far: {rejected:?} (see `concord tail --as audit-hub --topic dlq`)");
        }
        if idle || args.expect.is_some_and(|n| stats.settled() >= n) {
            break;
        }
        if start.elapsed() > Duration::from_secs(args.timeout_secs) {
            shutdown.cancel();
            task.await??;
            bail!("only {} records settled in {} s", stats.settled(), args.timeout_secs);
        }
    }
    shutdown.cancel();
    task.await??;
    let rejected = stats.rejected.lock().expect("stats lock").clone();
    println!("consume: {} verified, {} rejected {rejected:?}", stats.handled.load(Ordering::Relaxed), rejected.values().sum::<u64>());
    Ok(())
}
