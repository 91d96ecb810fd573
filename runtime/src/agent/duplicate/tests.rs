use super::*;
use atoll_sdk::cluster::Capacity;
use atoll_sdk::nats::testing::TestNats;
use atoll_sdk::protocol::Heartbeat;

#[test]
fn a_joining_host_gives_way_to_anyone_else_under_its_name() {
    assert!(must_yield(Phase::Joining, 5, Some(9)));
    assert!(must_yield(Phase::Joining, 9, Some(5)));
    assert!(must_yield(Phase::Joining, 5, None));
    assert!(!must_yield(Phase::Joining, 5, Some(5)), "its own");
}

#[test]
fn of_two_running_hosts_the_lower_run_gives_way() {
    assert!(must_yield(Phase::Running, 5, Some(9)));
    assert!(!must_yield(Phase::Running, 9, Some(5)));
    assert!(!must_yield(Phase::Running, 7, Some(7)), "its own");
    assert!(
        must_yield(Phase::Running, u64::MAX, None),
        "one that does not say never gives way"
    );
}

fn heartbeat(name: &str) -> Vec<u8> {
    let info = crate::host_info::build(
        name,
        "127.0.0.1",
        &Default::default(),
        Capacity::default(),
        1,
    );
    let hb = Heartbeat {
        v: atoll_sdk::protocol::VERSION,
        host: info,
        seq: 1,
        run: 0,
        instances: Vec::new(),
    };
    serde_json::to_vec(&hb).expect("json")
}

fn run_header(run: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(RUN_HEADER, run.to_string().as_str());
    h
}

#[test]
fn the_run_is_read_from_the_header_of_a_heartbeat_of_this_host() {
    let hb = heartbeat("h1");
    assert_eq!(heard(&hb, Some(&run_header(42)), "h1"), Some(Some(42)));
    assert_eq!(heard(&hb, None, "h1"), Some(None));
    assert_eq!(
        heard(&hb, Some(&run_header(42)), "h2"),
        None,
        "another host"
    );
    assert_eq!(heard(b"{junk", None, "h1"), None, "not a heartbeat");
    let pulse = br#"{"v":1,"s":9,"f":3,"r":42}"#;
    assert_eq!(heard(pulse, None, "h1"), Some(Some(42)), "a pulse says it");
}

#[tokio::test]
async fn a_joining_host_hears_another_run_and_not_its_own() {
    let nats = TestNats::start();
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let subject = "atoll.default.hb.h1".to_string();
    let mut sub = client.subscribe(subject.clone()).await.expect("subscribe");
    let send = |run: u64| {
        let (client, subject) = (client.clone(), subject.clone());
        async move {
            let bytes = heartbeat("h1").into();
            (client
                .publish_with_headers(subject, run_header(run), bytes)
                .await)
                .expect("publish");
            client.flush().await.expect("flush");
        }
    };
    send(7).await;
    let until = Instant::now() + Duration::from_millis(300);
    assert_eq!(
        listen(&mut sub, &subject, "h1", 7, until).await,
        None,
        "its own run"
    );
    // One heartbeat of another run, and no more: a predecessor killed a
    // moment ago, whose last beat was still in flight. Not a live host.
    send(8).await;
    let until = Instant::now() + Duration::from_millis(300);
    let started = Instant::now();
    assert_eq!(
        listen(&mut sub, &subject, "h1", 7, until).await,
        None,
        "heard once only"
    );
    assert!(
        started.elapsed() >= SECOND_BEAT,
        "it waited for a second beat"
    );
    // A live one beats again.
    send(8).await;
    send(8).await;
    let until = Instant::now() + Duration::from_secs(5);
    assert_eq!(
        listen(&mut sub, &subject, "h1", 7, until).await,
        Some(Some(8))
    );

    // Running: the higher run stays, the lower one gives way.
    send(3).await;
    send(9).await;
    let watching = tokio::time::timeout(Duration::from_secs(5), watch(sub, &subject, "h1", 7));
    assert_eq!(watching.await.ok().flatten(), Some(Some(9)));
}

#[tokio::test]
async fn heartbeats_a_stream_delivers_to_the_subject_are_not_heard() {
    use async_nats::jetstream::{consumer::push, stream};
    let nats = TestNats::start();
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let subject = "atoll.default.hb.h1".to_string();
    let mut sub = client.subscribe(subject.clone()).await.expect("subscribe");
    client.flush().await.expect("flush");
    // Another run's heartbeats, kept in a stream whose consumer delivers
    // them to this host's exact subscription.
    let js = async_nats::jetstream::new(client.clone());
    let kept = (js.create_stream(stream::Config {
        name: "KEPT".into(),
        subjects: vec!["kept.>".into()],
        ..Default::default()
    }))
    .await
    .expect("stream");
    for _ in 0..3 {
        let bytes = heartbeat("h1").into();
        (js.publish_with_headers("kept.x", run_header(8), bytes)
            .await)
            .expect("publish")
            .await
            .expect("stored");
    }
    let _consumer = (kept.create_consumer(push::Config {
        deliver_subject: subject.clone(),
        ..Default::default()
    }))
    .await
    .expect("consumer");
    let until = Instant::now() + Duration::from_secs(2);
    assert_eq!(listen(&mut sub, &subject, "h1", 7, until).await, None);
}
