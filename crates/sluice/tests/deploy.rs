//! The examples in `deploy/` stay true to the binary: every container's arguments are accepted by
//! this `sluice`, and every probe names an endpoint it serves. (No cluster here: the manifest's
//! Kubernetes validity is its authors' to keep.)

use std::path::Path;
use std::process::Command;

fn manifests() -> Vec<serde_yaml_ng::Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes/sluice.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    text.split("\n---\n")
        .map(|doc| serde_yaml_ng::from_str(doc).unwrap())
        .collect()
}

#[test]
fn kubernetes_example_runs_this_binary() {
    let docs = manifests();
    let deployments: Vec<_> = docs.iter().filter(|d| d["kind"] == "Deployment").collect();
    assert_eq!(deployments.len(), 2, "a scheduler and an API deployment");
    let mut roles = Vec::new();
    for d in deployments {
        let name = d["metadata"]["name"].as_str().unwrap();
        for c in d["spec"]["template"]["spec"]["containers"]
            .as_sequence()
            .unwrap()
        {
            let args: Vec<&str> = c["args"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            // Arguments are checked as they are read, before `--help` is acted on.
            let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
                .args(&args)
                .arg("--help")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name}: `sluice {}` is refused: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            if let Some(i) = args.iter().position(|a| *a == "--role") {
                roles.push(args[i + 1].to_string());
            }
            assert_eq!(
                c["livenessProbe"]["httpGet"]["path"], "/api/health",
                "{name}"
            );
            assert_eq!(
                c["readinessProbe"]["httpGet"]["path"], "/api/ready",
                "{name}"
            );
        }
    }
    roles.sort();
    assert_eq!(roles, ["api", "scheduler"]);

    // A wrong role would have been caught above.
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--role", "worker", "--help"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
