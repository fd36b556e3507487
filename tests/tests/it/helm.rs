//! The helm chart, rendered by the real helm (scripts/helm.sh builds it):
//! every service kind is deployed, two agencies of one kind give two
//! Deployments, no key or certificate is in a ConfigMap, probes point at the
//! admin port the services serve, a bad instance is refused with a message,
//! and the chart's copies of the topic model and its Strimzi resources are
//! the ones generated from config/.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use concord_tests::root;
use serde_norway::Value;

fn helm() -> PathBuf {
    let path = std::env::var_os("CONCORD_HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/concord/bin/helm"));
    assert!(path.exists(), "{} is missing: run scripts/helm.sh ensure (make test does)", path.display());
    path
}

fn render(args: &[&str]) -> Result<Vec<Value>, String> {
    let output = Command::new(helm()).args(["template", "concord"]).arg(root().join("helm/concord")).args(args).output().unwrap();
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let text = String::from_utf8(output.stdout).unwrap();
    Ok(serde_norway::Deserializer::from_str(&text).map(|d| Value::deserialize(d).unwrap()).filter(|v| !v.is_null()).collect())
}

use serde::Deserialize;

fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or_default()
}

fn of_kind<'a>(docs: &'a [Value], k: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| kind(d) == k).collect()
}

#[test]
fn chart_deploys_every_service_with_probes_on_the_admin_port_and_no_secret_in_config_maps() {
    let docs = render(&[]).expect("the chart renders with its default values");
    let deployments = of_kind(&docs, "Deployment");
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for d in &deployments {
        *by_kind.entry(d["metadata"]["labels"]["app.kubernetes.io/component"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(
        by_kind,
        BTreeMap::from([
            ("audit".into(), 1),
            ("committee".into(), 2),
            ("enforcement".into(), 1),
            ("exchange".into(), 1),
            ("gateway".into(), 1),
            ("issuer".into(), 1),
        ]),
        "every service, and two committees as two Deployments"
    );
    let admin_port = 9460;
    for d in &deployments {
        let name = d["metadata"]["name"].as_str().unwrap();
        let container = &d["spec"]["template"]["spec"]["containers"][0];
        let component = d["metadata"]["labels"]["app.kubernetes.io/component"].as_str().unwrap();
        assert_eq!(container["args"][0].as_str(), Some(format!("concord-{component}").as_str()), "{name} runs its binary");
        let port = container["ports"].as_sequence().unwrap().iter().find(|p| p["name"] == "admin").expect("an admin port");
        assert_eq!(port["containerPort"].as_u64(), Some(admin_port), "{name}");
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz", "{name}");
        assert_eq!(container["livenessProbe"]["httpGet"]["port"], "admin", "{name}");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz", "{name}");
        assert_eq!(container["readinessProbe"]["httpGet"]["port"], "admin", "{name}");
        assert!(container["resources"]["limits"]["memory"].is_string(), "{name} has resources");
        assert_eq!(d["spec"]["replicas"].as_u64(), Some(1), "{name}: one instance per agency");
        // Keys and certificates come from Secrets only.
        let volumes = d["spec"]["template"]["spec"]["volumes"].as_sequence().unwrap();
        let agency = volumes.iter().find(|v| v["name"] == "agency").unwrap();
        assert!(agency["secret"]["secretName"].is_string(), "{name}: agency keys from a Secret");
        assert!(volumes.iter().find(|v| v["name"] == "ca").unwrap()["secret"].is_mapping(), "{name}: CA from a Secret");
    }
    // The service's own config listens where the probes look.
    for cm in of_kind(&docs, "ConfigMap") {
        for (key, value) in cm["data"].as_mapping().unwrap() {
            let text = value.as_str().unwrap();
            for secret in ["PRIVATE KEY", "BEGIN CERTIFICATE", "signing-key.pem\n-----"] {
                assert!(!text.contains(secret), "ConfigMap {} {:?} holds key material", cm["metadata"]["name"].as_str().unwrap(), key);
            }
            if key == "service.toml" {
                assert!(text.contains(&format!("admin_listen = \"0.0.0.0:{admin_port}\"")), "{text}");
            }
        }
    }
    assert!(of_kind(&docs, "Secret").is_empty(), "the chart never writes a Secret");
    assert_eq!(of_kind(&docs, "PodDisruptionBudget").len(), deployments.len());
    assert_eq!(of_kind(&docs, "Service").len(), deployments.len());
    assert!(of_kind(&docs, "ServiceMonitor").is_empty() && of_kind(&docs, "KafkaTopic").is_empty(), "optional parts are off by default");
}

#[test]
fn optional_service_monitor_and_strimzi_resources_come_from_the_topic_model() {
    let docs = render(&["--set", "serviceMonitor.enabled=true", "--set", "strimzi.enabled=true", "--set", "strimzi.cluster=prod"]).unwrap();
    assert_eq!(of_kind(&docs, "ServiceMonitor").len(), 1);
    let model =
        concord_domain::TopicModel::from_toml_str(&std::fs::read_to_string(root().join("config/topics.toml")).unwrap(), "topics.toml")
            .unwrap();
    let directory =
        concord_domain::Directory::from_toml_str(&std::fs::read_to_string(root().join("config/agencies.toml")).unwrap(), "agencies.toml")
            .unwrap();
    let topics = of_kind(&docs, "KafkaTopic");
    assert_eq!(topics.len(), model.topics(&directory).len(), "one KafkaTopic per topic of the model");
    assert_eq!(of_kind(&docs, "KafkaUser").len(), directory.agencies().count(), "one KafkaUser per agency");
    assert!(topics.iter().all(|t| t["metadata"]["labels"]["strimzi.io/cluster"] == "prod"));
    // The chart's copies are exactly what config/ generates.
    let chart = root().join("helm/concord/files");
    // (That the chart's strimzi.yaml is what the CLI writes is the CLI's unit test.)
    assert_eq!(
        std::fs::read_to_string(chart.join("topics.toml")).unwrap(),
        std::fs::read_to_string(root().join("config/topics.toml")).unwrap(),
        "helm/concord/files/topics.toml differs from config/topics.toml: copy it"
    );
}

#[test]
fn an_instance_of_an_unknown_kind_or_without_a_secret_is_refused_with_a_message() {
    let err = render(&["--set", "instances[0].kind=bank"]).expect_err("an unknown kind is refused");
    assert!(err.contains("kind \"bank\" is not one of issuer, exchange, committee, enforcement, audit, gateway"), "{err}");
    let values = std::env::temp_dir().join(format!("concord-helm-{}.yaml", std::process::id()));
    std::fs::write(&values, "instances:\n  - {name: issuer-x, kind: issuer, agency: issuer-usdx, config: \"\"}\n").unwrap();
    let err = render(&["-f", values.to_str().unwrap()]).expect_err("an instance without a Secret is refused");
    std::fs::remove_file(&values).ok();
    assert!(err.contains("name the Secret with its certificate and keys"), "{err}");
}

#[test]
fn gateway_serves_https_from_secrets_and_its_rendered_config_loads() {
    let docs = render(&[]).expect("the chart renders with its default values");
    let gateway = of_kind(&docs, "Deployment")
        .into_iter()
        .find(|d| d["metadata"]["labels"]["app.kubernetes.io/component"] == "gateway")
        .expect("a gateway Deployment");
    let pod = &gateway["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let https = container["ports"].as_sequence().unwrap().iter().find(|p| p["name"] == "https").expect("an https port");
    assert_eq!(https["containerPort"].as_u64(), Some(8443));
    let volumes = pod["volumes"].as_sequence().unwrap();
    for (volume, secret) in [("gateway-tls", "concord-gateway-tls"), ("gateway-delegated", "concord-gateway-delegated")] {
        let v = volumes.iter().find(|v| v["name"] == volume).unwrap_or_else(|| panic!("volume {volume}"));
        assert_eq!(v["secret"]["secretName"], secret, "{volume} comes from a Secret");
    }
    let name = gateway["metadata"]["name"].as_str().unwrap();
    let service = of_kind(&docs, "Service").into_iter().find(|s| s["metadata"]["name"] == name).unwrap();
    assert!(service["spec"]["ports"].as_sequence().unwrap().iter().any(|p| p["name"] == "https" && p["targetPort"] == "https"));
    // The ConfigMap's service.toml is a gateway configuration the binary accepts.
    let config = of_kind(&docs, "ConfigMap").into_iter().find(|c| c["metadata"]["name"] == name).unwrap();
    let text = config["data"]["service.toml"].as_str().unwrap();
    let file = std::env::temp_dir().join(format!("concord-helm-gateway-{}.toml", std::process::id()));
    std::fs::write(&file, text).unwrap();
    let loaded = concord_gateway::GatewayConfig::load(&file);
    std::fs::remove_file(&file).ok();
    let loaded = loaded.unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(loaded.listen, "0.0.0.0:8443");
    assert_eq!(loaded.delegated_keys.as_deref(), Some(std::path::Path::new("/etc/concord/gateway/delegated")));
    assert_eq!(loaded.tls.certificate.as_deref(), Some(std::path::Path::new("/etc/concord/gateway/tls/tls.crt")));

    let values = std::env::temp_dir().join(format!("concord-helm-gw-{}.yaml", std::process::id()));
    std::fs::write(&values, "instances:\n  - {name: gw, kind: gateway, agency: gateway-hub, secret: s, config: \"\"}\n").unwrap();
    let err = render(&["-f", values.to_str().unwrap()]).expect_err("a gateway without its Secrets is refused");
    std::fs::remove_file(&values).ok();
    assert!(err.contains("a gateway needs `gateway`"), "{err}");
}
