use super::*;
use atoll_sdk::cluster::{Capacity, InstanceState};
use atoll_sdk::nats::testing::TestNats;
use atoll_sdk::protocol::{Beat, Held, Verdict, judge};
use std::sync::Mutex;
use tokio::sync::Notify;

#[derive(Default)]
struct Fake {
    statuses: Mutex<Vec<InstanceStatus>>,
    changed: Notify,
}

impl Fake {
    fn set(&self, state: InstanceState) {
        *self.statuses.lock().expect("lock") = vec![status("i1", state)];
        self.changed.notify_one();
    }
}

impl Instances for Fake {
    fn statuses(&self) -> Vec<InstanceStatus> {
        self.statuses.lock().expect("lock").clone()
    }
    async fn changed(&self) {
        self.changed.notified().await
    }
}

fn status(id: &str, state: InstanceState) -> InstanceStatus {
    InstanceStatus::new(id, "a", "s", 1, state)
}

#[test]
fn the_whole_state_goes_out_first_on_change_when_asked_and_rarely_otherwise() {
    let t0 = Instant::now();
    let running = vec![status("i1", InstanceState::Running)];
    assert!(full_due(None, &running, false, t0), "the first beat");
    let sent = Sent {
        instances: running.clone(),
        at: t0,
    };
    let later = t0 + Duration::from_secs(5);
    assert!(!full_due(Some(&sent), &running, false, later), "a pulse");
    assert!(full_due(Some(&sent), &running, true, later), "asked");
    let failed = vec![status("i1", InstanceState::Failed)];
    assert!(full_due(Some(&sent), &failed, false, later), "changed");
    assert!(full_due(Some(&sent), &[], false, later), "one gone");
    assert!(full_due(Some(&sent), &running, false, t0 + FULL_EVERY));
}

async fn next_beat(sub: &mut async_nats::Subscriber) -> (Beat, Option<async_nats::Subject>) {
    let msg = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("a beat within 5 s")
        .expect("subscription open");
    let beat = Beat::decode(&msg.payload).expect("a heartbeat");
    (beat, msg.reply)
}

/// The host's side of a lost full heartbeat, against a real NATS: the
/// test plays a server that drops the full heartbeat carrying a change,
/// judges the next pulse as servers do, asks on its reply subject, and
/// gets the whole state (with the change) at once.
#[tokio::test]
async fn a_lost_full_heartbeat_is_seen_at_the_next_pulse_and_sent_again_when_asked() {
    let nats = TestNats::start();
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let mut sub = client.subscribe("hb.h1").await.expect("subscribe");
    let fake = Arc::new(Fake::default());
    fake.set(InstanceState::Running);
    let info = crate::host_info::build(
        "h1",
        "127.0.0.1",
        &Default::default(),
        Capacity::default(),
        1,
    );
    let task = tokio::spawn(send(client.clone(), "hb.h1".into(), info, fake.clone(), 77));

    let (beat, _) = next_beat(&mut sub).await;
    let Beat::Full(first) = beat else {
        panic!("the first beat is the whole state: {beat:?}")
    };
    let mut held = Held {
        run: first.run,
        full: first.seq,
    };
    assert_eq!((first.run, first.instances.len()), (77, 1));
    let (beat, reply) = next_beat(&mut sub).await;
    let Beat::Pulse(p) = beat else {
        panic!("nothing changed: a pulse: {beat:?}")
    };
    assert_eq!(judge(Some(held), &p), Verdict::Current);
    assert!(reply.is_some(), "a pulse says where to ask");

    fake.set(InstanceState::Failed);
    let (beat, _) = next_beat(&mut sub).await;
    let Beat::Full(lost) = beat else {
        panic!("a change goes out whole at once: {beat:?}")
    };
    assert_eq!(lost.instances[0].state, InstanceState::Failed);
    // ...and is lost: `held` stays the first.
    let (beat, reply) = next_beat(&mut sub).await;
    let Beat::Pulse(p) = beat else {
        panic!("then pulses: {beat:?}")
    };
    assert_eq!(
        p.full, lost.seq,
        "the pulse names the full heartbeat it follows"
    );
    assert_eq!(judge(Some(held), &p), Verdict::Resync, "the gap is seen");
    let reply = reply.expect("a reply subject");
    client
        .publish(reply, Default::default())
        .await
        .expect("ask");
    let asked_at = Instant::now();
    let (beat, _) = next_beat(&mut sub).await;
    let Beat::Full(again) = beat else {
        panic!("asked: the whole state: {beat:?}")
    };
    assert!(
        asked_at.elapsed() < Duration::from_millis(900),
        "answered at once, not at the next interval: {:?}",
        asked_at.elapsed()
    );
    assert_eq!(again.instances[0].state, InstanceState::Failed);
    held = Held {
        run: again.run,
        full: again.seq,
    };
    let (beat, _) = next_beat(&mut sub).await;
    let Beat::Pulse(p) = beat else {
        panic!("then pulses again: {beat:?}")
    };
    assert_eq!(judge(Some(held), &p), Verdict::Current);
    task.abort();
}
