#[path = "support/rabbitmq.rs"]
mod rabbitmq;

use rabbitmq::Broker;
use std::net::TcpStream;
use std::time::Instant;

fn beam_pids() -> Vec<String> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("ps -eo pid,ppid,comm | grep -E 'beam|epmd|erl_child|inet_geth' | grep -v defunct")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn smoke() {
    let t = Instant::now();
    let shared = Broker::shared();
    eprintln!("shared up in {:?}", t.elapsed());
    assert!(TcpStream::connect(("127.0.0.1", shared.port())).is_ok());
    let users = shared.ctl(&["-q", "list_users"]);
    eprintln!("users: {users}");
    assert!(users.contains(shared.username()));
    eprintln!(
        "url {} / {}",
        shared.url(),
        shared.url_without_credentials()
    );
    let perms = shared.ctl(&["-q", "list_permissions", "-p", "/"]);
    eprintln!("perms: {perms}");
    eprintln!("procs: {:#?}", beam_pids());
    eprintln!("own pid {}", std::process::id());

    let t = Instant::now();
    let own = Broker::start();
    eprintln!("own up in {:?}", t.elapsed());
    assert_ne!(own.port(), shared.port());
    let t = Instant::now();
    own.stop_node();
    eprintln!("stopped in {:?}", t.elapsed());
    assert!(TcpStream::connect(("127.0.0.1", own.port())).is_err());
    let t = Instant::now();
    own.start_node();
    eprintln!("restarted in {:?}", t.elapsed());
    let status = own.ctl(&["status"]);
    assert!(status.contains("RabbitMQ version"), "{status}");
    assert!(own.ctl(&["-q", "list_users"]).contains(own.username()));
    assert!(TcpStream::connect(("127.0.0.1", own.port())).is_ok());
    own.start_node(); // no-op
    drop(own);
    eprintln!("procs after drop: {:#?}", beam_pids());
    if std::env::var("SMOKE_HANG").is_ok() {
        std::thread::sleep(std::time::Duration::from_secs(600));
    }
}

#[test]
fn concurrent_shared() {
    let t = Instant::now();
    let b = Broker::shared();
    eprintln!("concurrent_shared got node in {:?}", t.elapsed());
    assert!(b.ctl(&["-q", "list_vhosts"]).contains('/'));
}

#[test]
fn restart_failure_message() {
    let own = Broker::start();
    own.stop_node();
    let _hog = std::net::TcpListener::bind(("127.0.0.1", own.port())).unwrap();
    let t = Instant::now();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| own.start_node())).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    eprintln!("FAILURE after {:?}:\n{msg}\n=== end", t.elapsed());
    drop(_hog);
    own.start_node();
    assert!(own.ctl(&["-q", "list_users"]).contains(own.username()));
}
