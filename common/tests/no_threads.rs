//! The client creates no thread: a PKCS#11 caller may forbid it (CKF_LIBRARY_CANT_CREATE_OS_THREADS, which
//! GnuTLS p11tool passes). This file holds one test so the test harness adds no threads of its own while it
//! runs; the scripted server's thread is started before the first count.

mod support;

use signpath_common::client::GatewayClient;
use support::{config_for, fast_options, Scripted, TestServer};

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").expect("Linux /proc").count()
}

#[test]
fn signing_through_the_client_creates_no_thread() {
    let server = TestServer::start(vec![Scripted::json(200, r#"{"signingPolicies":[]}"#)]);
    // Let the server thread settle before counting.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let before = thread_count();

    // `localhost` goes through name resolution, where reqwest's default resolver would use a blocking-pool thread.
    let client = GatewayClient::new(&config_for(&server, "localhost", 30), fast_options()).unwrap();
    for _ in 0..3 {
        client.my_signing_policies(None, None).unwrap();
    }
    let after = thread_count();
    assert_eq!(server.requests().len(), 3);
    assert_eq!(
        before,
        after,
        "the client created {} thread(s)",
        after.saturating_sub(before)
    );
}
