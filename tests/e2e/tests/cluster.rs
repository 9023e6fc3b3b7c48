//! A cluster: real etcd, real `opendo` nodes sharing one data directory, real kill -9.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use opendo_e2e::{Client, Etcd, Server, WsClient, check_object_files};
use opendo_test_support::{EXAMPLE_CHAT_ROOM, EXAMPLE_COUNTER, FRONT, PROBE, WRITER};

const SHARDS: u64 = 64;

/// One cluster at a time: each test runs etcd and up to four nodes, and leases of 2 s must not
/// lapse because another test's cluster starved this one of CPU.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
/// The tests' lease TTL (the shortest `--lease-ttl` takes), so that failovers are quick.
const TTL: Duration = Duration::from_secs(2);

fn node_flags<'a>(etcd: &'a str, id: &'a str) -> Vec<&'a str> {
    vec!["--cluster", etcd, "--node-id", id, "--lease-ttl", "2s", "--admin-listen", "127.0.0.1:0"]
}

/// A node serving the counter example.
fn counter_node(data: &Path, etcd: &Etcd, id: &str) -> Server {
    Server::start(Path::new(EXAMPLE_COUNTER), data, &node_flags(&etcd.cluster_arg(), id))
}

/// A node serving the writer guest, whose objects see `NODE` = the node's id.
fn writer_node(dir: &Path, data: &Path, etcd: &Etcd, id: &str) -> Server {
    project_node(dir, data, etcd, id, "writer", WRITER)
}

/// A node serving `module` as `namespace`, whose objects see `NODE` = the node's id.
fn project_node(dir: &Path, data: &Path, etcd: &Etcd, id: &str, namespace: &str, module: &str) -> Server {
    project_node_with(dir, data, etcd, id, namespace, module, "")
}

/// [`project_node`], with `more` added to the project file.
fn project_node_with(
    dir: &Path,
    data: &Path,
    etcd: &Etcd,
    id: &str,
    namespace: &str,
    module: &str,
    more: &str,
) -> Server {
    let project = dir.join(id);
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("opendo.toml"),
        format!(
            "[[namespace]]\nname = \"{namespace}\"\nmodule = {module:?}\nenv = {{ NODE = \"{id}\" }}\n{more}"
        ),
    )
    .unwrap();
    Server::start_project_on(&project, data, &node_flags(&etcd.cluster_arg(), id))
}

fn shards_held(node: &Server) -> u64 {
    node.metric("opendo_cluster_shards_held")
}

/// Shards the nodes took or handed over so far: unchanged while no shard moved.
fn shard_moves(nodes: &[&Server]) -> u64 {
    let moves = |node: &Server| {
        node.metric("opendo_cluster_shards_taken_total") + node.metric("opendo_cluster_shards_given_total")
    };
    nodes.iter().map(|node| moves(node)).sum()
}

/// Waits until `check` holds, at most `limit`; returns how long it took.
fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

/// Waits until the live `nodes` hold every shard between them, each some.
fn settled(nodes: &[&Server]) -> Duration {
    wait_until(Duration::from_secs(20), "every shard owned by the live nodes", || {
        let held: Vec<u64> = nodes.iter().map(|node| shards_held(node)).collect();
        held.iter().sum::<u64>() == SHARDS && held.iter().all(|&h| h > 0)
    })
}

fn data_dir(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("data")
}

#[test]
fn three_nodes_serve_every_object_through_any_node_with_exact_totals() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(dir.path());
    let data = data_dir(&dir);
    let nodes: Vec<Server> = ["n1", "n2", "n3"].iter().map(|id| counter_node(&data, &etcd, id)).collect();
    settled(&nodes.iter().collect::<Vec<_>>());

    const THREADS: usize = 6;
    const EACH: usize = 40;
    const OBJECTS: usize = 8;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let client = nodes[t % nodes.len()].client();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    let answer = client.post(&format!("/counter/c{}/increment", (t + i) % OBJECTS));
                    assert_eq!(answer.status, 200, "{answer:?}");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    for object in 0..OBJECTS {
        for node in &nodes {
            let answer = node.get(&format!("/counter/c{object}"));
            assert_eq!(
                answer.body,
                (THREADS * EACH / OBJECTS).to_string(),
                "c{object} read through {}",
                node.addr
            );
        }
    }
    let forwards: u64 = nodes.iter().map(|node| node.metric("opendo_cluster_forwards_total")).sum();
    assert!(forwards > 0, "with three nodes most requests reach a node that does not own the object");
    // Each object has one file, written by whichever node owned it.
    assert_eq!(check_object_files(&data.join("counter")), OBJECTS);
}

#[test]
fn a_node_killed_under_write_load_loses_no_acknowledged_increment() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(dir.path());
    let data = data_dir(&dir);
    let mut nodes: Vec<Server> = ["n1", "n2", "n3"].iter().map(|id| counter_node(&data, &etcd, id)).collect();
    settled(&nodes.iter().collect::<Vec<_>>());

    const OBJECTS: usize = 20;
    let stop = Arc::new(AtomicBool::new(false));
    // Load through the two nodes that stay; about a third of the objects live on the one killed.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (client, stop) = (nodes[t % 2].client(), stop.clone());
            std::thread::spawn(move || {
                let (mut acked, mut sent) = (vec![0u64; OBJECTS], vec![0u64; OBJECTS]);
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let object = i % OBJECTS;
                    i += 1;
                    sent[object] += 1;
                    match client.try_send("POST", &format!("/counter/k{object}/increment"), b"") {
                        Some(answer) if answer.status == 200 => acked[object] += 1,
                        _ => {}
                    }
                }
                (acked, sent)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    nodes.pop().unwrap().kill();
    let failover = settled(&nodes.iter().collect::<Vec<_>>());
    // The lease expires within its TTL of the last renewal; the others notice within a poll.
    assert!(failover < TTL + Duration::from_secs(2), "the dead node's shards took {failover:?} to move");
    eprintln!("the dead node's shards moved {failover:?} after kill -9");
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let (mut acked, mut sent) = (vec![0u64; OBJECTS], vec![0u64; OBJECTS]);
    for thread in threads {
        let (a, s) = thread.join().unwrap();
        for object in 0..OBJECTS {
            acked[object] += a[object];
            sent[object] += s[object];
        }
    }
    for object in 0..OBJECTS {
        let value: u64 = nodes[0].get(&format!("/counter/k{object}")).body.trim().parse().unwrap();
        assert!(
            (acked[object]..=sent[object]).contains(&value),
            "k{object}: {value} stored, {} acknowledged, {} sent",
            acked[object],
            sent[object]
        );
    }
    assert!(acked.iter().sum::<u64>() > 100, "the load ran: {acked:?}");
    for node in nodes {
        node.terminate();
    }
    assert_eq!(check_object_files(&data.join("counter")), OBJECTS);
}

#[test]
fn no_two_nodes_write_one_object_across_kills_leaves_and_joins() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(dir.path());
    let data = data_dir(&dir);
    let first = writer_node(dir.path(), &data, &etcd, "n1");
    let mut others: BTreeMap<&str, Server> =
        ["n2", "n3"].into_iter().map(|id| (id, writer_node(dir.path(), &data, &etcd, id))).collect();
    settled(&[&first, &others["n2"], &others["n3"]]);

    const OBJECTS: usize = 6;
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (client, stop): (Client, _) = (first.client(), stop.clone());
            std::thread::spawn(move || {
                let mut acked: Vec<Vec<i64>> = vec![Vec::new(); OBJECTS];
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let object = i % OBJECTS;
                    i += 1;
                    if let Some(answer) = client.try_send("POST", &format!("/writer/w{object}/write"), b"")
                        && answer.status == 200
                    {
                        acked[object].push(answer.body.trim().parse().unwrap());
                    }
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    others.remove("n2").unwrap().kill();
    settled(&[&first, &others["n3"]]);
    std::thread::sleep(Duration::from_millis(500));
    // A graceful leave hands its shards over.
    assert!(others.remove("n3").unwrap().terminate().success());
    settled(&[&first]);
    let joined = writer_node(dir.path(), &data, &etcd, "n4");
    settled(&[&first, &joined]);
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, Ordering::Relaxed);
    let mut acked: Vec<Vec<i64>> = vec![Vec::new(); OBJECTS];
    for thread in threads {
        for (object, seqs) in thread.join().unwrap().into_iter().enumerate() {
            acked[object].extend(seqs);
        }
    }
    let mut writers = BTreeSet::new();
    for (object, acked) in acked.iter().enumerate() {
        let log: Vec<(i64, String)> =
            serde_json::from_str(&joined.get(&format!("/writer/w{object}/log")).body).unwrap();
        let seqs: Vec<i64> = log.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "w{object}: the log has gaps");
        // Two nodes writing one object at once would both hand out the same next number.
        let distinct: BTreeSet<i64> = acked.iter().copied().collect();
        assert_eq!(distinct.len(), acked.len(), "w{object}: a sequence number was acknowledged twice");
        assert!(acked.iter().all(|seq| seqs.contains(seq)), "w{object}: an acknowledged write is missing");
        writers.extend(log.into_iter().map(|(_, node)| node));
    }
    assert!(writers.len() >= 3, "the objects moved between nodes: written by {writers:?}");
    assert!(writers.iter().all(|node| ["n1", "n2", "n3", "n4"].contains(&node.as_str())), "{writers:?}");
    drop(joined);
    drop(first);
    assert_eq!(check_object_files(&data.join("writer")), OBJECTS);
}

#[test]
fn a_node_cut_off_from_etcd_stops_serving_before_its_lease_can_expire_and_the_cluster_converges_after() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let mut etcd = Etcd::start(dir.path());
    let data = data_dir(&dir);
    let nodes: Vec<Server> = ["n1", "n2"].iter().map(|id| counter_node(&data, &etcd, id)).collect();
    settled(&nodes.iter().collect::<Vec<_>>());
    assert_eq!(nodes[0].post("/counter/x/increment").body, "1");

    etcd.kill();
    let fenced = wait_until(Duration::from_secs(10), "both nodes let go of their shards", || {
        nodes.iter().all(|node| shards_held(node) == 0)
    });
    // A lease counts from the last renewal sent: the nodes let go before etcd could expire it.
    assert!(fenced < TTL, "the nodes held their shards {fenced:?} after losing etcd");
    eprintln!("both nodes let go of their shards {fenced:?} after etcd was killed");
    for node in &nodes {
        assert!(node.log().contains("letting go of every shard"), "{}", node.log());
    }

    etcd.restart();
    settled(&nodes.iter().collect::<Vec<_>>());
    assert_eq!(nodes[1].get("/counter/x").body, "1");
    assert_eq!(nodes[1].post("/counter/x/increment").body, "2");
}

#[test]
fn alarms_fire_on_the_node_that_owns_the_object_and_after_it_dies_on_the_next() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(dir.path());
    let data = data_dir(&dir);
    let n1 = writer_node(dir.path(), &data, &etcd, "n1");
    let n2 = writer_node(dir.path(), &data, &etcd, "n2");
    settled(&[&n1, &n2]);

    // Set through n1; the answer names the node that ran the event: the owner.
    let moves_before = shard_moves(&[&n1, &n2]);
    let owners: Vec<String> = (0..6).map(|i| n1.post(&format!("/writer/a{i}/alarm?in=500")).body).collect();
    assert!(owners.iter().any(|o| o == "n1") && owners.iter().any(|o| o == "n2"), "{owners:?}");
    let mut fired_on = Vec::new();
    for i in 0..owners.len() {
        wait_until(Duration::from_secs(10), "the alarm fired", || {
            n1.get(&format!("/writer/a{i}/fired")).body != "[]"
        });
        let fired: Vec<String> = serde_json::from_str(&n1.get(&format!("/writer/a{i}/fired")).body).unwrap();
        fired_on.push(fired);
    }
    // A node starved of CPU may miss its renewals and let its shards go (as it must): then an
    // alarm runs on the shard's new owner, and only that much can be checked.
    if shard_moves(&[&n1, &n2]) == moves_before {
        for (i, (fired, owner)) in fired_on.iter().zip(&owners).enumerate() {
            assert_eq!(fired, std::slice::from_ref(owner), "a{i}'s alarm ran where the object lives");
        }
    } else {
        eprintln!(
            "shards moved while the alarms were due (a lease lapsed): {owners:?} fired on {fired_on:?}"
        );
        assert!(fired_on.iter().flatten().all(|node| node == "n1" || node == "n2"), "{fired_on:?}");
    }

    // Alarms of objects on n2, which dies before they are due.
    let mut on_n2 = Vec::new();
    for i in 0.. {
        if on_n2.len() == 3 {
            break;
        }
        if n1.post(&format!("/writer/b{i}/alarm?in=1500")).body == "n2" {
            on_n2.push(i);
        }
    }
    n2.kill();
    for i in on_n2 {
        wait_until(Duration::from_secs(15), "the alarm fired after the failover", || {
            n1.get(&format!("/writer/b{i}/fired")).body != "[]"
        });
        let fired: Vec<String> = serde_json::from_str(&n1.get(&format!("/writer/b{i}/fired")).body).unwrap();
        assert!(!fired.is_empty() && fired.iter().all(|node| node == "n1"), "b{i}: {fired:?}");
    }
}

fn recv(client: &mut WsClient) -> serde_json::Value {
    let text = client.recv_text();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Joins the chat room `room` through `node` as `name`; returns the socket and the history.
fn join(node: &Server, room: &str, name: &str) -> (WsClient, Vec<serde_json::Value>) {
    let mut client = node.websocket(&format!("/chat-room/{room}/ws?name={name}"));
    let mut history = Vec::new();
    loop {
        let message = recv(&mut client);
        if message == serde_json::json!({ "joined": name }) {
            return (client, history);
        }
        history.push(message);
    }
}

#[test]
fn websockets_through_any_node_reach_the_one_room_and_close_with_1012_when_it_moves() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(dir.path());
    let data = data_dir(&dir);
    let room = Path::new(EXAMPLE_CHAT_ROOM);
    let cluster = etcd.cluster_arg();
    let mut nodes: Vec<Server> = ["n1", "n2", "n3"]
        .iter()
        .map(|id| {
            let mut flags = node_flags(&cluster, id);
            flags.extend(["--namespace", "chat-room"]);
            Server::start(room, &data, &flags)
        })
        .collect();
    settled(&nodes.iter().collect::<Vec<_>>());

    let (mut alice, _) = join(&nodes[0], "lobby", "alice");
    let (mut bob, _) = join(&nodes[1], "lobby", "bob");
    assert_eq!(recv(&mut alice), serde_json::json!({ "joined": "bob" }));
    let (mut carol, _) = join(&nodes[2], "lobby", "carol");
    assert_eq!(recv(&mut alice), serde_json::json!({ "joined": "carol" }));
    assert_eq!(recv(&mut bob), serde_json::json!({ "joined": "carol" }));
    alice.send_text("hello from n1");
    let said = serde_json::json!({ "from": "alice", "text": "hello from n1" });
    for client in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(recv(client), said);
    }
    // The room's sockets all live on its owner; the other nodes only relay bytes.
    let sockets: Vec<u64> = nodes.iter().map(|node| node.metric("opendo_websockets")).collect();
    assert_eq!(sockets.iter().filter(|&&n| n == 3).count(), 1, "{sockets:?}");
    assert_eq!(sockets.iter().sum::<u64>(), 3, "{sockets:?}");

    // The owner leaves: the room moves, and its sockets close with 1012 (service restart).
    let owner = sockets.iter().position(|&n| n == 3).unwrap();
    assert!(nodes.remove(owner).terminate().success());
    for client in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(client.expect_close().0, 1012);
    }
    settled(&nodes.iter().collect::<Vec<_>>());
    let (_alice, history) = join(&nodes[0], "lobby", "alice");
    assert!(history.contains(&said), "the room kept its history on the new owner: {history:?}");
}

#[test]
fn calls_between_objects_on_different_nodes_work_as_on_one_with_their_errors() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(dir.path());
    let data = data_dir(&dir);
    let nodes: Vec<Server> = ["n1", "n2", "n3"]
        .iter()
        .map(|id| project_node(dir.path(), &data, &etcd, id, "probe", PROBE))
        .collect();
    settled(&nodes.iter().collect::<Vec<_>>());
    let node_of = |object: &str| nodes[0].get(&format!("/probe/{object}/env?name=NODE")).body;

    // Pairs whose caller and callee live on different nodes.
    let pairs: Vec<(String, String)> = (0..40)
        .map(|i| (format!("a{i}"), format!("b{i}")))
        .filter(|(a, b)| node_of(a) != node_of(b))
        .take(4)
        .collect();
    assert_eq!(pairs.len(), 4, "most pairs of objects live apart on three nodes");
    for (i, (a, b)) in pairs.iter().enumerate() {
        let through = &nodes[i % nodes.len()];
        // The callee answers from its own node, by the name the call used.
        assert_eq!(through.get(&format!("/probe/{a}/to/probe/{b}/env?name=NODE")).body, node_of(b));
        let whoami: serde_json::Value =
            serde_json::from_str(&through.get(&format!("/probe/{a}/to/probe/{b}/whoami")).body).unwrap();
        assert_eq!(whoami["name"], b.as_str(), "a callee on another node learns its name");
        // Its writes are its own, and durable there.
        assert_eq!(through.send("PUT", &format!("/probe/{a}/to/probe/{b}/kv/k"), b"v").status, 204);
        assert_eq!(nodes[(i + 1) % nodes.len()].get(&format!("/probe/{b}/kv/k")).body, "v");
        // A callee that traps is an error the caller handles, as on one node.
        let failed = through.post(&format!("/probe/{a}/to/probe/{b}/write-then-panic/doomed"));
        assert_eq!(failed.status, 502, "{failed:?}");
        assert!(
            failed.body.contains("call error CalleeFailed") && failed.body.contains("panic"),
            "{failed:?}"
        );
        assert_eq!(
            through.get(&format!("/probe/{b}/kv/doomed")).status,
            404,
            "the callee's writes rolled back"
        );
        // The chain of waiting objects crosses nodes: a call back into it fails at once (it
        // would wait for the call timeout otherwise, and answer `Timeout`).
        let back = through.get(&format!("/probe/{a}/to/probe/{b}/to/probe/{a}/whoami"));
        assert!(back.body.contains("call error Cycle"), "{back:?}");
    }
}

#[test]
fn every_nodes_front_reaches_objects_on_every_node() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(dir.path());
    let data = data_dir(&dir);
    let front = format!("\n[front]\nmodule = {FRONT:?}\n");
    let nodes: Vec<Server> = ["n1", "n2"]
        .iter()
        .map(|id| project_node_with(dir.path(), &data, &etcd, id, "probe", PROBE, &front))
        .collect();
    settled(&nodes.iter().collect::<Vec<_>>());
    let authorized = |node: &Server, method: &str, path: &str, body: &[u8]| {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nAuthorization: Bearer let-me-in\r\nContent-Length: {}",
            body.len()
        );
        node.raw(&head, body).expect("an answer")
    };
    let mut homes = BTreeSet::new();
    for i in 0..8 {
        let name = format!("user{i}");
        assert_eq!(authorized(&nodes[0], "PUT", &format!("/notes/{name}"), name.as_bytes()).0, 204);
        assert_eq!(authorized(&nodes[1], "GET", &format!("/notes/{name}"), b""), (200, name.clone()));
        homes.insert(authorized(&nodes[0], "GET", &format!("/to/{name}/env?name=NODE"), b"").1);
    }
    assert_eq!(
        homes,
        BTreeSet::from(["n1".to_string(), "n2".to_string()]),
        "n1's front reached objects on both nodes"
    );
    // Only a node with the cluster's secret skips the front: a client claiming to be one does not.
    let forged = "GET /probe/user0/kv/note HTTP/1.1\r\nOpendo-Forwarded-By: n2\r\nOpendo-Cluster-Key: guess";
    assert_eq!(nodes[0].raw(forged, b"").map(|(status, _)| status), Some(401), "the front answered");
}

#[test]
fn any_nodes_admin_api_shows_the_cluster_and_reaches_objects_on_every_node() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(dir.path());
    let data = data_dir(&dir);
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "sesame").unwrap();
    let token = token_file.to_str().unwrap();
    let cluster = etcd.cluster_arg();
    let nodes: Vec<Server> = ["n1", "n2"]
        .iter()
        .map(|id| {
            let mut flags = node_flags(&cluster, id);
            flags.extend(["--admin-token-file", token]);
            Server::start(Path::new(EXAMPLE_COUNTER), &data, &flags)
        })
        .collect();
    settled(&nodes.iter().collect::<Vec<_>>());
    let admin = |node: &Server, path: &str| {
        let (status, body) = node.admin_request("GET", path, Some("sesame"), b"");
        (status, String::from_utf8(body).unwrap())
    };

    // The status is the node's view as of its last look at etcd (four times a second).
    let mut body = String::new();
    wait_until(Duration::from_secs(5), "n1 sees every shard owned", || {
        let (status, answer) = admin(&nodes[0], "/v1/cluster");
        assert_eq!(status, 200, "{answer}");
        body = answer;
        body.matches("\"owner\":\"n").count() as u64 == SHARDS && body.contains("\"owner\":\"n2\"")
    });
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> =
        status["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["n1", "n2"], "{body}");
    assert!(
        status["nodes"].as_array().unwrap().iter().all(|n| n["http"].is_string() && n["admin"].is_string())
    );
    let owners: Vec<&str> =
        status["shards"].as_array().unwrap().iter().filter_map(|s| s["owner"].as_str()).collect();
    assert_eq!(owners.len() as u64, SHARDS, "every shard has an owner");
    assert_eq!(status["held"].as_array().unwrap().len() as u64, shards_held(&nodes[0]));
    // The same from the command line.
    let admin_url = format!("http://{}", nodes[1].admin.unwrap());
    let mut shown = String::new();
    wait_until(Duration::from_secs(5), "n2 sees every shard owned", || {
        let output = std::process::Command::new(opendo_e2e::opendo_bin())
            .args(["objects", "--admin", &admin_url, "--token-file", token, "cluster"])
            .output()
            .unwrap();
        shown = String::from_utf8_lossy(&output.stdout).into_owned();
        shown.contains(&format!("{SHARDS} shards, 0 without an owner now (seen by node n2)"))
    });
    assert!(shown.contains("NODE") && shown.contains("n1") && shown.contains("n2"), "{shown}");

    for i in 0..8 {
        assert_eq!(nodes[i % 2].post(&format!("/counter/o{i}/increment")).body, "1");
    }
    // The cluster's metrics join the runtime's in one OpenMetrics text.
    let metrics = nodes[0].admin_send("GET", "/metrics").body;
    assert!(metrics.contains("# TYPE opendo_cluster_forwards counter"), "{metrics}");
    assert!(metrics.contains("# TYPE opendo_activations counter"), "{metrics}");
    assert_eq!(metrics.matches("# EOF").count(), 1, "{metrics}");
    assert!(metrics.ends_with("# EOF\n"), "{metrics}");
    // Any node lists every node's objects, in pages cut at the same cursor.
    for node in &nodes {
        let (_, listing) = admin(node, "/v1/namespaces/counter/objects");
        let page: serde_json::Value = serde_json::from_str(&listing).unwrap();
        let mut names: Vec<&str> =
            page["objects"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
        names.sort();
        assert_eq!(names, (0..8).map(|i| format!("o{i}")).collect::<Vec<_>>(), "{listing}");
        let (_, first) = admin(node, "/v1/namespaces/counter/objects?limit=5");
        let first: serde_json::Value = serde_json::from_str(&first).unwrap();
        let cursor = first["cursor"].as_str().expect("a next page");
        let (_, rest) = admin(node, &format!("/v1/namespaces/counter/objects?limit=5&cursor={cursor}"));
        let rest: serde_json::Value = serde_json::from_str(&rest).unwrap();
        let ids = |page: &serde_json::Value| -> Vec<String> {
            page["objects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_string())
                .collect()
        };
        let (first, rest) = (ids(&first), ids(&rest));
        assert_eq!((first.len(), rest.len()), (5, 3));
        let all: Vec<String> = first.into_iter().chain(rest).collect();
        let mut sorted = all.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(all, sorted, "pages in id order, none twice");
    }
    // Calls on one object go to its owner's admin listener, from either node.
    for i in 0..8 {
        for node in &nodes {
            let (status, kv) = admin(node, &format!("/v1/namespaces/counter/objects/name/o{i}/kv"));
            assert_eq!(status, 200, "o{i}: {kv}");
            assert!(kv.contains("\"count\""), "o{i}: {kv}");
        }
    }
}

#[test]
fn a_node_that_cannot_join_says_why_and_does_not_start() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(dir.path());
    let data = data_dir(&dir);
    let counter = Path::new(EXAMPLE_COUNTER);
    let cluster = etcd.cluster_arg();
    let _first = counter_node(&data, &etcd, "n1");
    let refused = |extra: &[&str]| {
        let (status, log) = opendo_e2e::run_expecting_refusal(counter, &data, extra);
        assert!(!status.success(), "{log}");
        log
    };
    let log = refused(&["--cluster", &cluster, "--node-id", "n1"]);
    assert!(log.contains("node id `n1` is in use by a live node"), "{log}");
    let log = refused(&["--cluster", &cluster, "--node-id", "n2", "--shards", "16"]);
    assert!(log.contains("this cluster has 64 shards") && log.contains("--shards 16"), "{log}");
    let log = refused(&["--cluster", "etcd=http://127.0.0.1:1", "--node-id", "n3"]);
    assert!(log.contains("joining the cluster") && log.contains("etcd"), "{log}");
    let log = refused(&["--cluster", "zookeeper=x"]);
    assert!(log.contains("etcd=URL"), "{log}");
    let log = refused(&["--cluster", &cluster, "--node-id", "bad id!"]);
    assert!(log.contains("invalid node id"), "{log}");
    // A lone server cannot take a data directory the nodes share.
    let log = refused(&[]);
    assert!(log.contains("in use by another opendo"), "{log}");
}
