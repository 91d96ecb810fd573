use super::*;

#[test]
fn by_default_three_replicas_when_three_servers_can_hold_them() {
    assert_eq!(decide(3, None).unwrap(), 3);
    assert_eq!(decide(5, None).unwrap(), 3);
}

#[test]
fn by_default_one_replica_on_a_smaller_cluster() {
    assert_eq!(decide(1, None).unwrap(), 1);
    assert_eq!(decide(2, None).unwrap(), 1);
}

#[test]
fn a_count_the_cluster_holds_is_taken() {
    assert_eq!(decide(1, Some(1)).unwrap(), 1);
    assert_eq!(decide(3, Some(1)).unwrap(), 1);
    assert_eq!(decide(3, Some(3)).unwrap(), 3);
    assert_eq!(decide(5, Some(5)).unwrap(), 5);
}

#[test]
fn more_replicas_than_servers_are_refused_saying_what_to_do() {
    let err = decide(1, Some(3)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "JetStream has 1 server; --replicas 3 needs at least 3 (start a 3-node NATS cluster, or use --replicas 1)"
    );
    let err = decide(2, Some(3)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("JetStream has 2 servers online;"),
        "{err}"
    );
}

#[test]
fn counts_jetstream_cannot_keep_are_refused() {
    for n in [0, 6, 7] {
        assert!(
            matches!(decide(5, Some(n)), Err(ReplicasError::OutOfRange(m)) if m == n),
            "--replicas {n}"
        );
    }
}

#[test]
fn buckets_with_enough_replicas_need_no_probe() {
    assert!(settled(&[Some(3), Some(3)], None));
    assert!(settled(&[Some(3), Some(5)], Some(3)));
    assert!(settled(&[Some(3)], Some(1)), "never lowered: nothing to do");
    assert!(settled(&[], Some(3)));
}

#[test]
fn a_missing_or_smaller_bucket_needs_the_cluster_asked() {
    assert!(!settled(&[Some(3), None], None));
    assert!(!settled(&[Some(1), Some(3)], None));
    assert!(!settled(&[Some(1)], None), "a default may raise it");
    assert!(!settled(&[Some(3)], Some(5)));
}

#[test]
fn a_bucket_is_created_raised_or_kept_never_lowered() {
    assert_eq!(step(None, 3), Step::Create(3));
    assert_eq!(step(Some(1), 3), Step::Raise { from: 1, to: 3 });
    assert_eq!(step(Some(3), 3), Step::Keep);
    assert_eq!(step(Some(3), 1), Step::Keep);
}

mod against_nats {
    use super::super::*;
    use crate::nats::testing::{TestCluster, TestNats};
    use crate::nats::{Buckets, parse_urls};

    async fn js(urls: &str) -> jetstream::Context {
        let urls = parse_urls(urls).expect("urls");
        jetstream::new((crate::nats::connect(&urls, "replicas-test").await).expect("connect"))
    }

    async fn replicas_of(js: &jetstream::Context, stream: &str) -> Option<usize> {
        stream_replicas(js, stream).await.expect("stream info")
    }

    #[tokio::test]
    async fn a_single_server_refuses_three_and_gets_one_by_default() {
        let nats = TestNats::start();
        let js = js(&nats.url()).await;
        let names = Names::new("single");
        let err = ensure(&js, &names, Some(3)).await.unwrap_err();
        assert!(
            matches!(
                err,
                ReplicasError::TooFewPeers {
                    peers: 1,
                    requested: 3
                }
            ),
            "{err}"
        );
        assert_eq!(
            replicas_of(&js, &kv_stream(&names.apps_bucket())).await,
            None
        );
        assert_eq!(ensure(&js, &names, None).await.expect("ensure"), 1);
        assert_eq!(
            replicas_of(&js, &kv_stream(&names.apps_bucket())).await,
            Some(1)
        );
        let streams: Vec<String> = js.stream_names().try_collect().await.expect("list");
        assert!(
            !streams.iter().any(|s| s.starts_with("ATOLL_PEERS_")),
            "no probe left behind: {streams:?}"
        );
    }

    #[tokio::test]
    async fn a_cluster_of_three_gets_three_and_smaller_buckets_are_raised() {
        let cluster = TestCluster::start(3);
        cluster.wait_ready().await;
        let js = js(&cluster.urls()).await;
        let names = Names::new("ha");
        // A host came first: every bucket with one replica, and an app's
        // state bucket besides.
        let buckets = Buckets::open(js.client(), "ha").await.expect("open");
        buckets.apps.put("shop", "{}".into()).await.expect("put");
        let state = kv::Config {
            bucket: names.app_kv_bucket("shop"),
            ..Default::default()
        };
        open_kv(&js, state).await.expect("state bucket");
        let core = kv_stream(&names.apps_bucket());
        assert_eq!(replicas_of(&js, &core).await, Some(1));

        assert_eq!(ensure(&js, &names, None).await.expect("ensure"), 3);
        let mut streams: Vec<String> = (Layout::new(&names).kv().iter())
            .map(|c| kv_stream(&c.bucket))
            .collect();
        streams.push(objects_stream(&names.artifacts_bucket()));
        streams.push(kv_stream(&names.app_kv_bucket("shop")));
        for s in &streams {
            assert_eq!(replicas_of(&js, s).await, Some(3), "{s}");
        }
        assert_eq!(chosen(&js, &names).await, 3);
        let value = buckets.apps.get("shop").await.expect("get");
        assert_eq!(value.as_deref(), Some(&b"{}"[..]), "raising keeps the data");
        // Asking for 1 now lowers nothing.
        assert_eq!(ensure(&js, &names, Some(1)).await.expect("ensure"), 3);
        assert_eq!(replicas_of(&js, &core).await, Some(3));
    }
}
