//! Review desks under test: staff with fresh personal keys, a free port for
//! the review API, and calls to it signed as a member of the staff.

use std::path::{Path, PathBuf};
use std::time::Duration;

use concord_holder::{ReviewConfig, Staff, StaffClaims, StaffRole, STAFF_TOKEN_TYP};
use concord_protocol::{Signer, SigningKey};

/// One member of a holder's staff under test, with their private key.
pub struct Staffer {
    /// The staff id.
    pub id: String,
    /// The PEM file `concord review --key` reads.
    pub key_path: PathBuf,
    signer: Signer,
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port()
}

/// A review table for holder `agency` listening on `port`, with `staff`
/// (id, roles) each given a fresh key written under `dir`.
pub fn review_desk(agency: &str, dir: &Path, port: u16, staff: &[(&str, &[StaffRole])]) -> (ReviewConfig, Vec<Staffer>) {
    std::fs::create_dir_all(dir.join("staff")).expect("staff folder");
    let mut table = Vec::new();
    let mut staffers = Vec::new();
    for (id, roles) in staff {
        let (pem, public) = concord_runtime::pki::new_signing_key().expect("a key");
        let key_path = dir.join("staff").join(format!("{id}.key"));
        std::fs::write(&key_path, &pem).expect("writing the key");
        let key = SigningKey::from_pkcs8_pem(agency.parse().unwrap(), &format!("{agency}/{id}"), &pem, "test").unwrap();
        table.push(Staff {
            id: (*id).into(),
            name: format!("{id} (test)"),
            roles: roles.to_vec(),
            public_key: Some(concord_protocol::b64(&public)),
            public_key_file: None,
        });
        staffers.push(Staffer { id: (*id).into(), key_path, signer: Signer::new(key, Duration::from_secs(60)) });
    }
    let config = ReviewConfig { listen: format!("127.0.0.1:{port}"), escalate_after: 0.5, max_token_secs: 300, staff: table };
    (config, staffers)
}

impl Staffer {
    /// A token for `act` (on `on`, with `why`) at holder `agency`.
    pub fn token(&self, agency: &str, act: &str, on: Option<(&str, &str)>, why: Option<&str>) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.signer.sign_json(STAFF_TOKEN_TYP, &StaffClaims::new(&self.id, agency, act, on, why, now, 60))
    }
}

/// Calls the review API on `port` with `token`: `GET path` or `POST path`;
/// the status and the JSON answer, or `None` when the holder is not answering.
pub async fn desk_call(port: u16, post: bool, path: &str, token: &str) -> Option<(u16, serde_json::Value)> {
    concord_protocol::ensure_crypto_provider();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let url = format!("http://127.0.0.1:{port}{path}");
    let request = if post { client.post(url) } else { client.get(url) };
    let response = request.bearer_auth(token).send().await.ok()?;
    let status = response.status().as_u16();
    let body = response.text().await.ok()?;
    Some((status, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)))
}
