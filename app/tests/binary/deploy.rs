//! The deployment manifests under `deploy/` parse, and every variable they set for the
//! product is one the binary reads: a renamed or misspelt setting fails here, not in a
//! cluster.

use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn documents(path: &Path) -> Vec<Yaml> {
    let text = std::fs::read_to_string(path).expect("a manifest");
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|error| panic!("{} does not parse: {error}", path.display()))
}

/// True for a variable the product reads: its settings, the log filter, and the AWS_*
/// variables of the S3 receipt store.
fn read_by_the_binary(name: &str) -> bool {
    name == "RUST_LOG"
        || name.starts_with("AWS_")
        || app::config::environment_variables()
            .iter()
            .any(|v| v == name)
}

fn keys(map: &Yaml) -> Vec<String> {
    map.as_hash()
        .map(|hash| {
            hash.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A compose service with its `<<` merge resolved.
fn merged(service: &Yaml) -> yaml_rust2::yaml::Hash {
    let mut hash = service.as_hash().cloned().expect("a service is a mapping");
    if let Some(base) = hash
        .remove(&Yaml::String("<<".into()))
        .and_then(|b| b.into_hash())
    {
        for (key, value) in base {
            hash.entry(key).or_insert(value);
        }
    }
    hash
}

#[test]
fn the_compose_file_runs_two_instances_on_postgresql_and_names_only_real_settings() {
    let compose = &documents(&deploy_dir().join("compose.yaml"))[0];
    let mut instances = 0;
    for (name, service) in compose["services"].as_hash().expect("services") {
        let service = merged(service);
        let image = service
            .get(&Yaml::String("image".into()))
            .and_then(Yaml::as_str)
            .unwrap_or_default();
        if image != "expense-tracker" {
            continue;
        }
        let environment = service
            .get(&Yaml::String("environment".into()))
            .cloned()
            .unwrap_or(Yaml::Null);
        let variables = keys(&environment);
        assert!(
            variables.iter().any(|v| v == "DATABASE_URL"),
            "{name:?} has no database"
        );
        for variable in variables {
            assert!(
                read_by_the_binary(&variable),
                "{name:?} sets {variable}, which the binary never reads"
            );
        }
        let command = service.get(&Yaml::String("command".into()));
        if command.is_none() {
            instances += 1;
        }
    }
    assert!(
        instances >= 2,
        "the compose file runs {instances} serving instances"
    );
    let services = keys(&compose["services"]);
    assert!(services.iter().any(|s| s == "postgres"), "{services:?}");
    assert!(services.iter().any(|s| s == "mail"), "{services:?}");
}

#[test]
fn the_kubernetes_manifests_parse_and_name_only_real_settings() {
    let directory = deploy_dir().join("kubernetes");
    let kustomization = &documents(&directory.join("kustomization.yaml"))[0];
    let listed: Vec<String> = kustomization["resources"]
        .as_vec()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().expect("a file").to_owned())
        .collect();
    let mut kinds = Vec::new();
    let (mut secrets, mut referenced_secrets) = (Vec::new(), Vec::new());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&directory)
        .expect("deploy/kubernetes")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for path in files {
        let file = path.file_name().and_then(|f| f.to_str()).expect("a name");
        if file == "kustomization.yaml" {
            continue;
        }
        // Every manifest but the Secret's template is part of the kustomization.
        assert!(
            file == "secret.example.yaml" || listed.iter().any(|l| l == file),
            "{file} is not in kustomization.yaml"
        );
        for document in documents(&path) {
            let kind = document["kind"].as_str().expect("a kind").to_owned();
            match kind.as_str() {
                "ConfigMap" => {
                    for variable in keys(&document["data"]) {
                        assert!(read_by_the_binary(&variable), "{file}: {variable}");
                    }
                }
                "Secret" => {
                    for variable in keys(&document["stringData"]) {
                        assert!(read_by_the_binary(&variable), "{file}: {variable}");
                    }
                    secrets.push(
                        document["metadata"]["name"]
                            .as_str()
                            .expect("a name")
                            .to_owned(),
                    );
                }
                "Deployment" | "Job" => {
                    let pod = &document["spec"]["template"]["spec"];
                    for container in pod["containers"].as_vec().expect("containers") {
                        for source in container["envFrom"].as_vec().into_iter().flatten() {
                            if let Some(secret) = source["secretRef"]["name"].as_str() {
                                referenced_secrets.push((file.to_owned(), secret.to_owned()));
                            }
                        }
                        for variable in container["env"].as_vec().into_iter().flatten() {
                            let name = variable["name"].as_str().expect("a name");
                            assert!(read_by_the_binary(name), "{file}: {name}");
                        }
                    }
                }
                _ => {}
            }
            if kind == "Deployment" {
                let spec = &document["spec"];
                assert!(spec["replicas"].as_i64().unwrap_or(0) >= 2, "{file}");
                let container = &spec["template"]["spec"]["containers"][0];
                assert_eq!(
                    container["readinessProbe"]["httpGet"]["path"].as_str(),
                    Some("/readyz")
                );
                assert_eq!(
                    container["livenessProbe"]["httpGet"]["path"].as_str(),
                    Some("/healthz")
                );
            }
            kinds.push(kind);
        }
    }
    // Each Secret a pod reads is one the template shows how to fill in.
    for (file, secret) in &referenced_secrets {
        assert!(
            secrets.contains(secret),
            "{file} reads the Secret {secret}, not in the template"
        );
    }
    for needed in [
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
        "Job",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    ] {
        assert!(kinds.iter().any(|k| k == needed), "no {needed}: {kinds:?}");
    }
}

#[test]
fn a_misspelt_setting_would_be_caught() {
    assert!(read_by_the_binary("DATABASE_URL"));
    assert!(read_by_the_binary("ROLE"));
    assert!(!read_by_the_binary("DATABASE_ULR"));
}
